// The client endpoint: HTTP upgrade, then one WsSessionImpl per connection;
// with tls.client, a TLS handshake first (ws:// and wss:// share the code,
// templated on the stream below the WebSocket).
//
// Each connection runs on its own strand (the socket's executor); every
// handler holds shared_from_this(). One async_write at a time; later frames
// wait in a bounded queue. Stored messages are pushed in sequence order,
// within a window of unacked messages; RocksDB reads run on the blocking
// pool and post back here.
#include "server/ws_session.h"

#include <algorithm>
#include <cassert>
#include <array>
#include <mutex>
#include <optional>
#include <type_traits>
#include <variant>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/ids.h"
#include "common/json_codec.h"
#include "common/jwt.h"
#include "server/coalescing_stream.h"
#include "server/context.h"
#include "server/endpoints.h"
#include "server/in_flight.h"
#include "server/log.h"
#include "server/router.h"
#include "server/web_client.h"
#include "storage/mailbox_store.h"

namespace oms::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using proto::MessageKind;
using proto::PresenceState;

namespace {

// Close codes beyond RFC 6455's (4000–4999 are the application's).
constexpr std::uint16_t kCloseUnauthenticated = 4401;
constexpr std::uint16_t kCloseSigninTimeout = 4408;
constexpr std::uint16_t kCloseTooManySessions = 4429;
constexpr std::uint16_t kCloseSlowConsumer = 4008;
// Stored messages read per page (also bounded by the window's free room).
constexpr std::size_t kPageMessages = 256;
constexpr std::size_t kMaxHttpHeaderBytes = 8192;

std::shared_ptr<const std::string> share(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

bool is_shutdown_error(const beast::error_code& ec) {
  return ec == net::error::operation_aborted || ec == websocket::error::closed ||
         ec == net::error::eof || ec == net::error::connection_reset ||
         ec == beast::error::timeout || ec == net::error::broken_pipe;
}

// The send queue: a vector used as a FIFO (std::deque would allocate a
// 512-byte block for every connection, idle or not). The consumed head is
// dropped once it is half of the vector, so a queue that never empties does
// not grow without end.
class FrameQueue {
 public:
  using Frame = std::shared_ptr<const std::string>;
  bool empty() const { return head_ == frames_.size(); }
  std::size_t size() const { return frames_.size() - head_; }
  const Frame& front() const { return frames_[head_]; }
  void push_back(Frame f) { frames_.push_back(std::move(f)); }
  void pop_front() {
    assert(!empty());
    frames_[head_++].reset();
    if (head_ == frames_.size()) {
      clear();
    } else if (head_ >= kCompactAt && head_ * 2 >= frames_.size()) {
      frames_.erase(frames_.begin(), frames_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void clear() {
    frames_.clear();
    head_ = 0;
    if (frames_.capacity() > kKeepCapacity) frames_.shrink_to_fit();  // after a big burst
  }
  // Drops everything but the front (the frame being written).
  void keep_front_only() { frames_.resize(head_ + 1); }

 private:
  static constexpr std::size_t kCompactAt = 64;
  static constexpr std::size_t kKeepCapacity = 16;
  std::vector<Frame> frames_;
  std::size_t head_ = 0;
};

// Stream: beast::tcp_stream (ws://) or TlsStream (wss://, handshake done).
template <class Stream>
class WsSessionImpl final : public WsSession, public std::enable_shared_from_this<WsSessionImpl<Stream>> {
 public:
  WsSessionImpl(ServerContext& ctx, Stream&& stream, ConnectionSlot slot)
      : ctx_(ctx), slot_(std::move(slot)), ws_(std::move(stream)), hello_timer_(ws_.get_executor()) {
    session_id_ = random_hex(8);
  }

  void start(http::request<http::string_body> req) {
    const Config& cfg = ctx_.config;
    ws_.set_option(websocket::stream_base::timeout{
        std::chrono::seconds(cfg.handshake_timeout_seconds),
        std::chrono::seconds(cfg.idle_timeout_seconds), /*keep_alive_pings=*/true});
    ws_.read_message_max(cfg.max_frame_bytes);
    ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(http::field::server, "omsd");
    }));
    {
      std::lock_guard lock(ctx_.connections_mu);
      ctx_.connections[this] = this->weak_from_this();
    }
    ws_.async_accept(req, beast::bind_front_handler(&WsSessionImpl::on_accept, this->shared_from_this()));
  }

  // ---- WsSession (any thread) ----
  // Everything from other threads goes through one inbox, in order, and one
  // post onto the strand takes all that is there: the store's completion
  // thread answers a batch with one post per session, not one per message.
  // (So an item may run before a handler posted to the strand by other
  // means after the inbox's post was made: the order holds among post_*.)
  void post_frame(std::shared_ptr<const std::string> frame) override { to_inbox(std::move(frame)); }
  void post_stored(std::shared_ptr<const Delivery> d) override { to_inbox(std::move(d)); }
  void post_close(std::uint16_t code, std::string reason) override {
    to_inbox(CloseRequest{code, std::move(reason)});
  }

 private:
  struct CloseRequest {
    std::uint16_t code;
    std::string reason;
  };
  using Inbound = std::variant<std::shared_ptr<const std::string>, std::shared_ptr<const Delivery>, CloseRequest>;

  void to_inbox(Inbound in) {
    {
      std::lock_guard lock(inbox_mu_);
      inbox_.push_back(std::move(in));
      if (inbox_posted_) return;  // the post already made takes this one too
      inbox_posted_ = true;
    }
    try {
      net::post(ws_.get_executor(), [self = this->shared_from_this()] { self->drain_inbox(); });
    } catch (...) {
      std::lock_guard lock(inbox_mu_);
      inbox_posted_ = false;  // (the next item posts again)
      throw;
    }
  }

  void drain_inbox() {
    std::vector<Inbound> batch;
    {
      std::lock_guard lock(inbox_mu_);
      batch.swap(inbox_);
      inbox_posted_ = false;
    }
    for (auto& in : batch) {
      if (auto* frame = std::get_if<std::shared_ptr<const std::string>>(&in)) {
        if (signed_in_) enqueue(std::move(*frame));
      } else if (auto* d = std::get_if<std::shared_ptr<const Delivery>>(&in)) {
        on_stored(**d);
      } else {
        auto& c = std::get<CloseRequest>(in);
        close(c.code, c.reason);
      }
    }
  }

  // ---- connection ----
  void on_accept(beast::error_code ec) {
    if (ec) return fail(ec, "accept");
    hello_timer_.expires_after(std::chrono::milliseconds(ctx_.config.signin_timeout_ms));
    hello_timer_.async_wait([self = this->shared_from_this()](beast::error_code tec) {
      if (tec || self->signed_in_ || self->signing_in_) return;
      self->refuse_signin(kCloseSigninTimeout, "no hello within the sign-in timeout");
    });
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&WsSessionImpl::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return fail(ec, "read");
    if (!ws_.got_text()) {
      buffer_.consume(buffer_.size());
      close(websocket::close_code::unknown_data, "binary frames are not accepted");
    } else {
      // flat_buffer is contiguous: decode in place, no copy.
      const auto data = buffer_.data();
      const std::string_view text(static_cast<const char*>(data.data()), data.size());
      const bool was_signed_in = signed_in_;
      if (!close_requested_) handle_text(text);
      buffer_.consume(buffer_.size());
      // The hello (with its token) is the largest frame an idle session
      // reads: give its room back. Busy sessions keep theirs.
      if (!was_signed_in) buffer_.shrink_to_fit();
    }
    do_read();  // keep reading until the close handshake completes
  }

  void fail(beast::error_code ec, const char* what) {
    if (!is_shutdown_error(ec))
      logger_for(LogComponent::kSession).debug("session {} ({}): {}: {}", session_id_, user_, what, ec.message());
    finish();
  }

  // Runs once, when the connection is over.
  void finish() {
    if (finished_) return;
    finished_ = true;
    logger_for(LogComponent::kSession).debug("session {} ({}): closed", session_id_, user_);
    hello_timer_.cancel();
    {
      std::lock_guard lock(ctx_.connections_mu);
      ctx_.connections.erase(this);
    }
    for (const auto& u : subscriptions_) ctx_.registry.unsubscribe(u, this);
    subscriptions_.clear();
    if (registered_) {
      registered_ = false;
      ctx_.metrics.sessions_open.fetch_sub(1, std::memory_order_relaxed);
      if (auto before = ctx_.registry.remove_session(user_, this)) {
        ctx_.router->presence_changed(user_, {*before, PresenceState::kOffline, 0});
      }
    }
    queue_.clear();
  }

  // ---- sending ----
  void enqueue(std::shared_ptr<const std::string> frame) {
    if (close_requested_ || finished_) return;
    if (queue_.size() >= ctx_.config.max_send_queue) {
      ctx_.metrics.slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
      logger_for(LogComponent::kSession)
          .info("session {} ({}): send queue full, closing slow consumer", session_id_, user_);
      // Keep only the frame being written; the messages stay in the mailbox.
      if (writing_) queue_.keep_front_only();
      else queue_.clear();
      close(kCloseSlowConsumer, "slow consumer");
      return;
    }
    queue_.push_back(std::move(frame));
    schedule_write();
  }

  // Frames that handlers already waiting on this strand will queue (the
  // replies of one store batch, a page of stored messages) leave together:
  // the write starts from a handler posted behind them, and every frame of a
  // burst but the last is buffered by the CoalescingStream below the
  // WebSocket, so the burst reaches the peer in one write (and one wake-up).
  void schedule_write() {
    if (writing_ || write_scheduled_) return;
    write_scheduled_ = true;
    net::post(ws_.get_executor(), [self = this->shared_from_this()] {
      self->write_scheduled_ = false;
      if (!self->writing_ && !self->queue_.empty()) self->do_write();
    });
  }

  void do_write() {
    writing_ = true;
    ws_.next_layer().set_corked(queue_.size() > 1);
    ws_.text(true);
    ws_.async_write(net::buffer(*queue_.front()),
                    beast::bind_front_handler(&WsSessionImpl::on_write, this->shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) return fail(ec, "write");
    if (finished_) return;  // finish() dropped the queue while this write was out
    queue_.pop_front();
    if (!queue_.empty()) return do_write();
    // Normally the last frame of a burst went out uncorked already; after
    // the slow-consumer cut it may not have: what follows (the close frame,
    // a pong) must carry the buffered bytes out.
    ws_.next_layer().set_corked(false);
    if (close_requested_ && !close_sent_) do_close();
  }

  // Sends what is queued, then the close frame.
  void close(std::uint16_t code, std::string_view reason) {
    if (close_requested_ || finished_) return;
    close_requested_ = true;
    close_reason_ = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
    if (!writing_ && queue_.empty()) do_close();
  }

  void do_close() {
    close_sent_ = true;
    ws_.async_close(close_reason_, [self = this->shared_from_this()](beast::error_code ec) {
      if (ec) self->fail(ec, "close");
    });
  }

  void send_error(const proto::Rid& rid, std::string_view code, std::string_view message) {
    ctx_.metrics.count_send_error(code);
    enqueue(share(proto::encode_error(rid, code, message)));
  }

  void refuse_signin(std::uint16_t close_code, std::string_view message, const proto::Rid& rid = {}) {
    ctx_.metrics.signin_failures_total.fetch_add(1, std::memory_order_relaxed);
    logger_for(LogComponent::kSession).debug("session {} ({}): sign-in refused: {}", session_id_, user_, message);
    // Before welcome the queue only carries this error.
    queue_.push_back(share(proto::encode_error(rid, "unauthenticated", message)));
    if (!writing_) do_write();
    close(close_code, "unauthenticated");
  }

  // ---- requests ----
  void handle_text(std::string_view text) {
    proto::DecodeLimits limits;
    limits.max_body_bytes = ctx_.config.max_frame_bytes;
    auto decoded = proto::decode_client_frame(text, limits);
    if (!signed_in_) {
      if (signing_in_) return refuse_signin(kCloseUnauthenticated, "no frame is accepted before welcome");
      if (!decoded.ok())
        return refuse_signin(kCloseUnauthenticated,
                             "the first frame must be a valid hello: " + decoded.error().message,
                             decoded.error().rid);
      if (!std::holds_alternative<proto::Hello>(decoded.frame()))
        return refuse_signin(kCloseUnauthenticated, "the first frame must be hello",
                             std::visit([](const auto& f) { return f.rid; }, decoded.frame()));
      return on_hello(std::get<proto::Hello>(decoded.frame()));
    }
    if (!decoded.ok()) return send_error(decoded.error().rid, "bad_request", decoded.error().message);
    std::visit([this](auto& f) { on_frame(f); }, decoded.frame());
  }

  void on_hello(proto::Hello& hello) {
    JwtVerifyOptions opts;
    opts.now_s = ctx_.clock->now_s();
    opts.leeway_s = ctx_.config.leeway_seconds;
    if (!ctx_.config.issuer.empty()) opts.issuer = ctx_.config.issuer;
    if (!ctx_.config.audience.empty()) opts.audience = ctx_.config.audience;
    auto claims = verify_jwt(hello.token, ctx_.jwt_secret, opts);
    if (!claims) return refuse_signin(kCloseUnauthenticated, claims.status().message(), hello.rid);
    user_ = std::move(claims->sub);
    client_ = std::move(hello.client);
    capable_ = client_.supports_offline_messages();
    SessionInfo info{session_id_, client_, ctx_.clock->now_ms()};
    signin_seq_ = ctx_.store->last_seq();
    auto added = ctx_.registry.add_session(user_, this->shared_from_this(), std::move(info),
                                           ctx_.config.max_sessions_per_user);
    if (!added) {
      ctx_.metrics.signin_failures_total.fetch_add(1, std::memory_order_relaxed);
      queue_.push_back(share(proto::encode_error(
          hello.rid, "too_many_sessions",
          fmt::format("{} already has {} sessions", user_, ctx_.config.max_sessions_per_user))));
      if (!writing_) do_write();
      return close(kCloseTooManySessions, "too many sessions");
    }
    registered_ = true;
    signing_in_ = true;
    logger_for(LogComponent::kSession).debug("session {} ({}): signed in (client {} {}, {})", session_id_, user_,
                                             client_.name, client_.version, capable_ ? "capable" : "older");
    hello_timer_.cancel();
    ctx_.metrics.sessions_open.fetch_add(1, std::memory_order_relaxed);
    if (added->first)
      ctx_.router->presence_changed(user_, {PresenceState::kOffline, added->state, 0});
    // The sign-in notification needs a mailbox scan: off the I/O thread. A
    // capable client's first page of delivery comes from the same scan.
    const std::size_t limit = capable_ ? first_page_limit() : 0;
    ctx_.run_blocking([self = this->shared_from_this(), rid = hello.rid, limit]() mutable {
      std::vector<storage::StoredMessage> page;
      auto summary = self->ctx_.store->summary(self->user_, 0, false, limit ? &page : nullptr, limit);
      net::post(self->ws_.get_executor(), [self, rid = std::move(rid), s = std::move(summary),
                                           page = std::move(page), limit]() mutable {
        self->on_summary(std::move(rid), std::move(s), std::move(page), limit);
      });
    });
  }

  std::size_t first_page_limit() const { return std::min(kPageMessages, ctx_.config.window); }

  void on_summary(proto::Rid rid, Result<storage::MailboxSummary> summary,
                  std::vector<storage::StoredMessage> page, std::size_t limit) {
    if (finished_ || close_requested_) return;
    if (!summary) {
      logger_for(LogComponent::kSession).error("session {} ({}): mailbox summary failed: {}", session_id_, user_,
                    summary.status().to_string());
      queue_.push_back(share(proto::encode_error(rid, "unavailable", "the mailbox cannot be read now")));
      if (!writing_) do_write();
      return close(websocket::close_code::internal_error, "store unavailable");
    }
    proto::Welcome w;
    w.rid = std::move(rid);
    w.user = user_;
    w.session = session_id_;
    w.presence = ctx_.registry.state_of(user_);
    w.mailbox.count = summary->count;
    w.mailbox.missed = summary->missed;
    w.mailbox.bytes = summary->bytes;
    w.mailbox.oldest_ms = summary->oldest_ms;
    for (auto& [from, n] : summary->from) w.mailbox.from.push_back({from, n});
    signing_in_ = false;
    signed_in_ = true;
    ctx_.metrics.signins_total.fetch_add(1, std::memory_order_relaxed);
    enqueue(share(proto::encode(proto::ServerFrame{std::move(w)})));
    if (!capable_) return;
    // A message stored since the scan began (signin_seq_ was taken before
    // it) reached this session before it was signed in and was dropped: then
    // one more read after this page catches it.
    reading_ = true;
    dirty_ = ctx_.store->last_seq() != signin_seq_;
    on_page(std::move(page), limit);
  }

  void on_frame(proto::Hello& f) { send_error(f.rid, "bad_request", "already signed in"); }

  void on_frame(proto::Ping& f) {
    enqueue(share(proto::encode(proto::ServerFrame{proto::Pong{f.rid}})));
  }

  void on_frame(proto::PresenceSet& f) {
    auto change = ctx_.registry.set_state(user_, f.state, ctx_.store->last_seq());
    enqueue(share(proto::encode(proto::ServerFrame{proto::Ok{f.rid}})));
    ctx_.router->presence_changed(user_, change);
  }

  void on_frame(proto::PresenceSubscribe& f) {
    std::size_t fresh = 0;
    for (const auto& u : f.users)
      if (std::find(subscriptions_.begin(), subscriptions_.end(), u) == subscriptions_.end()) ++fresh;
    if (subscriptions_.size() + fresh > ctx_.config.max_subscriptions) {
      return send_error(f.rid, "limit_exceeded",
                        fmt::format("at most {} presence subscriptions per session",
                                    ctx_.config.max_subscriptions));
    }
    for (const auto& u : f.users)
      if (ctx_.registry.subscribe(u, this->shared_from_this())) subscriptions_.push_back(u);
    enqueue(share(proto::encode(proto::ServerFrame{proto::Ok{f.rid}})));
    for (const auto& u : f.users) {
      auto state = PresenceRegistry::visible(ctx_.registry.state_of(u));
      enqueue(share(proto::encode(proto::ServerFrame{proto::PresenceEvent{u, state}})));
    }
  }

  void on_frame(proto::Send& f) {
    ctx_.router->send(this->shared_from_this(), user_, capable_, std::move(f));
  }

  void on_frame(proto::Ack& f) {
    for (auto seq : f.ids) in_flight_.erase(seq);
    ctx_.metrics.acked_total.fetch_add(f.ids.size(), std::memory_order_relaxed);
    if (drained_sent_ && std::holds_alternative<std::monostate>(f.rid)) {
      // Nobody waits for this write's outcome: no reply is due and
      // mailbox.drained went out already. No callback, no post back here.
      ctx_.store->ack(user_, std::move(f.ids), nullptr);
    } else {
      ++pending_ack_writes_;
      ctx_.store->ack(user_, std::move(f.ids),
                      [self = this->shared_from_this(), rid = std::move(f.rid)](Result<std::uint64_t> r) mutable {
                        net::post(self->ws_.get_executor(), [self, rid = std::move(rid), r = std::move(r)] {
                          self->on_ack_written(rid, r);
                        });
                      });
    }
    if (capable_) maybe_read();
  }

  void on_ack_written(const proto::Rid& rid, const Result<std::uint64_t>& r) {
    --pending_ack_writes_;
    if (!r) {
      if (!std::holds_alternative<std::monostate>(rid))
        send_error(rid, "store_error", r.status().message());
      return;
    }
    if (!std::holds_alternative<std::monostate>(rid))
      enqueue(share(proto::encode(proto::ServerFrame{proto::Ok{rid}})));
    check_drained();
  }

  // ---- delivery (stored messages in order, within the window) ----
  void on_stored(const Delivery& d) {
    if (!signed_in_ || close_requested_ || finished_) return;
    if (!capable_) {
      // Older clients chat live only; stored messages wait for a capable client.
      if (d.kind == MessageKind::kLive && d.message_frame) push(d.seq, d.message_frame, false);
      return;
    }
    if (d.missed_notice) enqueue(d.missed_notice);
    if (d.seq <= cursor_) return;
    if (caught_up_ && !reading_ && d.message_frame && in_flight_.size() < ctx_.config.window) {
      push(d.seq, d.message_frame, true);
      return;
    }
    caught_up_ = false;
    if (reading_) dirty_ = true;
    else maybe_read();
  }

  void push(std::uint64_t seq, std::shared_ptr<const std::string> frame, bool track) {
    if (track) {
      in_flight_.insert(seq);
      cursor_ = seq;
    }
    ctx_.metrics.pushed_total.fetch_add(1, std::memory_order_relaxed);
    enqueue(std::move(frame));
  }

  void maybe_read() {
    if (reading_ || caught_up_ || close_requested_ || finished_) return;
    const std::size_t window = ctx_.config.window;
    if (in_flight_.size() >= window) return;
    const std::size_t limit = std::min(kPageMessages, window - in_flight_.size());
    reading_ = true;
    dirty_ = false;
    ctx_.run_blocking([self = this->shared_from_this(), after = cursor_, limit] {
      auto page = self->ctx_.store->read(self->user_, after, limit);
      net::post(self->ws_.get_executor(), [self, limit, p = std::move(page)]() mutable {
        self->on_page(std::move(p), limit);
      });
    });
  }

  void on_page(Result<std::vector<storage::StoredMessage>> page, std::size_t limit) {
    reading_ = false;
    if (finished_ || close_requested_) return;
    if (!page) {
      logger_for(LogComponent::kSession).error("session {} ({}): mailbox read failed: {}", session_id_, user_,
                    page.status().to_string());
      return close(websocket::close_code::internal_error, "store unavailable");
    }
    for (auto& m : *page) {
      if (m.seq <= cursor_) continue;
      proto::Message msg;
      msg.id = format_message_id(m.seq);
      msg.from = std::move(m.from);
      msg.sent_at_ms = m.sent_at_ms;
      msg.body = std::move(m.body);
      // A live message that waited for this sign-in is an offline one now.
      msg.kind = (m.kind == MessageKind::kLive && m.seq <= signin_seq_) ? MessageKind::kOffline : m.kind;
      push(m.seq, share(proto::encode_message(msg)), true);
    }
    if (page->size() >= limit) return maybe_read();  // more may wait
    if (dirty_) {
      dirty_ = false;
      return maybe_read();
    }
    caught_up_ = true;
    initial_done_ = true;
    check_drained();
  }

  void check_drained() {
    if (drained_sent_ || !initial_done_ || pending_ack_writes_ != 0) return;
    if (!in_flight_.empty() && in_flight_.front() <= signin_seq_) return;
    drained_sent_ = true;
    enqueue(share(proto::encode(proto::ServerFrame{proto::MailboxDrained{}})));
  }

  ServerContext& ctx_;
  ConnectionSlot slot_;  // released (counts given back) when the session ends
  websocket::stream<CoalescingStream<Stream>> ws_;
  beast::flat_buffer buffer_;
  net::steady_timer hello_timer_;
  std::string session_id_;

  // from other threads (to_inbox), taken on the strand (drain_inbox)
  std::mutex inbox_mu_;
  std::vector<Inbound> inbox_;
  bool inbox_posted_ = false;  // a drain_inbox is posted and has not taken the inbox yet

  // sign-in
  bool signing_in_ = false;  // hello accepted, welcome not yet sent
  bool signed_in_ = false;
  bool registered_ = false;
  bool finished_ = false;
  std::string user_;
  proto::ClientInfo client_;
  bool capable_ = false;
  std::vector<std::string> subscriptions_;

  // send queue
  FrameQueue queue_;
  bool writing_ = false;
  bool write_scheduled_ = false;
  bool close_requested_ = false;
  bool close_sent_ = false;
  websocket::close_reason close_reason_;

  // delivery
  std::uint64_t signin_seq_ = 0;   // store's last seq at sign-in
  std::uint64_t cursor_ = 0;       // highest seq pushed
  InFlight in_flight_;  // pushed, not yet acked by this session
  bool caught_up_ = false;         // nothing stored beyond cursor_ that we know of
  bool reading_ = false;
  bool dirty_ = false;             // a message arrived during a read
  bool initial_done_ = false;
  bool drained_sent_ = false;
  std::size_t pending_ack_writes_ = 0;
};

// Over TLS, first completes the TLS handshake (within
// limits.handshake_timeout_seconds). Then reads the first HTTP request (with a
// deadline). The WebSocket upgrade at
// /v1/ws goes to a WsSessionImpl; any other request is answered by
// handle_web_request (the browser client, dev tokens, 404) and the
// connection is closed (no idle keep-alive connections to wait for at
// shutdown).
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
  beast::tcp_stream& tcp_layer() { return beast::get_lowest_layer(stream_); }

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
      auto session = std::make_shared<WsSessionImpl<Stream>>(ctx_, std::move(stream_), std::move(slot_));
      session->start(std::move(req));
      return;
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

void serve_client_connection(ServerContext& ctx, tcp::socket socket) {
  beast::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  std::string key;
  if (!ec && peer.address().is_v4()) {
    const auto b = peer.address().to_v4().to_bytes();
    key.assign(b.begin(), b.end());
  } else if (!ec) {
    const auto b = peer.address().to_v6().to_bytes();
    key.assign(b.begin(), b.end());
  }
  ConnectionSlot::Refusal why{};
  ConnectionSlot slot = ConnectionSlot::admit(ctx, std::move(key), why);
  if (!slot.held()) {
    if (why == ConnectionSlot::Refusal::kTooManyFromAddress)
      logger_for(LogComponent::kSession)
          .debug("refused a connection from {}: limits.max_connections_per_ip ({}) reached",
                 ec ? std::string("?") : peer.address().to_string(), ctx.config.max_connections_per_ip);
    beast::error_code ignored;
    socket.close(ignored);
    return;
  }
  if (ctx.tls && ctx.config.client_tls()) {
    std::make_shared<UpgradeReader<TlsStream>>(ctx, TlsStream(beast::tcp_stream(std::move(socket)), *ctx.tls),
                                               std::move(slot))
        ->run();
  } else {
    std::make_shared<UpgradeReader<beast::tcp_stream>>(ctx, beast::tcp_stream(std::move(socket)), std::move(slot))
        ->run();
  }
}

}  // namespace oms::server
