// offline-burst and signin-storm: store a burst of messages for offline
// recipients as fast as `sent` replies allow, then sign every recipient in at
// once and drain with acks. With --devices D every recipient signs in D
// sessions (devices d1..dD) that each drain and ack for themselves; the
// senders stay signed in and take the receipts.
//
// Users: senders [0, S), recipients [S, S+N). Message i goes to recipient
// S + i % N, so every mailbox gets M/N messages.
#include <atomic>
#include <cmath>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <fmt/format.h>

#include "load-tests/scenarios/scenarios.h"

namespace oms::load {

namespace {

class BurstHooks final : public Hooks {
 public:
  BurstHooks(Run& run, std::uint32_t senders, std::uint32_t recipients, std::uint64_t total)
      : run_(run), senders_(senders), recipients_(recipients), total_(total) {}

  std::optional<std::uint32_t> next_target(User&) override {
    if (stop_.load(std::memory_order_relaxed)) return std::nullopt;
    const std::uint64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= total_) return std::nullopt;
    return senders_ + static_cast<std::uint32_t>(i % recipients_);
  }

  void on_welcome(User& u, Device& d) override {
    if (u.index < senders_ || !draining_.load(std::memory_order_relaxed)) return;
    // The sign-in notification must announce exactly what was stored (each
    // device is new, so it has acked nothing).
    const std::uint32_t expected = run_.expected_stored[u.index].load(std::memory_order_relaxed);
    if (d.welcome_count != expected) mismatch_.fetch_add(1, std::memory_order_relaxed);
  }

  std::atomic<bool> draining_{false};
  std::atomic<bool> stop_{false};  // --duration: the store phase is over
  std::atomic<std::uint64_t> mismatch_{0};

 private:
  Run& run_;
  const std::uint32_t senders_;
  const std::uint32_t recipients_;
  const std::uint64_t total_;
  std::atomic<std::uint64_t> next_{0};
};

}  // namespace

int run_offline_burst(const Options& o, const std::string& secret) {
  const bool storm = o.scenario == "signin-storm";
  const Options opt = with_user_prefix(o, storm ? "ss" : "ob");
  const auto S = static_cast<std::uint32_t>(opt.senders);
  const auto N = static_cast<std::uint32_t>(opt.users);
  const std::uint64_t M = opt.messages;
  const std::uint32_t D = opt.devices;

  Run run(opt, secret);
  BurstHooks hooks(run, S, N, M);
  run.hooks = &hooks;
  run.timeline_end_to_end = false;
  run.create_users(S + N);
  run.set_devices(S, N, D);
  run.start();
  Report rep(opt);

  // 1. Senders sign in.
  run.sign_in(0, S, /*keep_online=*/true);
  bool ok = wait_signed_in(run, "senders sign in", S);

  // 1b. Named devices: every recipient device signs in once and out again, so
  // the server knows them all (active: they sign in again well within
  // [devices] idle_seconds) and keeps each message until every one of them
  // acked it. Without this, a device whose connect comes after another
  // device of its user acked everything would rightly get nothing: a device
  // seen for the first time gets what is still stored. (Unnamed sessions are
  // the one `legacy` device: nothing to register.)
  if (ok && opt.named_devices()) {
    const std::uint64_t devices_total = std::uint64_t{N} * D;
    run.sign_in(S, N, /*keep_online=*/false);
    ok = wait_signed_in(run, "recipient devices register (sign in once)", S + devices_total) &&
         run.wait_for(
             "recipient devices register (mailbox.drained)",
             [&] { return run.totals().drained >= S + devices_total; },
             [&] { return run.totals().drained; });
    run.sign_out(S, N);
    if (ok)
      ok = run.wait_for(
          "recipient devices register (sign out)",
          [&] {
            Totals t = run.totals();
            return t.open <= static_cast<std::int64_t>(S) && t.closed >= t.connects_started - S;
          },
          [&] { return run.totals().closed; });
  }

  // 2. Store: S senders x W in flight until M sends are answered (closed
  // loop), or at --rate messages/s whatever the replies do (open loop).
  const std::int64_t t_store0 = now_ns();
  std::int64_t t_store1 = t_store0;
  std::shared_ptr<OpenLoop> open_loop;
  if (ok) open_loop = start_sending(run, 0, S, opt);
  bool capped = false;
  if (ok) {
    // M messages, or --duration seconds of storing when that comes first.
    const std::int64_t cap_ns = static_cast<std::int64_t>(opt.duration_s * 1e9);
    ok = run.wait_for(
        fmt::format("store {} messages", M),
        [&] {
          if (cap_ns > 0 && now_ns() - t_store0 >= cap_ns) return capped = true;
          return run.totals().replies >= M;
        },
        [&] { return run.totals().replies; });
    t_store1 = now_ns();
    if (ok && capped) {
      hooks.stop_.store(true);
      ok = wait_all_answered(run, "last store replies", open_loop.get(), /*deliveries=*/false);
    }
  }
  const Totals after_store = run.totals();

  // 3. Every recipient signs in at once and drains.
  const std::int64_t t_sign0 = now_ns();
  std::int64_t t_drained = t_sign0;
  if (ok) {
    hooks.draining_.store(true);
    // Senders (and registering devices) were drained at their sign-in.
    const std::uint64_t target_drained = run.totals().drained + std::uint64_t{N} * D;
    run.sign_in(S, N, /*keep_online=*/true);
    ok = run.wait_for(
        "recipients sign in and drain",
        [&] {
          Totals t = run.totals();
          return t.drained >= target_drained && t.received >= after_store.deliveries_due;
        },
        [&] {
          Totals t = run.totals();
          return t.received + t.drained + t.signed_in + t.frames_in;
        });
    t_drained = now_ns();
  }
  // 4. The senders (still signed in) get a receipt for every stored message.
  std::int64_t t_receipts = t_drained;
  if (ok) {
    ok = wait_receipts(run, "receipts reach the senders");
    t_receipts = now_ns();
  }

  return finish(run, rep, VerifyOptions{.expect_receipts = opt.receipts}, "send -> sent", [&](WorkerStats& st) {
    st.welcome_mismatch += hooks.mismatch_.load();
    // Figures of the recipients alone (the senders also signed in and drained),
    // per device index and over all devices.
    LatencyHistogram signin, drained;
    std::int64_t last_drained = 0;
    std::uint64_t drained_users = 0;
    std::vector<std::uint64_t> dev_received(D, 0);
    std::vector<std::int64_t> dev_last(D, 0);
    for (std::uint32_t i = S; i < S + N; ++i) {
      for (const Device& d : run.user(i).devices) {
        // (Only the drain's sessions: registering devices signed in before.)
        if (d.welcome_ns > t_sign0) signin.record(d.welcome_ns - d.signin_started_ns);
        dev_received[d.index] += d.seen.size();
        if (d.drained_ns > t_sign0) {
          drained.record(d.drained_ns - d.signin_started_ns);
          last_drained = std::max(last_drained, d.drained_ns);
          dev_last[d.index] = std::max(dev_last[d.index], d.drained_ns);
          ++drained_users;
        }
      }
    }
    const double store_s = static_cast<double>(std::max<std::int64_t>(1, st.last_sent_ns - t_store0)) / 1e9;
    const double drain_s =
        static_cast<double>(std::max<std::int64_t>(1, (last_drained ? last_drained : t_drained) - t_sign0)) / 1e9;
    const std::uint64_t stored = st.statuses.count("stored") ? st.statuses.at("stored") : 0;
    const std::uint64_t drained_msgs = run.totals().received;

    rep.section(storm ? "store (filling the mailboxes)" : "store");
    rep.count("store", "messages", "messages requested", M);
    if (capped)
      rep.figure("store", "capped_at_s", "store phase capped at (--duration)", opt.duration_s, "s", 1);
    if (open_loop) {
      rep.figure("store", "target_rate", "open loop: target rate", opt.rate, "msgs/s");
      rep.figure("store", "max_pacer_lag_ms", "open loop: pacer lag (max)",
                 static_cast<double>(open_loop->max_lag_ns.load()) / 1e6, "ms", 3);
    } else {
      rep.count("store", "in_flight", "closed loop: sends in flight (S x W)", std::uint64_t{S} * opt.window);
    }
    rep.count("store", "stored", "stored (sent status stored)", stored);
    rep.count("store", "send_errors", "send errors", after_store.send_errors);
    rep.figure("store", "seconds", "store phase", store_s, "s", 3);
    rep.figure("store", "rate_per_s", "store rate", static_cast<double>(after_store.sent_ok) / store_s, "msgs/s");
    rep.latency("send_to_sent", open_loop ? "intended send -> sent" : "send -> sent", st.send_to_sent);

    rep.section(storm ? "sign-in storm" : "sign-in and drain");
    rep.count("drain", "recipients", "recipients signing in at once", N);
    rep.count("drain", "devices", "devices per recipient", D);
    rep.count("drain", "drained_users", "recipient devices that got mailbox.drained", drained_users);
    rep.latency("signin", "sign-in -> welcome (recipient devices)", signin);
    rep.latency("to_drained", "sign-in -> mailbox.drained (per device)", drained);
    rep.figure("drain", "seconds_to_all_drained", "time until all drained", drain_s, "s", 3);
    rep.count("drain", "received", "messages drained (all devices)", drained_msgs);
    rep.figure("drain", "rate_per_s", "drain rate (incl. acks, all devices)",
               static_cast<double>(drained_msgs) / drain_s, "msgs/s");
    boost::json::array per_device;
    for (std::uint32_t d = 0; d < D; ++d) {
      const double s =
          static_cast<double>(std::max<std::int64_t>(1, (dev_last[d] ? dev_last[d] : t_drained) - t_sign0)) / 1e9;
      const double rate = static_cast<double>(dev_received[d]) / s;
      per_device.push_back(boost::json::object{{"device", fmt::format("d{}", d + 1)},
                                               {"received", dev_received[d]},
                                               {"seconds_to_all_drained", std::round(s * 1000) / 1000},
                                               {"rate_per_s", std::round(rate)}});
      if (D > 1)
        rep.row(fmt::format("drain rate, device d{}", d + 1),
                fmt::format("{} msgs/s ({} in {:.3f} s)", fmt_count(static_cast<std::uint64_t>(rate)),
                            fmt_count(dev_received[d]), s));
    }
    rep.set("drain", "per_device", std::move(per_device));
    if (opt.receipts)
      rep.figure("drain", "seconds_to_all_receipts", "time from the drain until all receipts came",
                 static_cast<double>(t_receipts - t_drained) / 1e9, "s", 3);
    (void)t_store1;
  });
}

}  // namespace oms::load
