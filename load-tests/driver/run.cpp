// Run: the watchdog, users and tokens, worker threads, phases with stall and
// deadline checks, and the totals (see run.h).
#include "load-tests/driver/run.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "common/jwt.h"
#include "load-tests/driver/clock.h"
#include "load-tests/driver/connection.h"

namespace oms::load {

namespace {

// Margin between the soft phase deadline and the hard watchdog.
constexpr std::int64_t kDeadlineMarginNs = 8'000'000'000;
// JWT lifetime for synthetic users.
constexpr std::int64_t kTokenTtlSeconds = 24 * 3600;

}  // namespace

Run::Run(Options o, std::string secret) : RunState(std::move(o)), secret_(std::move(secret)) {
  const unsigned n = std::max(1u, opt.threads);
  const std::size_t per_worker = std::max<std::size_t>(1, opt.connect_concurrency / n);
  for (unsigned i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(*this, i, per_worker));
  watchdog_ = std::thread([this] {
    std::unique_lock lock(watchdog_mu_);
    const auto deadline = steady_time_at(t0 + static_cast<std::int64_t>(opt.timeout_s * 1e9));
    if (!watchdog_cv_.wait_until(lock, deadline, [this] { return finished_; })) {
      lock.unlock();
      deadline_hit();
    }
  });
}

Run::~Run() {
  {
    std::lock_guard lock(watchdog_mu_);
    finished_ = true;
  }
  watchdog_cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  stop();
  // The users' sessions use their workers' io_contexts: end them first (the
  // users live in the base, which is destroyed after workers_).
  users_.clear();
}

void Run::deadline_hit() {
  std::string phase;
  {
    std::lock_guard lock(phase_mu_);
    phase = phase_;
  }
  std::fprintf(stderr,
               "oms-load: FAILED: the hard deadline of %.0f s (--timeout) was hit during '%s'; "
               "aborting without a report\n",
               opt.timeout_s, phase.c_str());
  std::fflush(stderr);
  std::_Exit(3);
}

void Run::create_users(std::uint32_t count) {
  users_.reserve(count);
  JwtClaims claims;
  const std::int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  claims.iat = now_s;
  claims.exp = now_s + kTokenTtlSeconds;
  for (std::uint32_t i = 0; i < count; ++i) {
    auto u = std::make_unique<User>();
    u->index = i;
    u->id = fmt::format("{}-u{:06}@load.test", opt.user_prefix, i);
    claims.sub = u->id;
    u->token = sign_jwt(claims, secret_);
    users_.push_back(std::move(u));
  }
  expected_stored = std::vector<std::atomic<std::uint32_t>>(count);
  device_counts_.assign(count, 0);
  set_devices(0, count, 1);
}

void Run::set_devices(std::uint32_t first, std::uint32_t count, std::uint32_t n) {
  for (std::uint32_t i = first; i < first + count; ++i) {
    User& u = *users_[i];
    u.devices.assign(n, Device{});
    for (std::uint32_t d = 0; d < n; ++d) {
      u.devices[d].index = d;
      if (opt.named_devices()) u.devices[d].name = fmt::format("d{}", d + 1);
    }
    device_counts_[i] = n;
  }
}

void Run::start() {
  for (auto& w : workers_) {
    w->guard_.emplace(net::make_work_guard(w->ioc));
    w->thread_ = std::thread([wp = w.get()] { wp->ioc.run(); });
  }
}

void Run::stop() {
  bool running = false;
  for (auto& w : workers_) running |= w->thread_.joinable();
  if (!running) return;
  stopping_.store(true);
  for_users(0, user_count(), [](User& u) {
    for (Device& d : u.devices) {
      if (auto c = d.conn) c->sign_out();
    }
  });
  // Bounded: sessions close within kCloseTimeout (then they are cut).
  const std::int64_t until = now_ns() + 2 * std::chrono::nanoseconds(Connection::kCloseTimeout).count();
  while (now_ns() < until) {
    Totals t = totals();
    if (t.open <= 0 && t.closed >= t.connects_started) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& w : workers_) w->guard_.reset();
  for (auto& w : workers_) w->ioc.stop();  // timers of scenarios; sessions are gone
  for (auto& w : workers_)
    if (w->thread_.joinable()) w->thread_.join();
}

void Run::for_users(std::uint32_t first, std::uint32_t count, std::function<void(User&)> f) {
  const std::size_t n = workers_.size();
  auto shared = std::make_shared<std::function<void(User&)>>(std::move(f));
  for (std::size_t w = 0; w < n; ++w) {
    net::post(workers_[w]->ioc, [this, w, n, first, count, shared] {
      // Users of worker w in [first, first+count): idx % n == w.
      std::uint32_t idx = first + static_cast<std::uint32_t>((w + n - first % n) % n);
      for (; idx < first + count; idx += static_cast<std::uint32_t>(n)) (*shared)(*users_[idx]);
    });
  }
}

void Run::sign_in(std::uint32_t first, std::uint32_t count, bool keep_online) {
  // Connections need their worker; create them on the owner thread.
  for_users(first, count, [this, keep_online](User& u) {
    u.keep_online = keep_online;
    for (Device& d : u.devices) {
      if (d.conn) continue;
      d.conn = std::make_shared<Connection>(owner(u.index), u, d);
      d.conn->start();
    }
  });
}

void Run::sign_out(std::uint32_t first, std::uint32_t count) {
  for_users(first, count, [](User& u) {
    u.keep_online = false;
    for (Device& d : u.devices) {
      if (auto c = d.conn) c->sign_out();
    }
  });
}

bool Run::wait_for(std::string_view what, const std::function<bool()>& done,
                   const std::function<std::uint64_t()>& progress) {
  {
    std::lock_guard lock(phase_mu_);
    phase_ = std::string(what);
  }
  const std::int64_t soft_deadline =
      t0 + static_cast<std::int64_t>(opt.timeout_s * 1e9) - kDeadlineMarginNs;
  const std::int64_t stall_ns = static_cast<std::int64_t>(opt.stall_s * 1e9);
  std::uint64_t last = progress ? progress() : 0;
  std::int64_t last_change = now_ns();
  std::int64_t last_print = last_change;
  for (;;) {
    if (done()) return true;
    const std::int64_t now = now_ns();
    if (now >= soft_deadline) {
      fail(fmt::format("{}: the overall deadline (--timeout {} s) was reached", what, opt.timeout_s));
      return false;
    }
    if (progress) {
      const std::uint64_t p = progress();
      if (p != last) {
        last = p;
        last_change = now;
      } else if (now - last_change > stall_ns) {
        fail(fmt::format("{}: no progress for {} s (stalled)", what, opt.stall_s));
        return false;
      }
    }
    if (opt.progress && now - last_print >= 1'000'000'000) {
      last_print = now;
      Totals t = totals();
      std::fprintf(stderr,
                   "[%7.1fs] %-28s open=%lld signed_in=%llu sends=%llu sent=%llu errors=%llu "
                   "received=%llu drained=%llu\n",
                   static_cast<double>(now - t0) / 1e9, std::string(what).c_str(),
                   static_cast<long long>(t.open), static_cast<unsigned long long>(t.signed_in),
                   static_cast<unsigned long long>(t.sends), static_cast<unsigned long long>(t.sent_ok),
                   static_cast<unsigned long long>(t.send_errors),
                   static_cast<unsigned long long>(t.received), static_cast<unsigned long long>(t.drained));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool Run::hold(std::string_view what, std::int64_t ns) {
  const std::int64_t until = now_ns() + ns;
  return wait_for(what, [until] { return now_ns() >= until; }, nullptr);
}

Totals Run::totals() const {
  Totals t;
  for (const auto& w : workers_) t.add(w->live);
  return t;
}

void Run::fail(std::string why) { failures_.push_back(std::move(why)); }

WorkerStats Run::merged_stats() {
  WorkerStats all;
  for (auto& w : workers_) all.merge(std::move(w->stats));
  return all;
}

}  // namespace oms::load
