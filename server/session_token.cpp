#include "server/session_token.h"

#include "server/context.h"
#include "storage/policy_store.h"

namespace oms::server {

Result<JwtClaims> verify_session_token(const ServerContext& ctx, std::string_view token) {
  JwtVerifyOptions opts;
  opts.now_s = ctx.clock->now_s();
  opts.leeway_s = ctx.config.leeway_seconds;
  if (!ctx.config.issuer.empty()) opts.issuer = ctx.config.issuer;
  if (!ctx.config.audience.empty()) opts.audience = ctx.config.audience;
  auto claims = verify_jwt(token, ctx.jwt_secret, opts);
  if (claims && token_revoked(ctx, claims->sub, claims->iat)) return Status::unauthenticated("token revoked");
  return claims;
}

bool token_revoked(const ServerContext& ctx, const std::string& user, std::optional<std::int64_t> iat) {
  auto at = ctx.database->policies().revoked_at(user);
  return at && (!iat || *iat < *at);
}

}  // namespace oms::server
