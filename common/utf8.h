// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
// above U+10FFFF. Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace oms {

// The length of the well-formed UTF-8 sequence at the start of `s` (1-4), or
// 0. REQUIRES: !s.empty(). Inline: the JSON escaper calls it for every
// non-ASCII character.
inline std::size_t utf8_sequence_length(std::string_view s) {
  auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  auto cont = [&](std::size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;  // continuation byte or overlong 2-byte lead
  if (c < 0xE0) return cont(1) ? 2 : 0;
  if (c < 0xF0) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c < 0xF5) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

bool is_valid_utf8(std::string_view s);

// `s` with every byte that is not part of well-formed UTF-8 replaced by
// U+FFFD: safe to put in a JSON string built by another encoder.
std::string to_valid_utf8(std::string_view s);

// The longest prefix of `s` of at most `max_bytes` that does not end inside a
// multi-byte sequence (for quoting untrusted values in messages).
std::string_view utf8_prefix(std::string_view s, std::size_t max_bytes);

}  // namespace oms
