#include "load-tests/driver/run.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <boost/asio/ip/tcp.hpp>
#include <fmt/format.h>

#include "common/ids.h"
#include "common/json_codec.h"
#include "common/jwt.h"

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
// Raw framing: bytes read per syscall, and the largest message accepted.
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxMessageBytes = 4u << 20;
// Connect + upgrade attempts per sign-in, and reconnects per user.
constexpr unsigned kConnectAttempts = 3;
constexpr std::uint32_t kMaxReconnects = 3;
constexpr auto kConnectTimeout = std::chrono::seconds(30);
// A sign-out that has not completed its close handshake by then is cut.
constexpr auto kCloseTimeout = std::chrono::seconds(5);
// Margin between the soft phase deadline and the hard watchdog.
constexpr std::int64_t kDeadlineMarginNs = 8'000'000'000;
// JWT lifetime for synthetic users.
constexpr std::int64_t kTokenTtlSeconds = 24 * 3600;

const std::chrono::steady_clock::time_point kOrigin = std::chrono::steady_clock::now();

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

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - kOrigin)
      .count();
}

// ---- IdSet ----------------------------------------------------------------

bool IdSet::insert(std::uint64_t id) {
  if (sorted_.empty() || id > sorted_.back()) {
    sorted_.push_back(id);
    return true;
  }
  if (std::binary_search(sorted_.begin(), sorted_.end(), id)) return false;
  return odd_.insert(id).second;
}

bool IdSet::contains(std::uint64_t id) const {
  return std::binary_search(sorted_.begin(), sorted_.end(), id) || odd_.count(id) != 0;
}

void IdSet::append_to(std::vector<std::uint64_t>& out) const {
  out.insert(out.end(), sorted_.begin(), sorted_.end());
  out.insert(out.end(), odd_.begin(), odd_.end());
}

// ---- bodies ---------------------------------------------------------------

std::string make_body(std::uint32_t sender, std::uint64_t seq, std::int64_t t_ns, std::size_t bytes) {
  std::string body;
  body.reserve(std::max<std::size_t>(bytes, 48));
  fmt::format_to(std::back_inserter(body), "{}:{}:{}:", sender, seq, t_ns);
  if (body.size() < bytes) body.append(bytes - body.size(), 'x');
  return body;
}

std::optional<BodyHeader> parse_body(std::string_view body) {
  BodyHeader h;
  const char* p = body.data();
  const char* end = body.data() + body.size();
  auto field = [&](auto& out) {
    auto [q, ec] = std::from_chars(p, end, out);
    if (ec != std::errc{} || q == end || *q != ':') return false;
    p = q + 1;
    return true;
  };
  if (!field(h.sender) || !field(h.seq) || !field(h.t_ns)) return std::nullopt;
  return h;
}

// ---- User -----------------------------------------------------------------

bool User::online() const { return conn && conn->is_open(); }

// ---- WorkerStats ----------------------------------------------------------

void WorkerStats::merge(WorkerStats&& o) {
  send_to_sent.merge(o.send_to_sent);
  end_to_end.merge(o.end_to_end);
  missed_e2e.merge(o.missed_e2e);
  connect.merge(o.connect);
  hello_welcome.merge(o.hello_welcome);
  signin_total.merge(o.signin_total);
  to_drained.merge(o.to_drained);
  for (auto& [k, v] : o.errors) errors[k] += v;
  for (auto& [k, v] : o.statuses) statuses[k] += v;
  duplicates += o.duplicates;
  reordered += o.reordered;
  redelivered += o.redelivered;
  corrupt += o.corrupt;
  notices += o.notices;
  summaries += o.summaries;
  unanswered += o.unanswered;
  welcome_mismatch += o.welcome_mismatch;
  connect_retries += o.connect_retries;
  reconnects += o.reconnects;
  acks_sent += o.acks_sent;
  acked_ids += o.acked_ids;
  presence_sets += o.presence_sets;
  frames_in += o.frames_in;
  frames_out += o.frames_out;
  auto min_nz = [](std::int64_t a, std::int64_t b) { return a == 0 ? b : b == 0 ? a : std::min(a, b); };
  first_sent_ns = min_nz(first_sent_ns, o.first_sent_ns);
  first_recv_ns = min_nz(first_recv_ns, o.first_recv_ns);
  last_sent_ns = std::max(last_sent_ns, o.last_sent_ns);
  last_recv_ns = std::max(last_recv_ns, o.last_recv_ns);
  if (sent.empty()) sent = std::move(o.sent);
  else sent.insert(sent.end(), o.sent.begin(), o.sent.end());
  if (received.empty()) received = std::move(o.received);
  else received.insert(received.end(), o.received.begin(), o.received.end());
  if (timeline.size() < o.timeline.size()) timeline.resize(o.timeline.size());
  for (std::size_t i = 0; i < o.timeline.size(); ++i) {
    timeline[i].sent_ok += o.timeline[i].sent_ok;
    timeline[i].received += o.timeline[i].received;
    timeline[i].errors += o.timeline[i].errors;
    timeline[i].signins += o.timeline[i].signins;
    timeline[i].latency.merge(o.timeline[i].latency);
  }
}

// ---- Worker ---------------------------------------------------------------

Worker::Worker(Run& r, unsigned i, std::size_t max_connecting)
    : run(r), index(i), rng(0x6f6d73ULL * (i + 1)), max_connecting_(std::max<std::size_t>(1, max_connecting)) {}

void Worker::request_connect(std::shared_ptr<Connection> c) {
  c->phase_ = Connection::Phase::kQueued;
  waiting_.push_back(std::move(c));
  while (connecting_ < max_connecting_ && !waiting_.empty()) {
    auto next = std::move(waiting_.front());
    waiting_.pop_front();
    if (next->phase_ != Connection::Phase::kQueued) continue;  // signed out while queued
    ++connecting_;
    next->slot_held_ = true;
    next->begin_connect();
  }
}

void Worker::connect_finished() {
  --connecting_;
  while (connecting_ < max_connecting_ && !waiting_.empty()) {
    auto next = std::move(waiting_.front());
    waiting_.pop_front();
    if (next->phase_ != Connection::Phase::kQueued) continue;
    ++connecting_;
    next->slot_held_ = true;
    next->begin_connect();
  }
}

TimelineSlot* Worker::slot(std::int64_t t_ns) {
  const std::int64_t slot_ns = static_cast<std::int64_t>(run.opt.slot_ms * 1e6);
  const std::int64_t i = (t_ns - run.t0) / slot_ns;
  // Bounded by the hard deadline (plus slack).
  const std::int64_t max_slots = static_cast<std::int64_t>(run.opt.timeout_s * 1e9) / slot_ns + 2;
  if (i < 0 || i >= max_slots) return nullptr;
  if (static_cast<std::size_t>(i) >= stats.timeline.size())
    stats.timeline.resize(static_cast<std::size_t>(i) + 1);
  return &stats.timeline[static_cast<std::size_t>(i)];
}

void Worker::count_error(std::string_view code, std::uint64_t n) {
  auto it = stats.errors.find(code);
  if (it == stats.errors.end()) it = stats.errors.emplace(std::string(code), 0).first;
  it->second += n;
  if (auto* s = slot(now_ns())) s->errors += static_cast<std::uint32_t>(n);
}

void Worker::after(std::chrono::nanoseconds delay, std::function<void()> f) {
  auto timer = std::make_shared<net::steady_timer>(ioc, delay);
  timer->async_wait([timer, f = std::move(f)](const beast::error_code& ec) {
    if (!ec) f();
  });
}

// ---- Connection -----------------------------------------------------------

Connection::Connection(Worker& w, User& u, unsigned attempt)
    : w_(w),
      u_(u),
      run_(w.run),
      attempt_(attempt),
      ws_(w.ioc.get_executor()),
      raw_(w.run.opt.raw_framing),
      ack_timer_(w.ioc) {
  const std::uint64_t key = w.rng();
  for (int i = 0; i < 4; ++i) mask_[i] = static_cast<std::uint8_t>(key >> (8 * i));
}

void Connection::start() {
  if (attempt_ == 0) {
    u_.signin_started_ns = now_ns();
    ++u_.sessions;
  }
  w_.live.connects_started.fetch_add(1, std::memory_order_relaxed);
  w_.request_connect(shared_from_this());
}

void Connection::begin_connect() {
  phase_ = Phase::kConnecting;
  t_connect_ = now_ns();
  const TargetUrl& t = run_.opt.target;
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
  ws_.read_message_max(4u << 20);
  ws_.async_handshake(run_.opt.target.host_header, run_.opt.target.path,
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
  if (u_.track_history) {
    signin_span_ = u_.history.size();
    u_.history.push_back({now, INT64_MAX, PresenceState::kAvailable});
  }
  proto::Hello hello;
  hello.rid = std::int64_t{1};
  hello.token = u_.token;
  hello.client.name = "oms-load";
  hello.client.version = "0.1.0";
  hello.client.features.emplace_back(proto::kFeatureOfflineMessages);
  write(proto::encode(proto::ClientFrame{std::move(hello)}));
  do_read();
}

void Connection::release_connect_slot() {
  if (!slot_held_) return;
  slot_held_ = false;
  w_.connect_finished();
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
          if (auto id = parse_message_id(f.id)) u_.notices.insert(*id);
          else w_.count_error("bad_message_id");
        } else if constexpr (std::is_same_v<T, proto::MissedSummary>) {
          ++w_.stats.summaries;
        } else if constexpr (std::is_same_v<T, proto::MailboxDrained>) {
          if (drained_) {
            w_.count_error("drained_twice");
            return;
          }
          drained_ = true;
          const std::int64_t now = now_ns();
          u_.drained_ns = now;
          w_.stats.to_drained.record(now - u_.signin_started_ns);
          w_.live.drained.fetch_add(1, std::memory_order_relaxed);
          if (run_.hooks) run_.hooks->on_drained(u_);
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
  w_.stats.signin_total.record(now - u_.signin_started_ns);
  if (auto* s = w_.slot(now)) ++s->signins;
  u_.welcome_ns = now;
  u_.welcome_count = w.mailbox.count;
  u_.state = w.presence;
  if (signin_span_ != SIZE_MAX) {
    u_.history[signin_span_].confirmed_ns = now;
    u_.history[signin_span_].state = w.presence;
  }
  w_.live.signed_in.fetch_add(1, std::memory_order_relaxed);
  w_.live.open.fetch_add(1, std::memory_order_relaxed);
  if (run_.hooks) run_.hooks->on_welcome(u_);
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
  w_.stats.sent.push_back(r);
  w_.stats.send_to_sent.record(now - p.intended_ns);
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

void Connection::on_ok(proto::Ok& ok) {
  const std::int64_t* rid = std::get_if<std::int64_t>(&ok.rid);
  if (!rid) return;
  auto it = presence_reqs_.find(*rid);
  if (it == presence_reqs_.end()) return;
  const std::int64_t now = now_ns();
  if (it->second < u_.history.size()) {
    u_.history[it->second].confirmed_ns = now;
    u_.state = u_.history[it->second].state;
  }
  presence_reqs_.erase(it);
  w_.live.presence_ok.fetch_add(1, std::memory_order_relaxed);
}

void Connection::on_message(proto::Message& m) {
  const std::int64_t now = now_ns();
  auto id = parse_message_id(m.id);
  if (!id) {
    w_.count_error("bad_message_id");
    return;
  }
  unacked_.push_back(*id);
  if (unacked_.size() >= run_.opt.ack_batch) {
    flush_acks();
  } else if (!ack_armed_) {
    ack_armed_ = true;
    ack_timer_.expires_after(std::chrono::nanoseconds(static_cast<std::int64_t>(run_.opt.ack_delay_ms * 1e6)));
    ack_timer_.async_wait([self = shared_from_this()](const beast::error_code& ec) {
      self->ack_armed_ = false;
      if (!ec) self->flush_acks();
    });
  }
  if (!session_ids_.insert(*id)) {
    ++w_.stats.duplicates;
    return;
  }
  if (!u_.seen.insert(*id)) {
    ++w_.stats.redelivered;
    return;
  }
  auto h = parse_body(m.body);
  if (!h || h->sender >= run_.user_count() || m.from != run_.user_id(h->sender)) {
    ++w_.stats.corrupt;
  } else {
    auto& last = u_.last_seq[h->sender];
    if (h->seq <= last) ++w_.stats.reordered;
    else last = h->seq;
    if (m.kind == proto::MessageKind::kLive) {
      w_.stats.end_to_end.record(now - h->t_ns);
      if (run_.timeline_end_to_end)
        if (auto* sl = w_.slot(now)) sl->latency.record(now - h->t_ns);
    } else if (m.kind == proto::MessageKind::kMissed && welcomed_ && u_.welcome_ns < h->t_ns) {
      w_.stats.missed_e2e.record(now - h->t_ns);
    }
  }
  w_.stats.received.push_back({*id, u_.index, m.kind});
  if (w_.stats.first_recv_ns == 0) w_.stats.first_recv_ns = now;
  w_.stats.last_recv_ns = now;
  if (auto* sl = w_.slot(now)) ++sl->received;
  w_.live.received.fetch_add(1, std::memory_order_relaxed);
}

void Connection::flush_acks() {
  if (unacked_.empty()) return;
  if (phase_ != Phase::kOpen && !(phase_ == Phase::kClosing && !close_sent_)) {
    unacked_.clear();
    return;
  }
  proto::Ack ack;
  ack.ids = std::move(unacked_);
  unacked_.clear();
  ++w_.stats.acks_sent;
  w_.stats.acked_ids += ack.ids.size();
  write(proto::encode(proto::ClientFrame{std::move(ack)}));
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
  if (u_.track_history) {
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
      if (u_.conn.get() == this) u_.conn.reset();
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
  if (u_.track_history) {
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

// ---- raw framing (RFC 6455 §5) -----------------------------------------------
// Beast did the upgrade; from then on the socket carries frames we write and
// parse here, so that many queued frames leave in one write and one read
// takes in up to 64 KiB of frames. Client frames are masked (§5.3); server
// frames are not. Control frames: ping -> pong, close -> close.

void Connection::raw_append(unsigned opcode, std::string_view payload) {
  const std::size_t n = payload.size();
  char hdr[14];
  std::size_t h = 0;
  hdr[h++] = static_cast<char>(0x80 | opcode);  // FIN + opcode
  if (n < 126) {
    hdr[h++] = static_cast<char>(0x80 | n);
  } else if (n <= 0xffff) {
    hdr[h++] = static_cast<char>(0x80 | 126);
    hdr[h++] = static_cast<char>(n >> 8);
    hdr[h++] = static_cast<char>(n & 0xff);
  } else {
    hdr[h++] = static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) hdr[h++] = static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xff);
  }
  for (int i = 0; i < 4; ++i) hdr[h++] = static_cast<char>(mask_[i]);
  tx_pending_.append(hdr, h);
  const std::size_t at = tx_pending_.size();
  tx_pending_.append(payload);
  char* p = tx_pending_.data() + at;
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<char>(p[i] ^ static_cast<char>(mask_[i & 3]));
  ++tx_frames_;
}

void Connection::raw_flush() {
  if (writing_ || tx_pending_.empty() || phase_ == Phase::kClosed) return;
  writing_ = true;
  w_.stats.frames_out += tx_frames_;
  tx_frames_ = 0;
  tx_inflight_.swap(tx_pending_);
  tx_pending_.clear();
  net::async_write(beast::get_lowest_layer(ws_).socket(), net::buffer(tx_inflight_),
                   [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
                     self->writing_ = false;
                     if (ec) return self->fail(ec, "write");
                     self->tx_inflight_.clear();
                     if (self->phase_ == Phase::kClosed) return;
                     if (!self->tx_pending_.empty()) return self->raw_flush();
                     if (self->phase_ == Phase::kClosing && !self->close_sent_) self->do_close();
                   });
}

void Connection::raw_read() {
  beast::get_lowest_layer(ws_).socket().async_read_some(
      rx_.prepare(kReadChunk),
      [self = shared_from_this()](const beast::error_code& ec, std::size_t n) { self->raw_on_read(ec, n); });
}

void Connection::raw_on_read(const beast::error_code& ec, std::size_t n) {
  if (ec) {
    if (ec == net::error::eof && close_wanted_) return finish(true);
    return fail(ec, "read");
  }
  rx_.commit(n);
  for (;;) {
    const auto data = rx_.data();
    const auto* p = static_cast<const std::uint8_t*>(data.data());
    const std::size_t avail = data.size();
    if (avail < 2) break;
    const bool fin = (p[0] & 0x80) != 0;
    const unsigned opcode = p[0] & 0x0f;
    const bool masked = (p[1] & 0x80) != 0;
    std::uint64_t len = p[1] & 0x7f;
    std::size_t hdr = 2;
    if (len == 126) {
      if (avail < 4) break;
      len = (std::uint64_t{p[2]} << 8) | p[3];
      hdr = 4;
    } else if (len == 127) {
      if (avail < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
      hdr = 10;
    }
    if (masked || len > kMaxMessageBytes || (p[0] & 0x70) != 0) {
      w_.count_error("bad_server_frame");
      return finish(false);
    }
    if (avail < hdr + len) break;
    raw_frame(fin, opcode, std::string_view(reinterpret_cast<const char*>(p + hdr), static_cast<std::size_t>(len)));
    rx_.consume(hdr + static_cast<std::size_t>(len));
    if (phase_ == Phase::kClosed) return;
  }
  raw_read();
}

void Connection::raw_frame(bool fin, unsigned opcode, std::string_view payload) {
  switch (opcode) {
    case 0x0:  // continuation
      fragments_.append(payload);
      if (fragments_.size() > kMaxMessageBytes) {
        w_.count_error("bad_server_frame");
        return finish(false);
      }
      if (fin) {
        std::string whole;
        whole.swap(fragments_);
        handle(whole);
      }
      return;
    case 0x1:  // text
    case 0x2:  // binary (not in the contract; decoding will count it)
      if (fin) return handle(payload);
      fragments_.assign(payload);
      return;
    case 0x8: {  // close
      const unsigned code = payload.size() >= 2
                                ? (static_cast<unsigned>(static_cast<std::uint8_t>(payload[0])) << 8) |
                                      static_cast<std::uint8_t>(payload[1])
                                : 1005;
      if (close_wanted_ && phase_ == Phase::kClosing) return finish(true);
      w_.count_error(fmt::format("server_close:{}", code));
      return finish(false);
    }
    case 0x9:  // ping
      if (!close_sent_) {
        raw_append(0xA, payload);
        raw_flush();
      }
      return;
    case 0xA:  // pong
      return;
    default:
      w_.count_error("bad_server_frame");
      return finish(false);
  }
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
      auto next = std::make_shared<Connection>(w_, u_, attempt_ + 1);
      next->send_window = send_window;
      if (u_.conn.get() == this) u_.conn = next;
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
  if (u_.track_history) {
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
  u_.state = PresenceState::kOffline;
  if (was_welcomed) w_.live.open.fetch_sub(1, std::memory_order_relaxed);
  w_.live.closed.fetch_add(1, std::memory_order_relaxed);
  if (!expected) w_.live.dropped.fetch_add(1, std::memory_order_relaxed);
  if (was_signing_in && !expected) w_.live.signin_failed.fetch_add(1, std::memory_order_relaxed);
  if (u_.conn.get() == this) u_.conn.reset();
  if (!expected && was_welcomed && u_.keep_online && u_.reconnects < kMaxReconnects && !run_.stopping()) {
    ++u_.reconnects;
    ++w_.stats.reconnects;
    auto next = std::make_shared<Connection>(w_, u_);
    next->send_window = send_window;
    u_.conn = next;
    next->start();
  }
}

// ---- Run ------------------------------------------------------------------

Run::Run(Options o, std::string secret) : opt(std::move(o)), t0(now_ns()), secret_(std::move(secret)) {
  const unsigned n = std::max(1u, opt.threads);
  const std::size_t per_worker = std::max<std::size_t>(1, opt.connect_concurrency / n);
  for (unsigned i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(*this, i, per_worker));
  watchdog_ = std::thread([this] {
    std::unique_lock lock(watchdog_mu_);
    const auto deadline = kOrigin + std::chrono::nanoseconds(t0) +
                          std::chrono::nanoseconds(static_cast<std::int64_t>(opt.timeout_s * 1e9));
    if (!watchdog_cv_.wait_until(lock, deadline, [this] { return finished_; })) {
      lock.unlock();
      deadline_hit();
    }
  });
}

Run::~Run() {
  {
    std::lock_guard lock(watchdog_mu_);
    finished_ = true;
  }
  watchdog_cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  stop();
}

void Run::deadline_hit() {
  std::string phase;
  {
    std::lock_guard lock(phase_mu_);
    phase = phase_;
  }
  std::fprintf(stderr,
               "oms-load: FAILED: the hard deadline of %.0f s (--timeout) was hit during '%s'; "
               "aborting without a report\n",
               opt.timeout_s, phase.c_str());
  std::fflush(stderr);
  std::_Exit(3);
}

void Run::create_users(std::uint32_t count) {
  users_.reserve(count);
  JwtClaims claims;
  const std::int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  claims.iat = now_s;
  claims.exp = now_s + kTokenTtlSeconds;
  for (std::uint32_t i = 0; i < count; ++i) {
    auto u = std::make_unique<User>();
    u->index = i;
    u->id = fmt::format("{}-u{:06}@load.test", opt.user_prefix, i);
    claims.sub = u->id;
    u->token = sign_jwt(claims, secret_);
    users_.push_back(std::move(u));
  }
  expected_stored = std::vector<std::atomic<std::uint32_t>>(count);
}

void Run::start() {
  for (auto& w : workers_) {
    w->guard_.emplace(net::make_work_guard(w->ioc));
    w->thread_ = std::thread([wp = w.get()] { wp->ioc.run(); });
  }
}

void Run::stop() {
  bool running = false;
  for (auto& w : workers_) running |= w->thread_.joinable();
  if (!running) return;
  stopping_.store(true);
  for_users(0, user_count(), [](User& u) {
    if (u.conn) {
      auto c = u.conn;
      c->sign_out();
    }
  });
  // Bounded: sessions close within kCloseTimeout (then they are cut).
  const std::int64_t until = now_ns() + 2 * std::chrono::nanoseconds(kCloseTimeout).count();
  while (now_ns() < until) {
    Totals t = totals();
    if (t.open <= 0 && t.closed >= t.connects_started) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& w : workers_) w->guard_.reset();
  for (auto& w : workers_) w->ioc.stop();  // timers of scenarios; sessions are gone
  for (auto& w : workers_)
    if (w->thread_.joinable()) w->thread_.join();
}

void Run::for_users(std::uint32_t first, std::uint32_t count, std::function<void(User&)> f) {
  const std::size_t n = workers_.size();
  auto shared = std::make_shared<std::function<void(User&)>>(std::move(f));
  for (std::size_t w = 0; w < n; ++w) {
    net::post(workers_[w]->ioc, [this, w, n, first, count, shared] {
      // Users of worker w in [first, first+count): idx % n == w.
      std::uint32_t idx = first + static_cast<std::uint32_t>((w + n - first % n) % n);
      for (; idx < first + count; idx += static_cast<std::uint32_t>(n)) (*shared)(*users_[idx]);
    });
  }
}

void Run::sign_in(std::uint32_t first, std::uint32_t count, bool keep_online) {
  // Connections need their worker; create them on the owner thread.
  const std::size_t n = workers_.size();
  for (std::size_t wi = 0; wi < n; ++wi) {
    net::post(workers_[wi]->ioc, [this, wi, n, first, count, keep_online] {
      Worker& w = *workers_[wi];
      std::uint32_t idx = first + static_cast<std::uint32_t>((wi + n - first % n) % n);
      for (; idx < first + count; idx += static_cast<std::uint32_t>(n)) {
        User& u = *users_[idx];
        if (u.conn) continue;
        u.keep_online = keep_online;
        u.conn = std::make_shared<Connection>(w, u);
        u.conn->start();
      }
    });
  }
}

bool Run::wait_for(std::string_view what, const std::function<bool()>& done,
                   const std::function<std::uint64_t()>& progress) {
  {
    std::lock_guard lock(phase_mu_);
    phase_ = std::string(what);
  }
  const std::int64_t soft_deadline =
      t0 + static_cast<std::int64_t>(opt.timeout_s * 1e9) - kDeadlineMarginNs;
  const std::int64_t stall_ns = static_cast<std::int64_t>(opt.stall_s * 1e9);
  std::uint64_t last = progress ? progress() : 0;
  std::int64_t last_change = now_ns();
  std::int64_t last_print = last_change;
  for (;;) {
    if (done()) return true;
    const std::int64_t now = now_ns();
    if (now >= soft_deadline) {
      fail(fmt::format("{}: the overall deadline (--timeout {} s) was reached", what, opt.timeout_s));
      return false;
    }
    if (progress) {
      const std::uint64_t p = progress();
      if (p != last) {
        last = p;
        last_change = now;
      } else if (now - last_change > stall_ns) {
        fail(fmt::format("{}: no progress for {} s (stalled)", what, opt.stall_s));
        return false;
      }
    }
    if (opt.progress && now - last_print >= 1'000'000'000) {
      last_print = now;
      Totals t = totals();
      std::fprintf(stderr,
                   "[%7.1fs] %-28s open=%lld signed_in=%llu sends=%llu sent=%llu errors=%llu "
                   "received=%llu drained=%llu\n",
                   static_cast<double>(now - t0) / 1e9, std::string(what).c_str(),
                   static_cast<long long>(t.open), static_cast<unsigned long long>(t.signed_in),
                   static_cast<unsigned long long>(t.sends), static_cast<unsigned long long>(t.sent_ok),
                   static_cast<unsigned long long>(t.send_errors),
                   static_cast<unsigned long long>(t.received), static_cast<unsigned long long>(t.drained));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool Run::hold(std::string_view what, std::int64_t ns) {
  const std::int64_t until = now_ns() + ns;
  return wait_for(what, [until] { return now_ns() >= until; }, nullptr);
}

Totals Run::totals() const {
  Totals t;
  for (const auto& wp : workers_) {
    const LiveCounters& l = wp->live;
    auto ld = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    t.connects_started += ld(l.connects_started);
    t.signed_in += ld(l.signed_in);
    t.signin_failed += ld(l.signin_failed);
    t.closed += ld(l.closed);
    t.dropped += ld(l.dropped);
    t.sends += ld(l.sends);
    t.replies += ld(l.replies);
    t.sent_ok += ld(l.sent_ok);
    t.send_errors += ld(l.send_errors);
    t.received += ld(l.received);
    t.frames_in += ld(l.frames_in);
    t.drained += ld(l.drained);
    t.presence_ok += ld(l.presence_ok);
    t.open += l.open.load(std::memory_order_relaxed);
  }
  return t;
}

void Run::fail(std::string why) { failures_.push_back(std::move(why)); }

WorkerStats Run::merged_stats() {
  WorkerStats all;
  for (auto& w : workers_) all.merge(std::move(w->stats));
  return all;
}

}  // namespace oms::load
