// The traffic of the cluster fault checker: senders and always-online
// recipient devices, each on its own thread and WebSocket, reaching the
// cluster through haproxy or directly through one node (their "home"), and
// reconnecting (home first, then haproxy) whenever a connection breaks.
//
// Naming, logs and checks are the kill loop's (tests/reliability/
// kill_loop_devices.h): sender i's k-th message has client_msg_id "s<i>-<k>"
// and goes to recipient (i + k) % recipients; a sender has one send in flight
// and moves to k + 1 only after `sent`; after a broken connection, a timeout
// or an error reply it resends k with the same client_msg_id (the dedup
// index answers with the first id when the first try was stored).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "tests/reliability/kill_loop_devices.h"

namespace oms::cluster_test {

using reliability::Clock;

// Where a client connects: 0 = haproxy's client frontend, i = node i directly.
struct Endpoints {
  std::uint16_t haproxy = 0;
  std::vector<std::uint16_t> nodes;  // nodes[i - 1] = node i's client port
  std::uint16_t port(std::size_t home) const { return home == 0 ? haproxy : nodes.at(home - 1); }
};

struct TrafficOptions {
  std::chrono::milliseconds request_timeout{5000};  // a send without reply: the connection is dropped
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds stall_timeout{4000};    // a device hearing nothing (pings included)
  std::chrono::milliseconds ping_every{1000};
  std::chrono::milliseconds pace{0};                // between a sender's `sent` and its next send
  // A device closes its session at a random moment every churn_min..churn_max
  // (0 = never) and signs in again after up to churn_pause: stored messages
  // are then streamed (the offline -> online switch).
  std::chrono::milliseconds churn_min{0}, churn_max{0}, churn_pause{300};
};

struct ClientStats {
  std::atomic<std::uint64_t> connects{0}, connect_failures{0}, breaks{0}, timeouts{0}, stalls{0},
      churns{0}, via_haproxy{0}, via_node{0};
  std::mutex mu;
  std::map<int, std::uint64_t> close_codes;  // server close codes seen (-1: no close frame)
  std::map<std::string, std::uint64_t> errors;
  void close_code(int code) {
    std::lock_guard<std::mutex> lock(mu);
    ++close_codes[code];
  }
  void error(const std::string& code) {
    std::lock_guard<std::mutex> lock(mu);
    ++errors[code];
  }
};

struct Traffic {
  Endpoints ep;
  TrafficOptions opt;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> confirmed{0};  // `sent` replies, all senders
  ClientStats senders_stats, devices_stats;
};

// One sender, until traffic.stop: `log` gets every confirmed send.
void run_sender(Traffic& t, std::size_t i, std::size_t recipients, const std::string& token, std::size_t home,
                std::uint64_t seed, reliability::SenderLog& log);

// What the controller may read of a device while it runs.
struct DeviceProgress {
  std::atomic<Clock::rep> last_delivery{0};  // Clock time of the last message frame
  std::atomic<bool> online{false};           // signed in now
};

// One recipient device, online until traffic.stop (reconnecting after every
// break): every delivery into `log`, acks with a rid; `closes` gets the time
// of every session end it saw (for the receipts' "stored after all" window).
void run_device(Traffic& t, const std::string& token, std::size_t home, std::uint64_t seed,
                reliability::DeviceLog& log, std::vector<Clock::time_point>& closes, DeviceProgress& progress);

}  // namespace oms::cluster_test
