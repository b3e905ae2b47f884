// The encoder's string escaper: valid JSON and valid UTF-8 out, whatever
// bytes go in, wherever they sit relative to the 8-byte words it tests.
#include <cstddef>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "common/json_encode.h"
#include "common/utf8.h"
#include "tests/unit/common/frame_checks.h"

namespace oms::proto {

TEST_CASE("codec: escaping is valid JSON for every byte and keeps UTF-8") {
  std::string all;
  for (int i = 1; i < 128; ++i) all.push_back(static_cast<char>(i));
  all += "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80";  // é 日 😀
  Message m;
  m.id = "x";
  m.from = "a";
  m.body = all;
  std::string text = encode_message(m);
  CHECK(str(parse_json(text).at("body")) == all);
  CHECK(text.find("\\u0001") != std::string::npos);
  CHECK(text.find("\\n") != std::string::npos);
  CHECK(text.find("\xf0\x9f\x98\x80") != std::string::npos);  // passed through, not \u-escaped

  // Ill-formed UTF-8 handed to an encoder still yields valid JSON (U+FFFD).
  m.body = std::string("a\xff") + "b\xc3" + "\xed\xa0\x80" + "c\xe6\x97";
  auto obj = parse_json(encode_message(m));
  CHECK(str(obj.at("body")).find("\xef\xbf\xbd") != std::string::npos);
  CHECK(encode_error({}, "x", std::string_view("\0", 1)) == R"({"type":"error","code":"x","message":"\u0000"})");
}

// The escaper tests 8 plain bytes at a time and falls back to one byte at a
// time: a byte that needs care must be caught wherever it sits in the word.
TEST_CASE("codec: escaping catches a special byte at every offset of a word") {
  auto escaped = [](unsigned char c) -> std::string {
    switch (c) {
      case '"': return "\\\"";
      case '\\': return "\\\\";
      case '\n': return "\\n";
      case '\t': return "\\t";
      default: return fmt::format("\\u{:04x}", c);
    }
  };
  for (unsigned char c : {0x00, 0x01, 0x1f, 0x22, 0x5c, 0x0a, 0x09}) {
    for (std::size_t at = 0; at < 24; ++at) {
      std::string msg(24, 'x');
      msg[at] = static_cast<char>(c);
      const std::string want = R"({"type":"error","code":"x","message":")" + std::string(at, 'x') + escaped(c) +
                               std::string(23 - at, 'x') + R"("})";
      CHECK_MESSAGE(encode_error({}, "x", msg) == want, "byte ", int(c), " at ", at);
    }
  }
  // Bytes that are plain on one side of the line and not on the other.
  for (std::size_t at = 0; at < 24; ++at) {
    std::string msg(24, 'y');
    msg[at] = ' ';
    CHECK(encode_error({}, "x", msg) == R"({"type":"error","code":"x","message":")" + msg + R"("})");
    msg[at] = '\x7f';
    CHECK(encode_error({}, "x", msg) == R"({"type":"error","code":"x","message":")" + msg + R"("})");
    msg[at] = '\x80';  // a lone continuation byte
    CHECK(str(parse_json(encode_error({}, "x", msg)).at("message")) == to_valid_utf8(msg));
  }

  // Views that end exactly at the end of their buffer (no NUL after it): a
  // word read past the end is caught by the sanitizer build.
  for (std::size_t n = 0; n <= 40; ++n) {
    auto buf = std::make_unique<char[]>(n);
    for (std::size_t k = 0; k < n; ++k) buf[k] = k % 11 == 10 ? '"' : static_cast<char>('a' + k % 26);
    const std::string_view view(buf.get(), n);
    CHECK(str(parse_json(encode_error({}, "x", view)).at("message")) == std::string(view));
  }

  // Random mixes of plain runs, escapes and good and bad UTF-8.
  std::mt19937 rng(20261127);
  const std::string pieces[] = {"abcdefgh", "a", "\"", "\\", "\n", std::string(1, '\0'), "\x7f",
                                "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "\xff", "\xc3", "0123456789"};
  for (int round = 0; round < 2000; ++round) {
    std::string msg;
    const int n = static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) msg += pieces[rng() % std::size(pieces)];
    const std::string text = encode_error({}, "x", msg);
    CHECK_MESSAGE(str(parse_json(text).at("message")) == to_valid_utf8(msg), text);
  }
}

}  // namespace oms::proto
