// Receipts (protocol.md 4.2), black box: for a message whose `sent` said
// stored or missed, the sender's devices later get exactly one receipt
// (delivered, expired or purged), stored in the sender's mailbox and acked
// per device like a message. Written from the contract alone.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/devices.h"

using namespace oms::test;
using boost::json::array;
using boost::json::value;

namespace {

// Every field of a receipt frame as the contract lists it.
void check_receipt(const Json& r, std::string_view msg, std::string_view cmid, std::string_view to,
                   std::string_view state, std::int64_t not_before_ms) {
  INFO("receipt: " << to_text(r));
  CHECK(type_of(r) == "receipt");
  CHECK(is_message_id(str_of(r, "id")));  // one namespace with message ids
  CHECK(str_of(r, "id") != msg);
  CHECK(str_of(r, "msg") == msg);
  CHECK(str_of(r, "client_msg_id") == cmid);
  CHECK(str_of(r, "to") == to);
  CHECK(str_of(r, "state") == state);
  const auto at = parse_iso8601_ms(str_of(r, "at"));
  REQUIRE(at.has_value());
  CHECK(*at >= not_before_ms - 5);  // the server's clock rounds to ms
  CHECK(*at <= unix_now_ms() + 5);
}

}  // namespace

TEST_CASE("receipts: one delivered receipt at the first ack by any recipient device") {
  OmsdProcess omsd;
  register_device(omsd, kBob, "desk");
  register_device(omsd, kBob, "phone");
  auto alice = sign_in_device(omsd, kAlice, "laptop");
  alice->take("mailbox.drained");
  const Json sent = alice->send(kBob, "how was it?", std::string("cm-1"));
  OMS_CHECK_SENT(sent, "stored");
  const std::string id = str_of(sent, "id");
  alice->expect_no("receipt", std::chrono::milliseconds(100));

  auto desk = sign_in_device(omsd, kBob, "desk");
  CHECK(str_of(desk->take("message"), "id") == id);
  const std::int64_t before_ack = unix_now_ms();
  OMS_CHECK_TYPE(desk->ack_with_rid({id}), "ok");
  const Json r = alice->take("receipt");
  check_receipt(r, id, "cm-1", kBob, "delivered", before_ack);

  // The phone's ack is not a second delivery.
  auto phone = sign_in_device(omsd, kBob, "phone");
  CHECK(str_of(phone->take("message"), "id") == id);
  OMS_CHECK_TYPE(phone->ack_with_rid({id}), "ok");
  wait_for_mailbox_count(omsd, kBob, 0);
  alice->expect_no("receipt");
  OMS_CHECK_TYPE(alice->ack_with_rid({str_of(r, "id")}), "ok");
}

TEST_CASE("receipts: none for a message whose sent said delivered") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  alice->take("mailbox.drained");
  auto bob = sign_in(omsd, kBob);
  bob->take("mailbox.drained");
  const Json sent = alice->send(kBob, "live");
  OMS_CHECK_SENT(sent, "delivered");
  CHECK(str_of(bob->take("message"), "id") == str_of(sent, "id"));
  OMS_CHECK_TYPE(bob->ack_with_rid({str_of(sent, "id")}), "ok");
  alice->expect_no("receipt", std::chrono::milliseconds(400));
  alice->close();
  auto again = sign_in(omsd, kAlice);
  CHECK(int_of(welcome_mailbox(*again), "receipts") == 0);
  again->take("mailbox.drained");
  again->expect_no("receipt", std::chrono::milliseconds(100));
}

TEST_CASE("receipts: a missed message gets a delivered receipt when acked") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  auto bob = sign_in(omsd, kBob);
  bob->take("mailbox.drained");
  OMS_CHECK_TYPE(bob->set_presence("dnd"), "ok");
  const Json sent = alice->send(kBob, "when you are free", std::string("cm-missed"));
  OMS_CHECK_SENT(sent, "missed");
  const Json m = bob->take("message");
  CHECK(str_of(m, "kind") == "missed");
  alice->expect_no("receipt", std::chrono::milliseconds(100));
  const std::int64_t before_ack = unix_now_ms();
  OMS_CHECK_TYPE(bob->ack_with_rid({str_of(m, "id")}), "ok");
  check_receipt(alice->take("receipt"), str_of(sent, "id"), "cm-missed", kBob, "delivered",
                before_ack);
}

TEST_CASE("receipts: a message dropped at expiry gets an expired receipt") {
  OmsdProcess omsd(with_config("[mailbox]\nttl_seconds = 1\nsweep_interval_seconds = 1\n"));
  auto alice = sign_in(omsd, kAlice);
  const std::int64_t t0 = unix_now_ms();
  const Json sent = alice->send(kBob, "too late", std::string("cm-exp"));
  OMS_CHECK_SENT(sent, "stored");
  const Json r = alice->take("receipt", std::chrono::seconds(15));
  check_receipt(r, str_of(sent, "id"), "cm-exp", kBob, "expired", t0 + 1000);
  CHECK(mailbox_count(omsd, kBob) == 0);
  alice->expect_no("receipt");
  // Bob never sees it, nor a receipt of his own.
  auto bob = sign_in(omsd, kBob);
  CHECK(int_of(welcome_mailbox(*bob), "count") == 0);
  bob->take("mailbox.drained");
  bob->expect_no("", std::chrono::milliseconds(100));
}

TEST_CASE("receipts: purging the recipient's mailbox gives purged receipts") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  alice->take("mailbox.drained");
  const Json s1 = alice->send(kBob, "one", std::string("cm-p1"));
  const Json s2 = alice->send(kBob, "two", std::string("cm-p2"));
  OMS_CHECK_SENT(s1, "stored");
  OMS_CHECK_SENT(s2, "stored");
  const std::int64_t before = unix_now_ms();
  const HttpResult purge = omsd.admin().del(std::string("/v1/users/") + kBob + "/mailbox");
  OMS_CHECK_HTTP(purge, 200);
  const auto receipts = alice->take_n("receipt", 2);
  const std::string first_msg = str_of(receipts[0], "msg");
  const bool in_order = first_msg == str_of(s1, "id");
  check_receipt(receipts[in_order ? 0 : 1], str_of(s1, "id"), "cm-p1", kBob, "purged", before);
  check_receipt(receipts[in_order ? 1 : 0], str_of(s2, "id"), "cm-p2", kBob, "purged", before);
  CHECK(str_of(receipts[0], "id") != str_of(receipts[1], "id"));
  alice->expect_no("receipt");
}

TEST_CASE("receipts: exactly one per message, the first ack's, even if a purge or expiry follows") {
  OmsdProcess omsd(with_config("[mailbox]\nttl_seconds = 2\nsweep_interval_seconds = 1\n"));
  register_device(omsd, kBob, "desk");
  register_device(omsd, kBob, "phone");
  auto alice = sign_in(omsd, kAlice);
  alice->take("mailbox.drained");
  const Json a = alice->send(kBob, "acked then purged");
  const Json b = alice->send(kBob, "acked then expired");
  OMS_CHECK_SENT(a, "stored");
  OMS_CHECK_SENT(b, "stored");
  auto desk = sign_in_device(omsd, kBob, "desk");
  desk->receive_messages(2, false);
  OMS_CHECK_TYPE(desk->ack_with_rid({str_of(a, "id"), str_of(b, "id")}), "ok");
  const auto delivered = alice->take_n("receipt", 2);
  for (const auto& r : delivered) CHECK(str_of(r, "state") == "delivered");
  // Still stored for the phone; then the purge removes them (or expiry did first).
  OMS_CHECK_HTTP(omsd.admin().del(std::string("/v1/users/") + kBob + "/mailbox"), 200);
  wait_for_mailbox_count(omsd, kBob, 0);
  // A sweep pass or two later: still no second receipt.
  alice->expect_no("receipt", std::chrono::milliseconds(2500));
}

TEST_CASE("receipts: reach an offline sender at next sign-in and survive a crash") {
  OmsdProcess omsd;
  std::string id;
  {
    auto alice = sign_in_device(omsd, kAlice, "laptop");
    const Json sent = alice->send(kBob, "while you were out", std::string("cm-off"));
    OMS_CHECK_SENT(sent, "stored");
    id = str_of(sent, "id");
    alice->close();
  }
  {
    auto bob = sign_in(omsd, kBob);
    CHECK(str_of(bob->take("message"), "id") == id);
    OMS_CHECK_TYPE(bob->ack_with_rid({id}), "ok");
  }
  const std::int64_t acked_by = unix_now_ms();
  // Durable no later than the recipient's ok: a crash right after loses nothing.
  omsd.kill();
  omsd.restart();
  auto alice = sign_in_device(omsd, kAlice, "laptop");
  const Json& mb = welcome_mailbox(*alice);
  INFO("welcome: " << to_text(alice->welcome()));
  CHECK(int_of(mb, "receipts") == 1);
  CHECK(int_of(mb, "count") == 0);
  const Json r = alice->take("receipt");
  check_receipt(r, id, "cm-off", kBob, "delivered", 0);
  CHECK(*parse_iso8601_ms(str_of(r, "at")) <= acked_by + 5);
  // Not acked: it comes again (same id) at the next sign-in, also after a clean restart.
  alice->close();
  omsd.restart();
  alice = sign_in_device(omsd, kAlice, "laptop");
  CHECK(int_of(welcome_mailbox(*alice), "receipts") == 1);
  const Json again = alice->take("receipt");
  CHECK(str_of(again, "id") == str_of(r, "id"));
  OMS_CHECK_TYPE(alice->ack_with_rid({str_of(r, "id")}), "ok");
  alice->take("mailbox.drained");
  alice->close();
  alice = sign_in_device(omsd, kAlice, "laptop");
  CHECK(int_of(welcome_mailbox(*alice), "receipts") == 0);
  alice->take("mailbox.drained");
  alice->expect_no("receipt", std::chrono::milliseconds(100));
}

TEST_CASE("receipts: go to every device of the sender and are acked per device") {
  OmsdProcess omsd;
  register_device(omsd, kAlice, "tablet");  // offline when the receipt is made
  auto laptop = sign_in_device(omsd, kAlice, "laptop");
  auto phone = sign_in_device(omsd, kAlice, "phone");
  auto legacy = sign_in(omsd, kAlice);  // receipts reach legacy sessions too
  laptop->take("mailbox.drained");
  phone->take("mailbox.drained");
  legacy->take("mailbox.drained");
  const Json sent = laptop->send(kBob, "to bob");
  OMS_CHECK_SENT(sent, "stored");
  {
    auto bob = sign_in(omsd, kBob);
    bob->take("message");
    OMS_CHECK_TYPE(bob->ack_with_rid({str_of(sent, "id")}), "ok");
  }
  const Json r1 = laptop->take("receipt");
  const Json r2 = phone->take("receipt");
  const Json r3 = legacy->take("receipt");
  const std::string rid = str_of(r1, "id");
  CHECK(str_of(r2, "id") == rid);
  CHECK(str_of(r3, "id") == rid);
  CHECK(str_of(r1, "msg") == str_of(sent, "id"));

  OMS_CHECK_TYPE(laptop->ack_with_rid({rid}), "ok");
  laptop->close();
  phone->close();  // never acked
  legacy->close();
  CHECK(mailbox_count(omsd, kAlice) == 0);  // receipts are not in mailbox.count

  laptop = sign_in_device(omsd, kAlice, "laptop");
  CHECK(int_of(welcome_mailbox(*laptop), "receipts") == 0);
  laptop->take("mailbox.drained");
  laptop->expect_no("receipt", std::chrono::milliseconds(100));
  for (const char* d : {"phone", "tablet"}) {
    INFO("device " << d);
    auto c = sign_in_device(omsd, kAlice, d);
    CHECK(int_of(welcome_mailbox(*c), "receipts") == 1);
    CHECK(str_of(c->take("receipt"), "id") == rid);
    OMS_CHECK_TYPE(c->ack_with_rid({rid}), "ok");
    c->take("mailbox.drained");
  }
  auto l2 = sign_in(omsd, kAlice);
  CHECK(int_of(welcome_mailbox(*l2), "receipts") == 1);  // legacy has not acked it
  CHECK(str_of(l2->take("receipt"), "id") == rid);
}

TEST_CASE("receipts: a message to oneself gets a receipt") {
  OmsdProcess omsd;
  auto alice = sign_in_device(omsd, kAlice, "laptop");
  alice->take("mailbox.drained");
  OMS_CHECK_TYPE(alice->set_presence("dnd"), "ok");
  const Json sent = alice->send(kAlice, "note to self", std::string("cm-self"));
  OMS_CHECK_SENT(sent, "missed");
  const Json m = alice->take("message");
  CHECK(str_of(m, "id") == str_of(sent, "id"));
  const std::int64_t before = unix_now_ms();
  OMS_CHECK_TYPE(alice->ack_with_rid({str_of(m, "id")}), "ok");
  check_receipt(alice->take("receipt"), str_of(sent, "id"), "cm-self", kAlice, "delivered", before);
  alice->expect_no("receipt");
}

TEST_CASE("receipts: the recipient's enable_delivery_receipts, read when stored, decides") {
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();
  auto alice = sign_in(omsd, kAlice);
  alice->take("mailbox.drained");
  auto deliver_and_ack = [&](std::string_view user, const std::vector<std::string>& ids) {
    auto c = sign_in(omsd, user);
    const auto got = c->receive_messages(ids.size(), false);
    OMS_CHECK_TYPE(c->ack_with_rid(ids), "ok");
    c->take("mailbox.drained");
  };

  // Global off: no receipt, even if it is switched back on before the ack.
  OMS_CHECK_HTTP(admin.patch("/v1/policies/Global", Json{{"enable_delivery_receipts", false}}), 200);
  const Json off = alice->send(kBob, "stored while off");
  OMS_CHECK_SENT(off, "stored");
  OMS_CHECK_HTTP(admin.patch("/v1/policies/Global", Json{{"enable_delivery_receipts", true}}), 200);
  const Json on = alice->send(kBob, "stored while on");
  OMS_CHECK_SENT(on, "stored");
  // Switched off after storing: the message still produces its receipt.
  OMS_CHECK_HTTP(admin.patch("/v1/policies/Global", Json{{"enable_delivery_receipts", false}}), 200);
  deliver_and_ack(kBob, {str_of(off, "id"), str_of(on, "id")});
  const Json r = alice->take("receipt");
  CHECK(str_of(r, "msg") == str_of(on, "id"));
  alice->expect_no("receipt");
  OMS_CHECK_HTTP(admin.patch("/v1/policies/Global", Json{{"enable_delivery_receipts", true}}), 200);

  // A granted policy: carol (recipient) has receipts off; the sender's own
  // policy does not matter.
  OMS_CHECK_HTTP(admin.post("/v1/policies",
                            Json{{"identity", "NoReceipts"}, {"enable_delivery_receipts", false}}),
                 201);
  OMS_CHECK_HTTP(admin.put(std::string("/v1/users/") + kCarol + "/policy", Json{{"policy", "NoReceipts"}}),
                 200);
  OMS_CHECK_HTTP(admin.put(std::string("/v1/users/") + kAlice + "/policy", Json{{"policy", "NoReceipts"}}),
                 200);
  const Json to_carol = alice->send(kCarol, "carol has receipts off");
  const Json to_dave = alice->send(kDave, "dave has them on");
  OMS_CHECK_SENT(to_carol, "stored");
  OMS_CHECK_SENT(to_dave, "stored");
  deliver_and_ack(kCarol, {str_of(to_carol, "id")});
  deliver_and_ack(kDave, {str_of(to_dave, "id")});
  const Json rd = alice->take("receipt");
  CHECK(str_of(rd, "msg") == str_of(to_dave, "id"));
  CHECK(str_of(rd, "to") == kDave);
  alice->expect_no("receipt");
}

TEST_CASE("receipts: not counted in the sender's GET /v1/users mailbox.count") {
  OmsdProcess omsd;
  {
    auto alice = sign_in(omsd, kAlice);
    for (int i = 0; i < 3; ++i) OMS_CHECK_SENT(alice->send(kBob, "r" + std::to_string(i)), "stored");
    alice->close();
  }
  auto bob = sign_in(omsd, kBob);
  const auto got = bob->receive_messages(3, false);
  OMS_CHECK_TYPE(bob->ack_with_rid(ids_of(got)), "ok");
  wait_for_mailbox_count(omsd, kBob, 0);
  CHECK(mailbox_count(omsd, kAlice) == 0);
  auto alice = sign_in(omsd, kAlice);
  CHECK(int_of(welcome_mailbox(*alice), "receipts") == 3);
  CHECK(int_of(welcome_mailbox(*alice), "count") == 0);
  const auto receipts = alice->take_n("receipt", 3);
  CHECK(mailbox_count(omsd, kAlice) == 0);
  // One per message (their order among one ack is not part of the contract).
  std::vector<std::string> msgs;
  for (const auto& r : receipts) msgs.push_back(str_of(r, "msg"));
  std::vector<std::string> want = ids_of(got);
  std::sort(msgs.begin(), msgs.end());
  std::sort(want.begin(), want.end());
  CHECK(msgs == want);
}

TEST_CASE("receipts: at most [receipts] max_per_mailbox are kept, the oldest dropped first") {
  OmsdProcess omsd(with_config("[receipts]\nmax_per_mailbox = 2\n"));
  std::vector<std::string> ids;
  {
    auto alice = sign_in(omsd, kAlice);
    for (int i = 0; i < 3; ++i) {
      const Json s = alice->send(kBob, "capped " + std::to_string(i));
      OMS_CHECK_SENT(s, "stored");
      ids.push_back(str_of(s, "id"));
    }
    alice->close();
  }
  auto bob = sign_in(omsd, kBob);
  bob->receive_messages(3, false);
  for (const auto& id : ids) OMS_CHECK_TYPE(bob->ack_with_rid({id}), "ok");  // one receipt each, in order
  auto alice = sign_in(omsd, kAlice);
  CHECK(int_of(welcome_mailbox(*alice), "receipts") == 2);
  const auto receipts = alice->take_n("receipt", 2);
  std::vector<std::string> msgs;
  for (const auto& r : receipts) msgs.push_back(str_of(r, "msg"));
  std::sort(msgs.begin(), msgs.end());
  CHECK(msgs == std::vector<std::string>{ids[1], ids[2]});
  for (const auto& r : receipts) OMS_CHECK_TYPE(alice->ack_with_rid({str_of(r, "id")}), "ok");
  alice->take("mailbox.drained");
  alice->expect_no("receipt", std::chrono::milliseconds(100));
}
