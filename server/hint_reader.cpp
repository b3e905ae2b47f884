#include "server/hint_reader.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <unordered_map>
#include <vector>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "server/log.h"

namespace oms::server {

namespace {

namespace net = boost::asio;
using boost::system::error_code;

constexpr std::string_view kUserPrefix = "oms:u:";
constexpr std::size_t kChannelsPerCommand = 512;  // a (re)subscription of many users goes in pieces
constexpr auto kConnectTimeout = std::chrono::milliseconds(2000);
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);
// A PING every period keeps the connection from Redis's idle `timeout` (it
// spares only clients with subscriptions) and finds a dead one: nothing
// read in a whole period after a PING ends the connection.
constexpr auto kPingPeriod = std::chrono::seconds(5);

class Reader final : public HintReader, public std::enable_shared_from_this<Reader> {
 public:
  Reader(net::io_context& ioc, RedisAddress addr, std::string name, Hooks hooks)
      : ioc_(ioc),
        addr_(std::move(addr)),
        name_(std::move(name)),
        hooks_(std::move(hooks)),
        socket_(ioc),
        resolver_(ioc),
        timer_(ioc),
        ping_timer_(ioc) {}

  void start() override {
    net::post(ioc_, [self = shared_from_this()] { self->connect(); });
  }

  void want(const std::string& user, bool open) override {
    net::post(ioc_, [self = shared_from_this(), user, open] { self->on_want(user, open); });
  }

  void close() override {
    net::post(ioc_, [self = shared_from_this()] {
      self->closed_ = true;
      self->drop();
    });
  }

 private:
  enum class State : std::uint8_t { kIdle, kConnecting, kConnected };

  spdlog::logger& log() { return logger_for(LogComponent::kOmsd); }

  // ---- wanted channels ----
  void on_want(const std::string& user, bool open) {
    auto& n = sessions_[user];
    if (open) {
      if (++n != 1) return;
      if (state_ == State::kConnected) subscribe_command("SUBSCRIBE", {user});
    } else {
      if (n > 0) --n;
      if (n != 0) return;
      sessions_.erase(user);
      if (state_ == State::kConnected) subscribe_command("UNSUBSCRIBE", {user});
    }
  }

  void subscribe_command(std::string_view verb, const std::vector<std::string>& users) {
    std::vector<std::string> channels;
    channels.reserve(users.size());
    for (const auto& u : users) channels.push_back(std::string(kUserPrefix) + u);
    std::vector<std::string_view> argv;
    argv.push_back(verb);
    for (const auto& c : channels) argv.push_back(c);
    if (!append_redis_command(pending_, argv)) return fail("out of memory");
    write();
  }

  // ---- connection ----
  void connect() {
    if (closed_ || state_ != State::kIdle) return;
    state_ = State::kConnecting;
    timer_.expires_after(kConnectTimeout);
    timer_.async_wait([self = shared_from_this(), gen = gen_](error_code ec) {
      if (!ec && gen == self->gen_ && self->state_ == State::kConnecting) self->fail("connect timed out");
    });
    endpoints_.clear();
    if (!addr_.unix_path.empty()) {
      endpoints_.emplace_back(net::local::stream_protocol::endpoint(addr_.unix_path));
      return connect_to(0);
    }
    using Results = net::ip::tcp::resolver::results_type;
    resolver_.async_resolve(addr_.host, std::to_string(addr_.port),
                            [self = shared_from_this(), gen = gen_](error_code ec, Results r) {
                              if (gen != self->gen_ || self->closed_) return;
                              if (ec || r.empty()) return self->fail(ec ? ec.message() : "no address");
                              for (const auto& e : r) self->endpoints_.emplace_back(e.endpoint());
                              self->connect_to(0);
                            });
  }

  // Tries the addresses in turn (a name may resolve to ::1 and 127.0.0.1).
  void connect_to(std::size_t i) {
    socket_.async_connect(endpoints_[i], [self = shared_from_this(), gen = gen_, i](error_code ec) {
      if (gen != self->gen_ || self->closed_) return;
      if (!ec) return self->on_connected(self->addr_.unix_path.empty());
      if (i + 1 >= self->endpoints_.size()) return self->fail(ec.message());
      error_code ignored;
      self->socket_.close(ignored);
      self->connect_to(i + 1);
    });
  }

  void on_connected(bool tcp) {
    timer_.cancel();
    state_ = State::kConnected;
    connected_at_ = std::chrono::steady_clock::now();
    if (hooks_.connected) hooks_.connected->fetch_add(1, std::memory_order_relaxed);
    if (tcp) {  // a vanished Redis host, as hiredis sets it for the other connections
      error_code ignored;
      socket_.set_option(net::socket_base::keep_alive(true), ignored);
      const int fd = socket_.native_handle();
      const int idle = 15, interval = 5, count = 3;
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    }
    if (reconnects_ > 0) log().info("cluster: hint reader {}: connected to redis again", name_);
    // (Channels are not per database: no SELECT.)
    std::vector<std::string> users;
    users.reserve(kChannelsPerCommand);
    for (const auto& [u, n] : sessions_) {
      users.push_back(u);
      if (users.size() == kChannelsPerCommand) {
        subscribe_command("SUBSCRIBE", users);
        if (state_ != State::kConnected) return;  // (it failed)
        users.clear();
      }
    }
    if (!users.empty()) subscribe_command("SUBSCRIBE", users);
    if (state_ != State::kConnected) return;
    read_since_ping_ = true;
    ping();
    read();
  }

  // Every kPingPeriod: a PING, unless nothing came since the last one (the
  // connection is dead or Redis stopped: reconnect). Replies, ["pong", ""]
  // subscribed or +PONG not, are ignored by on_reply.
  void ping() {
    if (!read_since_ping_) return fail("no answer to PING");
    read_since_ping_ = false;
    if (!append_redis_command(pending_, {"PING"})) return fail("out of memory");
    write();
    ping_timer_.expires_after(kPingPeriod);
    ping_timer_.async_wait([self = shared_from_this(), gen = gen_](error_code ec) {
      if (!ec && gen == self->gen_ && !self->closed_) self->ping();
    });
  }

  void write() {
    if (writing_ || pending_.empty() || state_ != State::kConnected) return;
    writing_ = true;
    out_.swap(pending_);
    pending_.clear();
    net::async_write(socket_, net::buffer(out_), [self = shared_from_this(), gen = gen_](error_code ec, std::size_t) {
      if (gen != self->gen_ || self->closed_) return;
      self->writing_ = false;
      self->out_.clear();
      if (ec) return self->fail(ec.message());
      self->write();
    });
  }

  void read() {
    socket_.async_read_some(net::buffer(buf_), [self = shared_from_this(), gen = gen_](error_code ec, std::size_t n) {
      if (gen != self->gen_ || self->closed_) return;
      if (ec) return self->fail(ec == net::error::eof ? "connection closed" : ec.message());
      self->read_since_ping_ = true;
      if (!self->parser_.feed(self->buf_.data(), n)) return self->fail("out of memory");
      for (;;) {
        auto r = self->parser_.next();
        if (!r) return self->fail(r.status().message());
        if (!*r) break;
        self->on_reply(**r);
        if (gen != self->gen_ || self->closed_) return;  // (a hook closed it)
      }
      self->read();
    });
  }

  void on_reply(const RedisReply& r) {
    if (r.type == RedisReply::Type::kError) return fail("redis: " + r.str);
    if (r.type != RedisReply::Type::kArray || r.elements.size() < 3) return;
    const std::string& kind = r.elements[0].str;
    const std::string& channel = r.elements[1].str;
    if (!channel.starts_with(kUserPrefix)) return;
    const std::string user = channel.substr(kUserPrefix.size());
    if (kind == "message") {
      if (sessions_.contains(user) && hooks_.hint) hooks_.hint(user, r.elements[2].str);
    } else if (kind == "subscribe") {
      if (sessions_.contains(user) && hooks_.subscribed) hooks_.subscribed(user);
    }
  }

  // Drops the connection; it comes back after the backoff unless closed.
  void fail(const std::string& why) {
    if (closed_) return;
    if (state_ == State::kConnected && hooks_.errors) hooks_.errors->fetch_add(1, std::memory_order_relaxed);
    // The backoff starts again only after a connection that lasted: one
    // that Redis keeps closing (an output buffer limit) is retried ever
    // more slowly, not every 100 ms with every user subscribed and poked.
    if (state_ == State::kConnected && std::chrono::steady_clock::now() - connected_at_ >= kMaxBackoff)
      backoff_ = kFirstBackoff;
    if (state_ == State::kConnected || reconnects_ == 0)
      log().warn("cluster: hint reader {}: {}; reconnecting (hints for its sessions wait until then)", name_, why);
    drop();
    ++reconnects_;
    timer_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kMaxBackoff));
    timer_.async_wait([self = shared_from_this(), gen = gen_](error_code ec) {
      if (!ec && gen == self->gen_) self->connect();
    });
  }

  void drop() {
    if (state_ == State::kConnected && hooks_.connected) hooks_.connected->fetch_sub(1, std::memory_order_relaxed);
    ++gen_;  // every handler of the old connection returns
    error_code ignored;
    resolver_.cancel();
    socket_.close(ignored);
    timer_.cancel();
    ping_timer_.cancel();
    parser_.reset();
    pending_.clear();
    out_.clear();
    writing_ = false;
    state_ = State::kIdle;
  }

  net::io_context& ioc_;
  RedisAddress addr_;
  std::string name_;
  Hooks hooks_;
  net::generic::stream_protocol::socket socket_;
  net::ip::tcp::resolver resolver_;
  net::steady_timer timer_;
  net::steady_timer ping_timer_;
  std::chrono::steady_clock::time_point connected_at_;
  bool read_since_ping_ = true;
  std::vector<net::generic::stream_protocol::endpoint> endpoints_;
  State state_ = State::kIdle;
  bool closed_ = false;
  bool writing_ = false;
  std::uint64_t gen_ = 0;  // the connection's generation: handlers of an older one do nothing
  std::uint64_t reconnects_ = 0;
  std::chrono::milliseconds backoff_ = kFirstBackoff;
  std::unordered_map<std::string, std::uint32_t> sessions_;  // user -> open sessions on the context
  std::string pending_, out_;
  RedisReplyReader parser_;
  std::array<char, 64 * 1024> buf_{};
};

}  // namespace

std::shared_ptr<HintReader> HintReader::create(net::io_context& ioc, RedisAddress addr, std::string name,
                                               Hooks hooks) {
  return std::make_shared<Reader>(ioc, std::move(addr), std::move(name), std::move(hooks));
}

}  // namespace oms::server
