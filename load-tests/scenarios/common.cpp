// What the scenarios share: the server RSS probe, open- and closed-loop
// sending, the common waits, and the end of a run (verify, report).
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "load-tests/scenarios/scenarios.h"

namespace oms::load {

Options with_user_prefix(const Options& o, std::string_view tag) {
  Options opt = o;
  if (opt.user_prefix.empty()) opt.user_prefix = fmt::format("{}{}", tag, ::getpid());
  return opt;
}

std::optional<std::uint64_t> read_rss_kib(long pid) {
  std::ifstream f(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream ss(line.substr(6));
      std::uint64_t kib = 0;
      if (ss >> kib) return kib;
    }
  }
  return std::nullopt;
}

namespace {

// The open-loop pacer of one worker: its senders in turn, one send every
// 1/rate seconds of intended time.
class Pacer : public std::enable_shared_from_this<Pacer> {
 public:
  Pacer(Run& run, Worker& w, std::vector<std::uint32_t> senders, double rate, std::shared_ptr<OpenLoop> state)
      : run_(run), w_(w), senders_(std::move(senders)), gap_ns_(1e9 / rate), state_(std::move(state)),
        timer_(w.ioc) {}

  void start() {
    start_ns_ = now_ns();
    tick();
  }

 private:
  static constexpr auto kTick = std::chrono::microseconds(500);

  void tick() {
    const std::int64_t now = now_ns();
    bool more = !run_.stopping() && !senders_.empty();
    while (more) {
      const auto intended = start_ns_ + static_cast<std::int64_t>(static_cast<double>(n_) * gap_ns_);
      if (intended > now) break;
      User& u = run_.user(senders_[n_ % senders_.size()]);
      auto to = run_.hooks ? run_.hooks->next_target(u) : std::nullopt;
      if (!to) {
        more = false;
        break;
      }
      std::int64_t lag = now - intended;
      std::int64_t prev = state_->max_lag_ns.load(std::memory_order_relaxed);
      while (lag > prev && !state_->max_lag_ns.compare_exchange_weak(prev, lag)) {}
      // (A send not made is counted once, by why: client_backlog or
      // open_loop_sender_offline. It has no latency: those counts say how
      // much of the intended load the run did not offer.)
      const auto& conn = u.primary().conn;
      if (!conn || !conn->is_open()) w_.count_error("open_loop_sender_offline");
      else if (conn->send_to(*to, intended)) state_->sent.fetch_add(1, std::memory_order_relaxed);
      ++n_;
    }
    if (!more) {
      state_->finished.fetch_add(1);
      return;
    }
    timer_.expires_after(kTick);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) {
        self->state_->finished.fetch_add(1);
        return;
      }
      self->tick();
    });
  }

  Run& run_;
  Worker& w_;
  std::vector<std::uint32_t> senders_;
  double gap_ns_;
  std::shared_ptr<OpenLoop> state_;
  net::steady_timer timer_;
  std::int64_t start_ns_ = 0;
  std::uint64_t n_ = 0;
};

}  // namespace

std::shared_ptr<OpenLoop> start_open_loop(Run& run, std::uint32_t first, std::uint32_t count, double rate) {
  auto state = std::make_shared<OpenLoop>();
  const std::size_t n = run.worker_count();
  for (std::size_t w = 0; w < n; ++w) {
    std::vector<std::uint32_t> mine;
    for (std::uint32_t i = first; i < first + count; ++i)
      if (i % n == w) mine.push_back(i);
    if (mine.empty()) {
      state->finished.fetch_add(1);
      continue;
    }
    const double share = rate * static_cast<double>(mine.size()) / static_cast<double>(count);
    auto pacer = std::make_shared<Pacer>(run, run.worker(w), std::move(mine), share, state);
    run.post(w, [pacer] { pacer->start(); });
  }
  return state;
}

void start_closed_loop(Run& run, std::uint32_t first, std::uint32_t count, std::size_t window) {
  run.for_users(first, count, [window](User& u) {
    const auto& conn = u.primary().conn;
    if (!conn) return;
    conn->send_window = window;
    conn->pump();
  });
}

std::shared_ptr<OpenLoop> start_sending(Run& run, std::uint32_t first, std::uint32_t count, const Options& opt) {
  if (opt.rate > 0) return start_open_loop(run, first, count, opt.rate);
  start_closed_loop(run, first, count, opt.window);
  return nullptr;
}

bool wait_all_answered(Run& run, std::string_view what, const OpenLoop* pacers, bool deliveries) {
  return run.wait_for(
      what,
      [&] {
        if (pacers && !pacers->stopped(run)) return false;
        Totals t = run.totals();
        return t.replies >= t.sends && (!deliveries || t.received >= t.deliveries_due);
      },
      [&] {
        Totals t = run.totals();
        return deliveries ? t.replies + t.received : t.replies;
      });
}

bool wait_receipts(Run& run, std::string_view what) {
  if (!run.opt.receipts) return true;
  return run.wait_for(
      what,
      [&] {
        Totals t = run.totals();
        return t.receipts >= t.receipts_due;
      },
      [&] { return run.totals().receipts; });
}

bool wait_signed_in(Run& run, std::string_view what, std::uint64_t target) {
  const bool ok = run.wait_for(
      what,
      [&] {
        Totals t = run.totals();
        return t.signed_in + t.signin_failed >= target;
      },
      [&] {
        Totals t = run.totals();
        return t.signed_in + t.signin_failed + t.frames_in;
      });
  if (!ok) return false;
  Totals t = run.totals();
  if (t.signin_failed > 0) {
    run.fail(fmt::format("{}: {} sign-ins failed", what, t.signin_failed));
    return false;
  }
  return true;
}

void add_session_figures(Report& rep, const WorkerStats& stats) {
  rep.section("sessions");
  rep.latency("connect", "TCP connect + WebSocket upgrade", stats.connect);
  rep.latency("hello_to_welcome", "hello -> welcome", stats.hello_welcome);
  rep.latency("signin_total", "sign-in requested -> welcome", stats.signin_total);
  rep.count("sessions", "connect_retries", "connect retries", stats.connect_retries);
  rep.count("sessions", "reconnects", "reconnects after a drop", stats.reconnects);
  rep.count("sessions", "frames_in", "frames received", stats.frames_in);
  rep.count("sessions", "frames_out", "frames sent", stats.frames_out);
  rep.count("sessions", "acks", "ack frames (ids)", stats.acks_sent);
  rep.set("sessions", "acked_ids", stats.acked_ids);
}

int finish(Run& run, Report& rep, const VerifyOptions& vopts, const std::string& latency_label,
           const std::function<void(WorkerStats&)>& extra) {
  run.stop();
  WorkerStats stats = run.merged_stats();
  if (extra) extra(stats);
  add_session_figures(rep, stats);
  VerifyOptions vo = vopts;
  vo.incomplete = !run.failures().empty();
  Verdict v = verify(run, stats, vo);
  rep.add_verdict(v, stats);
  rep.add_timeline(stats, run.opt, latency_label);
  for (const auto& f : run.failures()) rep.fail(f);
  std::string error;
  if (!rep.write(run.opt, error)) rep.fail(error);
  rep.print(stdout);
  if (!v.examples.empty()) {
    std::fprintf(stdout, "\nfirst problems found:\n");
    for (const auto& e : v.examples) std::fprintf(stdout, "  %s\n", e.c_str());
  }
  if (!run.opt.json_file.empty()) std::fprintf(stdout, "\nJSON: %s\n", run.opt.json_file.c_str());
  return rep.ok() ? 0 : 1;
}

}  // namespace oms::load
