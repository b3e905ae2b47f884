// FairPool (server/fair_pool.h): one task per key at a time, keys in turn,
// a bounded queue per key.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "server/fair_pool.h"

using oms::server::FairPool;

namespace {

// A gate the first task waits on, so the test can queue behind it.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  bool entered = false;
  void wait() {
    std::unique_lock lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
  }
  void wait_entered() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  void release() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
};

}  // namespace

TEST_CASE("fair pool: a key with many tasks queued takes turns with the others") {
  FairPool pool(1, 100, "test-fair");
  Gate gate;
  std::mutex mu;
  std::vector<std::string> order;
  auto record = [&](std::string s) {
    return [&, s] {
      std::lock_guard lock(mu);
      order.push_back(s);
    };
  };
  REQUIRE(pool.submit("busy", [&] { gate.wait(); }));
  gate.wait_entered();
  for (int i = 0; i < 5; ++i) REQUIRE(pool.submit("busy", record("busy" + std::to_string(i))));
  REQUIRE(pool.submit("quiet", record("quiet")));
  REQUIRE(pool.submit("other", record("other")));
  gate.release();
  pool.stop();
  pool.join();
  // "busy" had its turn (the gate): the two others go before its next five.
  REQUIRE(order.size() == 7);
  CHECK(order[0] == "quiet");
  CHECK(order[1] == "other");
  CHECK(order[2] == "busy0");
  CHECK(order[6] == "busy4");
}

TEST_CASE("fair pool: one key never runs on two threads at once") {
  FairPool pool(4, 1000, "test-fair");
  std::atomic<int> running{0}, max_running{0}, done{0};
  for (int i = 0; i < 200; ++i) {
    REQUIRE(pool.submit("one", [&] {
      const int now = running.fetch_add(1) + 1;
      int seen = max_running.load();
      while (now > seen && !max_running.compare_exchange_weak(seen, now)) {
      }
      running.fetch_sub(1);
      done.fetch_add(1);
    }));
  }
  pool.stop();
  pool.join();
  CHECK(done.load() == 200);
  CHECK(max_running.load() == 1);
}

TEST_CASE("fair pool: a key's queue is bounded, other keys are not affected") {
  FairPool pool(1, 3, "test-fair");
  Gate gate;
  REQUIRE(pool.submit("a", [&] { gate.wait(); }));
  gate.wait_entered();
  CHECK(pool.submit("a", [] {}));
  CHECK(pool.submit("a", [] {}));
  CHECK_FALSE(pool.submit("a", [] {}));  // 3 waiting or running
  CHECK(pool.submit("b", [] {}));
  CHECK(pool.refused() == 1);
  CHECK(pool.queued() == 4);
  gate.release();
  pool.stop();
  pool.join();
  CHECK(pool.queued() == 0);
  CHECK_FALSE(pool.submit("a", [] {}));  // stopped
}
