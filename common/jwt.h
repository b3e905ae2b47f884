// JWT (RFC 7519) with HS256 only, on OpenSSL's HMAC.
//
// verify_jwt pins alg to HS256: "none" and every other alg are refused, the
// signature is compared in constant time, `exp` is required, `nbf` and `iat`
// are honoured when present (iat in the future beyond the skew is refused),
// `sub` must be a valid user id (it is returned normalised). Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace oms {

inline constexpr std::size_t kMaxTokenBytes = 8192;

struct JwtClaims {
  std::string sub;                  // user id (normalised by verify_jwt)
  std::int64_t exp = 0;             // seconds since the epoch
  std::optional<std::int64_t> nbf;
  std::optional<std::int64_t> iat;
  std::optional<std::string> iss;
  std::optional<std::string> aud;
};

struct JwtVerifyOptions {
  std::int64_t now_s = 0;
  std::int64_t leeway_s = 30;           // clock skew allowed on exp/nbf/iat
  std::optional<std::string> issuer;    // when set, `iss` must equal it
  std::optional<std::string> audience;  // when set, `aud` must equal/contain it
};

// A compact-serialised HS256 token for `claims`.
std::string sign_jwt(const JwtClaims& claims, std::string_view secret);

// The verified claims, or Status::unauthenticated with the reason.
Result<JwtClaims> verify_jwt(std::string_view token, std::string_view secret,
                             const JwtVerifyOptions& opts);

// base64url without padding (RFC 4648 §5).
std::string base64url_encode(std::string_view in);
std::optional<std::string> base64url_decode(std::string_view in);

// n random bytes from OpenSSL's CSPRNG, hex-encoded (2n characters).
std::string random_hex(std::size_t n_bytes);

// Constant-time equality of two byte strings (length may leak, content not).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace oms
