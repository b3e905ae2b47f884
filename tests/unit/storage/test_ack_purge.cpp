// Acknowledging (deleting) messages and purging whole mailboxes.
#include <algorithm>

#include <doctest/doctest.h>

#include "tests/unit/storage/store_test_util.h"

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;

TEST_SUITE("storage") {

TEST_CASE("ack: removes the mailbox's own ids, ignores foreign and unknown ones") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-ack");
    auto store = open_mailboxes(backend.options_in(dir));
    std::vector<std::uint64_t> bob, carol;
    for (int i = 0; i < 5; ++i) bob.push_back(append_ok(*store, message("bob", "alice", "bbbb")));
    for (int i = 0; i < 2; ++i) carol.push_back(append_ok(*store, message("carol", "alice", "cc")));

    // Two of bob's, one of carol's (foreign), one that never existed, a repeat.
    auto r = ack_wait(*store, "bob", {bob[0], bob[2], carol[0], 999'999, bob[2]});
    REQUIRE(r.is_ok());
    CHECK(*r == 2);

    auto left = read_all(*store, "bob");
    REQUIRE(left.size() == 3);
    CHECK(left[0].seq == bob[1]);
    CHECK(left[1].seq == bob[3]);
    CHECK(left[2].seq == bob[4]);
    CHECK(read_all(*store, "carol").size() == 2);  // untouched
    CHECK(store->stats("bob").count == 3);
    CHECK(store->stats("bob").bytes == 12);
    CHECK(store->stats("carol").count == 2);
    CHECK(store->counters().acked == 2);
    CHECK(store->counters().total_messages == 5);
    CHECK(store->counters().total_bytes == 12 + 4);

    // Acking again removes nothing; an empty list and an unknown mailbox too.
    CHECK(*ack_wait(*store, "bob", {bob[0], bob[2]}) == 0);
    CHECK(*ack_wait(*store, "bob", {}) == 0);
    CHECK(*ack_wait(*store, "nobody", {bob[1]}) == 0);
    CHECK(*ack_wait(*store, "bob", {bob[1], bob[3], bob[4]}) == 3);
    CHECK(read_all(*store, "bob").empty());
    CHECK(store->stats("bob").count == 0);
    CHECK(store->stats("bob").bytes == 0);
    CHECK(store->counters().acked == 5);
  });
}

TEST_CASE("ack_unsynced: applied at once and read back as acked, and a synced ack after it answers for both") {
  // An ack nobody is promised (no rid) may commit without a sync of its
  // own (RocksDB: no fdatasync; PostgreSQL syncs it as any ack); what it
  // does is the same as ack's.
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-ack-unsynced");
    auto store = open_mailboxes(backend.options_in(dir));
    std::vector<std::uint64_t> bob;
    for (int i = 0; i < 4; ++i) bob.push_back(append_ok(*store, message("bob", "alice", "bbbb")));
    auto r = ack_unsynced_wait(*store, "bob", {bob[0], bob[1], 999'999});
    REQUIRE(r.is_ok());
    CHECK(*r == 2);
    auto left = read_all(*store, "bob");
    REQUIRE(left.size() == 2);
    CHECK(left[0].seq == bob[2]);
    CHECK(store->stats("bob").count == 2);
    // A synced ack of the same and the rest: the first two count no more.
    CHECK(*ack_wait(*store, "bob", {bob[0], bob[1], bob[2], bob[3]}) == 2);
    CHECK(read_all(*store, "bob").empty());
    CHECK(store->counters().acked == 4);
  });
}

TEST_CASE("ack: an acked message frees its quota slot") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-ack-quota");
    StoreOptions o = backend.options_in(dir);
    o.max_messages = 2;
    auto store = open_mailboxes(o);
    const auto a = append_ok(*store, message("bob", "alice", "1"));
    append_ok(*store, message("bob", "alice", "2"));
    CHECK(append_wait(*store, message("bob", "alice", "3")).status().code() == Code::kMailboxFull);
    CHECK(*ack_wait(*store, "bob", {a}) == 1);
    append_ok(*store, message("bob", "alice", "3"));
  });
}

TEST_CASE("purge: deletes the whole mailbox and nothing else") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-purge");
    auto store = open_mailboxes(backend.options_in(dir));
    for (int i = 0; i < 300; ++i) append_ok(*store, message("bob", "alice", "xyz"));
    append_ok(*store, message("bo", "alice", "prefix of bob"));
    append_ok(*store, message("bobby", "alice", "bob is a prefix"));

    auto r = purge_wait(*store, "bob");
    REQUIRE(r.is_ok());
    CHECK(*r == 300);
    CHECK(read_all(*store, "bob").empty());
    CHECK(store->stats("bob").count == 0);
    CHECK(read_all(*store, "bo").size() == 1);
    CHECK(read_all(*store, "bobby").size() == 1);
    CHECK(store->counters().purged == 300);
    CHECK(store->counters().total_messages == 2);

    CHECK(*purge_wait(*store, "bob") == 0);
    CHECK(*purge_wait(*store, "nobody") == 0);
    // The mailbox is usable again and its quota is back.
    append_ok(*store, message("bob", "alice", "again"));
    CHECK(store->stats("bob").count == 1);
  });
}

TEST_CASE("purge and ack queued together see each other's effects") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-purge-batch");
    auto store = open_mailboxes(backend.options_in(dir));
    std::vector<std::uint64_t> seqs;
    for (int i = 0; i < 10; ++i) seqs.push_back(append_ok(*store, message("bob", "alice", "x")));
    // Queued back to back, these usually share one batch; either way the
    // answers must be the same.
    std::promise<Result<std::uint64_t>> p1, p2, p3;
    auto f1 = p1.get_future(), f2 = p2.get_future(), f3 = p3.get_future();
    store->ack("bob", "", {seqs[0], seqs[1]}, [&](Result<std::uint64_t> r) { p1.set_value(r); });
    store->purge("bob", [&](Result<std::uint64_t> r) { p2.set_value(r); });
    store->ack("bob", "", {seqs[2]}, [&](Result<std::uint64_t> r) { p3.set_value(r); });
    CHECK(*wait_result(f1) == 2);
    CHECK(*wait_result(f2) == 8);
    CHECK(*wait_result(f3) == 0);
    CHECK(store->stats("bob").count == 0);
    CHECK(store->counters().total_messages == 0);
  });
}


// Requests queued while the writer is held all land in one batch, where each
// must see what the earlier ones did before any of it is written: an append
// acked, a dedup entry hit, a purge taking messages appended just before it.
TEST_CASE("one batch: each request sees the effects of the earlier ones of the batch") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-one-batch");
    StoreOptions o = backend.options_in(dir);
    WriterGate gate(o);
    auto store = open_mailboxes(o);
    const std::uint64_t base = store->last_seq();

    std::promise<Result<AppendResult>> blocker;
    auto blocker_f = blocker.get_future();
    store->append(message("zed", "alice", "hold"), [&](Result<AppendResult> r) { blocker.set_value(r); });
    gate.wait_entered();  // the writer is inside batch 1; what follows queues up

    std::vector<std::promise<Result<AppendResult>>> appended(5);
    std::vector<std::promise<Result<std::uint64_t>>> counted(4);
    auto with_id = [](AppendRequest r, std::string id) {
      r.client_msg_id = std::move(id);
      return r;
    };
    auto put = [&](int i, AppendRequest r) {
      store->append(std::move(r), [&, i](Result<AppendResult> res) { appended[i].set_value(res); });
    };
    auto count = [&](int i) { return [&, i](Result<std::uint64_t> r) { counted[i].set_value(r); }; };
    put(0, with_id(message("bob", "alice", "one"), "c1"));  // base+2
    put(1, with_id(message("bob", "alice", "one again"), "c1"));  // duplicate of base+2
    store->ack("bob", "", {base + 2, base + 2}, count(0));            // 1: the repeat is gone already
    put(2, message("bob", "alice", "two"));                     // base+3
    store->purge("bob", count(1));                              // 1: base+3 only
    put(3, message("bob", "alice", "three!"));                  // base+4
    store->ack("bob", "", {base + 3}, count(2));                    // 0: purged above
    put(4, message("carol", "alice", "c"));                     // base+5
    store->ack("bob", "", {base + 5}, count(3));                    // 0: carol's, not bob's
    gate.release();

    auto blocked = blocker_f.get();
    REQUIRE(blocked.is_ok());
    CHECK(blocked->seq == base + 1);
    std::vector<Result<AppendResult>> a;
    for (auto& p : appended) {
      auto f = p.get_future();
      a.push_back(wait_result(f));
    }
    std::vector<Result<std::uint64_t>> c;
    for (auto& p : counted) {
      auto f = p.get_future();
      c.push_back(wait_result(f));
    }
    CHECK(gate.writes() == 2);  // everything after the blocker was one batch
    REQUIRE(a[0].is_ok());
    CHECK(a[0]->seq == base + 2);
    CHECK_FALSE(a[0]->duplicate);
    REQUIRE(a[1].is_ok());
    CHECK(a[1]->duplicate);
    CHECK(a[1]->seq == base + 2);
    REQUIRE(a[2].is_ok());
    CHECK(a[2]->seq == base + 3);
    REQUIRE(a[3].is_ok());
    CHECK(a[3]->seq == base + 4);
    REQUIRE(a[4].is_ok());
    CHECK(a[4]->seq == base + 5);
    CHECK(*c[0] == 1);
    CHECK(*c[1] == 1);
    CHECK(*c[2] == 0);
    CHECK(*c[3] == 0);
    CHECK(store->stats("carol").count == 1);
    CHECK(read_all(*store, "carol").size() == 1);

    auto left = read_all(*store, "bob");
    REQUIRE(left.size() == 1);
    CHECK(left[0].seq == base + 4);
    CHECK(store->stats("bob").count == 1);
    CHECK(store->stats("bob").bytes == 6);
    CHECK(store->counters().total_messages == 3);  // zed's, bob's last and carol's
    // The dedup entry written in the batch is durable like the rest.
    auto again = append_wait(*store, with_id(message("bob", "alice", "x"), "c1"));
    REQUIRE(again.is_ok());
    CHECK(again->duplicate);
    CHECK(again->seq == base + 2);
  });
}

TEST_CASE("one batch: a full mailbox's ack frees its slot for an append queued after it, among other acks and appends") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-ack-then-append");
    StoreOptions o = backend.options_in(dir);
    o.max_messages = 2;
    std::uint64_t b1 = 0, c1 = 0;
    {
      auto first = open_mailboxes(o);
      b1 = append_ok(*first, message("bob", "alice", "1"));
      append_ok(*first, message("bob", "alice", "2"));
      c1 = append_ok(*first, message("carol", "dave", "1"));
    }
    WriterGate gate(o);
    auto store = open_mailboxes(o);
    std::promise<Result<AppendResult>> blocker;
    auto blocker_f = blocker.get_future();
    store->append(message("zed", "alice", "hold"), [&](Result<AppendResult> r) { blocker.set_value(r); });
    gate.wait_entered();  // what follows is one batch

    std::promise<Result<std::uint64_t>> acked_carol, acked_bob;
    auto acked_carol_f = acked_carol.get_future(), acked_bob_f = acked_bob.get_future();
    std::promise<Result<AppendResult>> before, after;
    auto before_f = before.get_future(), after_f = after.get_future();
    store->ack("carol", "", {c1}, [&](Result<std::uint64_t> r) { acked_carol.set_value(r); });
    store->append(message("bob", "alice", "3"), [&](Result<AppendResult> r) { before.set_value(r); });  // full
    store->ack("bob", "", {b1}, [&](Result<std::uint64_t> r) { acked_bob.set_value(r); });
    store->append(message("bob", "alice", "4"), [&](Result<AppendResult> r) { after.set_value(r); });  // room
    gate.release();
    REQUIRE(wait_result(blocker_f).is_ok());
    CHECK(*wait_result(acked_carol_f) == 1);
    CHECK(wait_result(before_f).status().code() == Code::kMailboxFull);
    CHECK(*wait_result(acked_bob_f) == 1);
    REQUIRE(wait_result(after_f).is_ok());
    CHECK(gate.writes() == 2);
    CHECK(store->stats("bob").count == 2);
    CHECK(read_all(*store, "bob").size() == 2);
    CHECK(store->stats("carol").count == 0);
  });
}

TEST_CASE("ack: ids far apart, unsorted and repeated, among foreign and unknown ones, are all found") {
  // The ack reads its messages in one walk of the mailbox, seeking again
  // when the next id is more than 16 entries on: ids 40 apart, the walk's
  // last entry, and ids it must not find (another mailbox's, one past the
  // end) mixed in.
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-ack-far");
    auto store = open_mailboxes(backend.options_in(dir));
    std::vector<std::uint64_t> bob;
    for (int i = 0; i < 100; ++i) {
      bob.push_back(append_ok(*store, message("bob", "alice", "m" + std::to_string(i))));
      if (i == 50) append_ok(*store, message("carol", "alice", "not bob's"));
    }
    const std::uint64_t carols = bob[50] + 1;
    REQUIRE(ack_wait(*store, "bob", {bob[99], bob[0], bob[40], carols, bob[40], bob[80], bob[99] + 1000}).value() == 4);
    auto left = seqs_of(read_all(*store, "bob"));
    CHECK(left.size() == 96);
    for (std::uint64_t gone : {bob[0], bob[40], bob[80], bob[99]})
      CHECK(std::find(left.begin(), left.end(), gone) == left.end());
    CHECK(store->stats("bob").count == 96);
    CHECK(read_all(*store, "carol").size() == 1);
    // A second walk over the tombstones the first left finds the rest.
    std::vector<std::uint64_t> rest(left.begin(), left.end());
    REQUIRE(ack_wait(*store, "bob", rest).value() == 96);
    CHECK(read_all(*store, "bob").empty());
    CHECK(store->stats("bob").count == 0);
  });
}

}  // TEST_SUITE
