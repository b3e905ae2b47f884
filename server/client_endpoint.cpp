// The client endpoint (client_endpoint.h), templated on the stream below
// HTTP: ws:// and wss:// share the code.
#include "server/client_endpoint.h"

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <spdlog/spdlog.h>

#include "server/connection_slot.h"
#include "server/context.h"
#include "server/log.h"
#include "server/web_client.h"
#include "server/ws_session.h"

namespace oms::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

namespace {

constexpr std::size_t kMaxHttpHeaderBytes = 8192;

// Over TLS, first completes the TLS handshake (within
// limits.handshake_timeout_seconds). Then reads the first HTTP request (with
// a deadline). The WebSocket upgrade at /v1/ws becomes a session
// (start_ws_session); any other request is answered by handle_web_request
// (the browser client, dev tokens, 404) and the connection is closed (no
// idle keep-alive connections to wait for at shutdown). Holds the
// connection's slot until it hands the stream on or goes.
template <class Stream>
class UpgradeReader : public std::enable_shared_from_this<UpgradeReader<Stream>> {
 public:
  UpgradeReader(ServerContext& ctx, Stream&& stream, ConnectionSlot slot)
      : ctx_(ctx), slot_(std::move(slot)), stream_(std::move(stream)) {
    beast::error_code ec;
    auto ep = tcp_layer().socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  void run() {
    tcp_layer().expires_after(std::chrono::seconds(ctx_.config.handshake_timeout_seconds));
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      stream_.async_handshake(net::ssl::stream_base::server,
                              beast::bind_front_handler(&UpgradeReader::on_handshake, this->shared_from_this()));
    } else {
      read_request();
    }
  }

 private:
  SessionStream& tcp_layer() { return beast::get_lowest_layer(stream_); }

  void on_handshake(beast::error_code ec) {
    if (ec) {
      // Plain HTTP to the TLS port, a stalled client (deadline), a bad
      // certificate chain on the client's side: nothing to answer.
      logger_for(LogComponent::kSession).debug("client connection {}: TLS handshake: {}", remote_, ec.message());
      return done();
    }
    read_request();
  }

  // Within the deadline set in run(): the TLS handshake and the request
  // share limits.handshake_timeout_seconds.
  void read_request() {
    parser_.emplace();
    parser_->header_limit(kMaxHttpHeaderBytes);
    parser_->body_limit(kMaxClientHttpBodyBytes);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&UpgradeReader::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::body_limit) return write(web_body_too_large(), 11, false);
    if (ec) return done();
    auto req = parser_->release();
    if (websocket::is_upgrade(req) && req.target() == "/v1/ws") {
      if (!origin_allowed(req)) return write(web_forbidden_origin(req[http::field::origin]), req.version(), false);
      tcp_layer().expires_never();
      return start_ws_session(ctx_, std::move(stream_), std::move(slot_), std::move(req));
    }
    WebRequest wr;
    wr.method = req.method_string();
    wr.target = req.target();
    wr.host = req[http::field::host];
    wr.body = req.body();
    wr.remote = remote_;
    WebResponse res = handle_web_request(ctx_, wr);
    write(std::move(res), req.version(), req.method() == http::verb::head);
  }

  void write(WebResponse wr, unsigned version, bool head) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(wr.status), version);
    res->set(http::field::server, "omsd");
    res->set(http::field::content_type, wr.content_type);
    for (auto& [name, value] : wr.headers) res->set(name, value);
    res->keep_alive(false);
    if (head) {
      res->content_length(wr.payload().size());  // what GET would send, no body
    } else {
      res->body() = std::string(wr.payload());
      res->prepare_payload();
    }
    tcp_layer().expires_after(std::chrono::seconds(ctx_.config.handshake_timeout_seconds));
    http::async_write(stream_, *res, [self = this->shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec) return self->done();
      self->linger();
    });
  }

  // After the answer: half-close, then read and drop what the client still
  // sends (the rest of a refused body) until it closes, so closing with
  // unread data does not reset the connection before the answer is read.
  void linger() {
    beast::error_code ignored;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ignored);
    tcp_layer().expires_after(kLinger);
    linger_more();
  }
  void linger_more() {
    // Raw bytes below TLS: nothing read here is looked at.
    tcp_layer().async_read_some(net::buffer(drain_), [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->done();
      self->linger_more();
    });
  }

  // The connection slot is given back when this object goes (right after).
  void done() {
    beast::error_code ignored;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  // auth.allowed_origins: browsers send Origin on the upgrade; a page from
  // another site must not open a session with the user's token
  // (cross-site WebSocket hijacking). No Origin header: not a browser.
  bool origin_allowed(const http::request<http::string_body>& req) const {
    const auto& allowed = ctx_.config.allowed_origins;
    if (allowed.empty()) return true;
    auto it = req.find(http::field::origin);
    if (it == req.end()) return true;
    return std::find(allowed.begin(), allowed.end(), it->value()) != allowed.end();
  }

  // How long a closing plain-HTTP connection drains its peer.
  static constexpr std::chrono::seconds kLinger{2};

  ServerContext& ctx_;
  ConnectionSlot slot_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remote_ = "?";
  std::array<char, 4096> drain_{};
};

}  // namespace

// Admission first: the slot is counted against the caps while the
// connection lives; a refused socket is closed at once.
void serve_client_connection(ServerContext& ctx, SessionSocket socket) {
  beast::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  std::string key;
  if (!ec) key = address_key(peer.address());
  Admission::Refusal why{};
  ConnectionSlot slot =
      ctx.admission.admit(std::move(key), {ctx.config.max_connections, ctx.config.max_connections_per_ip}, why);
  if (!slot.held()) {
    if (why == Admission::Refusal::kTooManyFromAddress)
      logger_for(LogComponent::kSession)
          .debug("refused a connection from {}: limits.max_connections_per_ip ({}) reached",
                 ec ? std::string("?") : peer.address().to_string(), ctx.config.max_connections_per_ip);
    beast::error_code ignored;
    socket.close(ignored);
    return;
  }
  if (ctx.tls && ctx.config.client_tls()) {
    std::make_shared<UpgradeReader<TlsStream>>(ctx, TlsStream(SessionStream(std::move(socket)), *ctx.tls),
                                               std::move(slot))
        ->run();
  } else {
    std::make_shared<UpgradeReader<SessionStream>>(ctx, SessionStream(std::move(socket)), std::move(slot))
        ->run();
  }
}

}  // namespace oms::server
