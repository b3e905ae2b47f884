// Client JWTs for tests: valid ones from oms::sign_jwt with the server's
// secret, and the broken kinds a server must refuse (expired, not yet valid,
// wrong signature, alg "none", other algs), hand-assembled where sign_jwt
// would not produce them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "common/jwt.h"

namespace oms::test {

std::int64_t unix_now_s();

// HS256 token for `user`, valid from now for `ttl`.
std::string mint_token(std::string_view secret, std::string_view user,
                       std::chrono::seconds ttl = std::chrono::hours(1));
// HS256 token for arbitrary claims (via oms::sign_jwt).
std::string mint_token(std::string_view secret, const oms::JwtClaims& claims);

// exp one hour in the past (far beyond any leeway).
std::string expired_token(std::string_view secret, std::string_view user);
// nbf one hour in the future.
std::string not_yet_valid_token(std::string_view secret, std::string_view user);
// A well-formed HS256 token signed with a different key.
std::string bad_signature_token(std::string_view secret, std::string_view user);
// A valid token whose payload was swapped for another user's (signature kept).
std::string tampered_token(std::string_view secret, std::string_view user,
                           std::string_view other_user);
// {"alg":"none"} with an empty signature.
std::string alg_none_token(std::string_view user);

// Hand-assembled compact JWT: base64url(header).base64url(payload).sig where
// sig is HMAC-<hmac> ("HS256", "HS384", "HS512") over the first two parts
// with `secret`, independent of what header.alg says.
std::string hand_signed_token(const boost::json::object& header, const boost::json::object& payload,
                              std::string_view secret, std::string_view hmac = "HS256");

}  // namespace oms::test
