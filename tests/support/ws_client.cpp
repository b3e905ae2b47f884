#include "tests/support/ws_client.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <doctest/doctest.h>

#include "common/jwt.h"

namespace oms::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

struct WsClient::Io {
  net::io_context ioc;
  std::unique_ptr<websocket::stream<beast::tcp_stream>> ws;
  beast::flat_buffer rbuf;
};

WsClient::WsClient(ms timeout)
    : timeout_(timeout), io_(std::make_unique<Io>()), cmid_prefix_(oms::random_hex(6)) {}

WsClient::~WsClient() {
  if (io_->ws && connected_ && !closed_) drop();
}

SteadyClockTimePoint WsClient::deadline_for(std::optional<ms> timeout) const {
  return SteadyClock::now() + timeout.value_or(timeout_);
}

template <class Pred>
bool WsClient::pump_until(Pred pred, SteadyClockTimePoint deadline) {
  while (!pred()) {
    const auto now = SteadyClock::now();
    if (now >= deadline) return false;
    if (io_->ioc.stopped()) io_->ioc.restart();
    const std::size_t n = io_->ioc.run_one_for(deadline - now);
    if (n == 0 && io_->ioc.stopped()) return pred();  // no work left: nothing more can happen
  }
  return true;
}

void WsClient::reset_stream() {
  if (io_->ws && connected_ && !closed_) drop();
  io_->ws = std::make_unique<websocket::stream<beast::tcp_stream>>(io_->ioc);
  // One message is one frame (the frame limit is what tests probe).
  io_->ws->auto_fragment(false);
  io_->ws->read_message_max(64u << 20);
  websocket::stream_base::timeout opt{};
  opt.handshake_timeout = std::chrono::seconds(10);
  opt.idle_timeout = websocket::stream_base::none();
  opt.keep_alive_pings = false;
  io_->ws->set_option(opt);
  io_->ws->set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
    req.set(beast::http::field::user_agent, "oms-integration-tests");
  }));
  io_->rbuf.clear();
  queue_.clear();
  connected_ = reading_ = closed_ = false;
  read_ec_ = {};
  close_code_ = -1;
  close_text_.clear();
  welcome_ = {};
}

WsClient::Handshake WsClient::try_connect(std::uint16_t port, std::string_view path) {
  reset_stream();
  Handshake out;
  websocket::response_type res;
  bool done = false;
  auto& tcp_layer = beast::get_lowest_layer(*io_->ws);
  tcp_layer.expires_after(timeout_);
  const std::string host = "127.0.0.1:" + std::to_string(port);
  const std::string target(path);
  if (rcvbuf_ > 0) {
    boost::system::error_code ec;
    tcp_layer.socket().open(tcp::v4(), ec);
    if (!ec) tcp_layer.socket().set_option(net::socket_base::receive_buffer_size(rcvbuf_), ec);
  }
  tcp_layer.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                          [&](boost::system::error_code ec) {
    if (ec) {
      out.ec = ec;
      done = true;
      return;
    }
    // Like any interactive client: no Nagle delay on small frames.
    boost::system::error_code ignored;
    tcp_layer.socket().set_option(tcp::no_delay(true), ignored);
    io_->ws->async_handshake(res, host, target, [&](boost::system::error_code ec2) {
      out.ec = ec2;
      done = true;
    });
  });
  const bool finished = pump_until([&] { return done; }, deadline_for(timeout_ + ms(500)));
  tcp_layer.expires_never();
  if (!finished) {
    drop();
    throw TestError("WebSocket connect to port " + std::to_string(port) + " timed out");
  }
  out.http_status = static_cast<int>(res.result_int());
  out.body = res.body();
  if (!out.ec && out.http_status == 101) {
    connected_ = true;
    start_read();
  }
  return out;
}

void WsClient::connect(std::uint16_t port, std::string_view path) {
  const Handshake h = try_connect(port, path);
  if (h.ec || h.http_status != 101)
    throw TestError("WebSocket connect to 127.0.0.1:" + std::to_string(port) + std::string(path) +
                    " failed: " + h.ec.message() + " (HTTP " + std::to_string(h.http_status) + ")");
}

void WsClient::start_read() {
  reading_ = true;
  io_->ws->async_read(io_->rbuf, [this](boost::system::error_code ec, std::size_t) {
    reading_ = false;
    if (ec) {
      closed_ = true;
      read_ec_ = ec;
      const auto& reason = io_->ws->reason();
      close_code_ = reason.code != websocket::close_code::none ? static_cast<int>(reason.code) : -1;
      close_text_ = std::string(reason.reason.data(), reason.reason.size());
      return;
    }
    std::string text = beast::buffers_to_string(io_->rbuf.data());
    io_->rbuf.consume(io_->rbuf.size());
    if (io_->ws->got_binary()) {
      queue_.push_back(Json{{"type", "__binary_frame__"}, {"size", text.size()}});
    } else {
      boost::system::error_code pec;
      auto v = boost::json::parse(text, pec);
      if (pec || !v.is_object())
        queue_.push_back(Json{{"type", "__not_a_json_object__"}, {"raw", text}});
      else
        queue_.push_back(std::move(v.get_object()));
    }
    start_read();
  });
}

bool WsClient::is_open() const { return connected_ && !closed_; }

void WsClient::drop() {
  if (!io_->ws) return;
  boost::system::error_code ignored;
  beast::get_lowest_layer(*io_->ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(*io_->ws).socket().close(ignored);
  // Let the aborted operations complete so no handler outlives its state.
  pump_until([&] { return !reading_; }, SteadyClock::now() + std::chrono::seconds(2));
  connected_ = false;
  closed_ = true;
}

void WsClient::close(std::uint16_t code) {
  if (!io_->ws || !connected_ || closed_) {
    connected_ = false;
    return;
  }
  bool done = false;
  io_->ws->async_close(websocket::close_reason(code), [&](boost::system::error_code) { done = true; });
  if (!pump_until([&] { return done && !reading_; }, deadline_for(timeout_))) {
    drop();
    if (!done) pump_until([&] { return done; }, SteadyClock::now() + std::chrono::seconds(2));
  }
  connected_ = false;
  closed_ = true;
}

int WsClient::expect_closed(std::optional<int> expected, std::optional<ms> timeout) {
  if (!io_->ws) throw TestError("expect_closed: never connected");
  if (!pump_until([&] { return closed_; }, deadline_for(timeout)))
    fail_wait("the server to close the connection");
  connected_ = false;
  if (expected) {
    CHECK_MESSAGE(close_code_ == *expected, "expected close code " << *expected << ", got "
                                                                  << close_code_ << " ("
                                                                  << read_ec_.message() << ")");
  }
  return close_code_;
}

boost::system::error_code WsClient::write(std::string_view data, bool binary) {
  if (!io_->ws || !connected_) return net::error::not_connected;
  if (closed_) return net::error::connection_aborted;
  io_->ws->binary(binary);
  bool done = false;
  boost::system::error_code wec;
  io_->ws->async_write(net::buffer(data.data(), data.size()),
                   [&](boost::system::error_code ec, std::size_t) {
    wec = ec;
    done = true;
  });
  const bool finished = pump_until([&] { return done; }, deadline_for(timeout_));
  if (!finished) {
    drop();
    pump_until([&] { return done; }, SteadyClock::now() + std::chrono::seconds(2));
    throw TestError("WebSocket write of " + std::to_string(data.size()) + " bytes timed out");
  }
  io_->ws->text(true);
  return wec;
}

boost::system::error_code WsClient::try_send_text(std::string_view text) { return write(text, false); }
boost::system::error_code WsClient::try_send_binary(std::string_view data) { return write(data, true); }

void WsClient::send_text(std::string_view text) {
  if (auto ec = try_send_text(text)) throw TestError("WebSocket write failed: " + ec.message());
}
void WsClient::send_binary(std::string_view data) {
  if (auto ec = try_send_binary(data)) throw TestError("WebSocket write failed: " + ec.message());
}
void WsClient::send_json(const boost::json::object& frame) { send_text(boost::json::serialize(frame)); }

std::string WsClient::describe_queue() const {
  std::string s = std::to_string(queue_.size()) + " frame(s) queued";
  std::size_t shown = 0;
  for (const auto& f : queue_) {
    if (++shown > 8) {
      s += "\n  ...";
      break;
    }
    std::string t = to_text(f);
    if (t.size() > 300) t = t.substr(0, 300) + "...";
    s += "\n  " + t;
  }
  return s;
}

void WsClient::fail_wait(const std::string& what) const {
  std::string state = closed_ ? "connection closed (close code " + std::to_string(close_code_) +
                                    ", " + read_ec_.message() + ")"
                              : "timed out";
  throw TestError("waiting for " + what + ": " + state + "; " + describe_queue());
}

namespace {
void check_frame(const Json& f) {
  const std::string t = type_of(f);
  if (t == "__binary_frame__") throw TestError("the server sent a binary frame");
  if (t == "__not_a_json_object__") throw TestError("the server sent a non-object frame: " + to_text(f));
}
}  // namespace

std::optional<Json> WsClient::try_recv(ms timeout) {
  pump_until([&] { return !queue_.empty() || closed_; }, SteadyClock::now() + timeout);
  if (queue_.empty()) return std::nullopt;
  Json f = std::move(queue_.front());
  queue_.pop_front();
  check_frame(f);
  return f;
}

Json WsClient::recv(std::optional<ms> timeout) {
  if (!pump_until([&] { return !queue_.empty(); }, deadline_for(timeout))) fail_wait("a frame");
  Json f = std::move(queue_.front());
  queue_.pop_front();
  check_frame(f);
  return f;
}

WsClient::Until WsClient::recv_until(std::string_view type, std::optional<ms> timeout) {
  const auto deadline = deadline_for(timeout);
  Until out;
  for (;;) {
    if (!pump_until([&] { return !queue_.empty(); }, deadline))
      fail_wait("a \"" + std::string(type) + "\" frame (skipped " +
                std::to_string(out.skipped.size()) + ")");
    Json f = std::move(queue_.front());
    queue_.pop_front();
    check_frame(f);
    if (type_of(f) == type) {
      out.frame = std::move(f);
      return out;
    }
    out.skipped.push_back(std::move(f));
  }
}

Json WsClient::take_any(const std::vector<std::string>& types, std::optional<ms> timeout) {
  auto find = [&] {
    for (auto it = queue_.begin(); it != queue_.end(); ++it)
      for (const auto& t : types)
        if (type_of(*it) == t) return it;
    return queue_.end();
  };
  if (!pump_until([&] { return find() != queue_.end(); }, deadline_for(timeout))) {
    std::string names;
    for (const auto& t : types) names += (names.empty() ? "\"" : " or \"") + t + "\"";
    fail_wait("a " + names + " frame");
  }
  auto it = find();
  Json f = std::move(*it);
  queue_.erase(it);
  return f;
}

Json WsClient::take(std::string_view type, std::optional<ms> timeout) {
  return std::move(take_n(type, 1, timeout).front());
}

std::vector<Json> WsClient::take_n(std::string_view type, std::size_t n, std::optional<ms> timeout) {
  auto count = [&] {
    std::size_t c = 0;
    for (const auto& f : queue_) c += type_of(f) == type;
    return c;
  };
  if (!pump_until([&] { return count() >= n; }, deadline_for(timeout)))
    fail_wait(std::to_string(n) + " \"" + std::string(type) + "\" frame(s), have " +
              std::to_string(count()));
  std::vector<Json> out;
  for (auto it = queue_.begin(); it != queue_.end() && out.size() < n;) {
    if (type_of(*it) == type) {
      out.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

Json WsClient::reply(const boost::json::value& rid, std::optional<ms> timeout) {
  auto find = [&] {
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      const auto* r = it->if_contains("rid");
      if (r != nullptr && *r == rid) return it;
    }
    return queue_.end();
  };
  if (!pump_until([&] { return find() != queue_.end(); }, deadline_for(timeout)))
    fail_wait("the reply to rid " + to_text(rid));
  auto it = find();
  Json f = std::move(*it);
  queue_.erase(it);
  return f;
}

void WsClient::poll() {
  if (io_->ioc.stopped()) io_->ioc.restart();
  io_->ioc.poll();
}

const std::deque<Json>& WsClient::queued() {
  poll();
  return queue_;
}

std::vector<Json> WsClient::take_all(std::string_view type) {
  poll();
  std::vector<Json> out;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (type_of(*it) == type) {
      out.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void WsClient::barrier() {
  const Json pong = ping();
  if (type_of(pong) != "pong") throw TestError("ping answered with " + to_text(pong));
}

void WsClient::expect_no(std::string_view type, ms quiet) {
  auto seen = [&] {
    for (const auto& f : queue_)
      if (type.empty() || type_of(f) == type) return true;
    return false;
  };
  pump_until(seen, SteadyClock::now() + quiet);
  if (!seen() && is_open()) barrier();
  CHECK_MESSAGE(!seen(), "expected no \"" << type << "\" frame, but: " << describe_queue());
}

boost::json::value WsClient::next_rid() { return boost::json::value(++rid_counter_); }

Json WsClient::hello_frame(std::string_view token, const std::vector<std::string>& features,
                           std::string_view name, std::string_view version,
                           const boost::json::value* device) {
  Json client{{"name", name}, {"version", version}, {"features", str_array(features)}};
  if (device != nullptr) client["device"] = *device;
  return Json{{"type", "hello"}, {"rid", next_rid()}, {"token", token}, {"client", std::move(client)}};
}

Json WsClient::hello_raw(std::string_view token, const std::vector<std::string>& features) {
  send_json(hello_frame(token, features, "oms-tests", "2.1.0", nullptr));
  return recv();
}

Json WsClient::hello_raw_device(std::string_view token, const boost::json::value& device,
                                const std::vector<std::string>& features) {
  send_json(hello_frame(token, features, "oms-tests", "2.1.0", &device));
  return recv();
}

Json WsClient::hello(std::string_view token, const std::vector<std::string>& features,
                     std::string_view name, std::string_view version) {
  const Json frame = hello_frame(token, features, name, version, nullptr);
  send_json(frame);
  Json r = reply(frame.at("rid"));
  if (type_of(r) != "welcome") throw TestError("hello was not welcomed: " + to_text(r));
  welcome_ = r;
  return r;
}

Json WsClient::hello_device(std::string_view token, std::string_view device,
                            const std::vector<std::string>& features) {
  const boost::json::value d(device);
  const Json frame = hello_frame(token, features, "oms-tests", "2.1.0", &d);
  send_json(frame);
  Json r = reply(frame.at("rid"));
  if (type_of(r) != "welcome")
    throw TestError("hello as device " + std::string(device) + " was not welcomed: " + to_text(r));
  welcome_ = r;
  return r;
}

std::string WsClient::user() const { return welcome_.contains("user") ? str_of(welcome_, "user") : ""; }
std::string WsClient::session() const {
  return welcome_.contains("session") ? str_of(welcome_, "session") : "";
}

Json WsClient::request(boost::json::object frame, std::optional<ms> timeout) {
  if (!frame.contains("rid")) frame["rid"] = next_rid();
  const boost::json::value rid = frame["rid"];
  send_json(frame);
  return reply(rid, timeout);
}

Json WsClient::send(std::string_view to, std::string_view body,
                    std::optional<std::string> client_msg_id) {
  Json frame{{"type", "send"}, {"to", to}, {"body", body}};
  if (!client_msg_id) frame["client_msg_id"] = cmid_prefix_ + "-" + std::to_string(++cmid_counter_);
  else if (!client_msg_id->empty()) frame["client_msg_id"] = *client_msg_id;
  return request(std::move(frame));
}

Json WsClient::set_presence(std::string_view state) {
  return request(Json{{"type", "presence.set"}, {"state", state}});
}

Json WsClient::subscribe(const std::vector<std::string>& users) {
  return request(Json{{"type", "presence.subscribe"}, {"users", str_array(users)}});
}

void WsClient::ack(const std::vector<std::string>& ids) {
  send_json(Json{{"type", "ack"}, {"ids", str_array(ids)}});
}

boost::system::error_code WsClient::try_ack(const std::vector<std::string>& ids) {
  return try_send_text(boost::json::serialize(Json{{"type", "ack"}, {"ids", str_array(ids)}}));
}

Json WsClient::ack_with_rid(const std::vector<std::string>& ids) {
  return request(Json{{"type", "ack"}, {"ids", str_array(ids)}});
}

Json WsClient::ping() { return request(Json{{"type", "ping"}}); }

std::vector<Json> WsClient::receive_messages(std::size_t n, bool auto_ack, std::optional<ms> timeout) {
  const auto deadline = deadline_for(timeout);
  std::vector<Json> out;
  while (out.size() < n) {
    const auto left = std::chrono::duration_cast<ms>(deadline - SteadyClock::now());
    if (left.count() <= 0)
      fail_wait(std::to_string(n) + " messages (got " + std::to_string(out.size()) + ")");
    Json m = take("message", left);
    if (auto_ack) ack({str_of(m, "id")});
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace oms::test
