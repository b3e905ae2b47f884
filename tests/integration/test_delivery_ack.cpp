// Receiving and acknowledging (protocol.md §1.4): at-least-once delivery with
// stable ids, acks delete, the unacked window, mailbox.drained, and ordering
// across the offline → online switch.
#include <doctest/doctest.h>

#include <set>

#include "tests/support/harness.h"

using namespace oms::test;
using boost::json::array;
using boost::json::value;

TEST_CASE("ack: a live message not acked is delivered again at the next sign-in with the same id") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  std::string id;
  {
    auto bob = sign_in(omsd, kBob);
    const Json r = alice->send(kBob, "did you see this?");
    OMS_CHECK_SENT(r, "delivered");
    id = str_of(r, "id");
    CHECK(str_of(bob->take("message"), "id") == id);
    bob->close();  // no ack
  }
  CHECK(mailbox_count(omsd, kBob) == 1);
  auto bob = connect_client(omsd);
  const Json w = bob->hello(omsd.token(kBob));
  CHECK(int_of(obj_of(w, "mailbox"), "count") == 1);
  const Json m = bob->take("message");
  CHECK(str_of(m, "id") == id);
  CHECK(str_of(m, "body") == "did you see this?");
  CHECK(str_of(m, "kind") == "offline");  // decision: redelivered at sign-in as offline
  bob->ack({id});
  bob->take("mailbox.drained");
  wait_for_mailbox_count(omsd, kBob, 0);
}

TEST_CASE("ack: with a rid the ack gets ok and without a rid no reply") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  auto bob = sign_in(omsd, kBob);
  bob->take("mailbox.drained");
  const Json r1 = alice->send(kBob, "one");
  const Json r2 = alice->send(kBob, "two");
  bob->take_n("message", 2);

  bob->ack({str_of(r1, "id")});
  bob->barrier();  // everything the server answered before the pong is queued now
  for (const auto& f : bob->queued()) {
    INFO("unexpected frame: " << to_text(f));
    CHECK(type_of(f) != "ok");
    CHECK(type_of(f) != "error");
  }
  const Json ok = bob->request(Json{{"type", "ack"}, {"rid", "ack-2"}, {"ids", array{str_of(r2, "id")}}});
  OMS_CHECK_TYPE(ok, "ok");
  CHECK(ok.at("rid") == value("ack-2"));
  wait_for_mailbox_count(omsd, kBob, 0);
}

TEST_CASE("ack: unknown ids are ignored") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  OMS_CHECK_SENT(alice->send(kBob, "keep me"), "stored");
  auto carol = sign_in(omsd, kCarol);
  OMS_CHECK_TYPE(carol->ack_with_rid({"00000000deadbeef", "0000000000000001"}), "ok");
  OMS_CHECK_TYPE(carol->ack_with_rid({}), "ok");
  CHECK(carol->is_open());
  CHECK(mailbox_count(omsd, kBob) == 1);
}

TEST_CASE("ack: acking another user's message id does not touch their mailbox") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  const Json r = alice->send(kBob, "for bob only");
  OMS_CHECK_SENT(r, "stored");
  const std::string id = str_of(r, "id");

  auto carol = sign_in(omsd, kCarol);
  OMS_CHECK_TYPE(carol->ack_with_rid({id}), "ok");
  // Not even the sender can ack it away.
  OMS_CHECK_TYPE(alice->ack_with_rid({id}), "ok");
  CHECK(mailbox_count(omsd, kBob) == 1);

  auto bob = sign_in(omsd, kBob);
  CHECK(int_of(obj_of(bob->welcome(), "mailbox"), "count") == 1);
  CHECK(str_of(bob->take("message"), "id") == id);
}

TEST_CASE("delivery: no more than the window of unacked messages is outstanding") {
  OmsdProcess omsd(with_config("[delivery]\nwindow = 2\n"));
  auto alice = sign_in(omsd, kAlice);
  std::vector<std::string> sent;
  for (int i = 0; i < 5; ++i) {
    const Json r = alice->send(kBob, "w" + std::to_string(i));
    OMS_CHECK_SENT(r, "stored");
    sent.push_back(str_of(r, "id"));
  }
  auto bob = sign_in(omsd, kBob);
  auto first = bob->take_n("message", 2);
  CHECK(ids_of(first) == std::vector<std::string>{sent[0], sent[1]});
  bob->expect_no("message");

  bob->ack({sent[0]});
  CHECK(str_of(bob->take("message"), "id") == sent[2]);
  bob->expect_no("message");

  bob->ack({sent[1], sent[2]});
  const auto next = bob->take_n("message", 2);
  CHECK(ids_of(next) == std::vector<std::string>{sent[3], sent[4]});
  bob->expect_no("message");
  // Everything delivered, but not everything acked: not drained yet.
  bob->expect_no("mailbox.drained", std::chrono::milliseconds(1));
  bob->ack({sent[3]});
  bob->expect_no("mailbox.drained");
  bob->ack({sent[4]});
  bob->take("mailbox.drained");
  bob->expect_no("mailbox.drained");
}

TEST_CASE("delivery: mailbox.drained comes once after everything stored at sign-in was acked") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  for (int i = 0; i < 3; ++i) OMS_CHECK_SENT(alice->send(kBob, "d" + std::to_string(i)), "stored");
  auto bob = sign_in(omsd, kBob);
  const auto msgs = bob->take_n("message", 3);
  bob->expect_no("mailbox.drained");
  bob->ack({str_of(msgs[0], "id"), str_of(msgs[1], "id")});
  bob->expect_no("mailbox.drained");
  bob->ack({str_of(msgs[2], "id")});
  bob->take("mailbox.drained");
  // A live message after the drain does not bring another drained.
  OMS_CHECK_SENT(alice->send(kBob, "live"), "delivered");
  bob->ack({str_of(bob->take("message"), "id")});
  bob->expect_no("mailbox.drained");
}

TEST_CASE("delivery: mailbox.drained follows welcome when the mailbox is empty") {
  OmsdProcess omsd;
  auto bob = connect_client(omsd);
  bob->hello(omsd.token(kBob));
  const auto until = bob->recv_until("mailbox.drained");
  for (const auto& f : until.skipped) {
    INFO("before drained: " << to_text(f));
    CHECK(type_of(f) != "message");
  }
  // An older client gets no drained at all.
  auto old_bob = sign_in_older(omsd, kBob);
  old_bob->expect_no("mailbox.drained");
}

TEST_CASE("delivery: every capable session streams the mailbox and an ack from any deletes") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  const Json r = alice->send(kBob, "one for two devices");
  OMS_CHECK_SENT(r, "stored");
  const std::string id = str_of(r, "id");
  auto desk = sign_in(omsd, kBob);
  auto phone = sign_in(omsd, kBob);
  CHECK(str_of(desk->take("message"), "id") == id);
  CHECK(str_of(phone->take("message"), "id") == id);
  OMS_CHECK_TYPE(phone->ack_with_rid({id}), "ok");
  wait_for_mailbox_count(omsd, kBob, 0);
  auto tablet = sign_in(omsd, kBob);
  CHECK(int_of(obj_of(tablet->welcome(), "mailbox"), "count") == 0);
  tablet->take("mailbox.drained");
  tablet->expect_no("message");
}

TEST_CASE("delivery: a live message never overtakes an older stored one") {
  // A small window makes the stored stream slow while live sends continue.
  OmsdProcess omsd(with_config("[delivery]\nwindow = 4\n"));
  auto alice = sign_in(omsd, kAlice);
  constexpr int kStored = 30;
  constexpr int kTotal = 60;
  for (int i = 0; i < kStored; ++i) OMS_CHECK_SENT(alice->send(kBob, std::to_string(i)), "stored");

  std::vector<std::string> bodies;  // in arrival order, repeats (by id) dropped
  std::set<std::string> seen;
  int repeats = 0;
  auto bob = connect_client(omsd);
  auto drain = [&] {
    for (const auto& m : bob->take_all("message")) {
      const std::string id = str_of(m, "id");
      if (seen.insert(id).second) bodies.push_back(str_of(m, "body"));
      else ++repeats;
      bob->ack({id});
    }
  };
  // Sign in without waiting, and keep sending while the mailbox streams.
  bob->send_json(Json{{"type", "hello"},
                      {"rid", "h"},
                      {"token", omsd.token(kBob)},
                      {"client", Json{{"name", "desk"}, {"version", "2.1.0"},
                                      {"features", array{"offline-messages"}}}}});
  for (int i = kStored; i < kTotal; ++i) {
    const Json r = alice->send(kBob, std::to_string(i));
    INFO("reply: " << to_text(r));
    CHECK(type_of(r) == "sent");
    drain();
  }
  const auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (static_cast<int>(bodies.size()) < kTotal && SteadyClock::now() < deadline) {
    if (auto f = bob->try_recv(std::chrono::milliseconds(200))) {
      if (type_of(*f) == "message") {
        const std::string id = str_of(*f, "id");
        if (seen.insert(id).second) bodies.push_back(str_of(*f, "body"));
        else ++repeats;
        bob->ack({id});
      }
    }
  }
  std::vector<std::string> expected;
  for (int i = 0; i < kTotal; ++i) expected.push_back(std::to_string(i));
  CHECK(bodies == expected);
  WARN_MESSAGE(repeats == 0, repeats << " message(s) were delivered twice to one session");
}

TEST_CASE("delivery: a recipient that does not read loses nothing") {
  // Bob's client stops reading while many large live messages arrive: the
  // server may close the slow session, but every message that got `sent`
  // must reach bob, live or from the mailbox at the next sign-in.
  // (The window stays below the send queue so that a reading client can
  // always drain its mailbox; durability is not the point: unsynced writes.)
  OmsdProcess omsd(with_config("[delivery]\nmax_send_queue = 72\nwindow = 8\n[store]\nsync = false\n"));
  auto alice = sign_in(omsd, kAlice);
  auto bob = std::make_unique<WsClient>();
  bob->set_receive_buffer(4096);  // a slow reader: the kernel buffers little for it
  bob->connect(omsd.client_port());
  bob->hello(omsd.token(kBob));
  bob->take("mailbox.drained");
  constexpr int kSends = 300;
  std::set<std::string> sent;
  for (int i = 0; i < kSends; ++i) {
    // Bob's WsClient is not pumped during this loop: it reads nothing.
    const Json r = alice->send(kBob, std::to_string(i) + ":" + std::string(15000, 'z'));
    INFO("reply: " << to_text(r));
    REQUIRE(type_of(r) == "sent");
    sent.insert(str_of(r, "id"));
  }
  std::set<std::string> got;
  auto take_available = [&](WsClient& c, std::chrono::milliseconds wait) {
    while (got.size() < sent.size()) {
      auto f = c.try_recv(wait);
      if (!f) return;
      if (type_of(*f) != "message") continue;
      got.insert(str_of(*f, "id"));
      (void)c.try_ack({str_of(*f, "id")});
    }
  };
  take_available(*bob, std::chrono::milliseconds(500));
  const int first_close = bob->is_open() ? 0 : bob->expect_closed();
  MESSAGE("the slow session got " << got.size() << " of " << kSends << " live; close code "
                                  << first_close);
  bob->close();
  int sessions = 1;
  while (got.size() < sent.size() && sessions < 5) {
    ++sessions;
    auto again = sign_in(omsd, kBob);
    take_available(*again, std::chrono::seconds(5));
    CHECK_MESSAGE(again->is_open(), "a reading session was closed while draining its mailbox");
  }
  CHECK(got == sent);
}

TEST_CASE("delivery: a reading client can drain a mailbox larger than the send queue") {
  // max_send_queue below the (default) window: a server must not disconnect
  // a client that reads, or a large mailbox could never be drained.
  std::unique_ptr<OmsdProcess> omsd;
  try {
    omsd = std::make_unique<OmsdProcess>(with_config("[delivery]\nmax_send_queue = 16\n"));
  } catch (const TestError& e) {
    MESSAGE("omsd refuses max_send_queue below the window (acceptable): " << e.what());
    return;
  }
  constexpr int kStored = 60;
  {
    auto alice = sign_in(*omsd, kAlice);
    for (int i = 0; i < kStored; ++i) OMS_CHECK_SENT(alice->send(kBob, std::string(2000, 'm')), "stored");
  }
  auto bob = sign_in(*omsd, kBob);
  std::set<std::string> got;
  while (static_cast<int>(got.size()) < kStored) {
    auto f = bob->try_recv(std::chrono::seconds(5));
    if (!f) break;
    if (type_of(*f) != "message") continue;
    got.insert(str_of(*f, "id"));
    (void)bob->try_ack({str_of(*f, "id")});
  }
  CHECK_MESSAGE(bob->is_open(), "the reading session was closed while draining its mailbox");
  CHECK(static_cast<int>(got.size()) == kStored);
}
