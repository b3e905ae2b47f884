#include "common/clock.h"

#include <doctest/doctest.h>

namespace oms {

TEST_CASE("clock: ManualClock moves only by hand") {
  ManualClock c(5'000);
  CHECK(c.now_ms() == 5'000);
  CHECK(c.now_s() == 5);
  c.advance_ms(1'999);
  CHECK(c.now_ms() == 6'999);
  CHECK(c.now_s() == 6);
  c.set_ms(42);
  CHECK(c.now_ms() == 42);
  const Clock& base = c;
  CHECK(base.now_ms() == 42);
}

TEST_CASE("clock: SystemClock is near the present") {
  std::int64_t now = SystemClock::instance().now_ms();
  CHECK(now > 1'700'000'000'000);  // after 2023-11
  CHECK(now < 4'102'444'800'000);  // before 2100
  CHECK(SystemClock::instance().now_ms() >= now);
}

}  // namespace oms
