// oms-load: synthetic users at scale against a real omsd on this machine.
//
//   oms-load SCENARIO --url ws://127.0.0.1:PORT/v1/ws --jwt-secret-file F [options]
//
// Drives real WebSocket sessions (Asio + Beast, one io_context per thread),
// checks every message for loss, duplication and order while it measures, and
// reports throughput and latency percentiles. See `oms-load --help` and
// load-tests/README.md.
#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "load-tests/driver/options.h"
#include "load-tests/scenarios/scenarios.h"

namespace {

// Sockets, plus a margin for files, the listener-less process and Asio.
constexpr std::uint64_t kSpareFds = 64;

std::string read_secret(const std::string& path, std::string& error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    error = fmt::format("cannot read --jwt-secret-file {}", path);
    return {};
  }
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  if (s.empty()) error = fmt::format("--jwt-secret-file {} is empty", path);
  return s;
}

// Raises the soft fd limit to the hard one; the connections must fit.
bool ensure_fds(std::uint64_t connections, std::string& error) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return true;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && connections + kSpareFds > rl.rlim_cur) {
    error = fmt::format(
        "{} connections need about {} file descriptors but the limit is {} (hard {}); raise it "
        "(ulimit -n) or lower --users/--senders",
        connections, connections + kSpareFds, static_cast<unsigned long long>(rl.rlim_cur),
        static_cast<unsigned long long>(rl.rlim_max));
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace oms::load;
  std::string error;
  bool help = false;
  auto parsed = parse_options(argc, argv, error, help);
  if (help) {
    std::fputs(usage().c_str(), stdout);
    return 0;
  }
  if (!parsed) {
    std::fprintf(stderr, "oms-load: %s\n(see oms-load --help)\n", error.c_str());
    return 2;
  }
  Options opt = *parsed;
  if (!apply_scenario_defaults(opt, error)) {
    std::fprintf(stderr, "oms-load: %s\n", error.c_str());
    return 2;
  }
  const std::string secret = read_secret(opt.jwt_secret_file, error);
  if (!error.empty()) {
    std::fprintf(stderr, "oms-load: %s\n", error.c_str());
    return 2;
  }
  const bool with_senders =
      opt.scenario == "offline-burst" || opt.scenario == "signin-storm" || opt.scenario == "presence-churn";
  if (!ensure_fds(opt.users + (with_senders ? opt.senders : 0), error)) {
    std::fprintf(stderr, "oms-load: %s\n", error.c_str());
    return 2;
  }

  try {
    if (opt.scenario == "offline-burst" || opt.scenario == "signin-storm") return run_offline_burst(opt, secret);
    if (opt.scenario == "chat") return run_chat(opt, secret);
    if (opt.scenario == "presence-churn") return run_presence_churn(opt, secret);
    if (opt.scenario == "idle") return run_idle(opt, secret);
    if (opt.scenario == "mixed") return run_mixed(opt, secret);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "oms-load: FAILED: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "oms-load: unknown scenario %s\n", opt.scenario.c_str());
  return 2;
}
