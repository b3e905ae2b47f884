// Missed messages (protocol.md §1.5): recipients in dnd / presenting get a
// missed notice and the message as kind "missed"; leaving dnd/presenting
// for another online state sends one missed.summary.
#include <doctest/doctest.h>

#include "tests/support/harness.h"

using namespace oms::test;
using boost::json::array;
using boost::json::value;

namespace {

// Sends while the recipient is in `state` and checks the whole §1.5 flow.
void check_missed_flow(const char* state) {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  auto bob = sign_in(omsd, kBob);
  bob->take("mailbox.drained");
  OMS_CHECK_TYPE(bob->set_presence(state), "ok");
  const Json r = alice->send(kBob, "Lunch?");
  OMS_CHECK_SENT(r, "missed");
  CHECK(str_of(r, "recipient") == state);
  const std::string id = str_of(r, "id");

  // The notice first, then the message itself.
  const auto until = bob->recv_until("message");
  const Json& m = until.frame;
  Json notice;
  for (const auto& f : until.skipped)
    if (type_of(f) == "missed") notice = f;
  INFO("notice: " << to_text(notice));
  INFO("message: " << to_text(m));
  REQUIRE_MESSAGE(type_of(notice) == "missed", "no missed notice before the message");
  CHECK(str_of(notice, "id") == id);
  CHECK(str_of(notice, "from") == kAlice);
  CHECK(is_iso8601_ms(str_of(notice, "sent_at")));
  CHECK(str_of(notice, "reason") == state);
  CHECK(str_of(notice, "preview") == "Lunch?");
  CHECK(str_of(m, "id") == id);
  CHECK(str_of(m, "kind") == "missed");
  CHECK(str_of(m, "body") == "Lunch?");
  CHECK(str_of(m, "sent_at") == str_of(notice, "sent_at"));
  CHECK(type_of(bob->ack_with_rid({id})) == "ok");
  wait_for_mailbox_count(omsd, kBob, 0);
}

}  // namespace

TEST_CASE("missed: a message to a dnd recipient is a missed notice then a missed message") {
  check_missed_flow("dnd");
}

TEST_CASE("missed: a message to a presenting recipient is a missed notice then a missed message") {
  check_missed_flow("presenting");
}

TEST_CASE("missed: every session of the recipient gets the notice") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  auto bob1 = sign_in(omsd, kBob);
  auto bob2 = sign_in(omsd, kBob);
  OMS_CHECK_TYPE(bob1->set_presence("dnd"), "ok");
  const Json r = alice->send(kBob, "quiet please");
  OMS_CHECK_SENT(r, "missed");
  CHECK(str_of(bob1->take("missed"), "id") == str_of(r, "id"));
  CHECK(str_of(bob2->take("missed"), "id") == str_of(r, "id"));
}

TEST_CASE("missed: an unacked missed message is delivered at the next sign-in as missed") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  std::string missed_id;
  {
    auto bob = sign_in(omsd, kBob);
    OMS_CHECK_TYPE(bob->set_presence("dnd"), "ok");
    const Json r = alice->send(kBob, "during dnd");
    OMS_CHECK_SENT(r, "missed");
    missed_id = str_of(r, "id");
    bob->take("missed");
    bob->take("message");
    bob->drop();  // gone without acking
  }
  wait_for_presence(omsd, kBob, "offline");
  const Json stored = alice->send(kBob, "while away");
  OMS_CHECK_SENT(stored, "stored");

  const Json info = user_info(omsd, kBob);
  CHECK(int_of(obj_of(info, "mailbox"), "count") == 2);
  CHECK(int_of(obj_of(info, "mailbox"), "missed") == 1);

  auto bob = connect_client(omsd);
  const Json w = bob->hello(omsd.token(kBob));
  INFO("welcome: " << to_text(w));
  CHECK(int_of(obj_of(w, "mailbox"), "count") == 2);
  CHECK(int_of(obj_of(w, "mailbox"), "missed") == 1);
  const auto msgs = bob->receive_messages(2);
  CHECK(ids_of(msgs) == std::vector<std::string>{missed_id, str_of(stored, "id")});
  CHECK(str_of(msgs[0], "kind") == "missed");
  CHECK(str_of(msgs[1], "kind") == "offline");
  bob->take("mailbox.drained");
}

TEST_CASE("missed: leaving dnd for available sends one summary of the unacked missed messages") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  auto carol = sign_in(omsd, kCarol);
  auto bob = sign_in(omsd, kBob);
  OMS_CHECK_TYPE(bob->set_presence("dnd"), "ok");
  OMS_CHECK_SENT(alice->send(kBob, "a1"), "missed");
  OMS_CHECK_SENT(alice->send(kBob, "a2"), "missed");
  const Json c1 = carol->send(kBob, "c1");
  OMS_CHECK_SENT(c1, "missed");
  const auto msgs = bob->take_n("message", 3);
  // Carol's is acked: it is no longer part of the digest.
  CHECK(type_of(bob->ack_with_rid({str_of(c1, "id")})) == "ok");
  bob->expect_no("missed.summary", std::chrono::milliseconds(1));

  OMS_CHECK_TYPE(bob->set_presence("available"), "ok");
  const Json s = bob->take("missed.summary");
  INFO("summary: " << to_text(s));
  CHECK(int_of(s, "count") == 2);
  const auto from = from_counts(arr_of(s, "from"));
  CHECK(from.size() == 1);
  CHECK(from.count(kAlice) == 1);
  if (from.count(kAlice) == 1 && from.at(kAlice) != 0) CHECK(from.at(kAlice) == 2);
  bob->expect_no("missed.summary");

  // Back in an online state: messages are live again, no summary.
  const Json live = alice->send(kBob, "now live");
  OMS_CHECK_SENT(live, "delivered");
  CHECK(str_of(bob->take("message"), "kind") == "live");
}

TEST_CASE("missed: leaving presenting for busy also sends a summary") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  auto bob = sign_in(omsd, kBob);
  OMS_CHECK_TYPE(bob->set_presence("presenting"), "ok");
  OMS_CHECK_SENT(alice->send(kBob, "during the talk"), "missed");
  bob->take("message");
  OMS_CHECK_TYPE(bob->set_presence("busy"), "ok");
  const Json s = bob->take("missed.summary");
  CHECK(int_of(s, "count") == 1);
  CHECK(from_counts(arr_of(s, "from")).count(kAlice) == 1);
}
