// Connection: one WebSocket session of one device of a synthetic user, from
// the connect (behind its worker's connect limiter) through the upgrade,
// hello and welcome, sends and acks, to the close. It records what it sees
// into its worker's statistics and its device's receive-side checks.
//
// Thread-safety: lives on its worker's thread (its io_context); every
// pending handler holds shared_from_this(). Not safe to call from elsewhere.
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "common/protocol.h"
#include "load-tests/driver/id_set.h"

namespace oms::load {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

struct ConnectQueue;
struct Device;
struct User;
class Worker;
class RunState;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class Phase { kNew, kQueued, kConnecting, kHello, kOpen, kClosing, kClosed };

  // A sign-out that has not completed its close handshake by then is cut.
  static constexpr auto kCloseTimeout = std::chrono::seconds(5);

  Connection(Worker& w, User& u, Device& d, unsigned attempt = 0);

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
  // Raw framing: bytes read per syscall, and the largest message accepted
  // (also Beast's read limit).
  static constexpr std::size_t kReadChunk = 64 * 1024;
  static constexpr std::size_t kMaxMessageBytes = 4u << 20;

  // connection.cpp: the session.
  // The primary device's sessions keep the user's presence history.
  bool tracks_history() const;
  // Starts waiting connects while the worker's limiter has room.
  static void admit_waiting(ConnectQueue& q);
  void begin_connect();
  // This user's server (Options::targets, by user index).
  const struct TargetUrl& target() const;
  void on_connect(const beast::error_code& ec);
  void on_upgrade(const beast::error_code& ec);
  void do_read();
  void on_read(const beast::error_code& ec, std::size_t n);
  void handle(std::string_view text);
  void on_welcome(proto::Welcome& w);
  void on_sent(proto::Sent& s);
  void on_error(proto::Error& e);
  void write(std::string frame);
  void do_write();
  void on_write(const beast::error_code& ec);
  void do_close();
  void release_connect_slot();
  void fail(const beast::error_code& ec, std::string_view what);
  void finish(bool expected);
  // connection_recv.cpp: what the session receives (messages, receipts,
  // drained) and acks.
  void on_message(proto::Message& m);
  void on_receipt(proto::Receipt& r);
  void on_drained();
  void on_ok(proto::Ok& ok);
  void queue_ack(std::uint64_t id);
  void flush_acks();
  // connection_raw.cpp: raw framing (Options::raw_framing), after the upgrade.
  void raw_read();
  void raw_on_read(const beast::error_code& ec, std::size_t n);
  void raw_frame(bool fin, unsigned opcode, std::string_view payload);
  void raw_append(unsigned opcode, std::string_view payload);
  void raw_flush();

  Worker& w_;
  User& u_;
  Device& dev_;
  RunState& run_;
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
  std::unordered_map<std::int64_t, std::vector<std::uint64_t>> ack_reqs_;  // rid -> ids (named devices)
  std::int64_t next_rid_ = 2;  // 1 is the hello
  IdSet session_ids_;  // message and receipt ids received in this session
  std::int64_t t_connect_ = 0;
  std::int64_t t_hello_ = 0;
  std::size_t signin_span_ = SIZE_MAX;
  std::size_t signout_span_ = SIZE_MAX;
};

// True when the device has a session and it is open (welcomed, not closing).
bool online(const Device& d);
// The same for the user's primary device.
bool online(const User& u);

}  // namespace oms::load
