#include "common/iso8601.h"

#include <cstdio>
#include <ctime>
#include <optional>
#include <random>
#include <string>

#include <doctest/doctest.h>

namespace oms {

TEST_CASE("iso8601: formatting with milliseconds") {
  CHECK(format_iso8601_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_iso8601_ms(1) == "1970-01-01T00:00:00.001Z");
  CHECK(format_iso8601_ms(999) == "1970-01-01T00:00:00.999Z");
  CHECK(format_iso8601_ms(1000) == "1970-01-01T00:00:01.000Z");
  CHECK(format_iso8601_ms(1'795'428'000'000) == "2026-11-23T10:00:00.000Z");
  CHECK(format_iso8601_ms(1'795'428'000'042) == "2026-11-23T10:00:00.042Z");
  CHECK(format_iso8601_ms(951'782'400'000) == "2000-02-29T00:00:00.000Z");
  CHECK(format_iso8601_ms(253'402'300'799'999) == "9999-12-31T23:59:59.999Z");
}

TEST_CASE("iso8601: negative instants format before the epoch") {
  CHECK(format_iso8601_ms(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(format_iso8601_ms(-1000) == "1969-12-31T23:59:59.000Z");
  CHECK(format_iso8601_ms(-1001) == "1969-12-31T23:59:58.999Z");
  CHECK(format_iso8601_ms(-86'400'000) == "1969-12-31T00:00:00.000Z");
}

TEST_CASE("iso8601: formatting agrees with gmtime_r across the years 0000-9999 and beyond") {
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

TEST_CASE("iso8601: parsing is the inverse of formatting over the years 0000-9999") {
  std::mt19937_64 rng(11);
  const std::int64_t lo = -62'167'219'200'000;  // 0000-01-01T00:00:00.000Z
  const std::int64_t hi = 253'402'300'799'999;  // 9999-12-31T23:59:59.999Z
  for (std::int64_t ms : {lo, hi, std::int64_t{-1}, std::int64_t{0}, std::int64_t{951'782'400'000}})
    CHECK(parse_iso8601_ms(format_iso8601_ms(ms)) == ms);
  for (int i = 0; i < 20000; ++i) {
    const std::int64_t ms = lo + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(hi - lo));
    REQUIRE_MESSAGE(parse_iso8601_ms(format_iso8601_ms(ms)) == ms, ms);
  }
}

TEST_CASE("iso8601: parsing reads 1 to 9 fraction digits and drops those past ms") {
  CHECK(parse_iso8601_ms("1970-01-01T00:00:01Z") == 1000);
  CHECK(parse_iso8601_ms("1970-01-01T00:00:01.5Z") == 1500);
  CHECK(parse_iso8601_ms("1970-01-01T00:00:01.05Z") == 1050);
  CHECK(parse_iso8601_ms("1970-01-01T00:00:01.123456789Z") == 1123);
  CHECK_FALSE(parse_iso8601_ms("1970-01-01T00:00:01.1234567890Z"));
  CHECK_FALSE(parse_iso8601_ms("1970-01-01T00:00:01.Z"));
}

TEST_CASE("iso8601: parsing refuses what is not a UTC instant") {
  for (const char* s : {"", "2026-11-23", "2026-11-23T10:00:00.000", "2026-11-23T10:00:00.000+01:00",
                        "2026-11-23 10:00:00.000Z", "2026-11-23T10:00:00.000Zx", "2026-13-01T00:00:00.000Z",
                        "2026-00-01T00:00:00.000Z", "2026-02-29T00:00:00.000Z", "2026-04-31T00:00:00.000Z",
                        "2026-11-23T24:00:00.000Z", "2026-11-23T10:60:00.000Z", "2026-11-23T10:00:60.000Z",
                        "+026-11-23T10:00:00.000Z", "2026-1a-23T10:00:00.000Z"})
    CHECK_MESSAGE(!parse_iso8601_ms(s), s);
  CHECK(parse_iso8601_ms("2000-02-29T00:00:00.000Z") == 951'782'400'000);  // a leap year by 400
  CHECK_FALSE(parse_iso8601_ms("2100-02-29T00:00:00.000Z"));               // not a leap year by 100
}

}  // namespace oms
