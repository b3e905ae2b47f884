#include "common/ids.h"

#include <string>

#include <doctest/doctest.h>

namespace oms {

TEST_CASE("ids: user ids are normalised to lower case") {
  CHECK(normalize_user_id("Bob@Contoso.COM") == "bob@contoso.com");
  CHECK(normalize_user_id("a") == "a");
  CHECK(normalize_user_id("A.b_c-d+e@F9") == "a.b_c-d+e@f9");
  CHECK(normalize_user_id("0123456789") == "0123456789");
  // Normalising is idempotent.
  CHECK(normalize_user_id(*normalize_user_id("MiXeD@Case")) == "mixed@case");
}

TEST_CASE("ids: user ids with other characters are refused") {
  CHECK_FALSE(normalize_user_id("").has_value());
  CHECK_FALSE(normalize_user_id("bob smith").has_value());
  CHECK_FALSE(normalize_user_id("bob/x").has_value());
  CHECK_FALSE(normalize_user_id("bob\"").has_value());
  CHECK_FALSE(normalize_user_id("bob\n").has_value());
  CHECK_FALSE(normalize_user_id("b\xc3\xa9").has_value());  // é
  CHECK_FALSE(normalize_user_id(std::string("bo\0b", 4)).has_value());
  CHECK_FALSE(normalize_user_id("bob:1").has_value());
  CHECK_FALSE(normalize_user_id("bob#x").has_value());
}

TEST_CASE("ids: user id length 128 accepted, 129 refused") {
  CHECK(normalize_user_id(std::string(kMaxUserIdBytes, 'X')) == std::string(kMaxUserIdBytes, 'x'));
  CHECK_FALSE(normalize_user_id(std::string(kMaxUserIdBytes + 1, 'x')).has_value());
}

TEST_CASE("ids: message ids round trip as 16 lower-case hex digits") {
  for (std::uint64_t seq : {0ull, 1ull, 0xabcdefull, 0x0123456789abcdefull, ~0ull}) {
    std::string id = format_message_id(seq);
    CHECK(id.size() == 16);
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(parse_message_id(id) == seq);
  }
  CHECK(format_message_id(1) == "0000000000000001");
  CHECK(format_message_id(~0ull) == "ffffffffffffffff");
  // Lexicographic order of ids is numeric order.
  CHECK(format_message_id(0xff) < format_message_id(0x100));
}

TEST_CASE("ids: malformed message ids are refused") {
  CHECK_FALSE(parse_message_id("").has_value());
  CHECK_FALSE(parse_message_id("1").has_value());
  CHECK_FALSE(parse_message_id("000000000000001").has_value());    // 15
  CHECK_FALSE(parse_message_id("00000000000000001").has_value());  // 17
  CHECK_FALSE(parse_message_id("000000000000000A").has_value());   // upper case
  CHECK_FALSE(parse_message_id("000000000000000g").has_value());
  CHECK_FALSE(parse_message_id("-000000000000001").has_value());
  CHECK_FALSE(parse_message_id(" 000000000000001").has_value());
}

TEST_CASE("ids: policy identities") {
  CHECK(is_valid_policy_identity("Global"));
  CHECK(is_valid_policy_identity("OfflineIM"));
  CHECK(is_valid_policy_identity("a.b_c-d"));
  CHECK(is_valid_policy_identity(std::string(kMaxPolicyIdentityBytes, 'p')));
  CHECK_FALSE(is_valid_policy_identity(std::string(kMaxPolicyIdentityBytes + 1, 'p')));
  CHECK_FALSE(is_valid_policy_identity(""));
  CHECK_FALSE(is_valid_policy_identity("a b"));
  CHECK_FALSE(is_valid_policy_identity("a@b"));
  CHECK_FALSE(is_valid_policy_identity("a/b"));
  CHECK(lower_ascii("OfflineIM-É") == "offlineim-É");
}

}  // namespace oms
