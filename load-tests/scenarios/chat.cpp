// chat: N online users in pairs (2k <-> 2k+1), each keeping --window sends in
// flight to its partner for --duration (or until --messages). Measures the
// live delivery rate and end-to-end latency (send -> partner's `message`).
// With --devices D every user has D sessions (d1..dD); sends go from d1 and
// every device of the partner gets each message (the delivery rate counts
// deliveries to devices).
// With --rate: open loop instead, --rate sends per second over all users
// whatever the replies do, latency from each send's intended time (no
// coordinated omission): the latency at a given load, where the closed loop
// gives the most the server carries (and a latency that is the window over
// the rate).
#include <atomic>

#include <fmt/format.h>

#include "load-tests/scenarios/scenarios.h"

namespace oms::load {

namespace {

class ChatHooks final : public Hooks {
 public:
  explicit ChatHooks(std::uint64_t cap) : cap_(cap) {}
  std::optional<std::uint32_t> next_target(User& u) override {
    if (stop_.load(std::memory_order_relaxed)) return std::nullopt;
    if (cap_ && taken_.fetch_add(1, std::memory_order_relaxed) >= cap_) return std::nullopt;
    return u.index ^ 1u;
  }
  std::atomic<bool> stop_{false};

 private:
  const std::uint64_t cap_;
  std::atomic<std::uint64_t> taken_{0};
};

}  // namespace

int run_chat(const Options& o, const std::string& secret) {
  const Options opt = with_user_prefix(o, "ch");
  const auto N = static_cast<std::uint32_t>(opt.users);

  Run run(opt, secret);
  ChatHooks hooks(opt.messages);
  run.hooks = &hooks;
  run.timeline_end_to_end = true;
  run.create_users(N);
  run.set_devices(0, N, opt.devices);
  run.start();
  Report rep(opt);

  run.sign_in(0, N, /*keep_online=*/true);
  bool ok = wait_signed_in(run, "users sign in", std::uint64_t{N} * opt.devices);

  const Totals before = run.totals();
  const std::int64_t t_start = now_ns();
  std::int64_t t_stop = t_start;
  Totals at_stop = before;
  const bool open_loop = opt.rate > 0;
  std::shared_ptr<OpenLoop> pacers;
  if (ok) {
    pacers = start_sending(run, 0, N, opt);
    const std::int64_t duration_ns = static_cast<std::int64_t>(opt.duration_s * 1e9);
    ok = run.wait_for(
        "chatting",
        [&] {
          return now_ns() - t_start >= duration_ns ||
                 (opt.messages && run.totals().replies - before.replies >= opt.messages);
        },
        [&] { return run.totals().replies; });
    hooks.stop_.store(true);
    t_stop = now_ns();
    at_stop = run.totals();
    if (ok) ok = wait_all_answered(run, "last replies and deliveries", pacers.get(), /*deliveries=*/true);
  }

  return finish(run, rep, VerifyOptions{.strict_live_kind = true}, "end to end", [&](WorkerStats& st) {
    const double secs = static_cast<double>(std::max<std::int64_t>(1, t_stop - t_start)) / 1e9;
    const std::uint64_t received = at_stop.received - before.received;
    const std::uint64_t sent = at_stop.sent_ok - before.sent_ok;
    rep.section("chat");
    rep.count("chat", "users", "online users (pairs)", N);
    if (opt.devices > 1) rep.count("chat", "devices", "devices per user (each gets every message)", opt.devices);
    if (open_loop) {
      rep.figure("chat", "target_rate", "open loop: target rate", opt.rate, "msgs/s");
      rep.figure("chat", "max_lag_ms", "open loop: largest pacer lag",
                 static_cast<double>(pacers ? pacers->max_lag_ns.load() : 0) / 1e6, "ms", 3);
    } else {
      rep.count("chat", "window", "sends in flight per user", opt.window);
    }
    rep.figure("chat", "seconds", "sending for", secs, "s", 3);
    rep.count("chat", "sent", "sent (acknowledged) while sending", sent);
    rep.figure("chat", "sent_per_s", "send rate", static_cast<double>(sent) / secs, "msgs/s");
    rep.figure("chat", "delivered_per_s", "live delivery rate", static_cast<double>(received) / secs, "msgs/s");
    rep.latency("end_to_end", open_loop ? "intended send -> recipient message" : "send -> recipient message",
                st.end_to_end);
    rep.latency("send_to_sent", open_loop ? "intended send -> sent" : "send -> sent", st.send_to_sent);
    if (opt.pairs_mixed) {  // the same run, by where the pair's two users are
      rep.latency("end_to_end_same_node", "... pairs on one node: send -> recipient message", st.end_to_end_same);
      rep.latency("end_to_end_cross_node", "... pairs across nodes: send -> recipient message", st.end_to_end_cross);
      rep.latency("send_to_sent_same_node", "... pairs on one node: send -> sent", st.send_to_sent_same);
      rep.latency("send_to_sent_cross_node", "... pairs across nodes: send -> sent", st.send_to_sent_cross);
    }
  });
}

}  // namespace oms::load
