// Byte coding for on-disk keys and values (LevelDB's coding.h, big-endian).
//
// Fixed-width integers are big-endian so that byte order is numeric order.
// Variable-length fields are length-prefixed. Getters consume from the front
// of `in` and return false when it is too short.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace oms {

void put_fixed8(std::string& out, std::uint8_t v);
void put_fixed32_be(std::string& out, std::uint32_t v);
void put_fixed64_be(std::string& out, std::uint64_t v);
// A 1-byte length followed by the bytes (s.size() must be < 256).
void put_short_bytes(std::string& out, std::string_view s);
// A 4-byte big-endian length followed by the bytes.
void put_bytes32(std::string& out, std::string_view s);

bool get_fixed8(std::string_view& in, std::uint8_t& v);
bool get_fixed32_be(std::string_view& in, std::uint32_t& v);
bool get_fixed64_be(std::string_view& in, std::uint64_t& v);
bool get_short_bytes(std::string_view& in, std::string_view& s);
bool get_bytes32(std::string_view& in, std::string_view& s);

std::uint64_t decode_fixed64_be(const char* p);
void encode_fixed64_be(char* p, std::uint64_t v);

// A signed 64-bit integer (times in ms) as its two's complement, big-endian.
inline void put_int64_be(std::string& out, std::int64_t v) { put_fixed64_be(out, static_cast<std::uint64_t>(v)); }
inline bool get_int64_be(std::string_view& in, std::int64_t& v) {
  std::uint64_t u = 0;
  if (!get_fixed64_be(in, u)) return false;
  v = static_cast<std::int64_t>(u);
  return true;
}

}  // namespace oms
