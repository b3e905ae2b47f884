// Sending (protocol.md §1.3) and offline storage: delivered / stored /
// missed, the recipient field, sign-in delivery of stored messages,
// idempotent sends and older clients.
#include <doctest/doctest.h>

#include <cstdlib>
#include <set>

#include "tests/support/harness.h"

using namespace oms::test;
using boost::json::array;
using boost::json::value;

TEST_CASE("send: a message to an available recipient is delivered live") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  auto bob = sign_in(omsd, kBob);
  const Json r = alice->send(kBob, "Lunch?");
  OMS_CHECK_SENT(r, "delivered");
  CHECK(str_of(r, "recipient") == "available");
  const Json m = bob->take("message");
  INFO("message: " << to_text(m));
  CHECK(str_of(m, "id") == str_of(r, "id"));
  CHECK(str_of(m, "from") == kAlice);
  CHECK(str_of(m, "body") == "Lunch?");
  CHECK(str_of(m, "kind") == "live");
  CHECK(is_iso8601_ms(str_of(m, "sent_at")));
  // sent_at is when the server accepted it (UTC).
  const auto sent_at = parse_iso8601_ms(str_of(m, "sent_at"));
  REQUIRE(sent_at.has_value());
  CHECK(std::abs(*sent_at - unix_now_ms()) < 60'000);
  CHECK(type_of(bob->ack_with_rid({str_of(m, "id")})) == "ok");
}

TEST_CASE("send: recipients who are busy away or brb get the message live") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  auto bob = sign_in(omsd, kBob);
  for (const char* state : {"busy", "away", "brb"}) {
    CAPTURE(state);
    OMS_CHECK_TYPE(bob->set_presence(state), "ok");
    const Json r = alice->send(kBob, std::string("while ") + state);
    OMS_CHECK_SENT(r, "delivered");
    CHECK(str_of(r, "recipient") == state);
    const Json m = bob->take("message");
    CHECK(str_of(m, "kind") == "live");
    CHECK(str_of(m, "body") == std::string("while ") + state);
    bob->ack({str_of(m, "id")});
  }
}

TEST_CASE("send: a message to an offline recipient is stored and delivered at sign-in") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  std::vector<std::string> ids;
  for (int i = 1; i <= 3; ++i) {
    const Json r = alice->send(kBob, "m" + std::to_string(i));
    OMS_CHECK_SENT(r, "stored");
    CHECK(str_of(r, "recipient") == "offline");
    ids.push_back(str_of(r, "id"));
  }
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == 3);
  {
    auto bob = connect_client(omsd);
    const Json w = bob->hello(omsd.token(kBob));
    CHECK(int_of(obj_of(w, "mailbox"), "count") == 3);
    const auto msgs = bob->receive_messages(3, /*auto_ack=*/false);
    CHECK(ids_of(msgs) == ids);
    CHECK(bodies_of(msgs) == std::vector<std::string>{"m1", "m2", "m3"});
    for (const auto& m : msgs) {
      CHECK(str_of(m, "kind") == "offline");
      CHECK(str_of(m, "from") == kAlice);
    }
    bob->ack(ids);
    bob->take("mailbox.drained");
    bob->close();
  }
  // Not archived: an acked message is gone.
  wait_for_mailbox_count(omsd, kBob, 0);
  auto bob = sign_in(omsd, kBob);
  CHECK(int_of(obj_of(bob->welcome(), "mailbox"), "count") == 0);
  bob->take("mailbox.drained");
  bob->expect_no("message");
}

TEST_CASE("send: a message to an appear-offline recipient is stored") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  std::string id;
  {
    auto bob = sign_in(omsd, kBob);
    OMS_CHECK_TYPE(bob->set_presence("appear-offline"), "ok");
    const Json r = alice->send(kBob, "are you there?");
    OMS_CHECK_SENT(r, "stored");
    // The server must not reveal the difference to the sender.
    CHECK(str_of(r, "recipient") == "offline");
    id = str_of(r, "id");
    bob->close();  // whatever it may have received, it acked nothing
  }
  auto bob = sign_in(omsd, kBob);
  CHECK(int_of(obj_of(bob->welcome(), "mailbox"), "count") == 1);
  const Json m = bob->take("message");
  CHECK(str_of(m, "id") == id);
  CHECK(str_of(m, "kind") == "offline");
  bob->ack({id});
  bob->take("mailbox.drained");
}

TEST_CASE("send: every live session of the recipient gets the message") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  auto bob_desk = sign_in(omsd, kBob);
  auto bob_phone = sign_in(omsd, kBob);
  const Json r = alice->send(kBob, "to all devices");
  OMS_CHECK_SENT(r, "delivered");
  const Json m1 = bob_desk->take("message");
  const Json m2 = bob_phone->take("message");
  CHECK(str_of(m1, "id") == str_of(r, "id"));
  CHECK(str_of(m2, "id") == str_of(r, "id"));
  CHECK(str_of(m1, "kind") == "live");
  CHECK(str_of(m2, "kind") == "live");
  // An ack from one session deletes it.
  CHECK(type_of(bob_phone->ack_with_rid({str_of(r, "id")})) == "ok");
  wait_for_mailbox_count(omsd, kBob, 0);
}

TEST_CASE("send: user ids are compared case-insensitively") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, "Alice@Contoso.com");
  auto bob = sign_in(omsd, kBob);
  const Json r = alice->send("BOB@Contoso.COM", "case");
  OMS_CHECK_SENT(r, "delivered");
  const Json m = bob->take("message");
  CHECK(str_of(m, "from") == "alice@contoso.com");
  CHECK(str_of(m, "body") == "case");
}

TEST_CASE("send: the same client_msg_id twice returns the first result and stores one message") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  const Json first = alice->send(kBob, "only once", std::string("cmid-1"));
  OMS_CHECK_SENT(first, "stored");
  const Json again = alice->send(kBob, "only once", std::string("cmid-1"));
  OMS_CHECK_SENT(again, "stored");
  CHECK(str_of(again, "id") == str_of(first, "id"));
  CHECK((again.contains("duplicate") && again.at("duplicate") == value(true)));
  // Same id even with another body: the first result, nothing new.
  const Json third = alice->send(kBob, "a different body", std::string("cmid-1"));
  CHECK(str_of(third, "id") == str_of(first, "id"));
  CHECK(mailbox_count(omsd, kBob) == 1);

  // The key is (sender, client_msg_id): another sender is independent.
  auto carol = sign_in(omsd, kCarol);
  const Json other = carol->send(kBob, "carol's", std::string("cmid-1"));
  OMS_CHECK_SENT(other, "stored");
  CHECK(str_of(other, "id") != str_of(first, "id"));
  CHECK(mailbox_count(omsd, kBob) == 2);

  auto bob = sign_in(omsd, kBob);
  const auto msgs = bob->receive_messages(2);
  CHECK(bodies_of(msgs) == std::vector<std::string>{"only once", "carol's"});
  bob->take("mailbox.drained");
}

TEST_CASE("send: a resend gets the first result before any other check (policy, rate, size)") {
  // Protocol 4.4. It used to be refused with offline_disabled ("nothing is
  // stored") although the first send was stored and will be delivered.
  OmsdProcess omsd(with_config("[limits]\nsend_rate_per_second = 0.01\nsend_burst = 2\nmax_body_bytes = 64\n"));
  auto alice = sign_in(omsd, kAlice);
  const Json first = alice->send(kBob, "stored before the switch", std::string("cm-1"));
  OMS_CHECK_SENT(first, "stored");

  OMS_CHECK_HTTP(omsd.admin().patch("/v1/policies/Global", Json{{"enable_im_auto_archiving", false}}), 200);
  const Json after_policy = alice->send(kBob, "stored before the switch", std::string("cm-1"));
  INFO("after the policy switch: " << to_text(after_policy));
  OMS_CHECK_SENT(after_policy, "stored");
  CHECK(str_of(after_policy, "id") == str_of(first, "id"));
  CHECK((after_policy.contains("duplicate") && after_policy.at("duplicate") == value(true)));
  // A new message is refused as before.
  OMS_CHECK_ERROR(alice->send(kBob, "new", std::string("cm-2")), "offline_disabled");

  // The bucket is empty now (burst 2, both taken): a resend is still answered.
  OMS_CHECK_ERROR(alice->send(kCarol, "new", std::string("cm-3")), "rate_limited");
  const Json after_rate = alice->send(kBob, "stored before the switch", std::string("cm-1"));
  INFO("when rate limited: " << to_text(after_rate));
  CHECK(str_of(after_rate, "id") == str_of(first, "id"));
  // So is one whose body would now be too large.
  const Json too_large = alice->send(kBob, std::string(100, 'x'), std::string("cm-1"));
  CHECK(str_of(too_large, "id") == str_of(first, "id"));
  CHECK(mailbox_count(omsd, kBob) == 1);
}

TEST_CASE("send: client_msg_id is optional") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  const Json r1 = alice->send(kBob, "no id 1", std::string());
  const Json r2 = alice->send(kBob, "no id 2", std::string());
  OMS_CHECK_SENT(r1, "stored");
  OMS_CHECK_SENT(r2, "stored");
  CHECK(str_of(r1, "id") != str_of(r2, "id"));
  CHECK(mailbox_count(omsd, kBob) == 2);
}

TEST_CASE("send: an older client cannot leave an offline message but can chat live") {
  OmsdProcess omsd;
  auto old_alice = sign_in_older(omsd, kAlice);
  const Json r = old_alice->send(kBob, "offline from an old client");
  OMS_CHECK_ERROR(r, "client_unsupported");
  CHECK(mailbox_count(omsd, kBob) == 0);

  auto bob = sign_in(omsd, kBob);
  CHECK(int_of(obj_of(bob->welcome(), "mailbox"), "count") == 0);
  const Json live = old_alice->send(kBob, "live from an old client");
  OMS_CHECK_SENT(live, "delivered");
  const Json m = bob->take("message");
  CHECK(str_of(m, "body") == "live from an old client");
  CHECK(str_of(m, "kind") == "live");
}

TEST_CASE("send: an older client gets live messages but never stored ones") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  const Json stored = alice->send(kBob, "waits for a capable client");
  OMS_CHECK_SENT(stored, "stored");
  {
    auto old_bob = sign_in_older(omsd, kBob);
    old_bob->expect_no("message", std::chrono::milliseconds(400));
    old_bob->expect_no("mailbox.drained", std::chrono::milliseconds(1));
    const Json live = alice->send(kBob, "live to the old client");
    OMS_CHECK_SENT(live, "delivered");
    const Json m = old_bob->take("message");
    CHECK(str_of(m, "body") == "live to the old client");
    CHECK(str_of(m, "kind") == "live");
    CHECK(type_of(old_bob->ack_with_rid({str_of(m, "id")})) == "ok");
    old_bob->expect_no("message", std::chrono::milliseconds(1));
  }
  // The stored one is still there for a capable client.
  auto bob = sign_in(omsd, kBob);
  const Json m = bob->take("message");
  CHECK(str_of(m, "id") == str_of(stored, "id"));
  CHECK(str_of(m, "kind") == "offline");
  bob->ack({str_of(m, "id")});
  bob->take("mailbox.drained");
}

TEST_CASE("send: after the dedup window the same client_msg_id is a new message") {
  OmsdProcess omsd(with_config("[mailbox]\ndedup_window_seconds = 1\nsweep_interval_seconds = 1\n"));
  auto alice = sign_in(omsd, kAlice);
  const Json first = alice->send(kBob, "once", std::string("window-id"));
  OMS_CHECK_SENT(first, "stored");
  // Resending is idempotent within the window; once it has passed, the
  // same client_msg_id is a new message.
  std::string latest;
  const bool renewed = wait_until(
      [&] {
        const Json r = alice->send(kBob, "once", std::string("window-id"));
        latest = to_text(r);
        return type_of(r) == "sent" && str_of(r, "id") != str_of(first, "id");
      },
      std::chrono::seconds(10), std::chrono::milliseconds(200));
  CHECK_MESSAGE(renewed, "still deduplicated after the window: " << latest);
  CHECK(mailbox_count(omsd, kBob) == 2);
}
