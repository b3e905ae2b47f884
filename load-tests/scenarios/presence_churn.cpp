// presence-churn: N recipients flip between available, dnd and presenting
// (every --churn-ms on average, exponentially distributed) while S senders
// keep --window sends in flight to random recipients. Every `sent` must say
// delivered for available and missed for dnd/presenting, matching the
// recipient's presence between the send and the reply; missed messages must
// come with a `missed` notice and kind "missed", live ones with kind "live".
// With --devices D every recipient has D sessions (d1..dD, all signed in
// before the churn starts; the primary one changes the presence): each must
// get every message and notice; the senders stay and take the receipts of
// missed messages.
//
// Users: senders [0, S), recipients [S, S+N).
#include <atomic>
#include <random>

#include <fmt/format.h>

#include "load-tests/scenarios/scenarios.h"

namespace oms::load {

namespace {

using proto::PresenceState;

class ChurnHooks final : public Hooks {
 public:
  ChurnHooks(std::uint32_t senders, std::uint32_t recipients, std::uint64_t cap)
      : senders_(senders), recipients_(recipients), cap_(cap) {}
  std::optional<std::uint32_t> next_target(User& u) override {
    if (stop_.load(std::memory_order_relaxed)) return std::nullopt;
    if (cap_ && taken_.fetch_add(1, std::memory_order_relaxed) >= cap_) return std::nullopt;
    // A cheap per-sender pseudo-random walk over the recipients.
    const std::uint64_t x = (u.send_seq + 1) * 0x9E3779B97F4A7C15ULL ^ (std::uint64_t{u.index} << 32);
    return senders_ + static_cast<std::uint32_t>((x >> 17) % recipients_);
  }
  std::atomic<bool> stop_{false};

 private:
  const std::uint32_t senders_;
  const std::uint32_t recipients_;
  const std::uint64_t cap_;
  std::atomic<std::uint64_t> taken_{0};
};

constexpr PresenceState kChurnStates[] = {PresenceState::kAvailable, PresenceState::kDnd,
                                          PresenceState::kPresenting};

// One presence change of `u` after an exponential delay, then the next.
void churn(Run& run, Worker& w, std::uint32_t idx, double mean_ms, const std::atomic<bool>& stop) {
  std::exponential_distribution<double> gap(1.0 / mean_ms);
  const auto delay = std::chrono::nanoseconds(static_cast<std::int64_t>(gap(w.rng) * 1e6) + 1);
  w.after(delay, [&run, &w, idx, mean_ms, &stop] {
    if (stop.load(std::memory_order_relaxed) || run.stopping()) return;
    User& u = run.user(idx);
    if (online(u)) {
      // A state other than the current one (presence is per user: the
      // primary device sets it for all).
      PresenceState next = u.state;
      while (next == u.state) next = kChurnStates[std::uniform_int_distribution<int>(0, 2)(w.rng)];
      u.primary().conn->set_presence(next);
      u.state = next;  // the next change differs from this one
    }
    churn(run, w, idx, mean_ms, stop);
  });
}

}  // namespace

int run_presence_churn(const Options& o, const std::string& secret) {
  const Options opt = with_user_prefix(o, "pc");
  const auto S = static_cast<std::uint32_t>(opt.senders);
  const auto N = static_cast<std::uint32_t>(opt.users);

  Run run(opt, secret);
  ChurnHooks hooks(S, N, opt.messages);
  run.hooks = &hooks;
  run.timeline_end_to_end = false;
  run.create_users(S + N);
  run.set_devices(S, N, opt.devices);
  for (std::uint32_t i = S; i < S + N; ++i) run.user(i).track_history = true;  // before start()
  run.start();
  Report rep(opt);

  run.sign_in(0, S + N, /*keep_online=*/true);
  bool ok = wait_signed_in(run, "users sign in", S + std::uint64_t{N} * opt.devices);

  std::atomic<bool> churn_stop{false};
  const Totals before = run.totals();
  const std::int64_t t_start = now_ns();
  std::int64_t t_stop = t_start;
  if (ok) {
    for (std::uint32_t i = S; i < S + N; ++i)
      run.post(i % run.worker_count(), [&run, &churn_stop, i, mean = opt.churn_ms] {
        churn(run, run.owner(i), i, mean, churn_stop);
      });
    start_closed_loop(run, 0, S, opt.window);
    const std::int64_t duration_ns = static_cast<std::int64_t>(opt.duration_s * 1e9);
    ok = run.wait_for(
        "messaging while presence churns", [&] { return now_ns() - t_start >= duration_ns; },
        [&] { return run.totals().replies; });
    hooks.stop_.store(true);
    churn_stop.store(true);
    t_stop = now_ns();
    if (ok) ok = wait_all_answered(run, "last replies and deliveries", nullptr, /*deliveries=*/true);
    if (ok) ok = wait_receipts(run, "receipts of missed messages reach the senders");
  }

  VerifyOptions v;
  v.check_presence = true;
  v.strict_live_kind = true;
  v.strict_notices = true;
  v.expect_receipts = opt.receipts;
  return finish(run, rep, v, "send -> sent", [&](WorkerStats& st) {
    const double secs = static_cast<double>(std::max<std::int64_t>(1, t_stop - t_start)) / 1e9;
    auto status = [&](const char* s) { return st.statuses.count(s) ? st.statuses.at(s) : 0; };
    rep.section("presence churn");
    rep.count("churn", "recipients", "recipients churning", N);
    rep.count("churn", "senders", "senders", S);
    rep.count("churn", "devices", "devices per recipient", opt.devices);
    rep.figure("churn", "mean_change_ms", "mean time between changes", opt.churn_ms, "ms", 1);
    rep.count("churn", "presence_changes", "presence changes", st.presence_sets);
    rep.count("churn", "delivered", "sent: delivered", status("delivered"));
    rep.count("churn", "missed", "sent: missed", status("missed"));
    rep.count("churn", "stored", "sent: stored", status("stored"));
    rep.count("churn", "notices", "missed notices received", st.notices);
    rep.count("churn", "summaries", "missed.summary digests", st.summaries);
    rep.figure("churn", "sent_per_s", "send rate", static_cast<double>(run.totals().sent_ok - before.sent_ok) / secs,
               "msgs/s");
    rep.latency("send_to_sent", "send -> sent", st.send_to_sent);
    rep.latency("end_to_end", "send -> live message", st.end_to_end);
    rep.latency("missed_end_to_end", "send -> missed message", st.missed_e2e);
  });
}

}  // namespace oms::load
