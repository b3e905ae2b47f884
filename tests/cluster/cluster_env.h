// The local cluster of deploy/cluster/ as the fault checker sees it: the
// addresses of DIR/cluster.env, the fault primitives of deploy/cluster/cluster
// (run as a child process, timed, output kept), and the node checks the
// checker needs (readiness, /metrics counters).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/admin_client.h"

namespace oms::cluster_test {

using Clock = std::chrono::steady_clock;

class ClusterEnv {
 public:
  // Reads DIR/cluster.env (written by `cluster start`); throws when absent.
  ClusterEnv(std::string dir, std::string tool);
  void reload();

  const std::string& dir() const { return dir_; }
  const std::string& tool() const { return tool_; }
  // The value of a variable ("" when absent), quotes removed.
  std::string get(const std::string& key) const;
  std::size_t nodes() const;
  std::uint16_t ws_port() const;                   // haproxy's client frontend
  std::uint16_t node_ws_port(std::size_t i) const;  // node i = 1..nodes()
  std::uint16_t node_admin_port(std::size_t i) const;
  std::string jwt_secret() const;
  std::string admin_token() const;
  test::AdminClient admin(std::size_t node, std::chrono::milliseconds timeout = std::chrono::seconds(3)) const;

  // GET /readyz == 200 on node i (short deadline; false when it does not answer).
  bool node_ready(std::size_t i) const;
  // A counter or gauge of node i's /metrics (nullopt when unreachable or absent).
  std::optional<double> node_metric(std::size_t i, const std::string& name) const;

 private:
  std::string dir_, tool_;
  std::map<std::string, std::string> vars_;
};

struct ToolRun {
  int exit_code = -1;
  std::string out;  // stdout + stderr
  double seconds = 0;
  Clock::time_point started, finished;
};

// Runs `deploy/cluster/cluster COMMAND DIR ARGS...`; prints the command, its
// time and output; throws when it fails (unless `may_fail`).
ToolRun run_tool(const ClusterEnv& env, const std::string& command, const std::vector<std::string>& args = {},
                 std::chrono::seconds timeout = std::chrono::seconds(120), bool may_fail = false);

// Puts the cluster back to full health before a fault run: every omsd node
// ready (a stopped one continued, a dead one started), Redis up, every
// PostgreSQL member up and streaming, a writable primary. Returns what it did.
std::vector<std::string> heal(ClusterEnv& env);

// "127.0.0.1:1234" -> 1234 (0 when malformed).
std::uint16_t port_of(const std::string& address);

}  // namespace oms::cluster_test
