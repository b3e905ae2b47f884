// RunState: the part of a Run that its workers and sessions read while it
// runs (options, start time, the scenario's hooks, the users' ids, the stop
// flag), and Hooks, what a scenario plugs into the sessions. Run (run.h)
// is a RunState plus the workers and phases; Worker and Connection see only
// this, so they do not depend on Run.
//
// Thread-safety: `opt` and `t0` are fixed at construction; `hooks`,
// `timeline_end_to_end` and the users are set up by the orchestrating thread
// before the workers start and only read afterwards; `expected_stored`, the
// stop flag and the source counter are atomics, safe from any thread. A
// User itself belongs to its owner worker's thread (see run.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "load-tests/driver/clock.h"
#include "load-tests/driver/options.h"
#include "load-tests/driver/user.h"

namespace oms::load {

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

class RunState {
 public:
  explicit RunState(Options o) : opt(std::move(o)), t0(now_ns()) {}
  RunState(const RunState&) = delete;
  RunState& operator=(const RunState&) = delete;

  const Options opt;
  const std::int64_t t0;  // run start (now_ns)
  Hooks* hooks = nullptr;
  bool timeline_end_to_end = false;  // which latency the timeline shows
  // Messages each user should find announced at sign-in (status stored).
  std::vector<std::atomic<std::uint32_t>> expected_stored;

  std::uint32_t user_count() const { return static_cast<std::uint32_t>(users_.size()); }
  const std::string& user_id(std::uint32_t idx) const { return users_[idx]->id; }
  // REQUIRES: on the owner's thread, or after the workers have stopped.
  User& user(std::uint32_t idx) { return *users_[idx]; }

  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

  // Local source addresses rotate over 127.0.0.2 .. 127.0.0.(1+N).
  std::uint32_t next_source() { return source_counter_.fetch_add(1, std::memory_order_relaxed); }

 protected:
  ~RunState() = default;

  std::vector<std::unique_ptr<User>> users_;  // filled by Run::create_users
  std::atomic<bool> stopping_{false};         // set by Run::stop

 private:
  std::atomic<std::uint32_t> source_counter_{0};
};

}  // namespace oms::load
