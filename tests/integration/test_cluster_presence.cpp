// Cluster mode (protocol.md §5), the Redis half: two real omsd nodes share a
// real redis-server. Presence, presence events and the missed-message
// decision hold across nodes; a node killed with SIGKILL leaves the others'
// view within [cluster] node_ttl_seconds; a Redis outage costs presence
// across nodes, never a send. (These nodes keep their mailboxes in RocksDB,
// each its own: delivery across nodes needs the shared PostgreSQL store and
// is tested with it.)
#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>

#include <fmt/format.h>

#include "tests/integration/cluster_nodes.h"

using namespace oms::test;
using namespace std::chrono_literals;

namespace {

// Two nodes on one Redis, each with its own RocksDB store.
struct TwoNodes : ClusterNodes {
  explicit TwoNodes(int node_ttl_seconds = 15) : ClusterNodes(2, false, node_ttl_seconds) {}
  OmsdProcess* node1 = nodes[0].get();
  OmsdProcess* node2 = nodes[1].get();
};

// Waits until `node` has this node's view of the others (it registered and
// loaded them): polls the user's presence through the admin endpoint.
void wait_presence(const OmsdProcess& node, std::string_view user, std::string_view state) {
  wait_for_presence(node, user, state, 10s);
}

}  // namespace

TEST_CASE("cluster: presence set on one node is seen by watchers on another") {
  TwoNodes c;
  auto alice = sign_in(*c.node1, kAlice);
  OMS_CHECK_TYPE(alice->subscribe({kBob}), "ok");
  CHECK(str_of(alice->take("presence"), "state") == "offline");

  auto bob = sign_in(*c.node2, kBob);
  CHECK(str_of(alice->take("presence", 10s), "state") == "available");
  OMS_CHECK_TYPE(bob->set_presence("dnd"), "ok");
  CHECK(str_of(alice->take("presence", 10s), "state") == "dnd");
  // Node 1's admin endpoint shows the whole cluster's presence.
  wait_presence(*c.node1, kBob, "dnd");

  // appear-offline shows as offline everywhere.
  OMS_CHECK_TYPE(bob->set_presence("appear-offline"), "ok");
  CHECK(str_of(alice->take("presence", 10s), "state") == "offline");
  OMS_CHECK_TYPE(bob->set_presence("available"), "ok");
  CHECK(str_of(alice->take("presence", 10s), "state") == "available");

  bob->close();
  CHECK(str_of(alice->take("presence", 10s), "state") == "offline");
}

TEST_CASE("cluster: the missed-message decision uses the recipient's state on another node") {
  TwoNodes c;
  auto bob = sign_in(*c.node2, kBob);
  OMS_CHECK_TYPE(bob->set_presence("presenting"), "ok");
  wait_presence(*c.node1, kBob, "presenting");

  auto alice = sign_in(*c.node1, kAlice);
  const Json sent = alice->send(kBob, "are you there?");
  OMS_CHECK_TYPE(sent, "sent");
  CHECK(str_of(sent, "status") == "missed");
  CHECK(str_of(sent, "recipient") == "presenting");
}

TEST_CASE("cluster: a second session on another node keeps the user's state") {
  TwoNodes c;
  auto bob1 = sign_in(*c.node1, kBob);
  OMS_CHECK_TYPE(bob1->set_presence("busy"), "ok");
  wait_presence(*c.node2, kBob, "busy");
  auto bob2 = sign_in(*c.node2, kBob);
  CHECK(str_of(bob2->welcome(), "presence") == "busy");
  // A presence.set on node 2 is the user's state on node 1 too.
  OMS_CHECK_TYPE(bob2->set_presence("dnd"), "ok");
  wait_presence(*c.node1, kBob, "dnd");
  // The first session leaves: bob is still online (node 2).
  bob1->close();
  auto carol = sign_in(*c.node1, kCarol);
  const Json sent = carol->send(kBob, "hi");
  CHECK(str_of(sent, "status") == "missed");
  CHECK(str_of(sent, "recipient") == "dnd");
}

TEST_CASE("cluster: a node killed with SIGKILL leaves the others' view within node_ttl_seconds") {
  constexpr int kTtl = 3;
  TwoNodes c(kTtl);
  auto alice = sign_in(*c.node1, kAlice);
  OMS_CHECK_TYPE(alice->subscribe({kBob}), "ok");
  CHECK(str_of(alice->take("presence"), "state") == "offline");
  auto bob = sign_in(*c.node2, kBob);
  CHECK(str_of(alice->take("presence", 10s), "state") == "available");

  const auto killed = std::chrono::steady_clock::now();
  c.node2->kill();
  const Json ev = alice->take("presence", std::chrono::seconds(kTtl + 5));
  const auto gone = std::chrono::steady_clock::now() - killed;
  CHECK(str_of(ev, "state") == "offline");
  MESSAGE("presence of a SIGKILLed node gone after "
          << std::chrono::duration_cast<std::chrono::milliseconds>(gone).count() << " ms (node_ttl_seconds = "
          << kTtl << ")");
  CHECK(gone <= std::chrono::seconds(kTtl) + 500ms);
  // Sends to bob are decided as for an offline user now.
  const Json sent = alice->send(kBob, "later");
  CHECK(str_of(sent, "status") == "stored");
}

TEST_CASE("cluster: without Redis, sends go on (stored) and presence comes back with it") {
  TwoNodes c;
  auto bob = sign_in(*c.node2, kBob);
  wait_presence(*c.node1, kBob, "available");
  c.redis.kill();
  auto alice = sign_in(*c.node1, kAlice);
  // Node 1 keeps its last view of bob; either way the send is answered.
  const Json sent = alice->send(kCarol, "no redis");
  OMS_CHECK_TYPE(sent, "sent");
  CHECK(str_of(sent, "status") == "stored");

  c.redis.restart();  // empty: every node registers its sessions again
  wait_presence(*c.node1, kBob, "available");
  OMS_CHECK_TYPE(bob->set_presence("dnd"), "ok");
  wait_presence(*c.node1, kBob, "dnd");
}
