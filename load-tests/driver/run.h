// The load generator's machinery: synthetic users, their WebSocket sessions,
// the worker threads that run them, and what they record while they run.
//
// Threading: a Run has T workers, each with its own io_context and thread.
// User i belongs to worker i % T, and everything about that user (its
// Connection, its receive-side checks, its presence history) is touched only
// on that worker's thread. Workers share nothing but atomics (live counters
// and the scenario's hooks); per-worker statistics and records are merged by
// the orchestrating thread after the workers have stopped.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <climits>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "common/protocol.h"
#include "load-tests/driver/histogram.h"
#include "load-tests/driver/options.h"

namespace oms::load {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

// Monotonic nanoseconds since the process started (one clock for every
// thread, so a sender's timestamp in a body is comparable at the receiver).
std::int64_t now_ns();

// A set of message ids that is a sorted vector while ids arrive in increasing
// order (the normal case: the server pushes a mailbox in sequence order) and
// falls back to a hash set for the rest.
class IdSet {
 public:
  bool insert(std::uint64_t id);  // true when id was not there yet
  bool contains(std::uint64_t id) const;
  std::size_t size() const { return sorted_.size() + odd_.size(); }
  void append_to(std::vector<std::uint64_t>& out) const;

 private:
  std::vector<std::uint64_t> sorted_;
  std::unordered_set<std::uint64_t> odd_;
};

enum class SendStatus : std::uint8_t { kDelivered = 0, kStored, kMissed, kOther };

// One `sent` reply, as the sender saw it.
struct SentRecord {
  std::uint64_t id = 0;
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  std::int64_t intended_ns = 0;  // when the send was due (open loop) or made
  std::int64_t send_ns = 0;      // when the frame was queued on the socket
  std::int64_t sent_ns = 0;      // when `sent` arrived
  SendStatus status = SendStatus::kOther;
  proto::PresenceState recipient = proto::PresenceState::kOffline;
  bool duplicate = false;
};

// One message received for the first time by its recipient user.
struct RecvRecord {
  std::uint64_t id = 0;
  std::uint32_t to = 0;
  proto::MessageKind kind = proto::MessageKind::kLive;
};

// A presence change of a user as the client knows it: asked for at
// `requested_ns`, confirmed (ok / welcome / closed) at `confirmed_ns`.
struct PresenceSpan {
  std::int64_t requested_ns = 0;
  std::int64_t confirmed_ns = 0;
  proto::PresenceState state = proto::PresenceState::kOffline;
};

class Connection;

// A synthetic user. REQUIRES: touched only on its owner worker's thread (or
// by anyone once the workers have stopped).
struct User {
  std::uint32_t index = 0;
  std::string id;     // normalised user id
  std::string token;  // HS256 JWT for `id`
  std::shared_ptr<Connection> conn;  // the current session, if any
  bool keep_online = false;          // reconnect when the server drops the session
  std::uint32_t sessions = 0;        // sessions started so far
  std::uint32_t reconnects = 0;
  std::uint64_t send_seq = 0;        // per-sender sequence number, embedded in bodies

  // Receive-side checks (after dedup by id across this user's sessions).
  IdSet seen;
  IdSet notices;  // ids of `missed` notices
  std::unordered_map<std::uint32_t, std::uint64_t> last_seq;  // sender -> last seq received

  bool track_history = false;
  std::vector<PresenceSpan> history;
  proto::PresenceState state = proto::PresenceState::kOffline;  // last confirmed

  std::int64_t signin_started_ns = 0;
  std::int64_t welcome_ns = 0;
  std::int64_t drained_ns = 0;
  std::uint64_t welcome_count = 0;  // mailbox.count announced at the last welcome

  bool online() const;
};

// Counters the orchestrating thread polls while workers update them.
struct alignas(64) LiveCounters {
  std::atomic<std::uint64_t> connects_started{0};
  std::atomic<std::uint64_t> signed_in{0};
  std::atomic<std::uint64_t> signin_failed{0};  // gave up (after retries)
  std::atomic<std::int64_t> open{0};            // welcomed and not yet closed
  std::atomic<std::uint64_t> closed{0};
  std::atomic<std::uint64_t> dropped{0};        // closed by the server or the network
  std::atomic<std::uint64_t> sends{0};
  std::atomic<std::uint64_t> replies{0};        // sent + error replies to sends
  std::atomic<std::uint64_t> sent_ok{0};
  std::atomic<std::uint64_t> send_errors{0};
  std::atomic<std::uint64_t> received{0};       // first time per user
  std::atomic<std::uint64_t> frames_in{0};
  std::atomic<std::uint64_t> drained{0};
  std::atomic<std::uint64_t> presence_ok{0};
};

struct TimelineSlot {
  std::uint32_t sent_ok = 0;
  std::uint32_t received = 0;
  std::uint32_t errors = 0;
  std::uint32_t signins = 0;
  SlotHistogram latency;  // the scenario's headline latency
};

// What a worker records; merged after the run.
struct WorkerStats {
  LatencyHistogram send_to_sent;   // intended send time -> `sent`
  LatencyHistogram end_to_end;     // intended send time -> recipient's live `message`
  LatencyHistogram missed_e2e;     // ... for kind missed delivered at once
  LatencyHistogram connect;        // TCP connect + WebSocket upgrade
  LatencyHistogram hello_welcome;  // hello sent -> welcome
  LatencyHistogram signin_total;   // sign-in requested -> welcome (includes connect queueing)
  LatencyHistogram to_drained;     // sign-in requested -> mailbox.drained
  std::map<std::string, std::uint64_t, std::less<>> errors;  // by code (send errors, closes, ...)
  std::map<std::string, std::uint64_t, std::less<>> statuses;
  std::uint64_t duplicates = 0;   // same id twice in one session
  std::uint64_t reordered = 0;    // per sender->recipient sequence went backwards
  std::uint64_t redelivered = 0;  // id seen again in a later session (at-least-once)
  std::uint64_t corrupt = 0;      // body or sender not as sent
  std::uint64_t notices = 0;
  std::uint64_t summaries = 0;
  std::uint64_t unanswered = 0;   // sends without a reply when the session ended
  std::uint64_t welcome_mismatch = 0;
  std::uint64_t connect_retries = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t acks_sent = 0;
  std::uint64_t acked_ids = 0;
  std::uint64_t presence_sets = 0;
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;
  std::int64_t first_sent_ns = 0, last_sent_ns = 0;
  std::int64_t first_recv_ns = 0, last_recv_ns = 0;
  std::vector<SentRecord> sent;
  std::vector<RecvRecord> received;
  std::vector<TimelineSlot> timeline;

  void merge(WorkerStats&& o);
};

class Run;

// What a scenario plugs into the sessions. Called on worker threads; an
// implementation shared by workers must be thread-safe.
class Hooks {
 public:
  virtual ~Hooks() = default;
  // Closed-loop senders: the next recipient for `sender`, or nullopt to stop.
  virtual std::optional<std::uint32_t> next_target(User& /*sender*/) { return std::nullopt; }
  virtual void on_welcome(User& /*u*/) {}
  virtual void on_drained(User& /*u*/) {}
};

class Worker;

// One WebSocket session of a user. Lives on its worker's thread; every
// pending handler holds shared_from_this().
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class Phase { kNew, kQueued, kConnecting, kHello, kOpen, kClosing, kClosed };

  Connection(Worker& w, User& u, unsigned attempt = 0);

  void start();  // connect (behind the worker's connect limiter), upgrade, hello
  bool is_open() const { return phase_ == Phase::kOpen; }
  Phase phase() const { return phase_; }
  bool drained() const { return drained_; }
  std::size_t in_flight() const { return sends_.size(); }

  // Sends one message to user `to`; latency is measured from `intended_ns`.
  bool send_to(std::uint32_t to, std::int64_t intended_ns);
  void set_presence(proto::PresenceState s);
  // Flushes acks, then closes with 1000. Safe in any phase.
  void sign_out();
  // Closed-loop sending: keep `send_window` sends in flight while the
  // scenario's hooks give targets.
  void pump();
  std::size_t send_window = 0;

 private:
  friend class Worker;
  void begin_connect();
  void on_connect(const beast::error_code& ec);
  void on_upgrade(const beast::error_code& ec);
  void do_read();
  void on_read(const beast::error_code& ec, std::size_t n);
  void handle(std::string_view text);
  void on_welcome(proto::Welcome& w);
  void on_sent(proto::Sent& s);
  void on_error(proto::Error& e);
  void on_message(proto::Message& m);
  void on_ok(proto::Ok& ok);
  void write(std::string frame);
  void do_write();
  void on_write(const beast::error_code& ec);
  void flush_acks();
  void do_close();
  // Raw framing (Options::raw_framing), after the upgrade.
  void raw_read();
  void raw_on_read(const beast::error_code& ec, std::size_t n);
  void raw_frame(bool fin, unsigned opcode, std::string_view payload);
  void raw_append(unsigned opcode, std::string_view payload);
  void raw_flush();
  void release_connect_slot();
  void fail(const beast::error_code& ec, std::string_view what);
  void finish(bool expected);

  Worker& w_;
  User& u_;
  Run& run_;
  unsigned attempt_;
  Phase phase_ = Phase::kNew;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer rbuf_;
  std::deque<std::string> wq_;
  bool writing_ = false;
  const bool raw_;
  beast::flat_buffer rx_;       // raw: bytes read, not yet parsed
  std::string fragments_;       // raw: a fragmented message being assembled
  std::string tx_pending_;      // raw: frames waiting for the next write
  std::string tx_inflight_;     // raw: frames being written
  std::size_t tx_frames_ = 0;   // raw: frames in tx_pending_
  std::uint8_t mask_[4] = {0, 0, 0, 0};
  bool close_wanted_ = false;
  bool close_sent_ = false;
  bool slot_held_ = false;
  bool drained_ = false;
  bool welcomed_ = false;
  net::steady_timer ack_timer_;
  bool ack_armed_ = false;
  std::vector<std::uint64_t> unacked_;
  struct PendingSend {
    std::int64_t intended_ns;
    std::int64_t send_ns;
    std::uint32_t to;
  };
  std::unordered_map<std::int64_t, PendingSend> sends_;
  std::unordered_map<std::int64_t, std::size_t> presence_reqs_;  // rid -> index in history
  std::int64_t next_rid_ = 2;  // 1 is the hello
  IdSet session_ids_;
  std::int64_t t_connect_ = 0;
  std::int64_t t_hello_ = 0;
  std::size_t signin_span_ = SIZE_MAX;
  std::size_t signout_span_ = SIZE_MAX;
};

// One thread, one io_context, the users i with i % T == index.
class Worker {
 public:
  Worker(Run& run, unsigned index, std::size_t max_connecting);
  Run& run;
  const unsigned index;
  net::io_context ioc{1};
  LiveCounters live;
  WorkerStats stats;
  std::mt19937_64 rng;

  void request_connect(std::shared_ptr<Connection> c);
  void connect_finished();
  TimelineSlot* slot(std::int64_t t_ns);
  void count_error(std::string_view code, std::uint64_t n = 1);
  // Runs `f` on this worker after `delay` (a one-shot timer).
  void after(std::chrono::nanoseconds delay, std::function<void()> f);

 private:
  friend class Run;
  std::deque<std::shared_ptr<Connection>> waiting_;
  std::size_t connecting_ = 0;
  std::size_t max_connecting_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> guard_;
  std::thread thread_;
};

// Sums of the workers' live counters.
struct Totals {
  std::uint64_t connects_started = 0, signed_in = 0, signin_failed = 0, closed = 0, dropped = 0,
                sends = 0, replies = 0, sent_ok = 0, send_errors = 0, received = 0, frames_in = 0,
                drained = 0, presence_ok = 0;
  std::int64_t open = 0;
};

class Run {
 public:
  Run(Options opt, std::string secret);
  ~Run();
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  const Options opt;
  const std::int64_t t0;  // run start (now_ns)
  Hooks* hooks = nullptr;
  bool timeline_end_to_end = false;  // which latency the timeline shows

  // Users [0, count): ids, tokens, owners. Call before start().
  void create_users(std::uint32_t count);
  std::uint32_t user_count() const { return static_cast<std::uint32_t>(users_.size()); }
  const std::string& user_id(std::uint32_t idx) const { return users_[idx]->id; }
  Worker& owner(std::uint32_t idx) { return *workers_[idx % workers_.size()]; }
  // REQUIRES: on the owner's thread, or after stop().
  User& user(std::uint32_t idx) { return *users_[idx]; }
  std::size_t worker_count() const { return workers_.size(); }
  Worker& worker(std::size_t i) { return *workers_[i]; }
  // Messages each user should find announced at sign-in (status stored).
  std::vector<std::atomic<std::uint32_t>> expected_stored;

  void start();  // worker threads
  // Signs every session out (bounded wait), then stops and joins the workers.
  void stop();
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

  // Runs f(User&) on each user of [first, first+count) on its owner thread.
  void for_users(std::uint32_t first, std::uint32_t count, std::function<void(User&)> f);
  template <class F>
  void post(std::size_t worker, F&& f) {
    net::post(workers_[worker]->ioc, std::forward<F>(f));
  }

  // Signs users in (keep_online: reconnect if dropped).
  void sign_in(std::uint32_t first, std::uint32_t count, bool keep_online);

  // Polls `done` until true. False (and failure() set) when `progress` has
  // not moved for --stall seconds, or the overall deadline is near.
  bool wait_for(std::string_view what, const std::function<bool()>& done,
                const std::function<std::uint64_t()>& progress);
  // Waits until `ns` have passed (bounded by the deadline); false on deadline.
  bool hold(std::string_view what, std::int64_t ns);

  Totals totals() const;
  void fail(std::string why);
  const std::vector<std::string>& failures() const { return failures_; }
  const std::string& phase() const { return phase_; }

  // Local source addresses rotate over 127.0.0.2 .. 127.0.0.(1+N).
  std::uint32_t next_source() { return source_counter_.fetch_add(1, std::memory_order_relaxed); }

  // After stop(): all workers' statistics in one.
  WorkerStats merged_stats();

  // Hard deadline: called by the watchdog thread; never returns.
  [[noreturn]] void deadline_hit();

 private:
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<User>> users_;
  std::string secret_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint32_t> source_counter_{0};
  std::vector<std::string> failures_;
  std::string phase_;
  std::mutex phase_mu_;
  std::thread watchdog_;
  std::mutex watchdog_mu_;
  std::condition_variable watchdog_cv_;
  bool finished_ = false;
};

// "<sender>:<seq>:<t_ns>:" padded with 'x' to `bytes`.
std::string make_body(std::uint32_t sender, std::uint64_t seq, std::int64_t t_ns, std::size_t bytes);
struct BodyHeader {
  std::uint32_t sender = 0;
  std::uint64_t seq = 0;
  std::int64_t t_ns = 0;
};
std::optional<BodyHeader> parse_body(std::string_view body);

}  // namespace oms::load
