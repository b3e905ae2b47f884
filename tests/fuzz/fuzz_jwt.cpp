// libFuzzer harness: the HS256 JWT verifier and base64url (common/jwt).
//
// Oracles: verify_jwt never accepts a token under a secret other than the
// one that signed it; anything it accepts has a valid normalised `sub` and an
// `exp` in the future; base64url decode ∘ encode is the identity.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/ids.h"
#include "common/jwt.h"

namespace {

constexpr std::string_view kSecret = "fuzz-secret-0123456789abcdef0123456789abcdef";
constexpr std::int64_t kNow = 1'800'000'000;  // fixed: the corpus tokens stay valid

[[noreturn]] void fail(const char* what, std::string_view token) {
  std::fprintf(stderr, "fuzz_jwt: %s\n  token: %.*s\n", what, static_cast<int>(token.size()), token.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  oms::JwtVerifyOptions opts;
  opts.now_s = kNow;
  if (auto claims = oms::verify_jwt(input, kSecret, opts)) {
    if (claims->exp + opts.leeway_s <= kNow) fail("accepted an expired token", input);
    auto normal = oms::normalize_user_id(claims->sub);
    if (!normal || *normal != claims->sub) fail("accepted a sub that is not a normalised user id", input);
    if (oms::verify_jwt(input, "another-secret", opts)) fail("accepted under another secret", input);
  }

  const std::string enc = oms::base64url_encode(input);
  auto dec = oms::base64url_decode(enc);
  if (!dec || *dec != input) fail("base64url round trip", input);
  if (enc.find_first_of("+/=") != std::string::npos) fail("base64url alphabet", enc);
  (void)oms::base64url_decode(input);
  return 0;
}
