// The hostile-client suite's shared parts (tests/integration/test_hostile_*.cpp,
// issue 15): a bystander that measures what an attack does to everyone else,
// omsd's resident memory, and the report line tests/reliability/run gathers
// into REPORT.md's "hostile clients" table.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/omsd_process.h"

namespace oms::test {

// Latencies in milliseconds, and how many attempts failed outright.
struct Latencies {
  std::vector<double> ms;
  int failures = 0;
  std::vector<std::string> errors;  // the first few failures, for the test's INFO

  double percentile(double p) const;  // 0 when empty
  double p99() const { return percentile(0.99); }
  double max() const { return percentile(1.0); }
  std::size_t count() const { return ms.size(); }
};

// A well-behaved user beside an attack: on its own thread, over and over
// until stop() (or `max_rounds`, or `max_time`), it opens a connection, signs
// in as `user` (hello → welcome is one sign-in latency), sends
// `sends_per_round` messages to `to` (each send → sent one send latency) and
// closes. `to` should be offline so every send is a synced store. Each round
// sends to the next of `peers` recipients (`to` with -1 .. -peers before the
// @): nobody reads them, and one mailbox would reach its quota
// (limits.max_mailbox_messages, 10,000 by default) in a long run on a fast
// server, failing sends for a reason that is not the attack's.
class Bystander {
 public:
  struct Options {
    std::string user = "bystander@contoso.com";
    std::string to = "bystander-peer@contoso.com";
    int sends_per_round = 5;
    int peers = 64;
    int max_rounds = 100000;
    std::chrono::milliseconds max_time = std::chrono::seconds(60);
    // One request's deadline: beyond it the attempt counts as a failure.
    std::chrono::milliseconds request_timeout = std::chrono::seconds(5);
  };
  Bystander(const OmsdProcess& omsd, Options opts);
  ~Bystander();  // stops and joins
  Bystander(const Bystander&) = delete;
  Bystander& operator=(const Bystander&) = delete;

  void stop();  // idempotent; joins the thread
  const Latencies& signins() const { return signins_; }  // valid after stop()
  const Latencies& sends() const { return sends_; }       // valid after stop()
  int rounds() const { return rounds_.load(); }
  // Waits until at least `n` rounds are done (false at the deadline).
  bool wait_rounds(int n, std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  // "sign-in p99 3.1 ms, send p99 2.0 ms, 0 failed (40 sign-ins, 200 sends)"
  std::string summary() const;

 private:
  void run();
  std::uint16_t port_;
  std::string token_;
  Options opts_;
  std::atomic<bool> stop_{false};
  std::atomic<int> rounds_{0};
  Latencies signins_, sends_;
  std::thread thread_;
};

// Sends `n` messages of `body_bytes` to `to` with up to `in_flight`
// outstanding; returns how many were answered `sent` (stops at the first
// other answer). For filling a mailbox before an attack.
int fill_mailbox(const OmsdProcess& omsd, std::string_view from, std::string_view to, int n,
                 std::size_t body_bytes, int in_flight = 64);

// VmRSS of a process in KiB (0 if it cannot be read).
std::int64_t rss_kib(pid_t pid);

// One row of REPORT.md's hostile-client table: appended to the file named by
// OMS_HOSTILE_REPORT when set (tests/reliability/run sets it), and printed.
// attack | the bound that contains it | what this run measured | the bystander.
void hostile_report(const std::string& attack, const std::string& bound, const std::string& measured,
                    const std::string& bystander);

}  // namespace oms::test
