// The write queue: bounded, drained at close; the batch observer.
#include <doctest/doctest.h>

#include "tests/unit/storage/store_test_util.h"

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;

namespace {

struct CountingObserver final : BatchObserver {
  std::atomic<std::size_t> batches{0}, requests{0}, failures{0};
  void on_batch(std::size_t n, std::int64_t micros, bool, const Status& result) override {
    ++batches;
    requests += n;
    if (!result.is_ok()) ++failures;
    CHECK(micros >= 0);
  }
};

}  // namespace

TEST_SUITE("storage") {

TEST_CASE("lifecycle: closing completes every queued request, all of them durable") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-drain");
    constexpr int kN = 2000;
    std::atomic<int> ok{0}, done{0};
    {
      auto store = open_mailboxes(backend.options_in(dir));
      for (int i = 0; i < kN; ++i)
        store->append(message(fmt::format("u{}", i % 10), "alice", "x"), [&](Result<AppendResult> r) {
          if (r) ++ok;
          ++done;
        });
    }  // the destructor drains the queue before it closes
    CHECK(done == kN);
    CHECK(ok == kN);
    auto store = open_mailboxes(backend.options_in(dir));
    CHECK(store->counters().total_messages == static_cast<std::uint64_t>(kN));
  });
}

TEST_CASE("lifecycle: a full queue refuses at once with unavailable") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-queue-full");
    StoreOptions o = backend.options_in(dir);
    o.max_queued_requests = 2;
    // Hold the writer inside its first batch write so the queue can fill up.
    // (Holding a callback would not do: callbacks run on their own thread.)
    WriterGate gate(o);
    auto store = open_mailboxes(o);
    CountingObserver observer;
    store->set_batch_observer(&observer);

    store->append(message("bob", "alice", "gate"), [](Result<AppendResult>) {});
    gate.wait_entered();

    std::promise<Result<AppendResult>> q1, q2, q3;
    auto f1 = q1.get_future(), f2 = q2.get_future(), f3 = q3.get_future();
    store->append(message("bob", "alice", "1"), [&](Result<AppendResult> r) { q1.set_value(r); });
    store->append(message("bob", "alice", "2"), [&](Result<AppendResult> r) { q2.set_value(r); });
    store->append(message("bob", "alice", "3"), [&](Result<AppendResult> r) { q3.set_value(r); });
    // The third is answered before the writer is released: on this thread.
    REQUIRE(f3.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
    CHECK(f3.get().status().code() == Code::kUnavailable);
    gate.release();
    CHECK(wait_result(f1).is_ok());
    CHECK(wait_result(f2).is_ok());
    CHECK(read_all(*store, "bob").size() == 3);

    CHECK(observer.batches == store->counters().batches);
    CHECK(observer.requests == store->counters().batch_requests);
    CHECK(observer.requests == 3);
    CHECK(observer.failures == 0);
  });
}

}  // TEST_SUITE
