// The group commit's pacing (WriteBatcher min_interval, the PostgreSQL
// writer's postgres.min_batch_interval_us): a request after an idle spell
// starts a batch at once; the ones after it wait for the interval or a full
// batch; stop() never waits out the interval.
#include <doctest/doctest.h>

#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "storage/write_batcher.h"

using namespace oms;
using namespace oms::storage;

namespace {

AppendOp named(std::string name, std::promise<void>* done = nullptr) {
  AppendOp op;
  op.req.mailbox = std::move(name);
  op.done = [done](Result<AppendResult>) {
    if (done) done->set_value();
  };
  return op;
}

}  // namespace

TEST_SUITE("storage") {

TEST_CASE("write batcher: paced batches form at a full batch, and stop drains without waiting out the interval") {
  std::mutex mu;
  std::vector<std::vector<std::string>> batches;
  // An interval no test run reaches: only a full batch or stop() starts one.
  constexpr auto kInterval = std::chrono::seconds(600);
  WriteBatcher batcher(
      3, 100,
      [&](std::vector<WriteRequest>& requests, std::vector<WriteOutcome>& outcomes) {
        std::vector<std::string> names;
        for (auto& r : requests) {
          names.push_back(std::get<AppendOp>(r).req.mailbox);
          outcomes.push_back(WriteOutcome{Status::ok(), {}, 0});
        }
        std::lock_guard lock(mu);
        batches.push_back(std::move(names));
        return WriteBatcher::Followers{};
      },
      std::chrono::duration_cast<std::chrono::microseconds>(kInterval));
  batcher.start();
  const auto t0 = std::chrono::steady_clock::now();

  std::promise<void> a_done, d_done;
  batcher.enqueue(named("a", &a_done));  // the writer was idle: at once
  REQUIRE(a_done.get_future().wait_for(std::chrono::seconds(60)) == std::future_status::ready);
  batcher.enqueue(named("b"));
  batcher.enqueue(named("c"));
  batcher.enqueue(named("d", &d_done));  // the third: a full batch goes
  REQUIRE(d_done.get_future().wait_for(std::chrono::seconds(60)) == std::future_status::ready);
  batcher.enqueue(named("e"));  // waits for the interval...
  batcher.stop();               // ...or the stop, which commits it
  CHECK(std::chrono::steady_clock::now() - t0 < kInterval / 2);

  std::lock_guard lock(mu);
  REQUIRE(batches.size() == 3);
  CHECK(batches[0] == std::vector<std::string>{"a"});
  CHECK(batches[1] == std::vector<std::string>{"b", "c", "d"});
  CHECK(batches[2] == std::vector<std::string>{"e"});
}

}  // TEST_SUITE
