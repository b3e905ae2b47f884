// The WebSocket session (ws_session.h), templated on the stream below the
// WebSocket: ws:// and wss:// share the code.
//
// Each session runs on one I/O thread's io_context (the socket's executor, an
// implicit strand: session_socket.h); every handler holds
// shared_from_this(). One async_write at a time; later frames wait in a
// bounded queue. Stored messages are pushed in sequence order,
// within the DeliveryWindow; RocksDB reads run on the blocking pool and post
// back here.
//
// This file is over 600 lines: one class template whose handlers share the session's
// state on its strand; the 4.4 limits (queue bytes, write stall, read
// backpressure) were added in place while others edit the sign-in path, so
// that merges stay easy. Splitting them out (e.g. a SessionLimits helper) is
// a follow-up.
#include "server/ws_session.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <variant>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/ids.h"
#include "common/json_decode.h"
#include "common/json_encode.h"
#include "server/coalescing_stream.h"
#include "server/cluster.h"
#include "server/context.h"
#include "server/delivery_rules.h"
#include "server/delivery_window.h"
#include "server/frame_queue.h"
#include "server/log.h"
#include "server/router.h"
#include "server/session_inbox.h"
#include "server/session_token.h"
#include "storage/mailbox_store.h"

namespace oms::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using proto::MessageKind;
using proto::PresenceState;

namespace {

// Close codes beyond RFC 6455's (4000–4999 are the application's).
constexpr std::uint16_t kCloseUnauthenticated = 4401;
constexpr std::uint16_t kCloseBadRequest = 4400;     // an invalid device name (4.1)
constexpr std::uint16_t kCloseDeviceRefused = 4403;  // too many devices; device removed (4.1)
constexpr std::uint16_t kCloseReplaced = 4409;       // the same device signed in again (4.1)
constexpr std::uint16_t kCloseSigninTimeout = 4408;
constexpr std::uint16_t kCloseTooManySessions = 4429;
constexpr std::uint16_t kCloseSlowConsumer = 4008;
constexpr std::uint16_t kCloseTryAgainLater = 1013;
// Acks and presence.subscribe lists cost one request token per this many ids.
constexpr double kIdsPerToken = 64;

std::shared_ptr<const std::string> share(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

bool is_shutdown_error(const beast::error_code& ec) {
  return ec == net::error::operation_aborted || ec == websocket::error::closed ||
         ec == net::error::eof || ec == net::error::connection_reset ||
         ec == beast::error::timeout || ec == net::error::broken_pipe;
}

// Stream: SessionStream (ws://) or TlsStream (wss://, handshake done).
template <class Stream>
class WsSessionImpl final : public SessionInbox, public std::enable_shared_from_this<WsSessionImpl<Stream>> {
 public:
  WsSessionImpl(ServerContext& ctx, Stream&& stream, ConnectionSlot slot)
      : ctx_(ctx),
        slot_(std::move(slot)),
        ws_(std::move(stream)),
        hello_timer_(ws_.get_executor()),
        expiry_timer_(ws_.get_executor()),
        stall_timer_(ws_.get_executor()),
        throttle_timer_(ws_.get_executor()),
        window_(ctx.config.window),
        // A full delivery window must always fit: up to `window` stored
        // messages, each up to max_body_bytes escaped (\u00XX: 6 bytes per
        // byte at worst) plus its envelope, on top of the configured bound
        // for everything else. Otherwise 256 large messages from one sender
        // would close every session of the recipient as a slow consumer.
        queue_byte_limit_(ctx.config.max_send_queue_bytes +
                          ctx.config.window * (6 * ctx.config.max_body_bytes + 512)) {
    session_id_ = random_hex(8);
    home_ = &ws_.get_executor().context();
  }

  void start(UpgradeRequest req) {
    const Config& cfg = ctx_.config;
    ws_.set_option(websocket::stream_base::timeout{
        std::chrono::seconds(cfg.handshake_timeout_seconds),
        std::chrono::seconds(cfg.idle_timeout_seconds), /*keep_alive_pings=*/true});
    ws_.read_message_max(cfg.max_frame_bytes);
    ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(http::field::server, "omsd");
    }));
    ctx_.open_sessions.add(this, this->weak_from_this());
    ws_.async_accept(req, beast::bind_front_handler(&WsSessionImpl::on_accept, this->shared_from_this()));
  }

  // ---- SessionInbox (any thread) ----
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
  const void* home() const override { return home_; }

 private:
  struct CloseRequest {
    std::uint16_t code;
    std::string reason;
  };
  using Inbound = std::variant<std::shared_ptr<const std::string>, std::shared_ptr<const Delivery>, CloseRequest>;

  enum class SignIn : std::uint8_t {
    kAwaitingHello,
    kDevice,     // hello accepted; the store is recording the device (4.1)
    kSigningIn,  // device recorded, registered in the presence registry, welcome not yet sent
    kSignedIn,
  };
  enum class Writer : std::uint8_t {
    kIdle,
    kScheduled,  // a handler posted behind the waiting ones starts the write
    kWriting,    // one async_write in flight
  };
  enum class Closing : std::uint8_t {
    kOpen,
    kRequested,  // sends what is queued, then the close frame
    kSent,       // async_close started
  };

  static std::size_t inbound_bytes(const Inbound& in) {
    if (const auto* f = std::get_if<std::shared_ptr<const std::string>>(&in)) return (*f)->size();
    if (const auto* d = std::get_if<std::shared_ptr<const Delivery>>(&in)) {
      return ((*d)->message_frame ? (*d)->message_frame->size() : 0) +
             ((*d)->missed_notice ? (*d)->missed_notice->size() : 0);
    }
    return 0;
  }

  // The inbox is bounded like the send queue (frames and bytes, protocol
  // 4.4): beyond it, what waits is dropped (stored messages stay stored) and
  // the session closes as a slow consumer; later items are dropped.
  // Before that, for a capable session, new deliveries (messages and
  // receipts, all in its mailbox) stop being queued one by one once the
  // inbox is half full: only the highest seq is kept, and the session reads
  // them from its mailbox (a sender flooded with receipts stays connected).
  // Their `missed` notices are still queued.
  void to_inbox(Inbound in) {
    {
      std::lock_guard lock(inbox_mu_);
      if (inbox_overflow_) return;
      bool queue = true;
      if (auto* d = std::get_if<std::shared_ptr<const Delivery>>(&in);
          d && inbox_capable_ &&
          (inbox_behind_seq_ != 0 || inbox_.size() * 2 > ctx_.config.max_send_queue ||
           inbox_bytes_ * 2 > queue_byte_limit_)) {
        inbox_behind_seq_ = std::max(inbox_behind_seq_, (*d)->seq);
        queue = (*d)->missed_notice != nullptr;
        if (queue) in = (*d)->missed_notice;
      }
      if (queue) {
        inbox_bytes_ += inbound_bytes(in);
        inbox_.push_back(std::move(in));
        if (inbox_.size() > ctx_.config.max_send_queue || inbox_bytes_ > queue_byte_limit_) {
          inbox_overflow_ = true;
          inbox_.clear();
          inbox_bytes_ = 0;
          inbox_.push_back(CloseRequest{kCloseSlowConsumer, "slow consumer"});
        }
      }
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
    std::uint64_t behind = 0;
    {
      std::lock_guard lock(inbox_mu_);
      batch.swap(inbox_);
      inbox_bytes_ = 0;
      inbox_posted_ = false;
      behind = std::exchange(inbox_behind_seq_, 0);
    }
    for (auto& in : batch) {
      if (auto* frame = std::get_if<std::shared_ptr<const std::string>>(&in)) {
        if (sign_in_ == SignIn::kSignedIn) enqueue(std::move(*frame));
      } else if (auto* d = std::get_if<std::shared_ptr<const Delivery>>(&in)) {
        on_stored(**d);
      } else {
        auto& c = std::get<CloseRequest>(in);
        if (c.code == kCloseSlowConsumer) slow_consumer("inbox full");
        else close(c.code, c.reason);
      }
    }
    // Deliveries kept as their highest seq only (every one queued before
    // them is handled above): read from the mailbox.
    if (behind != 0) {
      Delivery d;
      d.seq = behind;
      on_stored(d);
    }
  }

  bool closing() const { return closing_ != Closing::kOpen; }

  // ---- connection ----
  void on_accept(beast::error_code ec) {
    if (ec) return fail(ec, "accept");
    hello_timer_.expires_after(std::chrono::milliseconds(ctx_.config.signin_timeout_ms));
    hello_timer_.async_wait([self = this->shared_from_this()](beast::error_code tec) {
      if (tec || self->sign_in_ != SignIn::kAwaitingHello) return;
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
      const bool was_signed_in = sign_in_ == SignIn::kSignedIn;
      if (!closing()) handle_text(text);
      buffer_.consume(buffer_.size());
      // The hello (with its token) is the largest frame an idle session
      // reads: give its room back. Busy sessions keep theirs.
      if (!was_signed_in) buffer_.shrink_to_fit();
    }
    continue_reading();  // keep reading until the close handshake completes
  }

  // Reads the next frame, unless the session must wait first (protocol 4.4,
  // backpressure): more than limits.max_ack_writes_in_flight ack writes are
  // in the store's queue, or its acks are over the request rate. The pause
  // ends in resume_reading() (an ack write done, the throttle timer).
  void continue_reading() {
    if (!closing() && (ack_writes_ >= ctx_.config.max_ack_writes_in_flight || throttled_)) {
      read_paused_ = true;
      return;
    }
    do_read();
  }
  void resume_reading() {
    if (!read_paused_ || finished_) return;
    read_paused_ = false;
    continue_reading();
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
    gone_.store(true, std::memory_order_relaxed);
    logger_for(LogComponent::kSession).debug("session {} ({}): closed", session_id_, user_);
    hello_timer_.cancel();
    expiry_timer_.cancel();
    stall_timer_.cancel();
    throttle_timer_.cancel();
    ctx_.open_sessions.remove(this);
    for (const auto& u : subscriptions_) ctx_.registry.unsubscribe(u, this);
    subscriptions_.clear();
    if (sign_in_ == SignIn::kSigningIn || sign_in_ == SignIn::kSignedIn) {  // in the presence registry
      ctx_.metrics.sessions_open.fetch_sub(1, std::memory_order_relaxed);
      if (auto before = ctx_.registry.remove_session(user_, this)) {
        ctx_.router->presence_changed(user_, {*before, PresenceState::kOffline, 0});
      }
      if (ctx_.cluster) {
        ctx_.cluster->local_session(user_, home_, false);
        ctx_.cluster->local_presence_changed(user_, false);
      }
    }
    sign_out_device();
    queue_.clear();
  }

  // ---- sending ----
  void enqueue(std::shared_ptr<const std::string> frame) {
    if (closing() || finished_) return;
    if (queue_.size() >= ctx_.config.max_send_queue ||
        queue_.bytes() + frame->size() > queue_byte_limit_) {
      return slow_consumer("send queue full");
    }
    queue_.push_back(std::move(frame));
    schedule_write();
  }

  void slow_consumer(std::string_view why) {
    if (closing() || finished_) return;
    ctx_.metrics.slow_consumer_closes.fetch_add(1, std::memory_order_relaxed);
    logger_for(LogComponent::kSession)
        .info("session {} ({}): {}, closing slow consumer", session_id_, user_, why);
    // Keep only the frame being written; the messages stay in the mailbox.
    if (writer_ == Writer::kWriting) queue_.keep_front_only();
    else queue_.clear();
    close(kCloseSlowConsumer, "slow consumer");
  }

  // Write stall (protocol 4.4): a write outstanding for limits.
  // write_stall_seconds (the peer reads nothing; Beast's idle timeout does
  // not see it while the peer keeps sending) closes the session with 4008.
  // If even that close cannot go out within the handshake timeout, the
  // socket is closed. One timer, armed while a write is out.
  void arm_stall_timer(std::chrono::steady_clock::time_point at) {
    stall_armed_ = true;
    stall_timer_.expires_at(at);
    stall_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      self->stall_armed_ = false;
      if (!ec) self->on_stall_timer();
    });
  }
  void on_stall_timer() {
    if (finished_) return;
    const auto now = std::chrono::steady_clock::now();
    if (stalled_) {  // the close frame did not go out either
      logger_for(LogComponent::kSession).info("session {} ({}): write stalled, dropping", session_id_, user_);
      beast::get_lowest_layer(ws_).close();  // the pending operations fail: finish()
      return;
    }
    if (writer_ != Writer::kWriting) return;  // the next write arms again
    const auto deadline = write_started_ + std::chrono::seconds(ctx_.config.write_stall_seconds);
    if (now < deadline) return arm_stall_timer(deadline);
    stalled_ = true;
    ctx_.metrics.write_stall_closes.fetch_add(1, std::memory_order_relaxed);
    logger_for(LogComponent::kSession)
        .info("session {} ({}): peer read nothing for {} s, closing", session_id_, user_,
              ctx_.config.write_stall_seconds);
    queue_.keep_front_only();
    close(kCloseSlowConsumer, "write stalled");
    arm_stall_timer(now + std::chrono::seconds(ctx_.config.handshake_timeout_seconds));
  }

  // Frames that handlers already waiting on this strand will queue (the
  // replies of one store batch, a page of stored messages) leave together:
  // the write starts from a handler posted behind them, and every frame of a
  // burst but the last is buffered by the CoalescingStream below the
  // WebSocket, so the burst reaches the peer in one write (and one wake-up).
  void schedule_write() {
    if (writer_ != Writer::kIdle) return;
    writer_ = Writer::kScheduled;
    net::post(ws_.get_executor(), [self = this->shared_from_this()] {
      if (self->writer_ != Writer::kScheduled) return;  // a write started meanwhile
      self->writer_ = Writer::kIdle;
      if (!self->queue_.empty()) self->do_write();
    });
  }

  // Writes the queue's front. Called directly (not scheduled) only for the
  // frame that goes out alone before a close.
  void do_write() {
    writer_ = Writer::kWriting;
    write_started_ = std::chrono::steady_clock::now();
    if (!stall_armed_) arm_stall_timer(write_started_ + std::chrono::seconds(ctx_.config.write_stall_seconds));
    ws_.next_layer().set_corked(queue_.size() > 1);
    ws_.text(true);
    ws_.async_write(net::buffer(*queue_.front()),
                    beast::bind_front_handler(&WsSessionImpl::on_write, this->shared_from_this()));
  }
  void write_alone(std::shared_ptr<const std::string> frame) {
    queue_.push_back(std::move(frame));
    if (writer_ != Writer::kWriting) do_write();
  }

  void on_write(beast::error_code ec, std::size_t) {
    writer_ = Writer::kIdle;
    if (ec) return fail(ec, "write");
    if (finished_) return;  // finish() dropped the queue while this write was out
    queue_.pop_front();
    if (!queue_.empty()) return do_write();
    // Normally the last frame of a burst went out uncorked already; after
    // the slow-consumer cut it may not have: what follows (the close frame,
    // a pong) must carry the buffered bytes out.
    ws_.next_layer().set_corked(false);
    if (closing_ == Closing::kRequested) do_close();
  }

  // Sends what is queued, then the close frame.
  void close(std::uint16_t code, std::string_view reason) {
    if (closing() || finished_) return;
    closing_ = Closing::kRequested;
    close_reason_ = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
    if (writer_ != Writer::kWriting && queue_.empty()) do_close();
  }

  void do_close() {
    closing_ = Closing::kSent;
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
    write_alone(share(proto::encode_error(rid, "unauthenticated", message)));
    close(close_code, "unauthenticated");
  }

  // ---- requests ----
  void handle_text(std::string_view text) {
    proto::DecodeLimits limits;
    limits.max_body_bytes = ctx_.config.max_frame_bytes;
    auto decoded = proto::decode_client_frame(text, limits);
    if (sign_in_ != SignIn::kSignedIn) {
      if (sign_in_ == SignIn::kSigningIn || sign_in_ == SignIn::kDevice)
        return refuse_signin(kCloseUnauthenticated, "no frame is accepted before welcome");
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
    if (!admit(decoded.frame())) return;
    std::visit([this](auto& f) { this->on_frame(f); }, decoded.frame());
  }

  // Ends the session at exp + leeway; re-arms when auth.refresh moved exp on.
  // exp + leeway, saturating (a signed token may carry any exp).
  std::int64_t session_end_s() const {
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    return token_exp_s_ > kMax - ctx_.config.leeway_seconds ? kMax : token_exp_s_ + ctx_.config.leeway_seconds;
  }

  void arm_expiry() {
    // At most a day at a time (re-armed): no overflow for a far-off exp.
    const std::int64_t left = std::clamp<std::int64_t>(session_end_s() - ctx_.clock->now_s(), 0, 86'400);
    expiry_timer_.expires_after(std::chrono::seconds(left));
    expiry_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec || self->finished_ || self->closing()) return;
      if (self->session_end_s() > self->ctx_.clock->now_s()) return self->arm_expiry();
      self->ctx_.metrics.token_expired_closes.fetch_add(1, std::memory_order_relaxed);
      self->close(kCloseUnauthenticated, "token expired");
    });
  }

  // The request rate limit (protocol 4.4): every request but send (its own
  // bucket, in the router) and ack (charged when applied: on_frame(Ack))
  // takes from the user's request bucket, shared by all of the user's
  // sessions and kept across sign-ins. A presence.subscribe costs by its
  // list's length. Over the rate: rate_limited, nothing done.
  bool admit(const proto::ClientFrame& frame) {
    if (std::holds_alternative<proto::Send>(frame) || std::holds_alternative<proto::Ack>(frame)) return true;
    double cost = 1;
    if (const auto* sub = std::get_if<proto::PresenceSubscribe>(&frame))
      cost += static_cast<double>(sub->users.size()) / kIdsPerToken;
    const Config& cfg = ctx_.config;
    if (ctx_.request_rate.take(user_, ctx_.clock->now_ms(), cfg.request_rate_per_second, cfg.request_burst,
                               cost))
      return true;
    send_error(std::visit([](const auto& f) { return f.rid; }, frame), "rate_limited",
               fmt::format("request rate above {}/s; slow down and retry", cfg.request_rate_per_second));
    return false;
  }

  void on_hello(proto::Hello& hello) {
    auto claims = verify_session_token(ctx_, hello.token);
    if (!claims) return refuse_signin(kCloseUnauthenticated, claims.status().message(), hello.rid);
    if (hello.client.device && !proto::valid_device_name(*hello.client.device)) {
      ctx_.metrics.signin_failures_total.fetch_add(1, std::memory_order_relaxed);
      write_alone(share(proto::encode_error(
          hello.rid, "bad_request",
          "client.device must be 1-64 bytes of [A-Za-z0-9._-] and not \"legacy\"")));
      return close(kCloseBadRequest, "invalid device name");
    }
    token_exp_s_ = claims->exp;
    token_iat_ = claims->iat;
    user_ = std::move(claims->sub);
    client_ = std::move(hello.client);
    capable_ = offline_capable(client_);
    {
      std::lock_guard lock(inbox_mu_);
      inbox_capable_ = capable_;
    }
    device_ = client_.device ? *client_.device : std::string(proto::kLegacyDevice);
    hello_timer_.cancel();
    sign_in_ = SignIn::kDevice;
    // The device joins the user's devices before anything of the mailbox is
    // read: from then on no message leaves it without this device's ack.
    ctx_.store->device_signed_in(user_, device_, capable_,
                                 [self = this->shared_from_this(), rid = hello.rid](Result<bool> r) mutable {
                                   net::post(self->ws_.get_executor(), [self, rid = std::move(rid), r = std::move(r)] {
                                     self->on_device_recorded(rid, r);
                                   });
                                 });
  }

  // The store's sign-out of this session's device, once. In cluster mode
  // the node's Redis entry follows; a purge of this node (it was presumed
  // dead) signed the device out already (epoch changed): not twice.
  void sign_out_device() {
    if (!device_recorded_) return;
    device_recorded_ = false;
    if (ctx_.cluster) {
      if (ctx_.cluster->epoch() != device_epoch_) return;
      ctx_.cluster->device_session(user_, device_, -1);
    }
    ctx_.store->device_signed_out(user_, device_, {});
  }

  void on_device_recorded(const proto::Rid& rid, const Result<bool>& recorded) {
    if (recorded) {
      device_recorded_ = true;
      if (ctx_.cluster) {
        device_epoch_ = ctx_.cluster->epoch();
        ctx_.cluster->device_session(user_, device_, +1);
      }
    }
    if (finished_) return sign_out_device();
    if (closing()) return;
    // A disk with no room even for acks (below store.write_floor_bytes)
    // must not stop sign-ins (4.4): the session goes on with the device as
    // recorded before (a device first seen now holds nothing back yet).
    if (!recorded && recorded.status().code() == Code::kStoreFull)
      logger_for(LogComponent::kSession)
          .warn("session {} ({}): device {} not recorded: {}", session_id_, user_, device_,
                recorded.status().message());
    else if (!recorded) {
      ctx_.metrics.signin_failures_total.fetch_add(1, std::memory_order_relaxed);
      if (recorded.status().code() == Code::kTooManyDevices) {
        write_alone(share(proto::encode_error(rid, "too_many_devices", recorded.status().message())));
        return close(kCloseDeviceRefused, "too many devices");
      }
      write_alone(share(proto::encode_error(rid, "unavailable", "the device cannot be recorded now: try again")));
      return close(kCloseTryAgainLater, "try again later");
    }
    SessionInfo info{session_id_, client_, ctx_.clock->now_ms(), device_};
    const std::uint64_t signin_seq = ctx_.store->last_seq();
    // In cluster mode a user signed in elsewhere keeps their state.
    const PresenceState first_state = ctx_.cluster
                                          ? ctx_.cluster->remote_state(user_).value_or(PresenceState::kAvailable)
                                          : PresenceState::kAvailable;
    auto added = ctx_.registry.add_session(user_, this->shared_from_this(), std::move(info),
                                           ctx_.config.max_sessions_per_user, first_state);
    if (!added) {
      ctx_.metrics.signin_failures_total.fetch_add(1, std::memory_order_relaxed);
      write_alone(share(proto::encode_error(
          rid, "too_many_sessions",
          fmt::format("{} already has {} sessions", user_, ctx_.config.max_sessions_per_user))));
      return close(kCloseTooManySessions, "too many sessions");
    }
    for (const auto& old : added->replaced) old->post_close(kCloseReplaced, "replaced");
    // (Before the mailbox scan: the hints of this user reach this node from now on.)
    if (ctx_.cluster) {
      ctx_.cluster->local_session(user_, home_, true);
      ctx_.cluster->local_presence_changed(user_, false);
    }
    sign_in_ = SignIn::kSigningIn;
    logger_for(LogComponent::kSession).debug("session {} ({}): signed in (client {} {}, device {}, {})", session_id_,
                                             user_, log_safe(client_.name), log_safe(client_.version), device_,
                                             capable_ ? "capable" : "older");
    arm_expiry();
    ctx_.metrics.sessions_open.fetch_add(1, std::memory_order_relaxed);
    if (added->first)  // (in cluster mode: an event only when others saw the user offline)
      ctx_.router->presence_changed(user_, {PresenceState::kOffline, added->state, 0});
    // A revocation racing this sign-in did not find the session: look again.
    if (token_revoked(ctx_, user_, token_iat_)) {
      write_alone(share(proto::encode_error(rid, "unauthenticated", "token revoked")));
      return close(kCloseUnauthenticated, "token revoked");
    }
    // The sign-in notification needs a mailbox scan: off the I/O thread. A
    // capable client's first page of delivery comes from the same scan.
    // The scan pool is fair between users (fair_pool.h); a scan whose session
    // is gone by its turn is skipped.
    const std::size_t limit = capable_ ? window_.begin(signin_seq) : 0;
    const bool queued = ctx_.run_for_user(user_, [self = this->shared_from_this(), rid, limit,
                                                  recorded = device_recorded_]() mutable {
      if (self->gone_.load(std::memory_order_relaxed)) return;
      // An operator's removal of this device that came between its
      // recording and this session joining the registry did not find the
      // session to close it: look again (as for a revoked token above).
      if (recorded && !self->ctx_.store->device_known(self->user_, self->device_)) {
        net::post(self->ws_.get_executor(), [self] { self->close(kCloseDeviceRefused, "device removed"); });
        return;
      }
      std::vector<storage::StoredMessage> page;
      auto summary =
          self->ctx_.store->summary(self->user_, self->device_, 0, false, limit ? &page : nullptr, limit);
      net::post(self->ws_.get_executor(),
                [self, rid = std::move(rid), s = std::move(summary), page = std::move(page)]() mutable {
                  self->on_summary(std::move(rid), std::move(s), std::move(page));
                });
    });
    if (!queued) {
      ctx_.metrics.signin_failures_total.fetch_add(1, std::memory_order_relaxed);
      write_alone(share(proto::encode_error(
          rid, "unavailable",
          fmt::format("{} has {} mailbox scans waiting: try again later", user_, ctx_.config.max_queued_scans_per_user))));
      close(kCloseTryAgainLater, "try again later");
    }
  }

  void on_summary(proto::Rid rid, Result<storage::MailboxSummary> summary, std::vector<storage::StoredMessage> page) {
    if (finished_ || closing()) return;
    if (!summary) {
      logger_for(LogComponent::kSession).error("session {} ({}): mailbox summary failed: {}", session_id_, user_,
                    summary.status().to_string());
      write_alone(share(proto::encode_error(rid, "unavailable", "the mailbox cannot be read now")));
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
    w.mailbox.receipts = summary->receipts;
    sign_in_ = SignIn::kSignedIn;
    ctx_.metrics.signins_total.fetch_add(1, std::memory_order_relaxed);
    enqueue(share(proto::encode(proto::ServerFrame{std::move(w)})));
    if (!capable_) return;
    // A message stored since the scan began reached this session before it
    // was signed in and was dropped: then one more read after this page
    // catches it.
    // In cluster mode other nodes commit to this mailbox, and this node's
    // last_seq() does not see their seqs; their hints (and the poke after
    // this user's channel subscription) that came while signing in were
    // dropped too: always read once more.
    window_.scan_returned(ctx_.cluster ? std::numeric_limits<std::uint64_t>::max() : ctx_.store->last_seq());
    on_page(std::move(page));
  }

  void on_frame(proto::Hello& f) { send_error(f.rid, "bad_request", "already signed in"); }

  // A fresh token for the same user keeps the session past the old one's
  // expiry; anything else leaves it as it was (ending at the old expiry).
  void on_frame(proto::AuthRefresh& f) {
    auto claims = verify_session_token(ctx_, f.token);
    if (!claims || claims->sub != user_)
      return send_error(f.rid, "unauthenticated", claims ? "the token is for another user" : claims.status().message());
    token_exp_s_ = std::max(token_exp_s_, claims->exp);
    enqueue(share(proto::encode(proto::ServerFrame{proto::Ok{f.rid}})));
  }

  void on_frame(proto::Ping& f) {
    enqueue(share(proto::encode(proto::ServerFrame{proto::Pong{f.rid}})));
  }

  void on_frame(proto::PresenceSet& f) {
    auto change = ctx_.registry.set_state(user_, f.state, ctx_.store->last_seq());
    if (ctx_.cluster) ctx_.cluster->local_presence_changed(user_, true);
    enqueue(share(proto::encode(proto::ServerFrame{proto::Ok{f.rid}})));
    ctx_.router->presence_changed(user_, change);
  }

  void on_frame(proto::PresenceSubscribe& f) {
    std::size_t fresh = 0;
    for (const auto& u : f.users)
      if (!subscriptions_.contains(u)) ++fresh;
    if (subscriptions_.size() + fresh > ctx_.config.max_subscriptions) {
      return send_error(f.rid, "limit_exceeded",
                        fmt::format("at most {} presence subscriptions per session",
                                    ctx_.config.max_subscriptions));
    }
    // Only users not watched yet get their current state (a repeated
    // subscribe costs no frames; later changes come as events anyway).
    std::vector<const std::string*> added;
    for (const auto& u : f.users)
      if (!subscriptions_.contains(u) && ctx_.registry.subscribe(u, this->shared_from_this())) {
        subscriptions_.insert(u);
        added.push_back(&u);
      }
    enqueue(share(proto::encode(proto::ServerFrame{proto::Ok{f.rid}})));
    for (const std::string* u : added) {
      auto state = PresenceRegistry::visible(ctx_.cluster ? ctx_.cluster->state_of(*u) : ctx_.registry.state_of(*u));
      enqueue(share(proto::encode(proto::ServerFrame{proto::PresenceEvent{*u, state}})));
    }
  }

  void on_frame(proto::Send& f) {
    ctx_.router->send(this->shared_from_this(), user_, capable_, std::move(f));
  }

  // An ack is always applied (never refused: it must not be lost), but it
  // is charged to the request bucket by its ids (1 + ids/64 tokens) and a
  // user over the rate has this session's reading paused until the bucket
  // is out of debt. Its write counts against max_ack_writes_in_flight.
  void on_frame(proto::Ack& f) {
    for (auto seq : f.ids) window_.acked(seq);
    ctx_.metrics.acked_total.fetch_add(f.ids.size(), std::memory_order_relaxed);
    const Config& cfg = ctx_.config;
    const auto wait_ms = ctx_.request_rate.charge(user_, ctx_.clock->now_ms(), cfg.request_rate_per_second,
                                                  cfg.request_burst, 1.0 + static_cast<double>(f.ids.size()) / kIdsPerToken);
    if (wait_ms > 0 && !throttled_) {
      throttled_ = true;
      throttle_timer_.expires_after(std::chrono::milliseconds(wait_ms));
      throttle_timer_.async_wait([self = this->shared_from_this()](beast::error_code) {
        self->throttled_ = false;
        self->resume_reading();
      });
    }
    // A reply is due unless nobody waits for this write's outcome (no rid,
    // mailbox.drained went out already); the completion comes back either
    // way, to count the write as done.
    const bool has_rid = !std::holds_alternative<std::monostate>(f.rid);
    const bool reply_due = !window_.drained_sent() || has_rid;
    if (reply_due) window_.ack_write_started();
    ++ack_writes_;
    // Only an ack with a rid is promised durability (its `ok`); one without
    // reaches the disk with the next synced write (MailboxStore::ack_unsynced).
    auto done = [self = this->shared_from_this(), rid = std::move(f.rid), reply_due](Result<std::uint64_t> r) mutable {
      net::post(self->ws_.get_executor(), [self, rid = std::move(rid), r = std::move(r), reply_due] {
        self->on_ack_written(rid, r, reply_due);
      });
    };
    if (has_rid)
      ctx_.store->ack(user_, device_, std::move(f.ids), std::move(done));
    else
      ctx_.store->ack_unsynced(user_, device_, std::move(f.ids), std::move(done));
    if (capable_) maybe_read();
  }

  void on_ack_written(const proto::Rid& rid, const Result<std::uint64_t>& r, bool reply_due) {
    --ack_writes_;
    resume_reading();
    if (!reply_due) return;
    window_.ack_write_done();
    if (!r) {
      if (!std::holds_alternative<std::monostate>(rid))
        send_error(rid, r.status().code() == Code::kStoreFull ? "store_full" : "store_error",
                   r.status().message());
      return;
    }
    if (!std::holds_alternative<std::monostate>(rid))
      enqueue(share(proto::encode(proto::ServerFrame{proto::Ok{rid}})));
    check_drained();
  }

  // ---- delivery (the rules: delivery_rules.h; the window: delivery_window.h) ----
  void on_stored(const Delivery& d) {
    if (sign_in_ != SignIn::kSignedIn || closing() || finished_) return;
    switch (on_arrival(capable_, d.kind)) {
      case Arrival::kDrop: return;
      case Arrival::kSendLive:
        if (d.message_frame) push(d.message_frame);
        return;
      case Arrival::kThroughWindow: break;
    }
    if (d.missed_notice) enqueue(d.missed_notice);
    // Messages and receipts both come from the store's completion thread,
    // in seq order per mailbox (a batch's receipts after its callbacks).
    switch (window_.on_stored(d.seq, d.message_frame != nullptr, d.ordered, d.mseq)) {
      case DeliveryWindow::Arrived::kPush: return push(d.message_frame);
      case DeliveryWindow::Arrived::kRead: return maybe_read();
      case DeliveryWindow::Arrived::kNone: return;
    }
  }

  void push(std::shared_ptr<const std::string> frame) {
    ctx_.metrics.pushed_total.fetch_add(1, std::memory_order_relaxed);
    enqueue(std::move(frame));
  }

  void maybe_read() {
    if (closing() || finished_) return;
    const auto read = window_.next_read();
    if (!read) return;
    ctx_.metrics.mailbox_reads_total.fetch_add(1, std::memory_order_relaxed);
    const bool queued =
        ctx_.run_for_user(user_, [self = this->shared_from_this(), after = read->after, limit = read->limit] {
          if (self->gone_.load(std::memory_order_relaxed)) return;
          auto page = self->ctx_.store->read(self->user_, self->device_, after, limit);
          net::post(self->ws_.get_executor(), [self, p = std::move(page)]() mutable { self->on_page(std::move(p)); });
        });
    // The user's other sessions have the scan queue full: this one stops;
    // its messages stay stored for the next sign-in.
    if (!queued) close(kCloseTryAgainLater, "try again later");
  }

  void on_page(Result<std::vector<storage::StoredMessage>> page) {
    if (finished_ || closing()) return;
    if (!page) {
      logger_for(LogComponent::kSession).error("session {} ({}): mailbox read failed: {}", session_id_, user_,
                    page.status().to_string());
      return close(websocket::close_code::internal_error, "store unavailable");
    }
    for (auto& m : *page) {
      if (!window_.take(m.seq, m.mseq)) continue;
      if (m.receipt) {
        push(share(proto::encode_receipt(receipt_frame(m.seq, *m.receipt))));
        continue;
      }
      proto::Message msg;
      msg.id = format_message_id(m.seq);
      msg.from = std::move(m.from);
      msg.sent_at_ms = m.sent_at_ms;
      msg.body = std::move(m.body);
      msg.kind = kind_when_read(m.kind, m.seq, window_.signin_seq());
      push(share(proto::encode_message(msg)));
    }
    if (window_.page_done(page->size())) return maybe_read();
    check_drained();
  }

  static proto::Receipt receipt_frame(std::uint64_t seq, const storage::ReceiptRecord& r) {
    proto::Receipt f;
    f.id = format_message_id(seq);
    f.msg = format_message_id(r.msg_seq);
    f.client_msg_id = r.client_msg_id;
    f.to = r.to;
    f.state = r.state;
    f.at_ms = r.at_ms;
    return f;
  }

  void check_drained() {
    if (window_.take_drained()) enqueue(share(proto::encode(proto::ServerFrame{proto::MailboxDrained{}})));
  }

  ServerContext& ctx_;
  ConnectionSlot slot_;  // released (counts given back) when the session ends
  websocket::stream<CoalescingStream<Stream>> ws_;
  const void* home_ = nullptr;  // the I/O context ws_ runs on (SessionInbox::home)
  beast::flat_buffer buffer_;
  // Timers on the session's executor type (session_socket.h).
  using Timer = net::basic_waitable_timer<std::chrono::steady_clock, net::wait_traits<std::chrono::steady_clock>,
                                          SessionExecutor>;
  Timer hello_timer_;
  Timer expiry_timer_;  // the token's exp (+ leeway): arm_expiry()
  std::string session_id_;

  // from other threads (to_inbox), taken on the strand (drain_inbox)
  std::mutex inbox_mu_;
  std::vector<Inbound> inbox_;
  std::size_t inbox_bytes_ = 0;
  bool inbox_overflow_ = false;  // closing as a slow consumer: later items are dropped
  bool inbox_capable_ = false;   // capable_, for to_inbox (set with inbox_mu_ held)
  std::uint64_t inbox_behind_seq_ = 0;  // deliveries kept as their highest seq (to_inbox)
  bool inbox_posted_ = false;  // a drain_inbox is posted and has not taken the inbox yet

  // sign-in
  SignIn sign_in_ = SignIn::kAwaitingHello;
  bool finished_ = false;
  std::atomic<bool> gone_{false};  // finished_, readable by scans on the scan pool
  bool capable_ = false;  // offline_capable(client_)
  std::string user_;
  std::string device_;            // client_.device, or kLegacyDevice
  bool device_recorded_ = false;  // device_signed_in succeeded: device_signed_out at the end
  std::uint64_t device_epoch_ = 0;  // cluster mode: the node's epoch when the device was recorded
  std::optional<std::int64_t> token_iat_;
  std::int64_t token_exp_s_ = 0;  // the latest token's exp (hello or auth.refresh)
  proto::ClientInfo client_;
  std::unordered_set<std::string> subscriptions_;

  // send queue
  FrameQueue queue_;
  Writer writer_ = Writer::kIdle;
  Closing closing_ = Closing::kOpen;
  websocket::close_reason close_reason_;
  Timer stall_timer_;  // write stall (limits.write_stall_seconds)
  bool stall_armed_ = false;
  bool stalled_ = false;  // closing for a write stall
  std::chrono::steady_clock::time_point write_started_;

  // read backpressure (continue_reading)
  bool read_paused_ = false;  // no read outstanding; resume_reading() starts one
  std::size_t ack_writes_ = 0;  // ack writes in the store's queue
  bool throttled_ = false;      // acks over the request rate: throttle_timer_ ends it
  Timer throttle_timer_;

  DeliveryWindow window_;
  std::size_t queue_byte_limit_;  // see the constructor
};

template <class Stream>
void run_session(ServerContext& ctx, Stream&& stream, ConnectionSlot slot, UpgradeRequest req) {
  std::make_shared<WsSessionImpl<Stream>>(ctx, std::move(stream), std::move(slot))->start(std::move(req));
}

}  // namespace

void start_ws_session(ServerContext& ctx, SessionStream&& stream, ConnectionSlot slot, UpgradeRequest req) {
  run_session(ctx, std::move(stream), std::move(slot), std::move(req));
}

void start_ws_session(ServerContext& ctx, TlsStream&& stream, ConnectionSlot slot, UpgradeRequest req) {
  run_session(ctx, std::move(stream), std::move(slot), std::move(req));
}

}  // namespace oms::server
