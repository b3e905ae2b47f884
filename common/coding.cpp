#include "common/coding.h"

#include <cassert>

namespace oms {

void put_fixed8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }

void put_fixed32_be(std::string& out, std::uint32_t v) {
  char b[4];
  for (int i = 3; i >= 0; --i) {
    b[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out.append(b, 4);
}

void encode_fixed64_be(char* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

std::uint64_t decode_fixed64_be(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void put_fixed64_be(std::string& out, std::uint64_t v) {
  char b[8];
  encode_fixed64_be(b, v);
  out.append(b, 8);
}

void put_short_bytes(std::string& out, std::string_view s) {
  assert(s.size() < 256);
  put_fixed8(out, static_cast<std::uint8_t>(s.size()));
  out.append(s);
}

void put_bytes32(std::string& out, std::string_view s) {
  put_fixed32_be(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

bool get_fixed8(std::string_view& in, std::uint8_t& v) {
  if (in.empty()) return false;
  v = static_cast<std::uint8_t>(in[0]);
  in.remove_prefix(1);
  return true;
}

bool get_fixed32_be(std::string_view& in, std::uint32_t& v) {
  if (in.size() < 4) return false;
  v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  in.remove_prefix(4);
  return true;
}

bool get_fixed64_be(std::string_view& in, std::uint64_t& v) {
  if (in.size() < 8) return false;
  v = decode_fixed64_be(in.data());
  in.remove_prefix(8);
  return true;
}

bool get_short_bytes(std::string_view& in, std::string_view& s) {
  std::uint8_t n = 0;
  std::string_view rest = in;
  if (!get_fixed8(rest, n) || rest.size() < n) return false;
  s = rest.substr(0, n);
  rest.remove_prefix(n);
  in = rest;
  return true;
}

bool get_bytes32(std::string_view& in, std::string_view& s) {
  std::uint32_t n = 0;
  std::string_view rest = in;
  if (!get_fixed32_be(rest, n) || rest.size() < n) return false;
  s = rest.substr(0, n);
  rest.remove_prefix(n);
  in = rest;
  return true;
}

}  // namespace oms
