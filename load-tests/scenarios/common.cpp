#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "load-tests/scenarios/scenarios.h"

namespace oms::load {

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
  Verdict v = verify(run, stats, vopts);
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
