#include "common/utf8.h"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

namespace oms {

TEST_CASE("utf8: sequence lengths at the edges of RFC 3629") {
  CHECK(utf8_sequence_length(std::string_view("\0", 1)) == 1);
  CHECK(utf8_sequence_length("\x7f") == 1);
  CHECK(utf8_sequence_length("\xc2\x80") == 2);          // U+0080
  CHECK(utf8_sequence_length("\xdf\xbf") == 2);          // U+07FF
  CHECK(utf8_sequence_length("\xe0\xa0\x80") == 3);      // U+0800
  CHECK(utf8_sequence_length("\xed\x9f\xbf") == 3);      // U+D7FF, below the surrogates
  CHECK(utf8_sequence_length("\xef\xbf\xbf") == 3);      // U+FFFF
  CHECK(utf8_sequence_length("\xf0\x90\x80\x80") == 4);  // U+10000
  CHECK(utf8_sequence_length("\xf4\x8f\xbf\xbf") == 4);  // U+10FFFF
  CHECK(utf8_sequence_length("\xc3\xa9tail") == 2);      // only the first sequence counts

  CHECK(utf8_sequence_length("\x80") == 0);              // a lone continuation byte
  CHECK(utf8_sequence_length("\xc0\xaf") == 0);          // overlong
  CHECK(utf8_sequence_length("\xc1\xbf") == 0);          // overlong
  CHECK(utf8_sequence_length("\xe0\x9f\xbf") == 0);      // overlong
  CHECK(utf8_sequence_length("\xf0\x8f\xbf\xbf") == 0);  // overlong
  CHECK(utf8_sequence_length("\xed\xa0\x80") == 0);      // U+D800, a surrogate
  CHECK(utf8_sequence_length("\xf4\x90\x80\x80") == 0);  // above U+10FFFF
  CHECK(utf8_sequence_length("\xf5\x80\x80\x80") == 0);
  CHECK(utf8_sequence_length("\xff") == 0);
  CHECK(utf8_sequence_length("\xe6\x97") == 0);          // cut short
  CHECK(utf8_sequence_length("\xe6\x97x") == 0);         // continuation missing
}

TEST_CASE("utf8: validity of whole strings") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ascii"));
  CHECK(is_valid_utf8("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"));
  CHECK_FALSE(is_valid_utf8("caf\xc3"));
  CHECK_FALSE(is_valid_utf8("a\xffz"));
  CHECK_FALSE(is_valid_utf8("\xed\xa0\x80"));
}

TEST_CASE("utf8: to_valid_utf8 replaces each bad byte with U+FFFD and keeps the rest") {
  CHECK(to_valid_utf8("") == "");
  CHECK(to_valid_utf8("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(to_valid_utf8("a\xff" "b") == "a\xef\xbf\xbd" "b");
  // A cut sequence is replaced byte by byte; the byte after it is kept.
  CHECK(to_valid_utf8("\xe6\x97x") == "\xef\xbf\xbd\xef\xbf\xbdx");
  CHECK(to_valid_utf8("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  CHECK(is_valid_utf8(to_valid_utf8("\xc0\xaf\xf4\x90\x80\x80\x80")));
}

TEST_CASE("utf8: utf8_prefix never ends inside a sequence") {
  CHECK(utf8_prefix("abc", 3) == "abc");
  CHECK(utf8_prefix("abc", 10) == "abc");
  CHECK(utf8_prefix("abcd", 3) == "abc");
  CHECK(utf8_prefix("a\xc3\xa9", 2) == "a");              // é would be cut
  CHECK(utf8_prefix("a\xc3\xa9z", 3) == "a\xc3\xa9");
  CHECK(utf8_prefix("\xf0\x9f\x98\x80\x21", 3) == "");    // 😀 would be cut
  CHECK(utf8_prefix("abc", 0) == "");
}

}  // namespace oms
