#include "common/iso8601.h"

#include <fmt/format.h>

namespace oms {
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

std::optional<std::int64_t> parse_iso8601_ms(std::string_view s) {
  auto digits = [&](std::size_t pos, std::size_t n, int& v) {
    if (pos + n > s.size()) return false;
    v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    return true;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (s.size() < 20 || !digits(0, 4, year) || s[4] != '-' || !digits(5, 2, month) || s[7] != '-' ||
      !digits(8, 2, day) || s[10] != 'T' || !digits(11, 2, hour) || s[13] != ':' ||
      !digits(14, 2, minute) || s[16] != ':' || !digits(17, 2, second)) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  int millis = 0;
  if (s[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (pos - start < 3) millis = millis * 10 + (s[pos] - '0');
      ++pos;
    }
    std::size_t n = pos - start;
    if (n == 0 || n > 9) return std::nullopt;
    for (std::size_t k = n; k < 3; ++k) millis *= 10;
  }
  if (pos + 1 != s.size() || s[pos] != 'Z') return std::nullopt;

  static constexpr int kDaysInMonth[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || month > 12 || day < 1 || day > kDaysInMonth[month - 1] ||
      (month == 2 && day == 29 && !leap) || hour > 23 || minute > 59 || second > 59) {
    return std::nullopt;
  }
  // Days from civil (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
  std::int64_t y = year - (month <= 2 ? 1 : 0);
  std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  std::int64_t yoe = y - era * 400;
  std::int64_t mp = month > 2 ? month - 3 : month + 9;
  std::int64_t doy = (153 * mp + 2) / 5 + day - 1;
  std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  std::int64_t days = era * 146097 + doe - 719468;
  return ((days * 24 + hour) * 60 + minute) * 60'000 + second * 1000 + millis;
}

}  // namespace oms
