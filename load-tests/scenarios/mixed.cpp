// mixed: open-loop operations at --rate per second (Poisson arrivals) for
// --duration over N users, half of them online at the start:
//   90 % send (random online sender -> random user), 4 % presence change,
//   3 % sign-out, 3 % sign-in.
// Send latency is measured from the *intended* arrival time, so a server (or
// client) that falls behind shows up in the percentiles instead of silently
// slowing the arrivals (no coordinated omission). At the end every user signs
// in and drains, and every `sent` is checked against the recipient's presence
// history (stored for offline, missed for dnd/presenting, delivered otherwise).
#include <atomic>
#include <random>

#include <fmt/format.h>

#include "load-tests/scenarios/scenarios.h"

namespace oms::load {

namespace {

using proto::PresenceState;

constexpr PresenceState kStates[] = {PresenceState::kAvailable, PresenceState::kBusy, PresenceState::kAway,
                                     PresenceState::kDnd, PresenceState::kPresenting};
// Random picks tried before an operation is skipped (no fitting user).
constexpr int kPickTries = 16;
constexpr auto kTick = std::chrono::milliseconds(1);

// The arrivals of one worker, run on its thread.
class Generator : public std::enable_shared_from_this<Generator> {
 public:
  Generator(Run& run, Worker& w, double rate, std::int64_t end_ns)
      : run_(run), w_(w), gap_(rate), end_ns_(end_ns), timer_(w.ioc) {
    for (std::uint32_t i = static_cast<std::uint32_t>(w.index); i < run.user_count();
         i += static_cast<std::uint32_t>(run.worker_count()))
      mine_.push_back(i);
    next_ns_ = now_ns() + static_cast<std::int64_t>(gap_(w_.rng) * 1e9);
  }

  void start() { tick(); }

  std::atomic<bool> done{false};
  std::uint64_t sends = 0, presence = 0, signouts = 0, signins = 0, skipped = 0;
  std::int64_t max_lag_ns = 0;

 private:
  void tick() {
    const std::int64_t now = now_ns();
    while (next_ns_ <= now && next_ns_ < end_ns_ && !run_.stopping()) {
      max_lag_ns = std::max(max_lag_ns, now - next_ns_);
      operate(next_ns_);
      next_ns_ += std::max<std::int64_t>(1, static_cast<std::int64_t>(gap_(w_.rng) * 1e9));
    }
    if (next_ns_ >= end_ns_ || run_.stopping()) {
      done.store(true);
      return;
    }
    timer_.expires_after(std::min<std::chrono::nanoseconds>(kTick, std::chrono::nanoseconds(next_ns_ - now)));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) {
        self->done.store(true);
        return;
      }
      self->tick();
    });
  }

  User* pick(bool want_online, bool idle_sender) {
    if (mine_.empty()) return nullptr;
    std::uniform_int_distribution<std::size_t> d(0, mine_.size() - 1);
    for (int i = 0; i < kPickTries; ++i) {
      User& u = run_.user(mine_[d(w_.rng)]);
      if (want_online) {
        if (online(u) && (!idle_sender || u.primary().conn->in_flight() == 0)) return &u;
      } else if (!u.primary().conn) {
        return &u;
      }
    }
    return nullptr;
  }

  void operate(std::int64_t intended) {
    const double r = std::uniform_real_distribution<double>(0, 1)(w_.rng);
    if (r < 0.90) {
      User* s = pick(true, false);
      if (!s) return void(++skipped);
      std::uniform_int_distribution<std::uint32_t> d(0, run_.user_count() - 1);
      std::uint32_t to = d(w_.rng);
      if (to == s->index) to = (to + 1) % run_.user_count();
      if (s->primary().conn->send_to(to, intended)) ++sends;
      else ++skipped;
    } else if (r < 0.94) {
      User* u = pick(true, false);
      if (!u) return void(++skipped);
      PresenceState next = u->state;
      while (next == u->state) next = kStates[std::uniform_int_distribution<int>(0, 4)(w_.rng)];
      u->primary().conn->set_presence(next);
      ++presence;
    } else if (r < 0.97) {
      // Only a session without sends in flight signs out, so no reply is lost.
      User* u = pick(true, true);
      if (!u) return void(++skipped);
      auto c = u->primary().conn;
      c->sign_out();
      ++signouts;
    } else {
      User* u = pick(false, false);
      if (!u) return void(++skipped);
      u->keep_online = false;
      Device& d = u->primary();
      d.conn = std::make_shared<Connection>(w_, *u, d);
      d.conn->start();
      ++signins;
    }
  }

  Run& run_;
  Worker& w_;
  std::exponential_distribution<double> gap_;
  std::int64_t end_ns_;
  std::int64_t next_ns_ = 0;
  net::steady_timer timer_;
  std::vector<std::uint32_t> mine_;
};

}  // namespace

int run_mixed(const Options& o, const std::string& secret) {
  const Options opt = with_user_prefix(o, "mx");
  const auto N = static_cast<std::uint32_t>(opt.users);

  Run run(opt, secret);
  run.timeline_end_to_end = false;
  run.create_users(N);
  for (std::uint32_t i = 0; i < N; ++i) run.user(i).track_history = true;  // before start()
  run.start();
  Report rep(opt);

  const std::uint32_t initial = std::max<std::uint32_t>(1, N / 2);
  run.sign_in(0, initial, /*keep_online=*/false);
  bool ok = wait_signed_in(run, "initial sign-in", initial);

  std::vector<std::shared_ptr<Generator>> gens;
  const std::int64_t t_start = now_ns();
  const std::int64_t t_end = t_start + static_cast<std::int64_t>(opt.duration_s * 1e9);
  Totals at_end{};
  if (ok) {
    const double per_worker = opt.rate / static_cast<double>(run.worker_count());
    for (std::size_t w = 0; w < run.worker_count(); ++w) {
      auto g = std::make_shared<Generator>(run, run.worker(w), per_worker, t_end);
      gens.push_back(g);
      run.post(w, [g] { g->start(); });
    }
    ok = run.wait_for(
        "open-loop arrivals",
        [&] {
          for (auto& g : gens)
            if (!g->done.load()) return false;
          return true;
        },
        [&] { return run.totals().replies + run.totals().signed_in; });
    at_end = run.totals();
  }
  // Everyone signs in (again) and drains; sessions still closing are retried.
  if (ok) {
    std::int64_t next_try = 0;
    ok = run.wait_for(
        "final sign-in",
        [&] {
          if (now_ns() >= next_try) {
            next_try = now_ns() + 300'000'000;
            run.sign_in(0, N, false);
          }
          return run.totals().open >= static_cast<std::int64_t>(N);
        },
        [&] { return run.totals().signed_in + run.totals().closed; });
  }
  if (ok) ok = wait_all_answered(run, "final drain", nullptr, /*deliveries=*/true);

  VerifyOptions v;
  v.check_presence = true;
  return finish(run, rep, v, "intended send -> sent", [&](WorkerStats& st) {
    std::uint64_t sends = 0, presence = 0, signouts = 0, signins = 0, skipped = 0;
    std::int64_t lag = 0;
    for (auto& g : gens) {
      sends += g->sends;
      presence += g->presence;
      signouts += g->signouts;
      signins += g->signins;
      skipped += g->skipped;
      lag = std::max(lag, g->max_lag_ns);
    }
    const double secs = opt.duration_s > 0 ? opt.duration_s : 1;
    auto status = [&](const char* s) { return st.statuses.count(s) ? st.statuses.at(s) : 0; };
    rep.section("mixed (open loop)");
    rep.count("mixed", "users", "users", N);
    rep.figure("mixed", "target_rate", "target rate", opt.rate, "ops/s");
    rep.figure("mixed", "achieved_rate", "operations issued",
               static_cast<double>(sends + presence + signouts + signins) / secs, "ops/s");
    rep.count("mixed", "sends", "sends", sends);
    rep.count("mixed", "presence_changes", "presence changes", presence);
    rep.count("mixed", "signouts", "sign-outs", signouts);
    rep.count("mixed", "signins", "sign-ins", signins);
    rep.count("mixed", "skipped", "skipped (no fitting user)", skipped);
    rep.figure("mixed", "max_generator_lag_ms", "generator lag (max)", static_cast<double>(lag) / 1e6, "ms", 3);
    rep.count("mixed", "delivered", "sent: delivered", status("delivered"));
    rep.count("mixed", "stored", "sent: stored", status("stored"));
    rep.count("mixed", "missed", "sent: missed", status("missed"));
    rep.count("mixed", "sent_during_run", "sent (acknowledged) by the end of arrivals", at_end.sent_ok);
    rep.latency("send_to_sent", "intended send -> sent", st.send_to_sent);
    rep.latency("end_to_end", "intended send -> live message", st.end_to_end);
  });
}

}  // namespace oms::load
