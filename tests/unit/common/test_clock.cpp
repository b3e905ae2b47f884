#include "common/clock.h"

#include <cstdio>
#include <ctime>
#include <random>
#include <string>

#include <doctest/doctest.h>

namespace oms {

TEST_CASE("clock: ISO-8601 formatting with milliseconds") {
  CHECK(format_iso8601_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_iso8601_ms(1) == "1970-01-01T00:00:00.001Z");
  CHECK(format_iso8601_ms(999) == "1970-01-01T00:00:00.999Z");
  CHECK(format_iso8601_ms(1000) == "1970-01-01T00:00:01.000Z");
  CHECK(format_iso8601_ms(1'795'428'000'000) == "2026-11-23T10:00:00.000Z");
  CHECK(format_iso8601_ms(1'795'428'000'042) == "2026-11-23T10:00:00.042Z");
  CHECK(format_iso8601_ms(951'782'400'000) == "2000-02-29T00:00:00.000Z");
  CHECK(format_iso8601_ms(253'402'300'799'999) == "9999-12-31T23:59:59.999Z");
}

TEST_CASE("clock: negative instants format before the epoch") {
  CHECK(format_iso8601_ms(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(format_iso8601_ms(-1000) == "1969-12-31T23:59:59.000Z");
  CHECK(format_iso8601_ms(-1001) == "1969-12-31T23:59:58.999Z");
  CHECK(format_iso8601_ms(-86'400'000) == "1969-12-31T00:00:00.000Z");
}

TEST_CASE("clock: formatting agrees with gmtime_r across the years 0000-9999 and beyond") {
  auto reference = [](std::int64_t ms) {
    std::int64_t secs = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
      rem += 1000;
      secs -= 1;
    }
    std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    REQUIRE(gmtime_r(&t, &tm) != nullptr);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02d.%03lldZ",
                  static_cast<long long>(tm.tm_year) + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec, static_cast<long long>(rem));
    return std::string(buf);
  };
  std::mt19937_64 rng(99);
  const std::int64_t lo = -62'167'219'200'000 * 2;  // well before year 0
  const std::int64_t hi = 253'402'300'799'999 * 2;  // well after 9999
  for (int i = 0; i < 20000; ++i) {
    std::int64_t ms = lo + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(hi - lo));
    REQUIRE_MESSAGE(format_iso8601_ms(ms) == reference(ms), ms);
  }
  for (std::int64_t ms : {std::int64_t{-62'167'219'200'000}, std::int64_t{-62'167'219'200'001},
                          std::int64_t{253'402'300'799'999}, std::int64_t{253'402'300'800'000},
                          std::int64_t{951'782'399'999}, std::int64_t{4'107'542'400'000}})
    CHECK(format_iso8601_ms(ms) == reference(ms));
}

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
