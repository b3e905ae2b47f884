// Expiry (mailbox.ttl_days): expired messages are never read, and the sweep
// removes and counts them.
#include <doctest/doctest.h>

#include "tests/unit/storage/store_test_util.h"

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;

TEST_SUITE("storage") {

TEST_CASE("expiry: expired messages are never read and the sweep removes and counts them") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-expiry");
    ManualClock clock;
    StoreOptions o = backend.options_in(dir);
    o.clock = &clock;
    o.ttl_ms_override = 1000;
    auto store = open_mailboxes(o);
    const std::int64_t t0 = clock.now_ms();

    for (int i = 0; i < 3; ++i) append_ok(*store, message("bob", "alice", "old"));
    append_ok(*store, message("carol", "alice", "old too"));
    clock.advance_ms(500);
    const auto young1 = append_ok(*store, message("bob", "alice", "young"));
    const auto young2 = append_ok(*store, message("bob", "carol", "young", "", proto::MessageKind::kMissed));

    clock.set_ms(t0 + 1000);  // exactly ttl old: not yet expired
    CHECK(read_all(*store, "bob").size() == 5);

    clock.set_ms(t0 + 1001);
    auto bob = read_all(*store, "bob");
    REQUIRE(bob.size() == 2);
    CHECK(bob[0].seq == young1);
    CHECK(bob[1].seq == young2);
    CHECK(read_all(*store, "carol").empty());
    auto sum = store->summary("bob", "");
    REQUIRE(sum.is_ok());
    CHECK(sum->count == 2);
    CHECK(sum->missed == 1);
    CHECK(sum->oldest_ms == t0 + 500);
    CHECK(store->stats("bob").count == 5);  // still on disk until the sweep

    auto swept = sweep_wait(*store);
    REQUIRE(swept.is_ok());
    CHECK(*swept == 4);
    CHECK(store->counters().expired_removed == 4);
    CHECK(store->stats("bob").count == 2);
    CHECK(store->stats("carol").count == 0);
    CHECK(store->counters().total_messages == 2);
    CHECK(*sweep_wait(*store) == 0);  // nothing more to do
    CHECK(read_all(*store, "bob").size() == 2);

    clock.advance_ms(10'000);
    CHECK(read_all(*store, "bob").empty());
    CHECK(*sweep_wait(*store) == 2);
    CHECK(store->counters().expired_removed == 6);
    CHECK(store->counters().total_messages == 0);
    CHECK(store->counters().total_bytes == 0);
  });
}

TEST_CASE("expiry: ttl_days, and ttl_days = 0 keeps messages for ever") {
  for_each_backend([](const BackendUnderTest& backend) {
    constexpr std::int64_t kDay = 24LL * 3600 * 1000;
    ManualClock clock;
    {
      TempDir dir("oms-storage-expiry-days");
      StoreOptions o = backend.options_in(dir);
      o.clock = &clock;
      o.ttl_days = 2;
      auto store = open_mailboxes(o);
      append_ok(*store, message("bob", "alice", "x"));
      clock.advance_ms(2 * kDay);
      CHECK(read_all(*store, "bob").size() == 1);
      clock.advance_ms(1);
      CHECK(read_all(*store, "bob").empty());
      CHECK(*sweep_wait(*store) == 1);
    }
    {
      TempDir dir("oms-storage-expiry-never");
      StoreOptions o = backend.options_in(dir);
      o.clock = &clock;
      o.ttl_days = 0;
      auto store = open_mailboxes(o);
      append_ok(*store, message("bob", "alice", "x"));
      clock.advance_ms(10'000 * kDay);
      CHECK(read_all(*store, "bob").size() == 1);
      CHECK(*sweep_wait(*store) == 0);
      CHECK(store->stats("bob").count == 1);
    }
  });
}

TEST_CASE("expiry: sweeping many mailboxes removes only the expired head of each") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-expiry-many");
    ManualClock clock;
    StoreOptions o = backend.options_in(dir);
    o.clock = &clock;
    o.ttl_ms_override = 100;
    auto store = open_mailboxes(o);
    CompletionLatch old_ones(200);
    for (int i = 0; i < 200; ++i)
      store->append(message(fmt::format("u{}", i % 50), "alice", "old"), [&](Result<AppendResult> r) {
        CHECK(r.is_ok());
        old_ones.count_down();
      });
    old_ones.wait();
    clock.advance_ms(101);
    for (int i = 0; i < 25; ++i) append_ok(*store, message(fmt::format("u{}", i), "alice", "new"));
    clock.advance_ms(1);
    CHECK(*sweep_wait(*store) == 200);
    for (int i = 0; i < 50; ++i) {
      auto msgs = read_all(*store, fmt::format("u{}", i));
      CHECK(msgs.size() == (i < 25 ? 1u : 0u));
      CHECK(store->stats(fmt::format("u{}", i)).count == (i < 25 ? 1u : 0u));
    }
    CHECK(store->counters().total_messages == 25);
  });
}

}  // TEST_SUITE
