// idle: N users sign in and hold their sessions for --duration without
// traffic. With --server-pid the server's VmRSS is read before the sign-ins,
// once everyone is signed in, and after the hold: RSS per session.
#include <fmt/format.h>

#include "load-tests/scenarios/scenarios.h"

namespace oms::load {

int run_idle(const Options& o, const std::string& secret) {
  const Options opt = with_user_prefix(o, "id");
  const auto N = static_cast<std::uint32_t>(opt.users);

  auto rss = [&]() -> std::optional<std::uint64_t> {
    if (!opt.server_pid) return std::nullopt;
    return read_rss_kib(*opt.server_pid);
  };

  Run run(opt, secret);
  run.create_users(N);
  run.start();
  Report rep(opt);

  const auto rss_before = rss();
  if (opt.server_pid && !rss_before) run.fail(fmt::format("cannot read /proc/{}/status", *opt.server_pid));
  const std::int64_t t0 = now_ns();
  run.sign_in(0, N, /*keep_online=*/false);
  bool ok = wait_signed_in(run, "users sign in", N);
  const std::int64_t t_signed = now_ns();
  const auto rss_signed = rss();
  std::uint64_t rss_peak = rss_signed.value_or(0);
  Totals held{};
  if (ok) {
    const std::int64_t hold_ns = static_cast<std::int64_t>(opt.duration_s * 1e9);
    std::int64_t next_sample = now_ns();
    ok = run.wait_for(
        "holding idle sessions",
        [&] {
          const std::int64_t now = now_ns();
          if (now >= next_sample) {  // sample the RSS twice a second
            next_sample = now + 500'000'000;
            if (auto r = rss()) rss_peak = std::max(rss_peak, *r);
          }
          return now - t_signed >= hold_ns;
        },
        nullptr);
    held = run.totals();
    if (held.dropped > 0) run.fail(fmt::format("{} idle sessions were dropped during the hold", held.dropped));
  }
  const auto rss_after = rss();

  return finish(run, rep, VerifyOptions{}, "send -> sent", [&](WorkerStats&) {
    const Totals t = run.totals();
    const double signin_s = static_cast<double>(std::max<std::int64_t>(1, t_signed - t0)) / 1e9;
    rep.section("idle sessions");
    rep.count("idle", "sessions", "sessions requested", N);
    rep.count("idle", "signed_in", "signed in", t.signed_in);
    rep.count("idle", "open_after_hold", "still open after the hold", static_cast<std::uint64_t>(std::max<std::int64_t>(0, held.open)));
    rep.figure("idle", "signin_seconds", "time to sign everyone in", signin_s, "s", 3);
    rep.figure("idle", "signins_per_s", "sign-in rate", static_cast<double>(t.signed_in) / signin_s, "/s");
    rep.figure("idle", "hold_seconds", "held for", opt.duration_s, "s", 1);
    if (rss_before && rss_after && t.signed_in > 0) {
      const double per = static_cast<double>(*rss_after - std::min(*rss_after, *rss_before)) * 1024.0 /
                         static_cast<double>(t.signed_in);
      rep.count("idle", "rss_before_kib", "server RSS before (KiB)", *rss_before);
      rep.count("idle", "rss_signed_in_kib", "server RSS all signed in (KiB)", rss_signed.value_or(0));
      rep.count("idle", "rss_after_kib", "server RSS after hold (KiB)", *rss_after);
      rep.count("idle", "rss_peak_kib", "server RSS peak (KiB)", rss_peak);
      rep.figure("idle", "rss_per_session_bytes", "server RSS per session", per, "bytes");
      rep.figure("idle", "rss_per_session_kib", "server RSS per session (KiB)", per / 1024.0, "KiB", 2);
    } else {
      rep.row("server RSS per session", "(pass --server-pid)");
    }
  });
}

}  // namespace oms::load
