// The local cluster as the fault checker sees it: see cluster_env.h.
#include "tests/cluster/cluster_env.h"

#include <signal.h>
#include <sys/types.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace oms::cluster_test {

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

// shlex.quote's output back to the value: 'a b' -> a b, with '"'"' inside.
std::string unquote(const std::string& v) {
  std::string out;
  bool in_single = false;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    if (c == '\'') {
      in_single = !in_single;
    } else if (c == '"' && !in_single) {
      // "'" between two single-quoted parts
      const auto end = v.find('"', i + 1);
      if (end == std::string::npos) break;
      out += v.substr(i + 1, end - i - 1);
      i = end;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A pid from cluster.env ("" or "None" while down) that names a live process;
// `stopped` tells whether it is in state T (SIGSTOP).
bool pid_alive(const std::string& pid_text, bool* stopped = nullptr) {
  if (pid_text.empty() || pid_text == "None") return false;
  std::ifstream in("/proc/" + pid_text + "/stat");
  std::string stat;
  if (!in || !std::getline(in, stat)) return false;
  const auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  const char state = stat[close + 2];
  if (stopped) *stopped = state == 'T';
  return state != 'Z' && state != 'X';
}

}  // namespace

std::uint16_t port_of(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return 0;
  try {
    return static_cast<std::uint16_t>(std::stoul(address.substr(colon + 1)));
  } catch (const std::exception&) {
    return 0;
  }
}

ClusterEnv::ClusterEnv(std::string dir, std::string tool) : dir_(std::move(dir)), tool_(std::move(tool)) { reload(); }

void ClusterEnv::reload() {
  std::istringstream in(read_text(dir_ + "/cluster.env"));
  std::map<std::string, std::string> vars;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    vars[line.substr(0, eq)] = unquote(trim(line.substr(eq + 1)));
  }
  vars_ = std::move(vars);
}

std::string ClusterEnv::get(const std::string& key) const {
  auto it = vars_.find(key);
  return it == vars_.end() ? std::string() : it->second;
}

std::size_t ClusterEnv::nodes() const {
  const std::string n = get("OMS_CLUSTER_NODES");
  return n.empty() ? 0 : std::stoul(n);
}
std::uint16_t ClusterEnv::ws_port() const { return port_of(get("OMS_CLUSTER_WS")); }
std::uint16_t ClusterEnv::node_ws_port(std::size_t i) const { return port_of(get(fmt::format("OMS_NODE{}_WS", i))); }
std::uint16_t ClusterEnv::node_admin_port(std::size_t i) const {
  return port_of(get(fmt::format("OMS_NODE{}_ADMIN", i)));
}
std::string ClusterEnv::jwt_secret() const { return trim(read_text(get("OMS_CLUSTER_JWT_SECRET_FILE"))); }
std::string ClusterEnv::admin_token() const { return trim(read_text(get("OMS_CLUSTER_ADMIN_TOKEN_FILE"))); }

test::AdminClient ClusterEnv::admin(std::size_t node, std::chrono::milliseconds timeout) const {
  return test::AdminClient(node_admin_port(node), admin_token(), timeout);
}

bool ClusterEnv::node_ready(std::size_t i) const {
  try {
    auto r = admin(i, std::chrono::milliseconds(1500)).get("/readyz", test::Auth::none());
    return r.status == 200;
  } catch (const std::exception&) {
    return false;
  }
}

std::optional<double> ClusterEnv::node_metric(std::size_t i, const std::string& name) const {
  try {
    auto r = admin(i, std::chrono::milliseconds(1500)).get("/metrics");
    if (r.status != 200) return std::nullopt;
    std::istringstream in(r.raw);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name, 0) != 0) continue;
      const std::string rest = line.substr(name.size());
      if (rest.empty() || (rest[0] != ' ' && rest[0] != '{')) continue;
      const auto sp = rest.rfind(' ');
      if (sp == std::string::npos) continue;
      return std::stod(rest.substr(sp + 1));
    }
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

ToolRun run_tool(const ClusterEnv& env, const std::string& command, const std::vector<std::string>& args,
                 std::chrono::seconds timeout, bool may_fail) {
  std::vector<std::string> argv{env.tool(), command, env.dir()};
  argv.insert(argv.end(), args.begin(), args.end());
  ToolRun r;
  r.started = Clock::now();
  const auto res = test::run_command(argv, timeout);
  r.finished = Clock::now();
  r.exit_code = res.exit_code;
  r.out = trim(res.out + res.err);
  r.seconds = std::chrono::duration<double>(r.finished - r.started).count();
  std::string cmdline = "cluster " + command;
  for (const auto& a : args) cmdline += " " + a;
  std::cout << fmt::format("$ {}  ({:.2f} s, exit {}{})\n", cmdline, r.seconds, r.exit_code,
                           res.timed_out ? ", timed out" : "");
  std::istringstream lines(r.out);
  for (std::string l; std::getline(lines, l);) std::cout << "    " << l << "\n";
  std::cout.flush();
  if (r.exit_code != 0 && !may_fail) throw std::runtime_error(cmdline + " failed (exit " + std::to_string(r.exit_code) + ")");
  return r;
}

std::vector<std::string> heal(ClusterEnv& env) {
  std::vector<std::string> done;
  env.reload();
  for (std::size_t i = 1; i <= env.nodes(); ++i) {
    bool stopped = false;
    const bool alive = pid_alive(env.get(fmt::format("OMS_NODE{}_PID", i)), &stopped);
    if (alive && stopped) {
      run_tool(env, "cont-node", {std::to_string(i)});
      done.push_back(fmt::format("node{} continued", i));
    } else if (!alive) {
      run_tool(env, "start-node", {std::to_string(i)});
      done.push_back(fmt::format("node{} started", i));
    }
  }
  if (!pid_alive(env.get("OMS_REDIS_PID"))) {
    run_tool(env, "start-redis");
    done.push_back("redis started");
  }
  for (int m = 1; m <= 3; ++m) {
    if (env.get(fmt::format("OMS_PG{}_PORT", m)).empty()) continue;
    if (!pid_alive(env.get(fmt::format("OMS_PG{}_PID", m)))) {
      run_tool(env, "restart-pg-member", {std::to_string(m)}, std::chrono::seconds(180));
      done.push_back(fmt::format("pg{} restarted", m));
    }
  }
  run_tool(env, "wait-primary", {"--timeout", "60"}, std::chrono::seconds(90));
  env.reload();
  // Ready means ready now: a node continued or started above must answer.
  for (std::size_t i = 1; i <= env.nodes(); ++i) {
    if (!test::wait_until([&] { return env.node_ready(i); }, std::chrono::seconds(30), std::chrono::milliseconds(50)))
      throw std::runtime_error(fmt::format("node{} is not ready", i));
  }
  return done;
}

}  // namespace oms::cluster_test
