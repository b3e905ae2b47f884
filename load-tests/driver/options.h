// oms-load's command line: the scenario, the loopback target and the knobs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace oms::load {

// Where the clients connect. Only loopback targets are accepted
// (127.0.0.0/8, localhost, ::1): this tool generates load and must never
// point at another machine.
struct TargetUrl {
  std::string host;       // as written in the URL (brackets stripped)
  std::string address;    // numeric address to connect to
  bool v6 = false;
  std::uint16_t port = 0;
  std::string path;       // "/v1/ws"
  std::string host_header;
};

struct Options {
  std::string scenario;
  std::string url;
  TargetUrl target;
  // --also-url (repeatable): more servers of one cluster (contract 5). User
  // i connects to targets[i % targets.size()] (targets[0] is --url): in
  // chat, the two users of a pair are then on different nodes.
  std::vector<std::string> also_urls;
  // --pairs-together: user i connects to targets[(i / 2) % n] instead: the
  // two users of a chat pair on one node, the pairs spread over the nodes
  // (the same-node path at the same load per node as the cross-node run).
  bool pairs_together = false;
  // --pairs-mixed: both at once, pair by pair: the users of an even pair
  // (2k, 2k+1 with k even) on one node, targets[(k / 2) % n], those of an
  // odd pair on targets[i % n]. chat then reports the latency of the two
  // groups separately: the same-node and the cross-node path measured in
  // one run, under the same load and the same noise.
  bool pairs_mixed = false;
  std::vector<TargetUrl> targets;
  std::string jwt_secret_file;

  // Scenario sizes; 0 = the scenario's default (see scenario_defaults).
  std::uint64_t users = 0;
  std::uint64_t senders = 0;
  std::uint64_t messages = 0;     // total messages (offline-burst, chat cap)
  std::uint64_t queued = 0;       // signin-storm: messages queued per user
  std::uint64_t body_bytes = 200;
  std::uint64_t window = 0;       // sends in flight per sending session
  double duration_s = 0;          // chat, presence-churn, idle, mixed
  double rate = 0;                // open loop: mixed ops/s; offline-burst, signin-storm, chat msgs/s
  double churn_ms = 0;            // presence-churn: mean time between presence changes per user
  // Devices per user (contract 4.1) for offline-burst, signin-storm (the
  // recipients), chat (every user) and presence-churn (the recipients): each
  // signs in its own session as d1..dN, drains and acks for itself.
  std::uint32_t devices = 1;
  // Send the device names (d1..dN) and a rid with every ack. Implied by
  // devices > 1; with --devices 1 and without it the wire is that of a v1
  // client (no device name, acks without rid).
  bool device_names = false;
  // Whether the run expects receipts (contract 4.2): exactly one per stored
  // or missed message, checked where the senders stay signed in. Receipts
  // that come are acked and counted either way.
  bool receipts = true;
  std::optional<long> server_pid;
  std::string json_file;
  unsigned threads = 0;           // 0 = hardware concurrency

  // Client behaviour.
  std::uint64_t ack_batch = 64;        // ack once this many messages are unacked...
  double ack_delay_ms = 2;             // ...or this long after the first unacked one
  std::uint64_t connect_concurrency = 512;  // TCP connects + upgrades in progress at once
  unsigned source_addrs = 253;         // 127.0.0.2 .. 127.0.0.(1+N); 0 = let the kernel pick
  std::string user_prefix;             // "" = derived from the scenario and the pid
  double timeout_s = 0;                // hard overall deadline; 0 = the scenario's default
  double stall_s = 30;                 // a phase without progress for this long fails
  double slot_ms = 200;                // timeline resolution
  bool progress = false;               // progress lines on stderr
  // After Beast's upgrade, frame the WebSocket data ourselves: coalesce queued
  // frames into one write and read 64 KiB at a time (Beast writes one frame
  // per syscall and reads ~1.5 KiB at a time). "beast" keeps Beast's framing.
  bool raw_framing = true;
  bool chart = true;

  // Device names and ack rids go on the wire.
  bool named_devices() const { return devices > 1 || device_names; }
};

// Parses argv. On error returns nullopt and sets `error`; `help` is set for
// --help / no arguments (usage() is printed by the caller).
std::optional<Options> parse_options(int argc, char** argv, std::string& error, bool& help);
std::string usage();

// Fills every 0 of `o` with the scenario's default and checks the result.
bool apply_scenario_defaults(Options& o, std::string& error);

// Parses ws://HOST:PORT/PATH and refuses any host that is not loopback.
std::optional<TargetUrl> parse_loopback_url(const std::string& url, std::string& error);

}  // namespace oms::load
