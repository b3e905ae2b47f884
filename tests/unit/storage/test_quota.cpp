// Mailbox quotas: count and body bytes, exact under concurrency.
#include <doctest/doctest.h>

#include <thread>

#include "tests/unit/storage/store_test_util.h"

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;

TEST_SUITE("storage") {

TEST_CASE("quota: the append past max_messages is refused and stores nothing") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-quota-count");
    StoreOptions o = backend.options_in(dir);
    o.max_messages = 3;
    auto store = open_mailboxes(o);
    for (int i = 0; i < 3; ++i) append_ok(*store, message("bob", "alice", "x"));
    const auto last = store->last_seq();
    auto r = append_wait(*store, message("bob", "alice", "one too many"));
    CHECK(r.status().code() == Code::kMailboxFull);
    CHECK(read_all(*store, "bob").size() == 3);
    CHECK(store->stats("bob").count == 3);
    CHECK(store->last_seq() == last);
    CHECK(store->counters().refused_full == 1);
    append_ok(*store, message("carol", "alice", "another mailbox is not affected"));
  });
}

TEST_CASE("quota: the append past max_bytes is refused and stores nothing") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-quota-bytes");
    StoreOptions o = backend.options_in(dir);
    o.max_bytes = 100;
    auto store = open_mailboxes(o);
    append_ok(*store, message("bob", "alice", std::string(60, 'a')));
    CHECK(append_wait(*store, message("bob", "alice", std::string(41, 'b'))).status().code() ==
          Code::kMailboxFull);
    append_ok(*store, message("bob", "alice", std::string(40, 'c')));  // exactly 100
    CHECK(append_wait(*store, message("bob", "alice", "d")).status().code() == Code::kMailboxFull);
    CHECK(append_wait(*store, message("carol", "alice", std::string(101, 'e'))).status().code() ==
          Code::kMailboxFull);
    append_ok(*store, message("bob", "alice", ""));  // an empty body still fits the bytes
    CHECK(store->stats("bob").bytes == 100);
    CHECK(store->stats("bob").count == 3);
    CHECK(read_all(*store, "carol").empty());
  });
}

TEST_CASE("quota: 16 threads racing for the last slots never exceed the max") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-quota-race");
    StoreOptions o = backend.options_in(dir);
    o.max_messages = 100;
    o.max_bytes = 100 * 10;
    auto store = open_mailboxes(o);
    CompletionLatch prefill(90);
    for (int i = 0; i < 90; ++i)
      store->append(message("bob", "alice", std::string(10, 'p')),
                    [&](Result<AppendResult> r) {
                      CHECK(r.is_ok());
                      prefill.count_down();
                    });
    prefill.wait();

    // kThreads x kEach appends of 10-byte bodies at once; how they ended.
    constexpr int kThreads = 16, kEach = 5;
    struct Outcome {
      std::atomic<int> ok{0}, full{0}, other{0};
    };
    auto race = [&](char fill, Outcome& out) {
      CompletionLatch latch(kThreads * kEach);
      std::vector<std::thread> threads;
      for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&] {
          for (int i = 0; i < kEach; ++i)
            store->append(message("bob", "racer", std::string(10, fill)), [&](Result<AppendResult> r) {
              if (r)
                ++out.ok;
              else if (r.status().code() == Code::kMailboxFull)
                ++out.full;
              else
                ++out.other;
              latch.count_down();
            });
        });
      for (auto& th : threads) th.join();
      latch.wait();
    };
    Outcome count_race;
    race('r', count_race);
    auto& [ok, full, other] = count_race;
    CHECK(ok == 10);
    CHECK(full == kThreads * kEach - 10);
    CHECK(other == 0);
    CHECK(store->stats("bob").count == 100);
    CHECK(read_all(*store, "bob").size() == 100);

    // The same race on bytes, with the count limit out of the way.
    auto msgs = read_all(*store, "bob");
    std::vector<std::uint64_t> first20;
    for (int i = 0; i < 20; ++i) first20.push_back(msgs[i].seq);
    CHECK(*ack_wait(*store, "bob", first20) == 20);
    store.reset();
    o.max_messages = 1000;
    o.max_bytes = 90 * 10;  // 80 stored (800 bytes): room for exactly ten 10-byte bodies
    store = open_mailboxes(o);
    Outcome bytes_race;
    race('s', bytes_race);
    CHECK(bytes_race.ok == 10);
    CHECK(bytes_race.other == 0);
    CHECK(store->stats("bob").bytes == 900);
    CHECK(store->stats("bob").count == 90);
  });
}

TEST_CASE("quota: the totals after a reopen are counted from the records") {
  // Format version 3 keeps no meta record: a reopen (and a crash) counts the
  // messages, their bytes and the receipts from what is stored.
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-quota-reopen");
    StoreOptions o = backend.options_in(dir);
    o.max_messages = 3;
    std::uint64_t first = 0;
    {
      auto store = open_mailboxes(o);
      AppendRequest wants = message("bob", "alice", "12345", "c1");
      wants.want_receipt = true;
      first = append_ok(*store, wants);
      append_ok(*store, message("bob", "alice", "123"));
      append_ok(*store, message("bob", "carol", "1"));
      append_ok(*store, message("dave", "carol", "1234567"));
      REQUIRE(ack_wait(*store, "bob", {first}).is_ok());  // makes alice's delivered receipt
      CHECK(store->stats("bob").count == 2);
    }
    auto store = open_mailboxes(o);
    CHECK(store->stats("bob").count == 2);
    CHECK(store->stats("bob").bytes == 4);
    CHECK(store->stats("dave").count == 1);
    CHECK(store->stats("dave").bytes == 7);
    CHECK(store->stats("alice").receipts == 1);
    CHECK(store->stats("nobody").count == 0);
    append_ok(*store, message("bob", "alice", "x"));  // the third
    CHECK(append_wait(*store, message("bob", "alice", "y")).status().code() == Code::kMailboxFull);
    CHECK(store->stats("bob").count == 3);
  });
}

}  // TEST_SUITE
