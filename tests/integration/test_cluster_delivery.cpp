// Cluster mode (protocol.md §5), delivery across nodes: two real omsd nodes
// on one PostgreSQL database and one Redis. Every client-visible promise of
// sections 1 and 4 holds when sender and recipient are on different nodes:
// live, stored and missed messages, acks that empty the mailbox everywhere,
// per-sender order, dedup across nodes, receipts, older clients.
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster_nodes.h"
#include "tests/support/devices.h"
#include "tests/support/wait.h"

using namespace oms::test;
using namespace std::chrono_literals;

namespace {

struct PgTwoNodes : ClusterNodes {
  PgTwoNodes() : ClusterNodes(2, /*postgres=*/true) {}
};

// Two I/O threads per node whatever the machine: each reads the hints of
// its own sessions (server/hint_reader.h).
struct PgTwoNodesTwoThreads : ClusterNodes {
  PgTwoNodesTwoThreads() : ClusterNodes(2, /*postgres=*/true, 15, "[server]\nio_threads = 2\n") {}
};

// Bob signed in on node 2 and caught up (his hint subscription is up),
// alice on node 1.
std::pair<std::unique_ptr<WsClient>, std::unique_ptr<WsClient>> cross_node_pair(ClusterNodes& c) {
  auto bob = sign_in(c[1], kBob);
  wait_for_presence(c[0], kBob, "available", 10s);
  auto alice = sign_in(c[0], kAlice);
  const Json first = alice->send(kBob, "warm-up");
  bob->take("message", 10s);
  bob->ack({str_of(first, "id")});
  return {std::move(alice), std::move(bob)};
}

// Hints of ~16 kB each: more than a unix socket's buffers hold.
constexpr int kStallingHints = 40;
const std::string kHintsDropped = "oms_cluster_hints_total{direction=\"dropped\"}";

// Sends `n` messages of ~15 kB to bob; each must be answered `sent`.
std::vector<std::string> send_large(WsClient& alice, int n) {
  const std::string body(15000, 'p');
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    const Json sent = alice.send(kBob, body + std::to_string(i));
    REQUIRE(str_of(sent, "type") == "sent");
    ids.push_back(str_of(sent, "id"));
  }
  return ids;
}

}  // namespace

TEST_CASE("cluster delivery: a live message reaches the recipient on another node, and its ack empties the mailbox") {
  PgTwoNodes c;
  auto bob = sign_in(c[1], kBob);
  wait_for_presence(c[0], kBob, "available", 10s);
  auto alice = sign_in(c[0], kAlice);
  const Json sent = alice->send(kBob, "hello across nodes");
  OMS_CHECK_TYPE(sent, "sent");
  CHECK(str_of(sent, "status") == "delivered");
  const Json m = bob->take("message", 10s);
  CHECK(str_of(m, "id") == str_of(sent, "id"));
  CHECK(str_of(m, "kind") == "live");
  CHECK(str_of(m, "body") == "hello across nodes");
  bob->ack({str_of(m, "id")});
  // One store: both nodes' admin endpoints see the mailbox empty.
  wait_for_mailbox_count(c[0], kBob, 0);
  wait_for_mailbox_count(c[1], kBob, 0);
}

TEST_CASE("cluster delivery: live messages from another node are pushed from the hint, not read from the mailbox") {
  // A hint carries the message and its mseq (its gapless place in the
  // mailbox); a caught-up session pushes it when it follows the last one
  // it has. Sequential sends: each one's mseq is next.
  PgTwoNodes c;
  // The warm-up message also proves bob's hint subscription is up (it comes
  // by the hint or by the read after the subscription).
  auto [alice, bob] = cross_node_pair(c);
  const double reads_before = metric(c[1], "oms_mailbox_reads_total");
  constexpr int kMessages = 20;
  std::vector<std::string> ids;
  for (int i = 0; i < kMessages; ++i) {
    const Json sent = alice->send(kBob, "pushed " + std::to_string(i));
    REQUIRE(str_of(sent, "status") == "delivered");
    ids.push_back(str_of(sent, "id"));
  }
  const auto msgs = bob->take_n("message", kMessages, 10s);
  CHECK(ids_of(msgs) == ids);
  // Before: every hint was a mailbox read (at least one a message). Now at
  // most the read still running from the warm-up.
  CHECK(metric(c[1], "oms_mailbox_reads_total") - reads_before <= 1);
  bob->ack(ids);
  wait_for_mailbox_count(c[0], kBob, 0);
}

TEST_CASE("cluster delivery: two sessions of a user on a node's two I/O threads each get every hint once") {
  // Connections are dealt to the I/O contexts in turn: bob's desk and phone,
  // signed in one after the other, run on different threads, and each
  // thread's own Redis subscription reads bob's hints for its session only.
  PgTwoNodesTwoThreads c;
  auto desk = sign_in_device(c[1], kBob, "desk");
  auto phone = sign_in_device(c[1], kBob, "phone");
  wait_for_presence(c[0], kBob, "available", 10s);
  auto alice = sign_in(c[0], kAlice);
  const Json first = alice->send(kBob, "warm-up");  // (both subscriptions are up once both have it)
  desk->take("message", 10s);
  phone->take("message", 10s);
  const double reads_before = metric(c[1], "oms_mailbox_reads_total");
  constexpr int kMessages = 20;
  std::vector<std::string> ids{str_of(first, "id")};
  for (int i = 0; i < kMessages; ++i) {
    const Json sent = alice->send(kBob, "to both " + std::to_string(i));
    REQUIRE(str_of(sent, "type") == "sent");
    ids.push_back(str_of(sent, "id"));
  }
  const std::vector<std::string> live(ids.begin() + 1, ids.end());
  CHECK(ids_of(desk->take_n("message", kMessages, 10s)) == live);
  CHECK(ids_of(phone->take_n("message", kMessages, 10s)) == live);
  // Pushed from the hints, each by its own thread's subscription (a
  // session whose thread had not subscribed would get nothing live, or
  // read its mailbox).
  CHECK(metric(c[1], "oms_mailbox_reads_total") - reads_before <= 2);
  desk->expect_no("message", 300ms);
  phone->expect_no("message", 300ms);
  desk->ack(ids);
  phone->ack(ids);
  wait_for_mailbox_count(c[0], kBob, 0);
}

TEST_CASE("cluster delivery: after Redis restarts, a message sent while it was down arrives with no further send") {
  // The recipient node's hint subscriptions (one per I/O thread) reconnect
  // and subscribe again; each new subscription has its sessions read their
  // mailbox.
  PgTwoNodesTwoThreads c;
  const std::string readers = "oms_cluster_hint_readers_connected";
  CHECK(wait_until([&] { return metric(c[1], readers) == 2; }, 10s, 20ms));
  auto [alice, bob] = cross_node_pair(c);
  c.redis.kill();
  CHECK(wait_until([&] { return metric(c[1], readers) == 0; }, 10s, 20ms));
  const Json during = alice->send(kBob, "while redis is down");
  OMS_CHECK_TYPE(during, "sent");
  c.redis.restart();
  CHECK(wait_until([&] { return metric(c[1], readers) == 2; }, 20s, 20ms));
  const Json m = bob->take("message", 20s);
  CHECK(str_of(m, "id") == str_of(during, "id"));
  bob->ack({str_of(m, "id")});
  // And the live path is back: a hint for every new message.
  const Json after = alice->send(kBob, "redis is back");
  CHECK(str_of(bob->take("message", 20s), "id") == str_of(after, "id"));
  bob->ack({str_of(after, "id")});
  wait_for_mailbox_count(c[0], kBob, 0);
}

TEST_CASE("cluster delivery: a Redis that stops reading holds no send back, and the messages arrive once it reads") {
  // The sender's node writes its hints on a non-blocking connection from
  // the store's completion thread: a Redis that reads nothing (SIGSTOP)
  // fills that socket; sends are answered all the same, and the hints left
  // over go out when Redis reads again.
  PgTwoNodes c;
  auto [alice, bob] = cross_node_pair(c);
  c.redis.pause();
  const auto ids = send_large(*alice, kStallingHints);
  c.redis.resume();
  CHECK(ids_of(bob->take_n("message", kStallingHints, 30s)) == ids);
  bob->ack(ids);
  wait_for_mailbox_count(c[0], kBob, 0);
}

TEST_CASE("cluster delivery: hints lost while Redis is stopped cost latency only: the others re-read their mailboxes") {
  // Stopped long enough for the sender's node to give up on its Redis
  // connections (2 s), the hints it held are dropped. When it is back, it
  // publishes a re-read request and the recipient's node has its sessions
  // read their mailboxes: bob gets every message with no further message.
  PgTwoNodes c;
  auto [alice, bob] = cross_node_pair(c);
  const double dropped = metric(c[0], kHintsDropped);
  c.redis.pause();
  const auto ids = send_large(*alice, kStallingHints);
  const bool gave_up = wait_until([&] { return metric(c[0], kHintsDropped) > dropped; }, 20s, 50ms);
  c.redis.resume();
  REQUIRE(gave_up);
  CHECK(ids_of(bob->take_n("message", kStallingHints, 30s)) == ids);
  bob->ack(ids);
  wait_for_mailbox_count(c[0], kBob, 0);
}

TEST_CASE("cluster delivery: stored on one node, delivered at sign-in on the other") {
  PgTwoNodes c;
  auto alice = sign_in(c[0], kAlice);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    const Json sent = alice->send(kBob, "offline " + std::to_string(i), "cm-" + std::to_string(i));
    REQUIRE(str_of(sent, "status") == "stored");
    ids.push_back(str_of(sent, "id"));
  }
  auto bob = sign_in(c[1], kBob);
  CHECK(int_of(welcome_mailbox(*bob), "count") == 5);
  const auto msgs = bob->take_n("message", 5, 10s);
  CHECK(ids_of(msgs) == ids);
  for (const auto& m : msgs) CHECK(str_of(m, "kind") == "offline");
  bob->ack(ids);
  bob->take("mailbox.drained", 10s);
  // A resend through the other node is answered with the first id (dedup
  // lives in the shared store).
  auto alice2 = sign_in(c[1], kAlice);
  const Json again = alice2->send(kBob, "offline 0", "cm-0");
  CHECK(str_of(again, "id") == ids[0]);
}

TEST_CASE("cluster delivery: a recipient in dnd on another node gets a missed notice and a missed message") {
  PgTwoNodes c;
  auto bob = sign_in(c[1], kBob);
  OMS_CHECK_TYPE(bob->set_presence("dnd"), "ok");
  wait_for_presence(c[0], kBob, "dnd", 10s);
  auto alice = sign_in(c[0], kAlice);
  const Json sent = alice->send(kBob, "during the meeting");
  CHECK(str_of(sent, "status") == "missed");
  const Json notice = bob->take("missed", 10s);
  CHECK(str_of(notice, "id") == str_of(sent, "id"));
  const Json m = bob->take("message", 10s);
  CHECK(str_of(m, "kind") == "missed");
  // Leaving dnd: the digest of what is still unacked.
  OMS_CHECK_TYPE(bob->set_presence("available"), "ok");
  const Json digest = bob->take("missed.summary", 10s);
  CHECK(int_of(digest, "count") == 1);
}

TEST_CASE("cluster delivery: one sender's messages arrive in order across nodes, each once") {
  PgTwoNodes c;
  auto bob = sign_in(c[1], kBob);
  wait_for_presence(c[0], kBob, "available", 10s);
  auto alice = sign_in(c[0], kAlice);
  auto carol = sign_in(c[1], kCarol);  // another sender, on the recipient's own node
  constexpr int kN = 60;
  std::vector<std::string> alice_ids;
  for (int i = 0; i < kN; ++i) {
    alice->send_json({{"type", "send"}, {"rid", i}, {"to", kBob}, {"body", "a" + std::to_string(i)}});
    carol->send_json({{"type", "send"}, {"rid", i}, {"to", kBob}, {"body", "c" + std::to_string(i)}});
  }
  for (int i = 0; i < kN; ++i) alice_ids.push_back(str_of(alice->take("sent", 10s), "id"));
  const auto msgs = bob->take_n("message", 2 * kN, 20s);
  std::vector<std::string> from_alice, from_carol, all;
  for (const auto& m : msgs) {
    all.push_back(str_of(m, "id"));
    (str_of(m, "from") == kAlice ? from_alice : from_carol).push_back(str_of(m, "body"));
  }
  std::vector<std::string> want_a, want_c;
  for (int i = 0; i < kN; ++i) {
    want_a.push_back("a" + std::to_string(i));
    want_c.push_back("c" + std::to_string(i));
  }
  CHECK(from_alice == want_a);
  CHECK(from_carol == want_c);
  std::vector<std::string> ids_in_msgs;
  for (const auto& m : msgs)
    if (str_of(m, "from") == kAlice) ids_in_msgs.push_back(str_of(m, "id"));
  CHECK(ids_in_msgs == alice_ids);
  bob->ack(all);
  bob->expect_no("message", 500ms);
  wait_for_mailbox_count(c[0], kBob, 0);
}

TEST_CASE("cluster delivery: the sender on one node gets the receipt of an ack made on the other") {
  PgTwoNodes c;
  auto alice = sign_in(c[0], kAlice);
  const Json sent = alice->send(kBob, "ack me", "cm-r");
  REQUIRE(str_of(sent, "status") == "stored");
  auto bob = sign_in(c[1], kBob);
  const Json m = bob->take("message", 10s);
  bob->ack({str_of(m, "id")});
  const Json r = alice->take("receipt", 10s);
  CHECK(str_of(r, "msg") == str_of(sent, "id"));
  CHECK(str_of(r, "state") == "delivered");
}

TEST_CASE("cluster delivery: an older client on another node gets live messages") {
  PgTwoNodes c;
  auto bob = sign_in_older(c[1], kBob);
  wait_for_presence(c[0], kBob, "available", 10s);
  auto alice = sign_in(c[0], kAlice);
  const Json sent = alice->send(kBob, "live only");
  CHECK(str_of(sent, "status") == "delivered");
  const Json m = bob->take("message", 10s);
  CHECK(str_of(m, "body") == "live only");
  CHECK(str_of(m, "kind") == "live");
}

TEST_CASE("cluster delivery: a policy changed through one node's admin endpoint holds on the other") {
  PgTwoNodes c;
  OMS_CHECK_HTTP(c[0].admin().patch("/v1/policies/Global", Json{{"enable_im_auto_archiving", false}}), 200);
  auto alice = sign_in(c[1], kAlice);
  // The other node reloads the policies within about a second.
  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) {
    const Json r = alice->send(kBob, "while bob is away", "cm-policy-" + std::to_string(i));
    refused = type_of(r) == "error" && str_of(r, "code") == "offline_disabled";
    if (!refused) {
      REQUIRE(str_of(r, "status") == "stored");
      std::this_thread::sleep_for(50ms);  // (a poll with a bound, not a synchronisation)
    }
  }
  CHECK(refused);
  // And node 2's admin endpoint shows node 1's change.
  const auto got = c[1].admin().get("/v1/policies/Global");
  CHECK(got.raw.find("\"enable_im_auto_archiving\":false") != std::string::npos);
}
