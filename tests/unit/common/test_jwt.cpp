#include "common/jwt.h"

#include <set>
#include <string>

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace oms {
namespace {

constexpr std::string_view kSecret = "test-secret-0123456789";
constexpr std::int64_t kNow = 1'700'000'000;

JwtClaims valid_claims() {
  JwtClaims c;
  c.sub = "Bob@Contoso.com";
  c.exp = kNow + 3600;
  c.iat = kNow - 10;
  return c;
}

JwtVerifyOptions opts_at(std::int64_t now_s, std::int64_t leeway_s = 30) {
  JwtVerifyOptions o;
  o.now_s = now_s;
  o.leeway_s = leeway_s;
  return o;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

// A token with arbitrary header and payload JSON, correctly signed, so that a
// test reaches the check it means to exercise.
std::string forge(std::string_view header_json, std::string_view payload_json,
                  std::string_view secret = kSecret) {
  std::string input = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  return input + "." + base64url_encode(hmac_sha256(secret, input));
}

constexpr std::string_view kHeader = R"({"alg":"HS256","typ":"JWT"})";
const std::string kPayload =
    R"({"sub":"bob@contoso.com","exp":)" + std::to_string(kNow + 3600) + "}";

Result<JwtClaims> verify(std::string_view token, const JwtVerifyOptions& o = opts_at(kNow)) {
  return verify_jwt(token, kSecret, o);
}

void check_refused(const Result<JwtClaims>& r, std::string_view reason) {
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kUnauthenticated);
  CHECK_MESSAGE(r.status().message() == reason, r.status().message());
}

}  // namespace

TEST_CASE("jwt: a valid token verifies and sub comes back normalised") {
  JwtClaims c = valid_claims();
  c.nbf = kNow - 5;
  std::string token = sign_jwt(c, kSecret);
  auto r = verify(token);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(r->sub == "bob@contoso.com");
  CHECK(r->exp == c.exp);
  CHECK(r->nbf == c.nbf);
  CHECK(r->iat == c.iat);
  CHECK_FALSE(r->iss.has_value());
  CHECK_FALSE(r->aud.has_value());
}

TEST_CASE("jwt: a forged token with the canonical header verifies") {
  auto r = verify(forge(kHeader, kPayload));
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(r->sub == "bob@contoso.com");
  // typ is optional.
  CHECK(verify(forge(R"({"alg":"HS256"})", kPayload)).is_ok());
  // exp as an integral double, extra claims ignored.
  CHECK(verify(forge(kHeader, R"({"sub":"a","exp":2e9,"jti":"x","roles":[1]})")).is_ok());
}

TEST_CASE("jwt: expiry honours the leeway exactly") {
  JwtClaims c = valid_claims();
  c.iat.reset();
  c.exp = kNow;
  std::string token = sign_jwt(c, kSecret);
  CHECK(verify(token, opts_at(kNow + 30, 30)).is_ok());
  check_refused(verify(token, opts_at(kNow + 31, 30)), "token expired");
  check_refused(verify(token, opts_at(kNow + 1, 0)), "token expired");
  CHECK(verify(token, opts_at(kNow, 0)).is_ok());
}

TEST_CASE("jwt: an expired token is refused") {
  JwtClaims c = valid_claims();
  c.iat = kNow - 7200;
  c.exp = kNow - 3600;
  check_refused(verify(sign_jwt(c, kSecret)), "token expired");
}

TEST_CASE("jwt: nbf in the future is refused, within the leeway accepted") {
  JwtClaims c = valid_claims();
  c.nbf = kNow + 100;
  check_refused(verify(sign_jwt(c, kSecret)), "token not yet valid (nbf)");
  c.nbf = kNow + 30;
  CHECK(verify(sign_jwt(c, kSecret), opts_at(kNow, 30)).is_ok());
  c.nbf = kNow + 31;
  check_refused(verify(sign_jwt(c, kSecret), opts_at(kNow, 30)), "token not yet valid (nbf)");
}

TEST_CASE("jwt: iat in the future is refused, within the leeway accepted") {
  JwtClaims c = valid_claims();
  c.iat = kNow + 100;
  check_refused(verify(sign_jwt(c, kSecret)), "token issued in the future (iat)");
  c.iat = kNow + 30;
  CHECK(verify(sign_jwt(c, kSecret), opts_at(kNow, 30)).is_ok());
}

TEST_CASE("jwt: bad signature") {
  std::string token = sign_jwt(valid_claims(), kSecret);
  check_refused(verify_jwt(token, "another-secret", opts_at(kNow)), "bad signature");

  // A changed payload with the old signature.
  std::size_t dot1 = token.find('.');
  std::size_t dot2 = token.rfind('.');
  JwtClaims other = valid_claims();
  other.sub = "mallory";
  std::string other_token = sign_jwt(other, kSecret);
  std::string spliced = token.substr(0, dot1) + other_token.substr(other_token.find('.'),
                                                                    other_token.rfind('.') - other_token.find('.')) +
                        token.substr(dot2);
  check_refused(verify(spliced), "bad signature");

  // A flipped bit in the signature, a truncated and an empty signature.
  std::string sig = *base64url_decode(token.substr(dot2 + 1));
  sig[5] = static_cast<char>(sig[5] ^ 1);
  check_refused(verify(token.substr(0, dot2 + 1) + base64url_encode(sig)), "bad signature");
  check_refused(verify(token.substr(0, dot2 + 1) + base64url_encode(sig.substr(0, 31))), "bad signature");
  check_refused(verify(token.substr(0, dot2 + 1)), "bad signature");
}

TEST_CASE("jwt: alg none is refused, even unsigned") {
  std::string unsigned_token =
      base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." + base64url_encode(kPayload) + ".";
  check_refused(verify(unsigned_token), "alg none not accepted");
  check_refused(verify(forge(R"({"alg":"none"})", kPayload)), "alg none not accepted");
}

TEST_CASE("jwt: every alg but HS256 is refused") {
  check_refused(verify(forge(R"({"alg":"HS512","typ":"JWT"})", kPayload)), "alg HS512 not accepted");
  check_refused(verify(forge(R"({"alg":"hs256"})", kPayload)), "alg hs256 not accepted");
  check_refused(verify(forge(R"({"alg":"RS256"})", kPayload)), "alg RS256 not accepted");
  check_refused(verify(forge(R"({"alg":"HS256 "})", kPayload)), "alg HS256  not accepted");
  check_refused(verify(forge(R"({"typ":"JWT"})", kPayload)), "token header has no alg");
  check_refused(verify(forge(R"({"alg":256})", kPayload)), "token alg must be a string");
  check_refused(verify(forge(R"({"alg":"HS256","typ":"JWS"})", kPayload)), "token typ not accepted");
  check_refused(verify(forge(R"({"alg":"HS256","crit":["exp"]})", kPayload)),
                "token crit header not supported");
}

TEST_CASE("jwt: a long alg is quoted cut short, never inside a character") {
  const std::string x32(32, 'x');
  check_refused(verify(forge(R"({"alg":")" + x32 + R"("})", kPayload)), "alg " + x32 + " not accepted");
  check_refused(verify(forge(R"({"alg":")" + x32 + R"(y"})", kPayload)), "alg " + x32 + "... not accepted");
  // 31 bytes, then é across bytes 32 and 33: the cut falls before é.
  const std::string x31(31, 'x');
  check_refused(verify(forge(R"({"alg":")" + x31 + "\xc3\xa9" + R"(yy"})", kPayload)),
                "alg " + x31 + "... not accepted");
}

TEST_CASE("jwt: malformed tokens") {
  std::string token = sign_jwt(valid_claims(), kSecret);
  std::size_t dot1 = token.find('.');
  std::size_t dot2 = token.rfind('.');

  SUBCASE("segments") {
    check_refused(verify(""), "empty token");
    check_refused(verify(token.substr(0, dot2)), "malformed token: expected 3 segments");
    check_refused(verify(token + ".x"), "malformed token: expected 3 segments");
    check_refused(verify("abc"), "malformed token: expected 3 segments");
  }
  SUBCASE("bad base64") {
    check_refused(verify("*" + token.substr(1)), "malformed token: header is not base64url");
    check_refused(verify(token.substr(0, dot2 + 1) + "ab+/"), "malformed token: signature is not base64url");
    check_refused(verify(token.substr(0, dot2 + 1) + token.substr(dot2 + 1) + "="),
                  "malformed token: signature is not base64url");
    std::string payload = token.substr(dot1 + 1, dot2 - dot1 - 1);
    std::string bad = token.substr(0, dot1 + 1) + "!" + payload + token.substr(dot2);
    // The signature covers the bad payload text too, so re-sign it.
    std::string input = bad.substr(0, bad.rfind('.'));
    check_refused(verify(input + "." + base64url_encode(hmac_sha256(kSecret, input))),
                  "malformed token: payload is not base64url");
  }
  SUBCASE("header or payload not JSON") {
    check_refused(verify(forge("not json", kPayload)), "malformed token: header is not a JSON object");
    check_refused(verify(forge("[1]", kPayload)), "malformed token: header is not a JSON object");
    check_refused(verify(forge(kHeader, "{\"sub\":")), "malformed token: payload is not a JSON object");
    check_refused(verify(forge(kHeader, "\"str\"")), "malformed token: payload is not a JSON object");
  }
  SUBCASE("claims") {
    check_refused(verify(forge(kHeader, R"({"sub":"bob"})")), "token has no exp");
    check_refused(verify(forge(kHeader, R"({"sub":"bob","exp":"2000000000"})")), "token exp must be an integer");
    check_refused(verify(forge(kHeader, R"({"sub":"bob","exp":2000000000.5})")), "token exp must be an integer");
    check_refused(verify(forge(kHeader, R"({"sub":"bob","exp":1e300})")), "token exp must be an integer");
    check_refused(verify(forge(kHeader, R"({"sub":"bob","exp":18446744073709551615})")),
                  "token exp must be an integer");
    check_refused(verify(forge(kHeader, R"({"exp":2000000000})")), "token has no sub");
    check_refused(verify(forge(kHeader, R"({"sub":42,"exp":2000000000})")), "token sub must be a string");
    check_refused(verify(forge(kHeader, R"({"sub":"bob smith","exp":2000000000})")),
                  "token sub is not a valid user id");
    check_refused(verify(forge(kHeader, R"({"sub":"","exp":2000000000})")), "token sub is not a valid user id");
    check_refused(verify(forge(kHeader, R"({"sub":"bob","exp":2000000000,"nbf":"x"})")),
                  "token nbf must be an integer");
    check_refused(verify(forge(kHeader, R"({"sub":"bob","exp":2000000000,"iat":null})")),
                  "token iat must be an integer");
  }
}

TEST_CASE("jwt: extreme exp does not overflow") {
  auto r = verify(forge(kHeader, R"({"sub":"bob","exp":9223372036854775807})"),
                  opts_at(kNow, 9223372036854775807));
  CHECK(r.is_ok());
  check_refused(verify(forge(kHeader, R"({"sub":"bob","exp":-9223372036854775808})")), "token expired");
}

TEST_CASE("jwt: iss and aud are checked only when configured") {
  JwtClaims c = valid_claims();
  c.iss = "oms";
  c.aud = "chat";
  std::string token = sign_jwt(c, kSecret);

  auto r = verify(token);
  REQUIRE(r.is_ok());
  CHECK(r->iss == "oms");
  CHECK(r->aud == "chat");

  JwtVerifyOptions o = opts_at(kNow);
  o.issuer = "oms";
  o.audience = "chat";
  CHECK(verify(token, o).is_ok());
  o.issuer = "someone-else";
  check_refused(verify(token, o), "token iss not accepted");
  o.issuer = "oms";
  o.audience = "admin";
  check_refused(verify(token, o), "token aud not accepted");

  JwtVerifyOptions need_iss = opts_at(kNow);
  need_iss.issuer = "oms";
  check_refused(verify(sign_jwt(valid_claims(), kSecret), need_iss), "token has no iss");
  JwtVerifyOptions need_aud = opts_at(kNow);
  need_aud.audience = "chat";
  check_refused(verify(sign_jwt(valid_claims(), kSecret), need_aud), "token has no aud");

  // aud as an array of strings.
  std::string arr = forge(kHeader, R"({"sub":"bob","exp":2000000000,"aud":["web","chat"]})");
  auto ra = verify(arr, need_aud);
  REQUIRE(ra.is_ok());
  CHECK(ra->aud == "chat");
  need_aud.audience = "mobile";
  check_refused(verify(arr, need_aud), "token aud not accepted");
  check_refused(verify(forge(kHeader, R"({"sub":"bob","exp":2000000000,"aud":["web",1]})")),
                "token aud must be a string or an array of strings");
  check_refused(verify(forge(kHeader, R"({"sub":"bob","exp":2000000000,"iss":7})")),
                "token iss must be a string");
}

TEST_CASE("jwt: oversize token is refused before anything else") {
  JwtClaims c = valid_claims();
  c.iss = std::string(kMaxTokenBytes, 'x');
  std::string token = sign_jwt(c, kSecret);
  REQUIRE(token.size() > kMaxTokenBytes);
  check_refused(verify(token), "token too long");
  check_refused(verify(std::string(kMaxTokenBytes + 1, 'a')), "token too long");
}

TEST_CASE("jwt: an empty secret verifies nothing") {
  std::string token = sign_jwt(valid_claims(), "");
  check_refused(verify_jwt(token, "", opts_at(kNow)), "no token secret configured");
}

TEST_CASE("base64url: round trip and RFC 4648 vectors") {
  CHECK(base64url_encode("") == "");
  CHECK(base64url_encode("f") == "Zg");
  CHECK(base64url_encode("fo") == "Zm8");
  CHECK(base64url_encode("foo") == "Zm9v");
  CHECK(base64url_encode("foob") == "Zm9vYg");
  CHECK(base64url_encode("fooba") == "Zm9vYmE");
  CHECK(base64url_encode("foobar") == "Zm9vYmFy");
  CHECK(base64url_encode("\xfb\xff") == "-_8");
  CHECK(base64url_decode("-_8") == std::string("\xfb\xff"));

  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= all.size(); n += 7) {
    std::string in = all.substr(0, n);
    CHECK(base64url_decode(base64url_encode(in)) == in);
  }
}

TEST_CASE("base64url: rejects padding, foreign characters and non-canonical forms") {
  CHECK_FALSE(base64url_decode("Zg==").has_value());
  CHECK_FALSE(base64url_decode("Zm9v+A").has_value());
  CHECK_FALSE(base64url_decode("Zm9v/A").has_value());
  CHECK_FALSE(base64url_decode("Zm 9v").has_value());
  CHECK_FALSE(base64url_decode("Z").has_value());        // impossible length
  CHECK_FALSE(base64url_decode("Zh").has_value());       // non-zero trailing bits
  CHECK_FALSE(base64url_decode(std::string("Zm\0v", 4)).has_value());
  CHECK(base64url_decode("") == std::string());
}

TEST_CASE("random_hex and constant_time_equal") {
  std::string a = random_hex(16);
  CHECK(a.size() == 32);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) seen.insert(random_hex(16));
  CHECK(seen.size() == 100);
  CHECK(random_hex(0).empty());

  CHECK(constant_time_equal("", ""));
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "ab"));
}

}  // namespace oms
