// Run: one load-generator run, as the orchestrating thread (the scenario)
// drives it: the synthetic users, the worker threads that run their
// sessions, phases with stall and deadline checks, and the statistics merged
// at the end. What workers and sessions read of it while it runs is its
// base RunState (run_state.h), which also defines the Hooks a scenario plugs
// into the sessions.
//
// Threading: a Run has T workers, each with its own io_context and thread.
// User i belongs to worker i % T, and everything about that user (its
// Connection, its receive-side checks, its presence history) is touched only
// on that worker's thread. Workers share nothing but atomics (live counters
// and the scenario's hooks); per-worker statistics and records are merged by
// the orchestrating thread after the workers have stopped. Run's own methods
// are for the orchestrating thread unless they say otherwise.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/post.hpp>

#include "load-tests/driver/options.h"
#include "load-tests/driver/run_state.h"
#include "load-tests/driver/stats.h"
#include "load-tests/driver/user.h"
#include "load-tests/driver/worker.h"

namespace oms::load {

class Run : public RunState {
 public:
  Run(Options opt, std::string secret);
  ~Run();
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  // Users [0, count): ids, tokens, owners, one device each. Call before start().
  void create_users(std::uint32_t count);
  // Users [first, first+count) get `n` devices (named d1..dn when
  // opt.named_devices()). Call before start().
  void set_devices(std::uint32_t first, std::uint32_t count, std::uint32_t n);
  Worker& owner(std::uint32_t idx) { return *workers_[idx % workers_.size()]; }
  std::size_t worker_count() const { return workers_.size(); }
  Worker& worker(std::size_t i) { return *workers_[i]; }
  void start();  // worker threads
  // Signs every session out (bounded wait), then stops and joins the workers.
  void stop();

  // Runs f(User&) on each user of [first, first+count) on its owner thread.
  void for_users(std::uint32_t first, std::uint32_t count, std::function<void(User&)> f);
  template <class F>
  void post(std::size_t worker, F&& f) {
    net::post(workers_[worker]->ioc, std::forward<F>(f));
  }

  // Signs users in, every device of each (keep_online: reconnect if dropped).
  void sign_in(std::uint32_t first, std::uint32_t count, bool keep_online);
  // Signs every device of users [first, first+count) out (no reconnect).
  void sign_out(std::uint32_t first, std::uint32_t count);

  // Polls `done` until true. False (and failure() set) when `progress` has
  // not moved for --stall seconds, or the overall deadline is near.
  bool wait_for(std::string_view what, const std::function<bool()>& done,
                const std::function<std::uint64_t()>& progress);
  // Waits until `ns` have passed (bounded by the deadline); false on deadline.
  bool hold(std::string_view what, std::int64_t ns);

  Totals totals() const;  // thread-safe (relaxed loads)
  void fail(std::string why);
  const std::vector<std::string>& failures() const { return failures_; }
  const std::string& phase() const { return phase_; }

  // After stop(): all workers' statistics in one.
  WorkerStats merged_stats();

  // Hard deadline: called by the watchdog thread; never returns.
  [[noreturn]] void deadline_hit();

 private:
  std::vector<std::unique_ptr<Worker>> workers_;
  std::string secret_;
  std::vector<std::string> failures_;
  std::string phase_;
  std::mutex phase_mu_;
  std::thread watchdog_;
  std::mutex watchdog_mu_;
  std::condition_variable watchdog_cv_;
  bool finished_ = false;
};

}  // namespace oms::load
