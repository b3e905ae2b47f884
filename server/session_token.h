// Client tokens as a session sees them (contract 4.3): valid now (jwt.h,
// with [auth] leeway, issuer, audience) and not revoked (the user's
// revocation time in the policy store: a token issued before it, or without
// `iat`, is refused). Used at hello and at auth.refresh. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/jwt.h"
#include "common/status.h"

namespace oms::server {

struct ServerContext;

// The claims, or Status::unauthenticated with the reason ("token revoked").
Result<JwtClaims> verify_session_token(const ServerContext& ctx, std::string_view token);

// True when `user` was revoked after `iat` (or `iat` is absent).
bool token_revoked(const ServerContext& ctx, const std::string& user, std::optional<std::int64_t> iat);

}  // namespace oms::server
