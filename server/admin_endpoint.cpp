// The admin endpoint's HTTP/1.1 plumbing (Beast): read a request with a
// deadline and a body limit, run AdminApi::handle on the blocking pool, write
// the answer, keep the connection alive while the client wants. Over TLS
// (tls.admin) the TLS handshake comes first, within the same deadline.
#include "server/admin_endpoint.h"

#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <optional>
#include <type_traits>

#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <spdlog/spdlog.h>

#include "server/admin_api.h"
#include "server/context.h"
#include "server/log.h"

namespace oms::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

namespace {

constexpr std::size_t kMaxHeaderBytes = 8192;

// Admin connection ids for the logs: a1, a2, ... per process.
std::atomic<std::uint64_t> g_admin_connections{0};

// An open admin connection, as limits.max_admin_connections sees it.
class AdminConnection {
 public:
  virtual ~AdminConnection() = default;
  virtual void evict() = 0;  // any thread: closes the socket on the connection's strand
  // Since when it waits for a request (steady ms), -1 while it works on one.
  std::atomic<std::int64_t> idle_since_ms{0};
};

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The open admin connections. At the cap a new connection closes the one
// that has waited longest for a request (an idle keep-alive or a stalled
// client), so that an attacker holding connections open cannot lock out
// health checks and operators; with none idle the new one is refused.
class AdminConnections {
 public:
  // False: refused (every connection is busy).
  bool admit(ServerContext& ctx, std::size_t cap) {
    std::shared_ptr<AdminConnection> victim;
    {
      std::lock_guard lock(mu_);
      if (open_.size() < cap) return true;
      std::int64_t oldest = std::numeric_limits<std::int64_t>::max();
      for (const auto& [key, w] : open_) {
        auto c = w.lock();
        if (!c) continue;
        const std::int64_t since = c->idle_since_ms.load();
        if (since >= 0 && since < oldest) {
          oldest = since;
          victim = std::move(c);
        }
      }
      if (victim) open_.erase(victim.get());  // counted out now, closed below
    }
    ctx.metrics.admin_connections_refused.fetch_add(1, std::memory_order_relaxed);
    if (!victim) return false;
    victim->evict();
    return true;
  }
  void add(AdminConnection* key, std::weak_ptr<AdminConnection> c) {
    std::lock_guard lock(mu_);
    open_[key] = std::move(c);
  }
  void remove(AdminConnection* key) {
    std::lock_guard lock(mu_);
    open_.erase(key);
  }

 private:
  std::mutex mu_;
  std::unordered_map<AdminConnection*, std::weak_ptr<AdminConnection>> open_;
};

AdminConnections g_open_admin;

// Stream: beast::tcp_stream (http://) or TlsStream (https://).
template <class Stream>
class AdminHttpSession final : public AdminConnection,
                               public std::enable_shared_from_this<AdminHttpSession<Stream>> {
 public:
  AdminHttpSession(ServerContext& ctx, AdminApi& api, Stream&& stream)
      : ctx_(ctx), api_(api), stream_(std::move(stream)) {
    beast::error_code ec;
    auto ep = tcp_layer().socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    conn_id_ = "a" + std::to_string(g_admin_connections.fetch_add(1, std::memory_order_relaxed) + 1);
    idle_since_ms = steady_ms();
  }
  ~AdminHttpSession() override { g_open_admin.remove(this); }

  void evict() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      logger_for(LogComponent::kAdmin)
          .info("admin connection {} ({}): closed, idle at limits.max_admin_connections ({})", self->conn_id_,
                self->remote_, self->ctx_.config.max_admin_connections);
      beast::error_code ignored;
      self->tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ignored);
      self->tcp_layer().socket().close(ignored);
    });
  }

  void run() {
    g_open_admin.add(this, std::static_pointer_cast<AdminConnection>(this->shared_from_this()));
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      tcp_layer().expires_after(std::chrono::seconds(ctx_.config.handshake_timeout_seconds));
      stream_.async_handshake(net::ssl::stream_base::server,
                              beast::bind_front_handler(&AdminHttpSession::on_handshake, this->shared_from_this()));
    } else {
      do_read();
    }
  }

 private:
  beast::tcp_stream& tcp_layer() { return beast::get_lowest_layer(stream_); }

  void on_handshake(beast::error_code ec) {
    if (ec) {
      logger_for(LogComponent::kAdmin).debug("admin connection {} ({}): TLS handshake: {}", conn_id_, remote_,
                                             ec.message());
      beast::error_code ignored;
      tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    do_read();
  }

  void do_read() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(ctx_.config.max_admin_body_bytes);
    // Slow or idle clients are dropped: the whole request must arrive in time.
    tcp_layer().expires_after(std::chrono::seconds(ctx_.config.handshake_timeout_seconds));
    idle_since_ms = steady_ms();
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&AdminHttpSession::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    idle_since_ms = -1;
    if (ec == http::error::body_limit) {
      AdminResponse res{413, "application/json",
                        R"({"error":{"code":"too_large","message":"the request body exceeds limits.max_admin_body_bytes"}})"};
      return write(res, false);
    }
    if (ec && ec != http::error::end_of_stream && ec != net::error::operation_aborted)
      logger_for(LogComponent::kAdmin).debug("admin connection {} ({}): read: {}", conn_id_, remote_, ec.message());
    if (ec == http::error::end_of_stream || ec) {
      beast::error_code ignored;
      tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    req_ = parser_->release();
    tcp_layer().expires_never();
    // Health checks never wait for a thread: a load balancer must see them
    // answered while admin requests (a backup, a purge) keep the pool busy.
    if (req_.target() == "/healthz" || req_.target() == "/readyz") {
      AdminRequest r;
      r.method = req_.method_string();
      r.target = req_.target();
      r.remote = remote_;
      return write(api_.handle(r), req_.keep_alive());
    }
    ctx_.run_blocking([self = this->shared_from_this()] {
      AdminRequest r;
      r.method = self->req_.method_string();
      r.target = self->req_.target();
      r.authorization = self->req_[http::field::authorization];
      r.body = self->req_.body();
      r.remote = self->remote_;
      AdminResponse res = self->api_.handle(r);
      logger_for(LogComponent::kAdmin).debug("admin connection {} ({}): {} {} -> {}", self->conn_id_, self->remote_,
                                             r.method, r.target, res.status);
      net::post(self->stream_.get_executor(), [self, res = std::move(res)] {
        self->write(res, self->req_.keep_alive());
      });
    });
  }

  void write(const AdminResponse& r, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status),
                                                                   req_.version() ? req_.version() : 11);
    res->set(http::field::server, "omsd");
    res->set(http::field::content_type, r.content_type);
    if (r.status == 401) res->set(http::field::www_authenticate, "Bearer");
    res->keep_alive(keep_alive);
    res->body() = req_.method() == http::verb::head ? std::string() : r.body;
    res->prepare_payload();
    tcp_layer().expires_after(std::chrono::seconds(ctx_.config.handshake_timeout_seconds));
    http::async_write(stream_, *res, [self = this->shared_from_this(), res, keep_alive](beast::error_code ec, std::size_t) {
      if (ec) return;
      if (!keep_alive) {
        beast::error_code ignored;
        self->tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      self->do_read();
    });
  }

  ServerContext& ctx_;
  AdminApi& api_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> req_;
  std::string remote_ = "?";
  std::string conn_id_;
};

}  // namespace

void serve_admin_connection(ServerContext& ctx, AdminApi& api, tcp::socket socket) {
  if (!g_open_admin.admit(ctx, ctx.config.max_admin_connections)) {
    beast::error_code ignored;
    socket.close(ignored);
    return;
  }
  if (ctx.tls && ctx.config.admin_tls()) {
    std::make_shared<AdminHttpSession<TlsStream>>(ctx, api,
                                                  TlsStream(beast::tcp_stream(std::move(socket)), *ctx.tls))
        ->run();
  } else {
    std::make_shared<AdminHttpSession<beast::tcp_stream>>(ctx, api, beast::tcp_stream(std::move(socket)))->run();
  }
}

}  // namespace oms::server
