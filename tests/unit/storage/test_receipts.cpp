// Receipts (contract 4.2) in the store: exactly one per message that wants
// one, written with the change that caused it, in the sender's mailbox.
#include <chrono>
#include <condition_variable>
#include <mutex>

#include <doctest/doctest.h>

#include "tests/unit/storage/store_test_util.h"

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;
using proto::ReceiptState;

namespace {

AppendRequest wanting_receipt(std::string to, std::string from, std::string body, std::string cmid = {}) {
  AppendRequest r = message(std::move(to), std::move(from), std::move(body), std::move(cmid));
  r.want_receipt = true;
  return r;
}

std::vector<StoredMessage> receipts_in(const MailboxStore& s, std::string_view mailbox) {
  std::vector<StoredMessage> out;
  for (auto& m : read_all(s, mailbox))
    if (m.receipt) out.push_back(std::move(m));
  return out;
}

}  // namespace

TEST_SUITE("storage") {

TEST_CASE("receipts: delivered at the first device's ack, once, with the message's ids") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-receipts");
    auto store = open_mailboxes(backend.options_in(dir));
    std::mutex mu;
    std::condition_variable cv;
    std::vector<NewReceipt> pushed;
    store->set_receipt_listener([&](const std::vector<NewReceipt>& r) {
      std::lock_guard lock(mu);
      pushed.insert(pushed.end(), r.begin(), r.end());
      cv.notify_all();
    });
    REQUIRE(sign_in_wait(*store, "bob", "desk").is_ok());
    REQUIRE(sign_in_wait(*store, "bob", "phone").is_ok());
    const auto m = append_ok(*store, wanting_receipt("bob", "alice", "hi", "c-1"));
    const auto quiet = append_ok(*store, message("bob", "alice", "no receipt"));
    CHECK(receipts_in(*store, "alice").empty());

    REQUIRE(ack_wait(*store, "bob", "desk", {m, quiet}).is_ok());
    auto r = receipts_in(*store, "alice");
    REQUIRE(r.size() == 1);
    CHECK(r[0].seq > quiet);  // one id namespace
    CHECK(r[0].receipt->msg_seq == m);
    CHECK(r[0].receipt->client_msg_id == "c-1");
    CHECK(r[0].receipt->to == "bob");
    CHECK(r[0].receipt->state == ReceiptState::kDelivered);
    {
      // (published right after the ack's own callback, on the same thread)
      std::unique_lock lock(mu);
      REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return !pushed.empty(); }));
      REQUIRE(pushed.size() == 1);
      CHECK(pushed[0].mailbox == "alice");
      CHECK(pushed[0].seq == r[0].seq);
    }
    REQUIRE(ack_wait(*store, "bob", "phone", {m}).is_ok());  // the second ack: no second receipt
    CHECK(receipts_in(*store, "alice").size() == 1);
    CHECK(store->stats("alice").count == 0);  // receipts are not messages
    CHECK(store->stats("alice").receipts == 1);
    CHECK(store->summary("alice", "")->receipts == 1);
    CHECK(store->summary("alice", "")->count == 0);

    // The sender's devices ack the receipt like a message.
    REQUIRE(sign_in_wait(*store, "alice", "laptop").is_ok());
    REQUIRE(sign_in_wait(*store, "alice", "tablet").is_ok());
    REQUIRE(ack_wait(*store, "alice", "laptop", {r[0].seq}).is_ok());
    CHECK(read_for(*store, "alice", "laptop").empty());
    CHECK(read_for(*store, "alice", "tablet").size() == 1);
    REQUIRE(ack_wait(*store, "alice", "tablet", {r[0].seq}).is_ok());
    CHECK(store->stats("alice").receipts == 0);
  });
}

TEST_CASE("receipts: forgetting the device that acked makes no second receipt") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-receipts-forget");
    auto store = open_mailboxes(backend.options_in(dir));
    REQUIRE(sign_in_wait(*store, "bob", "desk").is_ok());
    REQUIRE(sign_in_wait(*store, "bob", "phone").is_ok());
    const auto m = append_ok(*store, wanting_receipt("bob", "alice", "hi"));
    REQUIRE(ack_wait(*store, "bob", "desk", {m}).is_ok());
    REQUIRE(forget_wait(*store, "bob", "desk").is_ok());
    CHECK(read_for(*store, "bob", "phone").size() == 1);
    REQUIRE(ack_wait(*store, "bob", "phone", {m}).is_ok());
    CHECK(receipts_in(*store, "alice").size() == 1);
    CHECK(store->stats("bob").count == 0);
  });
}

TEST_CASE("receipts: want_receipt gives a message stored without one exactly one receipt") {
  // The server calls it when a send decided `delivered` finds no session
  // left once durable: `sent` says stored, so a receipt is owed (4.2).
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-receipts-late");
    auto store = open_mailboxes(backend.options_in(dir));
    REQUIRE(sign_in_wait(*store, "bob", "desk").is_ok());
    REQUIRE(sign_in_wait(*store, "bob", "phone").is_ok());
    const auto unread = append_ok(*store, message("bob", "alice", "not acked yet", "c-1"));
    const auto half = append_ok(*store, message("bob", "alice", "acked by one device", "c-2"));
    const auto gone = append_ok(*store, message("bob", "alice", "acked by both", "c-3"));
    REQUIRE(ack_wait(*store, "bob", "desk", {half, gone}).is_ok());
    REQUIRE(ack_wait(*store, "bob", "phone", {gone}).is_ok());
    CHECK(receipts_in(*store, "alice").empty());

    // Acked by a device already, or gone: delivered at once.
    CHECK(want_receipt_wait(*store, "bob", half, "alice", "c-2").value() == 1);
    CHECK(want_receipt_wait(*store, "bob", gone, "alice", "c-3").value() == 1);
    // Not acked yet: marked (twice is once), delivered at the first ack.
    CHECK(want_receipt_wait(*store, "bob", unread, "alice", "c-1").value() == 1);
    CHECK(want_receipt_wait(*store, "bob", unread, "alice", "c-1").value() == 1);
    CHECK(want_receipt_wait(*store, "bob", half, "alice", "c-2").value() == 1);  // not a second one
    auto r = receipts_in(*store, "alice");
    REQUIRE(r.size() == 2);
    CHECK(r[0].receipt->msg_seq == half);
    CHECK(r[0].receipt->client_msg_id == "c-2");
    CHECK(r[1].receipt->msg_seq == gone);
    CHECK(r[1].receipt->state == ReceiptState::kDelivered);

    REQUIRE(ack_wait(*store, "bob", "phone", {unread, half}).is_ok());
    REQUIRE(ack_wait(*store, "bob", "desk", {unread}).is_ok());
    r = receipts_in(*store, "alice");
    REQUIRE(r.size() == 3);
    CHECK(r[2].receipt->msg_seq == unread);
    CHECK(r[2].receipt->client_msg_id == "c-1");
    CHECK(store->stats("bob").count == 0);
    CHECK(store->stats("bob").bytes == 0);
  });
}

TEST_CASE("receipts: expired and purged, only for messages never acked, a message to oneself too") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-receipts-expiry");
    ManualClock clock;
    StoreOptions o = backend.options_in(dir);
    o.clock = &clock;
    o.ttl_ms_override = 1000;
    auto store = open_mailboxes(o);
    REQUIRE(sign_in_wait(*store, "bob", "desk").is_ok());
    REQUIRE(sign_in_wait(*store, "bob", "phone").is_ok());
    const auto never = append_ok(*store, wanting_receipt("bob", "alice", "never acked", "x"));
    const auto half = append_ok(*store, wanting_receipt("bob", "alice", "acked by one"));
    clock.advance_ms(600);
    REQUIRE(ack_wait(*store, "bob", "desk", {half}).is_ok());  // delivered receipt now
    clock.advance_ms(401);  // the messages expire; the receipt (600 ms younger) does not
    REQUIRE(sweep_wait(*store).is_ok());
    CHECK(store->stats("bob").count == 0);
    auto r = receipts_in(*store, "alice");
    REQUIRE(r.size() == 2);
    CHECK(r[0].receipt->msg_seq == half);
    CHECK(r[0].receipt->state == ReceiptState::kDelivered);
    CHECK(r[1].receipt->msg_seq == never);
    CHECK(r[1].receipt->state == ReceiptState::kExpired);
    CHECK(r[1].receipt->client_msg_id == "x");

    REQUIRE(ack_wait(*store, "alice", "", {r[0].seq, r[1].seq}).is_ok());
    CHECK(store->stats("alice").receipts == 0);

    const auto p1 = append_ok(*store, wanting_receipt("bob", "alice", "purged"));
    const auto self = append_ok(*store, wanting_receipt("alice", "alice", "note to self"));
    REQUIRE(*purge_wait(*store, "bob") == 1);
    r = receipts_in(*store, "alice");
    REQUIRE(r.size() == 1);
    CHECK(r[0].receipt->msg_seq == p1);
    CHECK(r[0].receipt->state == ReceiptState::kPurged);
    REQUIRE(ack_wait(*store, "alice", "", {self}).is_ok());
    r = receipts_in(*store, "alice");
    REQUIRE(r.size() == 2);
    CHECK(r[1].receipt->msg_seq == self);
    CHECK(r[1].receipt->to == "alice");
  });
}

TEST_CASE("receipts: at most max_receipts_per_mailbox, oldest dropped") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-receipts-cap");
    StoreOptions o = backend.options_in(dir);
    o.max_receipts_per_mailbox = 3;
    auto store = open_mailboxes(o);
    std::vector<std::uint64_t> msgs;
    for (int i = 0; i < 5; ++i) msgs.push_back(append_ok(*store, wanting_receipt("bob", "alice", "m")));
    REQUIRE(ack_wait(*store, "bob", "", {msgs[0], msgs[1]}).is_ok());
    for (int i = 2; i < 5; ++i) REQUIRE(ack_wait(*store, "bob", "", {msgs[static_cast<std::size_t>(i)]}).is_ok());
    auto r = receipts_in(*store, "alice");
    REQUIRE(r.size() == 3);
    CHECK(r[0].receipt->msg_seq == msgs[2]);
    CHECK(r[2].receipt->msg_seq == msgs[4]);
    CHECK(store->stats("alice").receipts == 3);
    CHECK(store->counters().receipts_dropped.load() == 2);
  });
}

}  // TEST_SUITE
