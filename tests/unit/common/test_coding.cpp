#include "common/coding.h"

#include <random>
#include <string>

#include <doctest/doctest.h>

namespace oms {

TEST_CASE("coding: fixed-width integers are big-endian") {
  std::string out;
  put_fixed32_be(out, 0x01020304u);
  CHECK(out == std::string("\x01\x02\x03\x04", 4));
  out.clear();
  put_fixed64_be(out, 0x0102030405060708ull);
  CHECK(out == std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  out.clear();
  put_fixed8(out, 0xAB);
  CHECK(out == "\xAB");

  char buf[8];
  encode_fixed64_be(buf, 0xFEDCBA9876543210ull);
  CHECK(static_cast<unsigned char>(buf[0]) == 0xFE);
  CHECK(static_cast<unsigned char>(buf[7]) == 0x10);
  CHECK(decode_fixed64_be(buf) == 0xFEDCBA9876543210ull);
}

TEST_CASE("coding: byte order of encoded integers is numeric order") {
  std::mt19937_64 rng(1234);
  auto enc64 = [](std::uint64_t v) {
    std::string s;
    put_fixed64_be(s, v);
    return s;
  };
  auto enc32 = [](std::uint32_t v) {
    std::string s;
    put_fixed32_be(s, v);
    return s;
  };
  for (int i = 0; i < 20000; ++i) {
    // Mix full-range values with nearby ones so that long shared prefixes occur.
    std::uint64_t a = rng();
    std::uint64_t b = (i % 2 == 0) ? rng() : a + (rng() % 512) - 256;
    if (i % 7 == 0) b = a;
    // std::string compares as unsigned char (char_traits<char>::lt), like RocksDB's bytewise comparator.
    CHECK((enc64(a) < enc64(b)) == (a < b));
    CHECK((enc64(a) == enc64(b)) == (a == b));
    auto a32 = static_cast<std::uint32_t>(a), b32 = static_cast<std::uint32_t>(b);
    CHECK((enc32(a32) < enc32(b32)) == (a32 < b32));
  }
  CHECK(enc64(0) < enc64(1));
  CHECK(enc64(0xFF) < enc64(0x100));
  CHECK(enc64(0x7FFFFFFFFFFFFFFFull) < enc64(0x8000000000000000ull));
  CHECK(enc64(0xFFFFFFFFFFFFFFFEull) < enc64(0xFFFFFFFFFFFFFFFFull));
}

TEST_CASE("coding: round trips consume exactly what was written") {
  std::string out;
  put_fixed8(out, 7);
  put_fixed32_be(out, 0xDEADBEEFu);
  put_fixed64_be(out, ~0ull);
  put_short_bytes(out, "user@x");
  put_short_bytes(out, "");
  put_bytes32(out, std::string(300, 'b'));
  put_short_bytes(out, std::string(255, 'c'));
  put_fixed64_be(out, 0);

  std::string_view in = out;
  std::uint8_t v8 = 0;
  std::uint32_t v32 = 0;
  std::uint64_t v64 = 1;
  std::string_view s;
  REQUIRE(get_fixed8(in, v8));
  CHECK(v8 == 7);
  REQUIRE(get_fixed32_be(in, v32));
  CHECK(v32 == 0xDEADBEEFu);
  REQUIRE(get_fixed64_be(in, v64));
  CHECK(v64 == ~0ull);
  REQUIRE(get_short_bytes(in, s));
  CHECK(s == "user@x");
  REQUIRE(get_short_bytes(in, s));
  CHECK(s.empty());
  REQUIRE(get_bytes32(in, s));
  CHECK(s == std::string(300, 'b'));
  REQUIRE(get_short_bytes(in, s));
  CHECK(s == std::string(255, 'c'));
  REQUIRE(get_fixed64_be(in, v64));
  CHECK(v64 == 0);
  CHECK(in.empty());
}

TEST_CASE("coding: short input is refused and nothing is consumed") {
  std::uint8_t v8 = 0;
  std::uint32_t v32 = 0;
  std::uint64_t v64 = 0;
  std::string_view s;

  std::string_view empty;
  CHECK_FALSE(get_fixed8(empty, v8));

  std::string three("\x01\x02\x03", 3);
  std::string_view in = three;
  CHECK_FALSE(get_fixed32_be(in, v32));
  CHECK(in.size() == 3);
  std::string seven(7, '\x01');
  in = seven;
  CHECK_FALSE(get_fixed64_be(in, v64));
  CHECK(in.size() == 7);

  // Length prefix promises more than is there.
  std::string sb;
  put_short_bytes(sb, "hello");
  sb.pop_back();
  in = sb;
  CHECK_FALSE(get_short_bytes(in, s));
  CHECK(in.size() == sb.size());

  std::string b32;
  put_bytes32(b32, "hello");
  b32.pop_back();
  in = b32;
  CHECK_FALSE(get_bytes32(in, s));
  CHECK(in.size() == b32.size());
  std::string short_len("\x00\x00", 2);
  in = short_len;
  CHECK_FALSE(get_bytes32(in, s));
  CHECK(in.size() == 2);
}

}  // namespace oms
