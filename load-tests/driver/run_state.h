// RunState: the part of a Run that its workers and sessions read while it
// runs (options, start time, the scenario's hooks, the users' ids, the stop
// flag, the devices per user), and Hooks, what a scenario plugs into the sessions. Run (run.h)
// is a RunState plus the workers and phases; Worker and Connection see only
// this, so they do not depend on Run.
//
// Thread-safety: `opt` and `t0` are fixed at construction; `hooks`,
// `timeline_end_to_end` and the users are set up by the orchestrating thread
// before the workers start and only read afterwards; `expected_stored`, the
// stop flag and the source counter are atomics, safe from any thread. A
// User itself belongs to its owner worker's thread (see run.h).
#pragma once

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
  virtual void on_welcome(User& /*u*/, Device& /*d*/) {}
  virtual void on_drained(User& /*u*/, Device& /*d*/) {}
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
  // The index of the user with id `id` (PREFIX-u000123@load.test), when it
  // is one of this run's users.
  std::optional<std::uint32_t> user_index(std::string_view id) const {
    const auto u = id.rfind("-u");
    const auto at = id.find('@', u == std::string_view::npos ? 0 : u);
    std::uint32_t idx = 0;
    if (u == std::string_view::npos || at == std::string_view::npos) return std::nullopt;
    const auto [p, ec] = std::from_chars(id.data() + u + 2, id.data() + at, idx);
    if (ec != std::errc{} || p != id.data() + at || idx >= users_.size() || users_[idx]->id != id)
      return std::nullopt;
    return idx;
  }
  // How many devices user `idx` has (fixed before the workers start).
  std::uint32_t devices_of(std::uint32_t idx) const { return device_counts_[idx]; }
  // The index in opt.targets of the server user `idx` connects to
  // (--also-url, --pairs-together, --pairs-mixed).
  std::size_t target_of(std::uint32_t idx) const {
    const std::uint32_t pair = idx / 2;
    const bool together = opt.pairs_together || (opt.pairs_mixed && pair % 2 == 0);
    const std::size_t slot = together ? (opt.pairs_mixed ? pair / 2 : pair) : idx;
    return slot % std::max<std::size_t>(1, opt.targets.size());
  }
  // REQUIRES: on the owner's thread, or after the workers have stopped.
  User& user(std::uint32_t idx) { return *users_[idx]; }

  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

  // Local source addresses rotate over 127.0.0.2 .. 127.0.0.(1+N).
  std::uint32_t next_source() { return source_counter_.fetch_add(1, std::memory_order_relaxed); }

 protected:
  ~RunState() = default;

  std::vector<std::unique_ptr<User>> users_;  // filled by Run::create_users
  std::vector<std::uint32_t> device_counts_;  // per user, set with the users' devices
  std::atomic<bool> stopping_{false};         // set by Run::stop

 private:
  std::atomic<std::uint32_t> source_counter_{0};
};

}  // namespace oms::load
