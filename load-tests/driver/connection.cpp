// The session half of Connection: connect, upgrade, hello, the server's
// frames, sends, acks, presence changes and the close. The raw framing of
// the data phase is in connection_raw.cpp.
#include "load-tests/driver/connection.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <type_traits>
#include <variant>

#include <boost/asio/ip/tcp.hpp>
#include <fmt/format.h>

#include "common/ids.h"
#include "common/json_decode.h"
#include "common/json_encode.h"
#include "load-tests/driver/body.h"
#include "load-tests/driver/clock.h"
#include "load-tests/driver/run_state.h"
#include "load-tests/driver/user.h"
#include "load-tests/driver/worker.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace oms::load {

using tcp = net::ip::tcp;
using proto::PresenceState;

namespace {

// Frames a session may have queued on its socket before sends are refused
// locally (counted as client_backlog); acks and sign-out are never refused.
constexpr std::size_t kMaxQueuedFrames = 65'536;
constexpr std::size_t kMaxQueuedBytes = 16u << 20;  // the same bound for raw framing
// Connect + upgrade attempts per sign-in, and reconnects per user.
constexpr unsigned kConnectAttempts = 3;
constexpr std::uint32_t kMaxReconnects = 3;
constexpr auto kConnectTimeout = std::chrono::seconds(30);

SendStatus parse_status(std::string_view s) {
  if (s == "delivered") return SendStatus::kDelivered;
  if (s == "stored") return SendStatus::kStored;
  if (s == "missed") return SendStatus::kMissed;
  return SendStatus::kOther;
}

bool is_quiet_close(const beast::error_code& ec) {
  return ec == net::error::operation_aborted || ec == websocket::error::closed;
}

}  // namespace

bool online(const Device& d) { return d.conn && d.conn->is_open(); }
bool online(const User& u) { return online(u.primary()); }

Connection::Connection(Worker& w, User& u, Device& d, unsigned attempt)
    : w_(w),
      u_(u),
      dev_(d),
      run_(w.run),
      attempt_(attempt),
      ws_(w.ioc.get_executor()),
      raw_(w.run.opt.raw_framing),
      ack_timer_(w.ioc) {
  const std::uint64_t key = w.rng();
  for (int i = 0; i < 4; ++i) mask_[i] = static_cast<std::uint8_t>(key >> (8 * i));
}

bool Connection::tracks_history() const { return u_.track_history && dev_.index == 0; }

void Connection::start() {
  if (attempt_ == 0) {
    dev_.signin_started_ns = now_ns();
    ++dev_.sessions;
  }
  w_.live.connects_started.fetch_add(1, std::memory_order_relaxed);
  phase_ = Phase::kQueued;
  w_.connects.waiting.push_back(shared_from_this());
  admit_waiting(w_.connects);
}

void Connection::admit_waiting(ConnectQueue& q) {
  while (q.connecting < q.max_connecting && !q.waiting.empty()) {
    auto next = std::move(q.waiting.front());
    q.waiting.pop_front();
    if (next->phase_ != Phase::kQueued) continue;  // signed out while queued
    ++q.connecting;
    next->slot_held_ = true;
    next->begin_connect();
  }
}

const TargetUrl& Connection::target() const {
  return run_.opt.targets[run_.target_of(u_.index)];
}

void Connection::begin_connect() {
  phase_ = Phase::kConnecting;
  t_connect_ = now_ns();
  const TargetUrl& t = target();
  auto& stream = beast::get_lowest_layer(ws_);
  auto& sock = stream.socket();
  beast::error_code ec;
  const auto addr = net::ip::make_address(t.address, ec);
  sock.open(addr.is_v6() ? tcp::v6() : tcp::v4(), ec);
  if (ec) return fail(ec, "socket");
  if (!addr.is_v6() && run_.opt.source_addrs > 0) {
    // Pick the port at connect time (4-tuple unique), so each source address
    // gives a full ephemeral range towards the server.
    int one = 1;
    ::setsockopt(sock.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    const std::uint32_t k = run_.next_source() % run_.opt.source_addrs;
    net::ip::address_v4 src(net::ip::address_v4::bytes_type{127, 0, 0, static_cast<unsigned char>(2 + k)});
    sock.bind(tcp::endpoint(src, 0), ec);
    if (ec) return fail(ec, "bind");
  }
  sock.set_option(tcp::no_delay(true), ec);
  stream.expires_after(kConnectTimeout);
  stream.async_connect(tcp::endpoint(addr, t.port),
                       [self = shared_from_this()](const beast::error_code& e) { self->on_connect(e); });
}

void Connection::on_connect(const beast::error_code& ec) {
  if (ec) return fail(ec, "connect");
  if (phase_ != Phase::kConnecting) return;
  beast::get_lowest_layer(ws_).expires_never();
  auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::client);
  timeouts.handshake_timeout = kConnectTimeout;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::request_type& req) { req.set(beast::http::field::user_agent, "oms-load"); }));
  ws_.read_message_max(kMaxMessageBytes);
  ws_.async_handshake(target().host_header, target().path,
                      [self = shared_from_this()](const beast::error_code& e) { self->on_upgrade(e); });
}

void Connection::on_upgrade(const beast::error_code& ec) {
  if (ec) return fail(ec, "upgrade");
  if (phase_ != Phase::kConnecting) return;
  release_connect_slot();
  const std::int64_t now = now_ns();
  w_.stats.connect.record(now - t_connect_);
  phase_ = Phase::kHello;
  t_hello_ = now;
  if (tracks_history()) {
    signin_span_ = u_.history.size();
    u_.history.push_back({now, INT64_MAX, PresenceState::kAvailable});
  }
  proto::Hello hello;
  hello.rid = std::int64_t{1};
  hello.token = u_.token;
  hello.client.name = "oms-load";
  hello.client.version = "0.1.0";
  hello.client.features.emplace_back(proto::kFeatureOfflineMessages);
  hello.client.device = dev_.name;
  write(proto::encode(proto::ClientFrame{std::move(hello)}));
  do_read();
}

void Connection::release_connect_slot() {
  if (!slot_held_) return;
  slot_held_ = false;
  --w_.connects.connecting;
  admit_waiting(w_.connects);
}

void Connection::do_read() {
  if (raw_) return raw_read();
  ws_.async_read(rbuf_, [self = shared_from_this()](const beast::error_code& ec, std::size_t n) {
    self->on_read(ec, n);
  });
}

void Connection::on_read(const beast::error_code& ec, std::size_t) {
  if (ec) return fail(ec, "read");
  const auto data = rbuf_.data();
  handle(std::string_view(static_cast<const char*>(data.data()), data.size()));
  rbuf_.consume(rbuf_.size());
  if (phase_ == Phase::kClosed) return;
  do_read();
}

void Connection::handle(std::string_view text) {
  ++w_.stats.frames_in;
  w_.live.frames_in.fetch_add(1, std::memory_order_relaxed);
  auto decoded = proto::decode_server_frame(text);
  if (!decoded.ok()) {
    w_.count_error("undecodable_frame");
    return;
  }
  std::visit(
      [this](auto& f) {
        using T = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<T, proto::Welcome>) on_welcome(f);
        else if constexpr (std::is_same_v<T, proto::Sent>) on_sent(f);
        else if constexpr (std::is_same_v<T, proto::Error>) on_error(f);
        else if constexpr (std::is_same_v<T, proto::Message>) on_message(f);
        else if constexpr (std::is_same_v<T, proto::Ok>) on_ok(f);
        else if constexpr (std::is_same_v<T, proto::Missed>) {
          ++w_.stats.notices;
          if (auto id = parse_message_id(f.id)) dev_.notices.insert(*id);
          else w_.count_error("bad_message_id");
        } else if constexpr (std::is_same_v<T, proto::MissedSummary>) {
          ++w_.stats.summaries;
        } else if constexpr (std::is_same_v<T, proto::MailboxDrained>) {
          on_drained();
        } else if constexpr (std::is_same_v<T, proto::Receipt>) {
          on_receipt(f);
        }
        // presence events and pongs: nothing to check here
      },
      decoded.frame());
}

void Connection::on_welcome(proto::Welcome& w) {
  if (phase_ != Phase::kHello) {
    w_.count_error("unexpected_welcome");
    return;
  }
  const std::int64_t now = now_ns();
  phase_ = Phase::kOpen;
  welcomed_ = true;
  w_.stats.hello_welcome.record(now - t_hello_);
  w_.stats.signin_total.record(now - dev_.signin_started_ns);
  if (auto* s = w_.slot(now)) ++s->signins;
  dev_.welcome_ns = now;
  dev_.welcome_count = w.mailbox.count;
  dev_.welcome_receipts = w.mailbox.receipts;
  u_.state = w.presence;
  if (signin_span_ != SIZE_MAX) {
    u_.history[signin_span_].confirmed_ns = now;
    u_.history[signin_span_].state = w.presence;
  }
  w_.live.signed_in.fetch_add(1, std::memory_order_relaxed);
  w_.live.open.fetch_add(1, std::memory_order_relaxed);
  if (run_.hooks) run_.hooks->on_welcome(u_, dev_);
  if (close_wanted_) return sign_out();
  pump();
}

void Connection::on_sent(proto::Sent& s) {
  const std::int64_t* rid = std::get_if<std::int64_t>(&s.rid);
  auto it = rid ? sends_.find(*rid) : sends_.end();
  if (it == sends_.end()) {
    w_.count_error("unmatched_sent");
    return;
  }
  const PendingSend p = it->second;
  sends_.erase(it);
  const std::int64_t now = now_ns();
  SentRecord r;
  auto id = parse_message_id(s.id);
  if (!id) w_.count_error("bad_message_id");
  r.id = id.value_or(0);
  r.from = u_.index;
  r.to = p.to;
  r.intended_ns = p.intended_ns;
  r.send_ns = p.send_ns;
  r.sent_ns = now;
  r.status = parse_status(s.status);
  r.recipient = s.recipient;
  r.duplicate = s.duplicate;
  ++w_.stats.statuses[s.status];
  if (r.status == SendStatus::kOther) w_.count_error("unknown_status");
  if (s.duplicate) w_.count_error("sent_duplicate_flag");
  if (r.status == SendStatus::kStored && p.to < run_.expected_stored.size())
    run_.expected_stored[p.to].fetch_add(1, std::memory_order_relaxed);
  w_.live.deliveries_due.fetch_add(run_.devices_of(p.to), std::memory_order_relaxed);
  if (run_.opt.receipts && (r.status == SendStatus::kStored || r.status == SendStatus::kMissed))
    w_.live.receipts_due.fetch_add(run_.devices_of(u_.index), std::memory_order_relaxed);
  w_.stats.sent.push_back(r);
  w_.stats.send_to_sent.record(now - p.intended_ns);
  if (run_.opt.pairs_mixed && p.to < run_.user_count())
    (run_.target_of(p.to) == run_.target_of(u_.index) ? w_.stats.send_to_sent_same : w_.stats.send_to_sent_cross)
        .record(now - p.intended_ns);
  if (w_.stats.first_sent_ns == 0) w_.stats.first_sent_ns = now;
  w_.stats.last_sent_ns = now;
  if (auto* sl = w_.slot(now)) {
    ++sl->sent_ok;
    if (!run_.timeline_end_to_end) sl->latency.record(now - p.intended_ns);
  }
  w_.live.sent_ok.fetch_add(1, std::memory_order_relaxed);
  w_.live.replies.fetch_add(1, std::memory_order_relaxed);
  pump();
}

void Connection::on_error(proto::Error& e) {
  const std::int64_t* rid = std::get_if<std::int64_t>(&e.rid);
  if (rid) {
    if (auto it = sends_.find(*rid); it != sends_.end()) {
      sends_.erase(it);
      w_.count_error(e.code);
      w_.live.send_errors.fetch_add(1, std::memory_order_relaxed);
      w_.live.replies.fetch_add(1, std::memory_order_relaxed);
      pump();
      return;
    }
    if (auto it = presence_reqs_.find(*rid); it != presence_reqs_.end()) {
      presence_reqs_.erase(it);
      w_.count_error("presence:" + e.code);
      return;
    }
  }
  if (phase_ == Phase::kHello) w_.count_error("signin:" + e.code);
  else w_.count_error("unsolicited:" + e.code);
}

bool Connection::send_to(std::uint32_t to, std::int64_t intended_ns) {
  if (phase_ != Phase::kOpen) return false;
  if (wq_.size() >= kMaxQueuedFrames || tx_pending_.size() >= kMaxQueuedBytes) {
    w_.count_error("client_backlog");
    return false;
  }
  const std::uint64_t seq = ++u_.send_seq;
  const std::int64_t rid = next_rid_++;
  proto::Send s;
  s.rid = rid;
  s.to = run_.user_id(to);
  s.body = make_body(u_.index, seq, intended_ns, run_.opt.body_bytes);
  s.client_msg_id = fmt::format("m{}", seq);
  sends_.emplace(rid, PendingSend{intended_ns, now_ns(), to});
  write(proto::encode(proto::ClientFrame{std::move(s)}));
  w_.live.sends.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Connection::pump() {
  if (send_window == 0 || phase_ != Phase::kOpen || !run_.hooks) return;
  while (sends_.size() < send_window) {
    auto to = run_.hooks->next_target(u_);
    if (!to) break;
    if (!send_to(*to, now_ns())) break;
  }
}

void Connection::set_presence(PresenceState s) {
  if (phase_ != Phase::kOpen) return;
  const std::int64_t rid = next_rid_++;
  proto::PresenceSet p;
  p.rid = rid;
  p.state = s;
  std::size_t span = SIZE_MAX;
  if (tracks_history()) {
    span = u_.history.size();
    u_.history.push_back({now_ns(), INT64_MAX, s});
  }
  presence_reqs_.emplace(rid, span);
  ++w_.stats.presence_sets;
  write(proto::encode(proto::ClientFrame{std::move(p)}));
}

void Connection::sign_out() {
  switch (phase_) {
    case Phase::kNew:
    case Phase::kQueued:
      phase_ = Phase::kClosed;  // never connected; the limiter skips it
      if (dev_.conn.get() == this) dev_.conn.reset();
      w_.live.closed.fetch_add(1, std::memory_order_relaxed);
      return;
    case Phase::kConnecting:
    case Phase::kHello:
      // Close after welcome (or give up on the connect).
      close_wanted_ = true;
      if (phase_ == Phase::kConnecting) {
        beast::error_code ec;
        beast::get_lowest_layer(ws_).socket().close(ec);
      }
      return;
    case Phase::kOpen:
      break;
    case Phase::kClosing:
    case Phase::kClosed:
      return;
  }
  flush_acks();
  phase_ = Phase::kClosing;
  close_wanted_ = true;
  if (tracks_history()) {
    signout_span_ = u_.history.size();
    u_.history.push_back({now_ns(), INT64_MAX, PresenceState::kOffline});
  }
  w_.after(kCloseTimeout, [self = shared_from_this()] {
    if (self->phase_ == Phase::kClosed) return;
    beast::error_code ec;
    beast::get_lowest_layer(self->ws_).socket().close(ec);
  });
  if (!writing_) do_close();
}

void Connection::do_close() {
  if (raw_) {
    const char code[2] = {static_cast<char>(1000 >> 8), static_cast<char>(1000 & 0xff)};
    raw_append(8, std::string_view(code, 2));
    close_sent_ = true;
    return raw_flush();
  }
  close_sent_ = true;
  ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](const beast::error_code& ec) {
    if (ec && !is_quiet_close(ec)) self->fail(ec, "close");
  });
}

void Connection::write(std::string frame) {
  if (raw_) {
    if (close_sent_) return;
    raw_append(1, frame);
    return raw_flush();
  }
  wq_.push_back(std::move(frame));
  if (!writing_ && !close_sent_) do_write();
}

void Connection::do_write() {
  writing_ = true;
  ++w_.stats.frames_out;
  ws_.text(true);
  ws_.async_write(net::buffer(wq_.front()),
                  [self = shared_from_this()](const beast::error_code& ec, std::size_t) { self->on_write(ec); });
}

void Connection::on_write(const beast::error_code& ec) {
  writing_ = false;
  if (ec) return fail(ec, "write");
  wq_.pop_front();
  if (close_sent_ || phase_ == Phase::kClosed) return;
  if (!wq_.empty()) return do_write();
  if (phase_ == Phase::kClosing) do_close();
}
void Connection::fail(const beast::error_code& ec, std::string_view what) {
  if (phase_ == Phase::kClosed) return;
  const bool expected = close_wanted_ && (phase_ == Phase::kClosing || is_quiet_close(ec) ||
                                          phase_ == Phase::kConnecting);
  if (!expected) {
    if (ec == websocket::error::closed) {
      w_.count_error(fmt::format("server_close:{}", static_cast<unsigned>(ws_.reason().code)));
    } else if (phase_ == Phase::kConnecting && attempt_ + 1 < kConnectAttempts && !run_.stopping()) {
      // Retry the connect with a fresh session (a full listen backlog, say).
      ++w_.stats.connect_retries;
      phase_ = Phase::kClosed;
      release_connect_slot();
      w_.live.closed.fetch_add(1, std::memory_order_relaxed);
      auto next = std::make_shared<Connection>(w_, u_, dev_, attempt_ + 1);
      next->send_window = send_window;
      if (dev_.conn.get() == this) dev_.conn = next;
      next->start();
      return;
    } else {
      w_.count_error(fmt::format("{}:{}", what, ec.message()));
    }
  }
  finish(expected);
}

void Connection::finish(bool expected) {
  if (phase_ == Phase::kClosed) return;
  const bool was_welcomed = welcomed_;
  const bool was_signing_in = phase_ == Phase::kConnecting || phase_ == Phase::kHello;
  phase_ = Phase::kClosed;
  release_connect_slot();
  ack_timer_.cancel();
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
  const std::int64_t now = now_ns();
  if (!sends_.empty()) {
    w_.stats.unanswered += sends_.size();
    w_.count_error("no_reply_before_close", sends_.size());
    w_.live.replies.fetch_add(sends_.size(), std::memory_order_relaxed);
    sends_.clear();
  }
  if (tracks_history()) {
    // Pending presence changes may or may not have been applied.
    for (auto& [rid, span] : presence_reqs_)
      if (span < u_.history.size()) u_.history[span].confirmed_ns = now;
    if (signin_span_ != SIZE_MAX && u_.history[signin_span_].confirmed_ns == INT64_MAX)
      u_.history[signin_span_].confirmed_ns = now;
    if (signout_span_ == SIZE_MAX && was_welcomed) {
      signout_span_ = u_.history.size();
      u_.history.push_back({now, now, PresenceState::kOffline});
    } else if (signout_span_ != SIZE_MAX) {
      u_.history[signout_span_].confirmed_ns = now;
    }
  }
  presence_reqs_.clear();
  ack_reqs_.clear();  // not answered: those ids may come again (redelivered)
  if (dev_.index == 0) u_.state = PresenceState::kOffline;
  if (was_welcomed) w_.live.open.fetch_sub(1, std::memory_order_relaxed);
  w_.live.closed.fetch_add(1, std::memory_order_relaxed);
  if (!expected) w_.live.dropped.fetch_add(1, std::memory_order_relaxed);
  if (was_signing_in && !expected) w_.live.signin_failed.fetch_add(1, std::memory_order_relaxed);
  if (dev_.conn.get() == this) dev_.conn.reset();
  if (!expected && was_welcomed && u_.keep_online && dev_.reconnects < kMaxReconnects && !run_.stopping()) {
    ++dev_.reconnects;
    ++w_.stats.reconnects;
    auto next = std::make_shared<Connection>(w_, u_, dev_);
    next->send_window = send_window;
    dev_.conn = next;
    next->start();
  }
}

}  // namespace oms::load
