// oms-mqtt-bench: Mosquitto (or any MQTT 3.1.1 broker) doing omsd's jobs in
// omsd's shapes, for load-tests/bench --peers. Two scenarios:
//   offline  N recipients with persistent sessions (clean_session=0, QoS 1
//            subscription to their topic) go offline; S senders x W QoS 1
//            publishes in flight store M messages for them; then every
//            recipient reconnects at once and drains (PUBACK each).
//   chat     N online users in pairs, W QoS 1 publishes in flight each to the
//            partner's topic (closed loop, --duration), or --rate msgs/s over
//            all of them (open loop): delivery rate and end-to-end latency.
// Every payload carries `sender:seq:intended_ns:`; receivers check loss,
// duplicates and order per sender. One thread, one io_context.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/object.hpp>

#include "load-tests/peers/mqtt_conn.h"

namespace oms::peers {

struct BenchOptions {
  std::string scenario;               // offline | chat
  std::uint16_t port = 0;             // broker on 127.0.0.1:port
  std::uint32_t users = 1000;         // recipients (offline) or chat users (even)
  std::uint32_t senders = 8;          // offline
  std::uint32_t window = 16;          // publishes in flight per sender (offline 16, chat 2)
  std::uint64_t messages = 1'000'000; // offline
  std::uint32_t body_bytes = 200;
  double duration_s = 20;             // chat
  double rate = 0;                    // chat: > 0 is open loop, msgs/s over all users
  double timeout_s = 300;             // hard deadline for the whole run
  double stall_s = 30;                // a phase without progress for this long fails
  std::uint32_t connect_concurrency = 256;
  std::string tag = "b";              // client ids and topics are prefixed with it
  std::string json_file;
};

// Checks over every message of a run.
struct Checks {
  std::uint64_t lost = 0;          // PUBACKed, never received by the recipient
  std::uint64_t duplicates = 0;    // received twice
  std::uint64_t reordered = 0;     // a sender's sequence went backwards at one recipient
  std::uint64_t corrupt = 0;       // payload or topic not as sent
  std::uint64_t dup_flag = 0;      // redeliveries the broker marked DUP (counted, not errors)
};

// The run's connections, the connect limiter and the waits. Single thread.
class Bench {
 public:
  explicit Bench(const BenchOptions& opt);

  boost::asio::io_context& ioc() { return ioc_; }
  const BenchOptions& opt() const { return opt_; }

  // A new connection with this index (its events go to `events`); connects
  // through the limiter (at most connect_concurrency before their CONNACK).
  std::shared_ptr<MqttConn> connect(MqttEvents& events, std::uint32_t index, std::string client_id,
                                    bool clean_session);
  // Call from on_connack and on_closed: frees a connect slot.
  void connect_done(MqttConn& c);

  // Runs the io_context until `done` holds; false (with a failure recorded)
  // on a stall (no change in `progress` for stall_s) or the hard deadline.
  bool wait(std::string_view what, const std::function<bool()>& done, const std::function<std::uint64_t()>& progress);
  void fail(std::string why);
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  void start_next();

  BenchOptions opt_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::endpoint broker_;
  struct Pending {
    std::shared_ptr<MqttConn> conn;
    std::string client_id;
    bool clean;
  };
  std::vector<Pending> queue_;  // FIFO by queue_head_
  std::size_t queue_head_ = 0;
  std::uint32_t connecting_ = 0;
  std::int64_t deadline_ns_;
  std::vector<std::string> failures_;
};

// `sender:seq:intended_ns:` padded with 'x' to `bytes`.
std::string make_payload(std::uint32_t sender, std::uint64_t seq, std::int64_t intended_ns, std::uint32_t bytes);
struct PayloadHead {
  std::uint32_t sender = 0;
  std::uint64_t seq = 0;
  std::int64_t intended_ns = 0;
};
bool parse_payload(std::string_view p, PayloadHead& out);

// Percentiles of latencies in ns, as {p50_ms, p90_ms, p99_ms, p999_ms, max_ms, count}.
boost::json::object latency_json(std::vector<std::int64_t>& ns);
boost::json::object checks_json(const Checks& c);

// The scenarios: fill `out` with their figures; return true when every
// check passed and no phase failed.
bool run_offline(Bench& b, boost::json::object& out);
bool run_chat(Bench& b, boost::json::object& out);

}  // namespace oms::peers
