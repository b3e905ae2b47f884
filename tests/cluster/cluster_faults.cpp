// Cluster fault checker (issue 18, deliverable 4; contract 5): the local
// cluster of deploy/cluster/ under traffic while a fault hits it, checked in
// Jepsen terms.
//
// Traffic (cluster_traffic.h): S senders (device "phone") and R recipients
// with two named devices each ("d1", "d2"), every one on its own thread and
// WebSocket. Some connect through haproxy's client frontend
// (OMS_CLUSTER_WS), some directly to one node (OMS_NODE<i>_WS), so both the
// same-node and the cross-node delivery paths occur. Recipient devices stay
// online (pinging; a hung node is noticed by silence), close and reopen
// their session now and then (stored messages are then streamed), and ack
// every delivery with a rid. On a broken connection every client reconnects
// (its node first, then haproxy, i.e. another node when its own is dead) and
// a sender resends its unanswered send with the same client_msg_id.
//
// Faults (--fault), each ended by a repair that brings the cluster back to
// full health (so that the next fault run finds it whole):
//   node-kill   kill -9 a random omsd node, --kills times, after a random
//               number of confirmed sends; it stays down until the others
//               confirmed more sends, then starts again. The first kill
//               waits until a watcher on another node sees a user whose only
//               session was on the dead node go `offline` (presence purge).
//   node-stop   SIGSTOP a random node for --stop-seconds, then SIGCONT: it
//               is purged by the others after node_ttl_seconds (presence
//               purge measured the same way) and, resumed, finds itself
//               purged, closes its sessions and registers again (rejoin
//               measured from /metrics oms_cluster_self_purges_total).
//   pg-primary  kill -9 the PostgreSQL primary (Patroni and postgres) and
//               delete its data directory; Patroni fails over; the member is
//               re-cloned (restart-pg-member) while traffic goes on.
//   redis       kill -9 Redis for --redis-down-seconds, then start it again
//               (empty): presence and hints are lost meanwhile; deliveries
//               must continue after the nodes reconnect.
//   control     no fault; after the traffic, sender 0 stores 5 messages for
//               recipient 0 (devices offline) and an operator purge deletes
//               them: passes only when the checker counts them lost (the
//               checker sees loss when there is loss).
// At the end every device signs in once more through haproxy and drains
// (mailbox.drained, every ack answered ok), every sender drains its receipts.
//
// Checks (per device, tests/reliability/kill_loop_devices.h): lost (a `sent`
// message never delivered to one of its recipient's devices), delivered again
// after ok, unexpected (never sent, other content, other id than `sent`
// gave), duplicated (one send under two ids), reordered (one sender's
// messages to one device out of order, by first delivery or in one session),
// the same id twice in one session; every device drained; the mailboxes empty
// once both devices acked. All must be 0. Measured: the failover gap (the
// longest time without any `sent` reply, across all senders, around each
// fault), the longest stall of one sender, the presence purge time, the
// delivery latency of what was sent during each fault; receipts are counted
// (not required here: the single-node kill loop checks them).
//
// One machine-readable line per fault: "CLUSTER-FAULT fault=... result=PASS|FAIL
// sent=N delivered=N lost=N dup_after_ok=N reordered=N unexpected=N ...".
//
// Usage: oms_cluster_faults --cluster-dir=DIR [--fault=node-kill|node-stop|pg-primary|redis|control|all|A,B]
//          [--start] [--nodes=3] [--senders=4] [--recipients=3] [--kills=3] [--stop-seconds=20]
//          [--redis-down-seconds=5] [--warmup=100] [--after=100] [--max-gap=150] [--pace-ms=0]
//          [--churn-ms=4000] [--seed=N] [--report=FILE.md] [--trace=FILE.csv] [--max-seconds=300]
// --trace writes every `sent`, first delivery and fault with times (ms from
// the run's start), to narrow a failure down.
// --start starts a cluster in DIR first (deploy/cluster/cluster start) and
// stops it at the end; without it DIR must hold a running cluster.
// Exits 0 only when every requirement holds for every fault run.
#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/cluster/cluster_env.h"
#include "tests/cluster/cluster_traffic.h"
#include "tests/reliability/kill_loop_devices.h"
#include "tests/reliability/report.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"
#include "tests/support/wait.h"
#include "tests/support/ws_client.h"

namespace oms::cluster_test {
namespace {

using namespace std::chrono_literals;
using reliability::DeviceLog;
using reliability::SenderLog;
using test::Json;
using test::WsClient;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// One fault injected during a run and what was measured around it.
struct FaultEvent {
  std::string what;
  Clock::time_point begin, end;  // injected; repaired (node ready, primary writable, Redis up)
  std::optional<double> purge_ms;      // a dead node's user seen offline elsewhere
  std::optional<double> rejoin_ms;     // a resumed node found itself purged and rejoined
  std::optional<double> reconnect_ms;  // every node's Redis connection back (after the repair)
  std::optional<double> resume_ms;     // every device got a message after the repair
  std::optional<double> writable_ms;   // the tool's wait-primary: a write through haproxy works
  double repair_s = 0;                 // the repair command (start-node, ...)
  // computed at the end
  double gap_ms = 0, stall_ms = 0, latency_max_ms = 0;
  std::uint64_t sent_during = 0;
  std::vector<std::string> notes;
};

// A user whose only session is on `victim`, and a watcher subscribed to it on another node.
struct PresenceProbe {
  std::string user;
  std::unique_ptr<WsClient> target, watcher;
};

PresenceProbe presence_probe(const ClusterEnv& env, const std::string& secret, std::size_t victim,
                             std::size_t watcher_node, const std::string& user, const std::string& watcher_user) {
  PresenceProbe p;
  p.user = user;
  p.target = std::make_unique<WsClient>(5s);
  p.target->connect(env.node_ws_port(victim));
  reliability::hello_as(*p.target, test::mint_token(secret, user, std::chrono::hours(2)), "probe");
  p.watcher = std::make_unique<WsClient>(5s);
  p.watcher->connect(env.node_ws_port(watcher_node));
  reliability::hello_as(*p.watcher, test::mint_token(secret, watcher_user, std::chrono::hours(2)), "watch");
  const Json ok = p.watcher->request(Json{{"type", "presence.subscribe"}, {"users", test::str_array({user})}});
  if (test::type_of(ok) != "ok") throw std::runtime_error("presence.subscribe: " + test::to_text(ok));
  // The target's sign-in reaches the watcher's node through Redis.
  const auto until = Clock::now() + 15s;
  for (;;) {
    if (Clock::now() > until) throw std::runtime_error("the watcher never saw " + user + " available");
    Json f = p.watcher->take("presence", std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()));
    if (test::str_of(f, "user") == user && test::str_of(f, "state") == "available") break;
  }
  return p;
}

// Waits for the watcher's `offline` event of the probe's user: ms since `since`.
std::optional<double> wait_offline(PresenceProbe& p, Clock::time_point since, Clock::time_point until) {
  while (Clock::now() < until) {
    auto f = p.watcher->try_recv(std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()));
    if (!f) {
      if (!p.watcher->is_open()) return std::nullopt;
      continue;
    }
    if (test::type_of(*f) == "presence" && test::str_of(*f, "user") == p.user &&
        test::str_of(*f, "state") == "offline")
      return ms_between(since, Clock::now());
  }
  return std::nullopt;
}

std::int64_t node_ttl_seconds(const ClusterEnv& env) {
  std::ifstream in(env.get("OMS_NODE1_CONFIG"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("node_ttl_seconds", 0) != 0) continue;
    const auto eq = line.find('=');
    if (eq != std::string::npos) return std::stoll(line.substr(eq + 1));
  }
  return 15;
}

struct RunOptions {
  std::string trace;  // a CSV of every send, delivery and fault (for narrowing a failure down)
  std::size_t senders = 4, recipients = 3, kills = 3;
  std::uint64_t warmup = 100, after = 100, max_gap = 150;
  std::chrono::seconds stop_for{20}, redis_down{5};
  TrafficOptions traffic;
  Clock::time_point deadline;
};

// One fault run: fresh users, traffic, the fault, the final drains, the checks.
class FaultRun {
 public:
  FaultRun(ClusterEnv& env, std::string fault, const RunOptions& o, std::uint64_t seed)
      : env_(env), fault_(std::move(fault)), o_(o), seed_(seed), rng_(seed) {}

  bool run(reliability::Figures& f);

 private:
  void start_traffic();
  void stop_traffic();
  // Waits until `more` sends beyond now were confirmed (bounded): false on timeout.
  bool wait_confirmed(std::uint64_t more, Clock::duration limit) {
    const std::uint64_t target = traffic_.confirmed.load() + more;
    return test::wait_until([&] { return traffic_.confirmed.load() >= target; },
                            std::chrono::duration_cast<std::chrono::milliseconds>(limit), 2ms);
  }
  // After a repair: sends resume (10 more `sent` within 60 s: required),
  // then traffic goes on for `after` more (bounded, counted).
  void resumed() {
    if (!wait_confirmed(std::min<std::uint64_t>(10, o_.after), 60s)) ++not_resumed_;
    else if (!wait_confirmed(o_.after, 60s)) ++moment_timeouts_;
  }
  std::size_t random_node() { return 1 + rng_() % env_.nodes(); }
  void fault_node_kill();
  void fault_node_stop();
  void fault_pg_primary();
  void fault_redis();
  std::uint64_t control_purge();
  void measure(FaultEvent& e);
  std::string probe_user(const std::string& what) { return fmt::format("{}{}@contoso.com", prefix_, what); }

  ClusterEnv& env_;
  std::string fault_;
  RunOptions o_;
  std::uint64_t seed_;
  std::mt19937_64 rng_;
  std::string prefix_, secret_;
  Traffic traffic_;
  std::vector<std::string> sender_tokens_, recipient_tokens_;
  std::vector<SenderLog> senders_;
  std::vector<DeviceLog> devices_;
  std::vector<std::vector<Clock::time_point>> device_closes_;
  std::vector<std::unique_ptr<DeviceProgress>> progress_;
  std::vector<std::thread> threads_;
  std::vector<FaultEvent> events_;
  std::uint64_t moment_timeouts_ = 0;  // a random moment's quota of sends not reached in time (counted)
  std::uint64_t not_resumed_ = 0;      // after a repair, sends did not resume (required 0)
  std::vector<std::string> failures_;  // requirements of the fault itself that failed
};

void FaultRun::start_traffic() {
  const std::size_t nodes = env_.nodes();
  traffic_.ep.haproxy = env_.ws_port();
  for (std::size_t i = 1; i <= nodes; ++i) traffic_.ep.nodes.push_back(env_.node_ws_port(i));
  traffic_.opt = o_.traffic;
  for (std::size_t d = 0; d < devices_.size(); ++d) {
    progress_.push_back(std::make_unique<DeviceProgress>());
    const std::size_t home = (d + 2) % (nodes + 1);
    threads_.emplace_back(run_device, std::ref(traffic_), std::cref(recipient_tokens_[devices_[d].recipient]), home,
                          rng_(), std::ref(devices_[d]), std::ref(device_closes_[d]), std::ref(*progress_[d]));
  }
  // Senders start once every device is online (a readiness signal, bounded).
  if (!test::wait_until(
          [&] {
            return std::all_of(progress_.begin(), progress_.end(), [](const auto& p) { return p->online.load(); });
          },
          20s, 5ms))
    failures_.push_back("not every device signed in within 20 s");
  for (std::size_t i = 0; i < o_.senders; ++i)
    threads_.emplace_back(run_sender, std::ref(traffic_), i, o_.recipients, std::cref(sender_tokens_[i]),
                          i % (nodes + 1), rng_(), std::ref(senders_[i]));
}

void FaultRun::stop_traffic() {
  traffic_.stop = true;
  for (auto& t : threads_) t.join();  // each returns within one request or connect timeout
  threads_.clear();
}

void FaultRun::fault_node_kill() {
  const auto ttl = std::chrono::seconds(node_ttl_seconds(env_));
  std::uniform_int_distribution<std::uint64_t> gap(0, o_.max_gap);
  for (std::size_t n = 0; n < o_.kills && Clock::now() < o_.deadline; ++n) {
    if (!wait_confirmed(gap(rng_), 10s)) ++moment_timeouts_;
    const std::size_t v = random_node();
    FaultEvent e;
    e.what = fmt::format("kill -9 node{}", v);
    std::optional<PresenceProbe> probe;
    if (n == 0) {
      try {
        probe = presence_probe(env_, secret_, v, v % env_.nodes() + 1, probe_user("ptarget"), probe_user("pwatch"));
      } catch (const std::exception& ex) {
        failures_.push_back(std::string("presence probe: ") + ex.what());
      }
    }
    e.begin = Clock::now();
    run_tool(env_, "kill-node", {std::to_string(v)});
    if (probe) {
      // The node stays dead until its presence is purged (bounded: ttl + 20 s).
      e.purge_ms = wait_offline(*probe, e.begin, e.begin + ttl + 20s);
      if (!e.purge_ms) failures_.push_back(fmt::format("node{}'s user never went offline for the watcher", v));
    } else if (!wait_confirmed(o_.after / 2, 10s)) {
      // Traffic goes on without the dead node (its figure: sent during).
      ++moment_timeouts_;
    }
    const ToolRun r = run_tool(env_, "start-node", {std::to_string(v)});
    e.end = r.finished;
    e.repair_s = r.seconds;
    events_.push_back(std::move(e));
    resumed();
  }
}

void FaultRun::fault_node_stop() {
  const auto ttl = std::chrono::seconds(node_ttl_seconds(env_));
  if (!wait_confirmed(o_.max_gap, 10s)) ++moment_timeouts_;
  const std::size_t v = random_node();
  FaultEvent e;
  e.what = fmt::format("SIGSTOP node{} for {} s", v, o_.stop_for.count());
  std::optional<PresenceProbe> probe;
  try {
    probe = presence_probe(env_, secret_, v, v % env_.nodes() + 1, probe_user("ptarget"), probe_user("pwatch"));
  } catch (const std::exception& ex) {
    failures_.push_back(std::string("presence probe: ") + ex.what());
  }
  const double self_purges_before = env_.node_metric(v, "oms_cluster_self_purges_total").value_or(-1);
  e.begin = Clock::now();
  run_tool(env_, "stop-node", {std::to_string(v)});
  const auto resume_at = e.begin + o_.stop_for;
  // What PostgreSQL sees while the node hangs: transactions open for more
  // than a second, and who blocks whom (a hung node's open transaction
  // holding row locks stalls every node whose batches need those rows).
  // Taken 5 s in (the purge comes after node_ttl_seconds; the query takes
  // a fraction of a second).
  if (o_.stop_for >= 7s) {
    std::this_thread::sleep_until(e.begin + 5s);
    const ToolRun q = run_tool(
        env_, "psql",
        {"-X", "-A", "-t", "-F", " | ", "-c",
         "SELECT pid, state, coalesce(wait_event_type || ':' || wait_event, '-'), "
         "round(extract(epoch FROM now() - xact_start)::numeric, 1) AS xact_s, pg_blocking_pids(pid), "
         "left(regexp_replace(query, '\\s+', ' ', 'g'), 70) FROM pg_stat_activity "
         "WHERE datname = 'oms' AND xact_start IS NOT NULL AND pid <> pg_backend_pid() ORDER BY xact_start"},
        std::chrono::seconds(10), true);
    std::istringstream lines(q.out);
    for (std::string l; std::getline(lines, l);)
      if (!l.empty()) e.notes.push_back(fmt::format("{:.1f} s into the stop, open transaction: {}",
                                                    std::chrono::duration<double>(q.started - e.begin).count(), l));
  }
  if (probe) {
    e.purge_ms = wait_offline(*probe, e.begin, resume_at);
    if (!e.purge_ms)
      failures_.push_back(fmt::format("node{}'s user not offline for the watcher within {} s (node_ttl_seconds {})",
                                      v, o_.stop_for.count(), ttl.count()));
  }
  // The fault lasts stop_for: the node hangs that long, whatever else happens.
  std::this_thread::sleep_until(resume_at);
  const ToolRun r = run_tool(env_, "cont-node", {std::to_string(v)});
  e.end = r.finished;
  // Resumed, the node must find itself purged and register again.
  double self_purges = -1;
  if (test::wait_until(
          [&] {
            self_purges = env_.node_metric(v, "oms_cluster_self_purges_total").value_or(-1);
            return self_purges > self_purges_before && self_purges_before >= 0;
          },
          30s, 20ms)) {
    e.rejoin_ms = ms_between(r.finished, Clock::now());
  } else {
    failures_.push_back(fmt::format("node{} did not report a self-purge after SIGCONT (self_purges {} -> {})", v,
                                    self_purges_before, self_purges));
  }
  if (probe) {
    // The probe's session was on the hung node: closed at the rejoin.
    const int code = probe->target->expect_closed(std::nullopt, std::chrono::milliseconds(10000));
    e.notes.push_back(fmt::format("the probe's session on node{} was closed with {} after SIGCONT", v, code));
  }
  if (!test::wait_until([&] { return env_.node_ready(v); }, 30s, 50ms))
    failures_.push_back(fmt::format("node{} not ready after SIGCONT", v));
  events_.push_back(std::move(e));
  resumed();
}

void FaultRun::fault_pg_primary() {
  if (!wait_confirmed(o_.max_gap, 10s)) ++moment_timeouts_;
  FaultEvent e;
  e.begin = Clock::now();
  const ToolRun k = run_tool(env_, "kill-pg-primary", {"--wipe"});
  int member = 0;
  if (auto at = k.out.find("killed pg"); at != std::string::npos) member = k.out[at + 9] - '0';
  e.what = fmt::format("kill -9 the PostgreSQL primary (pg{}) and delete its data directory", member);
  const ToolRun w = run_tool(env_, "wait-primary", {"--timeout", "90"}, std::chrono::seconds(120));
  e.end = w.finished;
  e.writable_ms = ms_between(e.begin, w.finished);
  resumed();
  events_.push_back(std::move(e));
  if (member >= 1 && member <= 3) {
    // The wiped member comes back as a standby (re-cloned) under traffic.
    FaultEvent r;
    r.what = fmt::format("pg{} re-cloned and streaming again (restart-pg-member)", member);
    r.begin = Clock::now();
    const ToolRun rr = run_tool(env_, "restart-pg-member", {std::to_string(member)}, std::chrono::seconds(180));
    r.end = rr.finished;
    r.repair_s = rr.seconds;
    events_.push_back(std::move(r));
  } else {
    failures_.push_back("cannot tell which member was killed: " + k.out);
  }
  resumed();
}

void FaultRun::fault_redis() {
  if (!wait_confirmed(o_.max_gap, 10s)) ++moment_timeouts_;
  FaultEvent e;
  e.what = fmt::format("kill -9 Redis for {} s, then start it (empty)", o_.redis_down.count());
  e.begin = Clock::now();
  run_tool(env_, "kill-redis");
  // The outage lasts redis_down; sends must go on meanwhile (PostgreSQL has them).
  const std::uint64_t before = traffic_.confirmed.load();
  std::this_thread::sleep_until(e.begin + o_.redis_down);
  const std::uint64_t during = traffic_.confirmed.load() - before;
  e.notes.push_back(fmt::format("{} sends confirmed while Redis was down", during));
  if (during == 0) failures_.push_back("no send was confirmed while Redis was down");
  const ToolRun r = run_tool(env_, "start-redis");
  e.end = r.finished;
  e.repair_s = r.seconds;
  if (test::wait_until(
          [&] {
            for (std::size_t i = 1; i <= env_.nodes(); ++i)
              if (env_.node_metric(i, "oms_cluster_redis_connected").value_or(0) != 1) return false;
            return true;
          },
          30s, 20ms))
    e.reconnect_ms = ms_between(e.end, Clock::now());
  else
    failures_.push_back("not every node reconnected to Redis within 30 s");
  // Deliveries continue: every device gets a message after the repair.
  const auto up = e.end.time_since_epoch().count();
  if (test::wait_until(
          [&] {
            return std::all_of(progress_.begin(), progress_.end(),
                               [&](const auto& p) { return p->last_delivery.load() > up; });
          },
          30s, 5ms))
    e.resume_ms = ms_between(e.end, Clock::now());
  else
    failures_.push_back("not every device got a message within 30 s of Redis' restart");
  events_.push_back(std::move(e));
  resumed();
}

// The control run: with every device offline, sender 0 stores a few more
// messages for recipient 0, then an operator purge deletes them behind the
// checker's back. The checker must count them lost. Returns how many were stored.
std::uint64_t FaultRun::control_purge() {
  SenderLog& log = senders_[0];
  WsClient c(10s);
  c.connect(env_.ws_port());
  reliability::hello_as(c, sender_tokens_[0], reliability::kSenderDevice);
  std::uint64_t stored = 0;
  for (std::uint64_t k = log.attempted_max + 1; stored < 5 && k < log.attempted_max + 100; ++k) {
    if (reliability::recipient_of(0, k, o_.recipients) != 0) continue;  // k left unsent: nothing expected
    log.attempted_max = std::max(log.attempted_max, k);
    const auto t0 = Clock::now();
    const Json r = c.request(Json{{"type", "send"},
                                  {"to", reliability::recipient_user(0)},
                                  {"body", reliability::body_of(0, k, 0)},
                                  {"client_msg_id", reliability::cmid_of(0, k)}},
                             10s);
    if (test::type_of(r) != "sent") throw std::runtime_error("control send: " + test::to_text(r));
    log.acked[k] = reliability::SendRecord{test::str_of(r, "id"), test::str_of(r, "status"), t0, Clock::now()};
    ++stored;
  }
  c.close();
  const auto r = env_.admin(1, 10s).del("/v1/users/" + reliability::recipient_user(0) + "/mailbox");
  if (r.status != 200) throw std::runtime_error("purge: HTTP " + std::to_string(r.status));
  std::cout << "control: " << stored << " messages stored for " << reliability::recipient_user(0)
            << ", then its mailbox purged: " << r.raw << "\n";
  return stored;
}

// The gap and stall around a fault, and the delivery latency of what was sent during it.
void FaultRun::measure(FaultEvent& e) {
  std::vector<Clock::time_point> all;
  for (const auto& s : senders_) {
    Clock::time_point prev{};
    for (const auto& [k, rec] : s.acked) {
      all.push_back(rec.confirmed);
      if (prev != Clock::time_point{} && rec.confirmed > e.begin && prev < e.end)
        e.stall_ms = std::max(e.stall_ms, ms_between(prev, rec.confirmed));
      prev = rec.confirmed;
      if (rec.confirmed >= e.begin && rec.confirmed <= e.end) ++e.sent_during;
    }
  }
  std::sort(all.begin(), all.end());
  for (std::size_t x = 1; x < all.size(); ++x)
    if (all[x] > e.begin && all[x - 1] < e.end) e.gap_ms = std::max(e.gap_ms, ms_between(all[x - 1], all[x]));
  // Latency: `sent` (or the try that got it) to the first delivery, per device.
  std::map<std::string, Clock::time_point> sent_at;  // id -> confirmed, for sends confirmed in the window
  for (const auto& s : senders_)
    for (const auto& [k, rec] : s.acked)
      if (rec.confirmed >= e.begin && rec.confirmed <= e.end) sent_at[rec.id] = rec.confirmed;
  for (const auto& d : devices_)
    for (const auto& m : d.first)
      if (auto it = sent_at.find(m.id); it != sent_at.end())
        e.latency_max_ms = std::max(e.latency_max_ms, std::max(0.0, ms_between(it->second, m.at)));
}

bool FaultRun::run(reliability::Figures& f) {
  const auto started = Clock::now();
  prefix_ = fmt::format("c{:06x}{}-", seed_ & 0xffffff, fault_ == "node-kill"    ? "k"
                                                         : fault_ == "node-stop"  ? "s"
                                                         : fault_ == "pg-primary" ? "p"
                                                         : fault_ == "control"    ? "c"
                                                                                  : "r");
  reliability::set_user_prefix(prefix_);
  std::cout << fmt::format("== fault {}: users {}*, seed {}\n", fault_, prefix_, seed_);
  for (const auto& h : heal(env_)) std::cout << "healed before the run: " << h << "\n";
  secret_ = env_.jwt_secret();
  for (std::size_t i = 0; i < o_.senders; ++i) {
    sender_tokens_.push_back(test::mint_token(secret_, reliability::sender_user(i), std::chrono::hours(2)));
    senders_.emplace_back();
  }
  for (std::size_t j = 0; j < o_.recipients; ++j) {
    recipient_tokens_.push_back(test::mint_token(secret_, reliability::recipient_user(j), std::chrono::hours(2)));
    for (const auto& name : reliability::kRecipientDevices) {
      devices_.emplace_back();
      devices_.back().recipient = j;
      devices_.back().device = name;
    }
  }
  device_closes_.resize(devices_.size());
  std::vector<std::vector<Clock::time_point>> closes(o_.recipients);

  // Every device signs in once before anything is sent: from then on it is
  // active and holds every message back until it acked it.
  for (auto& d : devices_) {
    WsClient c(10s);
    c.connect(env_.ws_port());
    reliability::hello_as(c, recipient_tokens_[d.recipient], d.device);
    if (!reliability::drain(c, &d, nullptr, UINT64_MAX, 20s).drained)
      failures_.push_back(d.device + " of " + reliability::recipient_user(d.recipient) + ": first drain incomplete");
    c.close();
  }

  bool aborted = false;
  try {
    start_traffic();
    if (!wait_confirmed(o_.warmup, 60s)) failures_.push_back("warm-up: too few sends confirmed within 60 s");
    if (fault_ == "node-kill") fault_node_kill();
    else if (fault_ == "node-stop") fault_node_stop();
    else if (fault_ == "pg-primary") fault_pg_primary();
    else if (fault_ == "redis") fault_redis();
    else if (fault_ == "control") {
    }
    else if (fault_ != "none") throw std::runtime_error("unknown fault " + fault_);
  } catch (const std::exception& ex) {
    aborted = true;
    failures_.push_back(std::string("aborted: ") + ex.what());
    std::cerr << "fault run aborted: " << ex.what() << "\n";
  }
  stop_traffic();
  const auto traffic_end = Clock::now();
  std::uint64_t control_stored = 0;
  if (fault_ == "control") control_stored = control_purge();
  if (aborted) {
    try {
      for (const auto& h : heal(env_)) std::cout << "healed after the failure: " << h << "\n";
    } catch (const std::exception& ex) {
      failures_.push_back(std::string("heal: ") + ex.what());
    }
  }

  // ---- every device drains through haproxy, then every sender its receipts ----
  auto sign_in = [&](const std::string& token, const std::string& device) {
    auto c = std::make_unique<WsClient>(10s);
    const auto until = Clock::now() + 30s;
    for (;;) {
      try {
        c->connect(env_.ws_port());
        reliability::hello_as(*c, token, device);
        return c;
      } catch (const std::exception&) {
        if (Clock::now() > until) throw;
        c = std::make_unique<WsClient>(10s);
        std::this_thread::sleep_for(100ms);  // retry pace
      }
    }
  };
  std::uint64_t undrained = 0, final_receipts = 0;
  for (std::size_t d = 0; d < devices_.size(); ++d) {
    try {
      auto c = sign_in(recipient_tokens_[devices_[d].recipient], devices_[d].device);
      if (!reliability::drain(*c, &devices_[d], nullptr, UINT64_MAX, 90s).drained) ++undrained;
      c->close();
    } catch (const std::exception& ex) {
      ++undrained;
      failures_.push_back(std::string("final drain: ") + ex.what());
    }
    device_closes_[d].push_back(Clock::now());
  }
  for (std::size_t i = 0; i < o_.senders; ++i) {
    try {
      const std::size_t before = senders_[i].receipts.size();
      auto c = sign_in(sender_tokens_[i], reliability::kSenderDevice);
      if (!reliability::drain(*c, nullptr, &senders_[i].receipts, UINT64_MAX, 60s).drained) ++undrained;
      c->close();
      final_receipts += senders_[i].receipts.size() - before;
    } catch (const std::exception& ex) {
      ++undrained;
      failures_.push_back(std::string("receipt drain: ") + ex.what());
    }
  }
  std::int64_t left = 0;
  for (std::size_t j = 0; j < o_.recipients; ++j) {
    try {
      auto r = env_.admin(1 + j % env_.nodes(), 10s).get("/v1/users/" + reliability::recipient_user(j));
      if (r.status != 200) throw std::runtime_error("HTTP " + std::to_string(r.status));
      left += test::int_of(test::obj_of(r.json.as_object(), "mailbox"), "count");
    } catch (const std::exception& ex) {
      left = -1;
      failures_.push_back(std::string("mailbox count: ") + ex.what());
      break;
    }
  }

  // ---- check ----
  for (std::size_t d = 0; d < devices_.size(); ++d) {
    auto& c = closes[devices_[d].recipient];
    c.insert(c.end(), device_closes_[d].begin(), device_closes_[d].end());
  }
  for (auto& c : closes) std::sort(c.begin(), c.end());
  const auto dl = reliability::check_deliveries(senders_, devices_, o_.recipients);
  const auto rc = reliability::check_receipts(senders_, o_.recipients, closes, 2s);
  std::uint64_t acked = 0, resends = 0, dedup = 0, stored = 0;
  for (const auto& s : senders_) {
    acked += s.acked.size();
    resends += s.resends;
    dedup += s.dedup_answers;
    for (const auto& [k, rec] : s.acked) stored += rec.status != "delivered";
  }
  for (auto& e : events_) measure(e);
  // The longest gap with no fault going on (from the first `sent` on):
  // what the faults' gaps compare with.
  double baseline_gap_ms = 0;
  {
    std::vector<Clock::time_point> all;
    for (const auto& s : senders_)
      for (const auto& [k, rec] : s.acked) all.push_back(rec.confirmed);
    std::sort(all.begin(), all.end());
    for (std::size_t x = 1; x < all.size(); ++x) {
      const bool in_fault = std::any_of(events_.begin(), events_.end(), [&](const FaultEvent& e) {
        return all[x] > e.begin && all[x - 1] < e.end + 5s;
      });
      if (!in_fault) baseline_gap_ms = std::max(baseline_gap_ms, ms_between(all[x - 1], all[x]));
    }
  }
  if (!o_.trace.empty()) {
    std::ofstream t(o_.trace, std::ios::trunc);
    auto rel = [&](Clock::time_point p) { return ms_between(started, p); };
    t << "kind,who,k_or_id,t1_ms,t2_ms,status,id\n";
    for (const auto& e : events_) t << fmt::format("fault,\"{}\",,{:.1f},{:.1f},,\n", e.what, rel(e.begin), rel(e.end));
    for (std::size_t i = 0; i < senders_.size(); ++i)
      for (const auto& [k, rec] : senders_[i].acked)
        t << fmt::format("sent,s{},{},{:.1f},{:.1f},{},{}\n", i, k, rel(rec.decided_from), rel(rec.confirmed),
                         rec.status, rec.id);
    for (const auto& d : devices_)
      for (const auto& m : d.first)
        t << fmt::format("delivered,{}/{},{},{:.1f},,,{}\n", reliability::recipient_user(d.recipient), d.device,
                         m.body.substr(0, m.body.find('|')), rel(m.at), m.id);
  }
  std::vector<double> latency;  // send -> `sent` (for a resent k: from its first try)
  for (const auto& s : senders_)
    for (const auto& [k, rec] : s.acked) latency.push_back(ms_between(rec.decided_from, rec.confirmed));

  const bool control = fault_ == "control";
  const bool pass = control ? dl.lost >= control_stored * 2 && control_stored > 0 && dl.unexpected == 0 :
                    failures_.empty() && acked > 0 && dl.lost == 0 && dl.dup_after_ok == 0 && dl.reordered == 0 &&
                    dl.unexpected == 0 && dl.duplicated == 0 && dl.session_repeats == 0 && undrained == 0 && left == 0 && not_resumed_ == 0;
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();

  // The machine-readable verdict.
  std::string gaps, purges;
  for (const auto& e : events_) {
    gaps += fmt::format("{}{:.0f}", gaps.empty() ? "" : ",", e.gap_ms);
    if (e.purge_ms) purges += fmt::format("{}{:.0f}", purges.empty() ? "" : ",", *e.purge_ms);
  }
  std::cout << fmt::format(
      "CLUSTER-FAULT fault={} result={} sent={} delivered={} lost={} dup_after_ok={} reordered={} unexpected={} "
      "duplicated={} session_repeats={} undrained={} left={} faults={} gap_ms={} purge_ms={} resends={} "
      "dedup_answers={} seconds={:.1f} seed={}\n",
      fault_, pass ? "PASS" : "FAIL", acked, dl.delivered, dl.lost, dl.dup_after_ok, dl.reordered, dl.unexpected,
      dl.duplicated, dl.session_repeats, undrained, left, events_.size(), gaps.empty() ? "-" : gaps,
      purges.empty() ? "-" : purges, resends, dedup, seconds, seed_);

  auto stat_text = [](ClientStats& s) {
    std::string codes, errs;
    for (const auto& [c, n] : s.close_codes) codes += fmt::format("{}{}x{}", codes.empty() ? "" : " ", c, n);
    for (const auto& [c, n] : s.errors) errs += fmt::format("{}{}={}", errs.empty() ? "" : ", ", c, n);
    return fmt::format("{} connects ({} via haproxy, {} direct), {} failed, {} breaks (closes: {}), {} timeouts, "
                       "{} stalls, {} churns; errors: {}",
                       s.connects.load(), s.via_haproxy.load(), s.via_node.load(), s.connect_failures.load(),
                       s.breaks.load(), codes.empty() ? "-" : codes, s.timeouts.load(), s.stalls.load(),
                       s.churns.load(), errs.empty() ? "none" : errs);
  };
  f.add("senders / recipients (x2 devices) / nodes",
        fmt::format("{} / {} / {}", o_.senders, o_.recipients, env_.nodes()));
  f.add("sends confirmed (`sent`)", acked, "> 0");
  f.add("  of which `stored` or `missed`", stored);
  f.add("  resends (same client_msg_id) / answered as duplicate", fmt::format("{} / {}", resends, dedup));
  f.add("send -> `sent`: p50 / p99 / max ms (from the try that got it, or the first of a resent k)",
        fmt::format("{:.1f} / {:.1f} / {:.0f}", reliability::percentile(latency, 0.5),
                    reliability::percentile(latency, 0.99), latency.empty() ? 0.0 : *std::max_element(latency.begin(), latency.end())));
  f.add("messages delivered (distinct ids, summed over devices)", dl.delivered);
  f.add("  same id to the same device again, not acked with ok before", dl.redelivered);
  f.add("  sent, never confirmed, delivered (indeterminate)", dl.indeterminate, "any");
  f.add("**lost** (confirmed, never delivered to a device; per device)", dl.lost,
        control ? fmt::format(">= {} (control: {} purged x 2 devices)", control_stored * 2, control_stored) : "0");
  f.add("**delivered again after ok**", dl.dup_after_ok, "0");
  f.add("**reordered** (per sender and device)", dl.reordered, "0");
  f.add("**unexpected** (never sent / other content / other id)", dl.unexpected, "0");
  f.add("**duplicated** (one send under two ids)", dl.duplicated, "0");
  f.add("the same id twice in one session", dl.session_repeats, "0");
  // A refused ack (store_error) is not a violation: nothing was acked, the
  // message comes again. Counted, and its reason is in the notes.
  f.add("device sessions / acks (with rid) / answered ok / refused",
        fmt::format("{} / {} / {} / {}", dl.sessions, dl.acks, dl.oks, dl.ack_errors), "counted");
  f.add("devices not drained at the end", undrained, "0");
  f.add("messages left after both devices acked everything", left < 0 ? std::string("?") : std::to_string(left), "0");
  f.add("after a repair, sends did not resume (10 `sent` within 60 s)", not_resumed_, "0");
  f.add("random moments whose quota of sends did not come in time", moment_timeouts_, "counted");
  f.add("receipts: frames / distinct / due / missing / duplicate / wrong",
        fmt::format("{} / {} / {} / {} / {} / {}", rc.frames, rc.distinct, rc.expected, rc.missing + rc.excused,
                    rc.duplicate, rc.wrong),
        "counted");
  f.add("  received at the senders' final sign-in", final_receipts);
  for (const auto& e : events_) {
    std::string extra;
    if (e.purge_ms) extra += fmt::format(", presence purged after {:.0f} ms", *e.purge_ms);
    if (e.rejoin_ms) extra += fmt::format(", rejoined {:.0f} ms after SIGCONT", *e.rejoin_ms);
    if (e.writable_ms) extra += fmt::format(", writable through haproxy after {:.0f} ms", *e.writable_ms);
    if (e.reconnect_ms) extra += fmt::format(", every node on Redis {:.0f} ms after", *e.reconnect_ms);
    if (e.resume_ms) extra += fmt::format(", every device delivered {:.0f} ms after", *e.resume_ms);
    if (e.repair_s > 0) extra += fmt::format(", repair {:.1f} s", e.repair_s);
    f.add("fault: " + e.what,
          fmt::format("gap {:.0f} ms, longest sender stall {:.0f} ms, {} sent during, delivery latency max {:.0f} ms{}",
                      e.gap_ms, e.stall_ms, e.sent_during, e.latency_max_ms, extra));
    for (const auto& n : e.notes) f.note(n);
  }
  f.add("longest gap without `sent` outside the faults (ms)", fmt::format("{:.0f}", baseline_gap_ms));
  f.add("senders", stat_text(traffic_.senders_stats));
  f.add("devices", stat_text(traffic_.devices_stats));
  f.add("seconds (traffic / whole run)",
        fmt::format("{:.1f} / {:.1f}", std::chrono::duration<double>(traffic_end - started).count(), seconds));
  f.add("seed", seed_);
  for (const auto& x : failures_) f.note("FAILED: " + x);
  // Refused acks: one line per distinct reason (the first line of its message).
  std::map<std::string, std::uint64_t> refusals;
  std::size_t shown = 0;
  for (const auto& x : dl.examples) {
    if (x.rfind("ack refused: ", 0) == 0) {
      // From "code" to the end of the message's first line (the rid differs).
      const auto from = std::min(x.size(), x.find("\"code\""));
      const auto nl = x.find("\\n", from);
      ++refusals["ack refused: " + x.substr(from, std::min<std::size_t>((nl == std::string::npos ? x.size() : nl) - from, 160))];
    } else if (shown++ < 12) {
      f.note(x);
    }
  }
  for (const auto& [x, n] : refusals) f.note(fmt::format("{} (x{} among the notes kept)", x, n));
  for (std::size_t x = 0; x < rc.examples.size() && x < 5; ++x) f.note("receipts: " + rc.examples[x]);
  f.verdict(pass);
  return pass;
}

}  // namespace
}  // namespace oms::cluster_test

int main(int argc, char** argv) {
  using namespace oms::cluster_test;
  using oms::reliability::Figures;
  using oms::reliability::Flags;
  ::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<Flags> flags;
  try {
    flags = std::make_unique<Flags>(argc, argv,
                                    std::map<std::string, std::string>{
                                        {"cluster-dir", ""},
                                        {"cluster-tool", OMS_CLUSTER_TOOL},
                                        {"fault", "all"},
                                        {"start", "false"},
                                        {"nodes", "3"},
                                        {"senders", "4"},
                                        {"recipients", "3"},
                                        {"kills", "3"},
                                        {"stop-seconds", "20"},
                                        {"redis-down-seconds", "5"},
                                        {"warmup", "100"},
                                        {"after", "100"},
                                        {"max-gap", "150"},
                                        {"pace-ms", "0"},
                                        {"churn-ms", "4000"},
                                        {"seed", std::to_string(oms::reliability::default_seed())},
                                        {"report", ""},
                                        {"trace", ""},
                                        {"max-seconds", "300"},
                                    });
    if (flags->str("cluster-dir").empty()) throw std::invalid_argument("--cluster-dir is required");
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\nflags:\n" << (flags ? flags->usage() : "") << "\n";
    return 2;
  }
  const std::uint64_t seed = flags->num("seed");
  std::cout << "cluster faults: seed " << seed << " (rerun with --seed=" << seed << ")\n";
  RunOptions o;
  o.trace = flags->str("trace");
  o.senders = flags->num("senders");
  o.recipients = flags->num("recipients");
  o.kills = flags->num("kills");
  o.warmup = flags->num("warmup");
  o.after = flags->num("after");
  o.max_gap = flags->num("max-gap");
  o.stop_for = std::chrono::seconds(flags->num("stop-seconds"));
  o.redis_down = std::chrono::seconds(flags->num("redis-down-seconds"));
  o.traffic.pace = std::chrono::milliseconds(flags->num("pace-ms"));
  o.traffic.churn_max = std::chrono::milliseconds(flags->num("churn-ms"));
  o.traffic.churn_min = o.traffic.churn_max / 2;
  o.deadline = Clock::now() + std::chrono::seconds(flags->num("max-seconds"));

  std::vector<std::string> faults;
  {
    std::stringstream ss(flags->str("fault"));
    for (std::string x; std::getline(ss, x, ',');) {
      if (x == "all") faults.insert(faults.end(), {"node-kill", "node-stop", "pg-primary", "redis"});
      else faults.push_back(x);
    }
  }

  const std::string dir = flags->str("cluster-dir");
  const bool start = flags->flag("start");
  std::string report;
  bool all_pass = true;
  std::optional<ClusterEnv> env;
  try {
    if (start) {
      if (!getenv("OMSD")) setenv("OMSD", OMSD_PATH, 1);
      ClusterEnv stub_tool_only = [&] {
        // `cluster start` needs no env file yet: run it directly.
        std::vector<std::string> argv{flags->str("cluster-tool"), "start", dir, "--nodes", flags->str("nodes")};
        std::cout << "$ cluster start " << dir << "\n";
        const auto r = oms::test::run_command(argv, std::chrono::seconds(240));
        std::cout << r.out << r.err;
        if (r.exit_code != 0) throw std::runtime_error("cluster start failed");
        return ClusterEnv(dir, flags->str("cluster-tool"));
      }();
      env.emplace(std::move(stub_tool_only));
    } else {
      env.emplace(dir, flags->str("cluster-tool"));
    }
    std::mt19937_64 rng(seed);
    for (const auto& fault : faults) {
      Figures f("Cluster fault: " + fault);
      bool pass = false;
      try {
        FaultRun run(*env, fault, o, rng());
        pass = run.run(f);
      } catch (const std::exception& e) {
        f.note(std::string("aborted: ") + e.what());
        std::cerr << "fault " << fault << " aborted: " << e.what() << "\n";
      }
      f.verdict(pass);
      f.print();
      all_pass = all_pass && pass;
      if (!flags->str("report").empty()) {
        const std::string tmp = flags->str("report") + ".part";
        f.write_markdown(tmp);
        std::ifstream in(tmp);
        std::stringstream ss;
        ss << in.rdbuf();
        report += ss.str();
        std::remove(tmp.c_str());
      }
    }
  } catch (const std::exception& e) {
    all_pass = false;
    std::cerr << "cluster faults: " << e.what() << "\n";
  }
  if (start && env) {
    try {
      run_tool(*env, "stop", {}, std::chrono::seconds(120));
    } catch (const std::exception& e) {
      all_pass = false;
      std::cerr << e.what() << "\n";
    }
  }
  if (!flags->str("report").empty()) {
    std::ofstream out(flags->str("report"), std::ios::trunc);
    out << report;
  }
  return all_pass ? 0 : 1;
}
