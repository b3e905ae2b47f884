// ISO-8601 UTC instants as the wire carries them ("sent_at", "oldest"):
// "YYYY-MM-DDTHH:MM:SS.mmmZ", milliseconds since the Unix epoch in memory.
// Proleptic Gregorian calendar, pure arithmetic (no libc time zone calls, no
// locks). Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace oms {

// "2026-11-23T10:00:00.000Z" (UTC, millisecond precision). Years outside
// 0000-9999, which the wire never carries, come out in fmt's "{:04}" form.
std::string format_iso8601_ms(std::int64_t epoch_ms);

// "YYYY-MM-DDTHH:MM:SS[.fff…]Z" (UTC) → ms since the epoch; the inverse of
// format_iso8601_ms for years 0000–9999. Fraction digits past ms are dropped;
// 1 to 9 fraction digits are accepted. nullopt for anything else, including
// dates that do not exist (2026-02-29).
std::optional<std::int64_t> parse_iso8601_ms(std::string_view s);

}  // namespace oms
