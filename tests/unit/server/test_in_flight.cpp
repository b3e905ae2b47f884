#include "server/in_flight.h"

#include <cstdint>
#include <random>
#include <set>

#include <doctest/doctest.h>

namespace oms::server {
namespace {

TEST_CASE("in-flight: pushes in order, acks of the oldest and of others") {
  InFlight f;
  CHECK(f.empty());
  CHECK_FALSE(f.erase(1));
  for (std::uint64_t s = 10; s < 20; ++s) f.insert(s);
  CHECK(f.size() == 10);
  CHECK(f.front() == 10);
  CHECK(f.erase(10));
  CHECK(f.front() == 11);
  CHECK(f.erase(15));  // from the middle
  CHECK_FALSE(f.erase(15));
  CHECK_FALSE(f.erase(10));  // acked already
  CHECK_FALSE(f.erase(99));
  CHECK(f.size() == 8);
  f.insert(12);  // already in flight: not twice
  CHECK(f.size() == 8);
  f.insert(15);  // back in the middle
  f.insert(5);   // before the oldest
  CHECK(f.front() == 5);
  CHECK(f.size() == 10);
  for (std::uint64_t s : {5, 11, 12, 13, 14, 15, 16, 17, 18, 19}) CHECK(f.erase(s));
  CHECK(f.empty());
  f.insert(3);  // an emptied window takes any seq again
  CHECK(f.front() == 3);
}

// Against std::set, through long runs that cross the compaction threshold:
// pushes mostly in order, acks mostly of the oldest, some out of order.
TEST_CASE("in-flight: agrees with std::set over random pushes and acks") {
  std::mt19937_64 rng(20261127);
  InFlight f;
  std::set<std::uint64_t> ref;
  std::uint64_t next = 1;
  for (int step = 0; step < 200000; ++step) {
    const auto r = rng() % 100;
    if (r < 45) {
      const std::uint64_t s = rng() % 20 == 0 && next > 50 ? next - rng() % 50 : next++;
      f.insert(s);
      ref.insert(s);
    } else if (r < 85) {
      if (ref.empty()) continue;
      const std::uint64_t s = *ref.begin();
      CHECK(f.erase(s));
      ref.erase(s);
    } else {
      const std::uint64_t s = next > 300 ? next - rng() % 300 : rng() % 300;
      CHECK(f.erase(s) == (ref.erase(s) == 1));
    }
    REQUIRE(f.size() == ref.size());
    if (!ref.empty()) REQUIRE(f.front() == *ref.begin());
    // The acked front is given back: what is held stays within twice what
    // is in flight (plus the front worth compacting), and an emptied window
    // keeps no large buffer.
    REQUIRE(f.held() <= 2 * f.size() + 64);
    if (f.empty()) REQUIRE(f.capacity() <= InFlight::kKeepCapacity);
  }
}

TEST_CASE("in-flight: a client that never acks its oldest message") {
  InFlight f;
  for (std::uint64_t s = 1; s <= 5000; ++s) f.insert(s);
  for (std::uint64_t s = 2; s <= 5000; ++s) {
    REQUIRE(f.erase(s));
    REQUIRE(f.front() == 1);
    REQUIRE(f.size() == 5001 - s);
    REQUIRE(f.held() <= 2 * f.size() + 64);
  }
  CHECK(f.erase(1));
  CHECK(f.empty());
  CHECK(f.capacity() <= InFlight::kKeepCapacity);
  // Out of order from the back too.
  for (std::uint64_t s = 1; s <= 300; ++s) f.insert(s);
  for (std::uint64_t s = 299; s >= 1; --s) REQUIRE(f.erase(s));
  CHECK(f.size() == 1);
  CHECK(f.front() == 300);
}

}  // namespace
}  // namespace oms::server
