#include "common/clock.h"

#include <chrono>

#include <fmt/format.h>

namespace oms {

std::int64_t SystemClock::now_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

namespace {

struct CivilDate {
  std::int64_t year;
  int month;  // 1..12
  int day;    // 1..31
};

// Proleptic Gregorian date from days since 1970-01-01 (H. Hinnant,
// "chrono-Compatible Low-Level Date Algorithms"). Pure arithmetic: unlike
// gmtime_r, which takes glibc's global tz lock, it is cheap on every message.
CivilDate civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

}  // namespace

std::string format_iso8601_ms(std::int64_t epoch_ms) {
  constexpr std::int64_t kMsPerDay = 86'400'000;
  std::int64_t days = epoch_ms / kMsPerDay;
  std::int64_t ms_of_day = epoch_ms % kMsPerDay;
  if (ms_of_day < 0) {
    ms_of_day += kMsPerDay;
    days -= 1;
  }
  const CivilDate date = civil_from_days(days);
  const int ms = static_cast<int>(ms_of_day % 1000);
  const int sec = static_cast<int>(ms_of_day / 1000 % 60);
  const int min = static_cast<int>(ms_of_day / 60'000 % 60);
  const int hour = static_cast<int>(ms_of_day / 3'600'000);
  if (date.year < 0 || date.year > 9999) {
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", date.year, date.month, date.day,
                       hour, min, sec, ms);
  }
  // "YYYY-MM-DDTHH:MM:SS.mmmZ", written digit by digit (hot path: every message).
  char buf[24];
  auto put = [&](int pos, int width, std::int64_t v) {
    for (int i = pos + width - 1; i >= pos; --i) {
      buf[i] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  };
  put(0, 4, date.year);
  buf[4] = '-';
  put(5, 2, date.month);
  buf[7] = '-';
  put(8, 2, date.day);
  buf[10] = 'T';
  put(11, 2, hour);
  buf[13] = ':';
  put(14, 2, min);
  buf[16] = ':';
  put(17, 2, sec);
  buf[19] = '.';
  put(20, 3, ms);
  buf[23] = 'Z';
  return std::string(buf, sizeof buf);
}

}  // namespace oms
