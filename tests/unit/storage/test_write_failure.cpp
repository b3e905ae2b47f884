// A failed batch write: every request of it gets io_error, nothing of it is
// visible, quotas are not consumed, and writable() tells until a write works.
#include <doctest/doctest.h>

#include "tests/unit/storage/store_test_util.h"

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;

TEST_SUITE("storage") {

TEST_CASE("write failure: io_error for the whole batch, meta rolled back, then recovery") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-write-failure");
    std::atomic<bool> fail{false};
    std::atomic<int> writes_failed{0};
    StoreOptions o = backend.options_in(dir);
    o.max_messages = 3;
    o.inject_write_error = [&]() -> Status {
      if (!fail.load()) return Status::ok();
      ++writes_failed;
      return Status::io_error("injected: disk on fire");
    };
    auto store = open_mailboxes(o);
    const auto first = append_ok(*store, message("bob", "alice", "one"));
    CHECK(store->writable());

    fail = true;
    // A writer callback that blocks makes the next requests queue up together,
    // so that they share one failing batch.
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    std::promise<Result<AppendResult>> gate_result;
    auto gate_future = gate_result.get_future();
    store->append(message("bob", "alice", "gate"), [&](Result<AppendResult> r) {
      gate_result.set_value(r);
      released.wait();
    });
    CHECK(wait_result(gate_future).status().code() == Code::kIoError);
    std::vector<std::future<Result<AppendResult>>> appends;
    std::vector<std::promise<Result<AppendResult>>> promises(3);
    for (auto& p : promises) {
      appends.push_back(p.get_future());
      store->append(message("bob", "alice", "two"),
                    [&p](Result<AppendResult> r) { p.set_value(std::move(r)); });
    }
    std::promise<Result<std::uint64_t>> ack_p;
    auto ack_f = ack_p.get_future();
    store->ack("bob", "", {first}, [&](Result<std::uint64_t> r) { ack_p.set_value(r); });
    release.set_value();
    for (auto& f : appends) CHECK(wait_result(f).status().code() == Code::kIoError);
    CHECK(wait_result(ack_f).status().code() == Code::kIoError);
    CHECK_FALSE(store->writable());
    CHECK(store->counters().write_errors >= 2);
    CHECK(writes_failed >= 2);

    // Nothing of it is visible, and nothing of the quota was consumed.
    CHECK(read_all(*store, "bob").size() == 1);
    CHECK(store->stats("bob").count == 1);
    CHECK(store->counters().total_messages == 1);
    CHECK(store->counters().appended == 1);

    fail = false;
    const auto a = append_ok(*store, message("bob", "alice", "two"));
    CHECK(store->writable());
    CHECK(a > first);
    append_ok(*store, message("bob", "alice", "three"));
    CHECK(append_wait(*store, message("bob", "alice", "four")).status().code() ==
          Code::kMailboxFull);
    CHECK(store->stats("bob").count == 3);
    CHECK(read_all(*store, "bob").size() == 3);
    CHECK(store->last_seq() == a + 1);
  });
}

TEST_CASE("write failure: seqs handed to a failed batch are never reused") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-write-failure-seq");
    std::atomic<bool> fail{false};
    StoreOptions o = backend.options_in(dir);
    o.inject_write_error = [&]() -> Status {
      return fail.load() ? Status::io_error("injected") : Status::ok();
    };
    // (PostgreSQL's batch of appends only takes its seqs in its write
    // statement, after the hook: none is handed out before a failure to
    // reuse. The batch that takes them first is the one to check.)
    o.postgres_late_locks = false;
    std::uint64_t before = 0;
    {
      auto store = open_mailboxes(o);
      before = append_ok(*store, message("bob", "alice", "x"));
      fail = true;
      for (int i = 0; i < 5; ++i)
        CHECK(append_wait(*store, message("bob", "alice", "y")).status().code() == Code::kIoError);
      fail = false;
      CHECK(append_ok(*store, message("bob", "alice", "z")) > before + 5);
    }
    auto store = open_mailboxes(o);
    CHECK(store->last_seq() > before + 5);
  });
}

// A session that ended is not counted as open because the batch that wrote
// its last_seen failed: nobody signs that session out again, and its device
// would count as active for good, holding back what it never acks. A failed
// sign-in, on the other side, opens nothing.
TEST_CASE("write failure: a failed sign-out still ends the session, and a failed sign-in opens none") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-write-failure-sessions");
    std::atomic<bool> fail{false};
    ManualClock clock;
    StoreOptions o = backend.options_in(dir);
    o.clock = &clock;
    o.inject_write_error = [&]() -> Status {
      return fail.load() ? Status::io_error("injected: disk on fire") : Status::ok();
    };
    auto store = open_mailboxes(o);
    REQUIRE(sign_in_wait(*store, "bob", "desk").is_ok());
    clock.advance_ms(60'001);  // (the RocksDB store writes last_seen at most once a minute)
    fail = true;
    std::promise<Result<std::uint64_t>> out;
    auto out_f = out.get_future();
    store->device_signed_out("bob", "desk", [&](Result<std::uint64_t> r) { out.set_value(std::move(r)); });
    CHECK(wait_result(out_f).status().code() == Code::kIoError);
    CHECK_FALSE(sign_in_wait(*store, "bob", "phone").is_ok());
    fail = false;
    auto devs = store->devices("bob");
    REQUIRE(devs.is_ok());
    REQUIRE(devs->size() == 1);  // (phone never made it)
    CHECK((*devs)[0].device == "desk");
    CHECK((*devs)[0].sessions == 0);
  });
}

}  // TEST_SUITE
