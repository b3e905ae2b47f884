#include "server/web_client.h"

#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/ids.h"
#include "common/utf8.h"
#include "common/jwt.h"
#include "server/context.h"

namespace oms::server {

namespace json = boost::json;

namespace {

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kDevTokenPath = "/v1/dev/token";
constexpr std::string_view kNotFoundBody =
    R"({"error":{"code":"not_found","message":"the client endpoint is ws://HOST:PORT/v1/ws; the browser client is at /"}})";

// A generated JSON answer; never cached (tokens, errors).
WebResponse json_response(int status, const json::value& v) {
  WebResponse r;
  r.status = status;
  r.content_type = std::string(kJson);
  r.body = json::serialize(v);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

WebResponse error_response(int status, std::string_view code, std::string_view message) {
  return json_response(status, json::object{{"error", json::object{{"code", code}, {"message", message}}}});
}

WebResponse not_found() {
  WebResponse r;
  r.status = 404;
  r.content_type = std::string(kJson);
  r.body = std::string(kNotFoundBody);
  return r;
}

WebResponse method_not_allowed(std::string_view allow) {
  WebResponse r = error_response(405, "method_not_allowed", fmt::format("use {}", allow));
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

// A Host header fit to be echoed into the CSP: host or host:port, IPv6 in
// brackets; nothing that could end the header or the directive.
bool is_plain_host(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  for (char ch : host) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '-' || ch == ':' || ch == '[' || ch == ']';
    if (!ok) return false;
  }
  return true;
}

// Scripts, styles and images from this origin only; no inline code, no
// plugins, no framing. connect-src: the WebSocket endpoint and the dev token
// endpoint of this host ('self' covers ws(s) of the same host in CSP 3; the
// explicit ws://HOST and wss://HOST cover older browsers).
std::string content_security_policy(std::string_view host) {
  std::string connect = "'self'";
  if (is_plain_host(host)) connect += fmt::format(" ws://{0} wss://{0}", host);
  return fmt::format(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src {}; "
      "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      connect);
}

const WebAsset* find_asset(std::string_view path) {
  if (path == "/") path = "/index.html";
  for (const auto& a : web_assets())
    if (a.path == path) return &a;
  return nullptr;
}

WebResponse serve_asset(const WebAsset& asset, const WebRequest& req) {
  WebResponse r;
  r.status = 200;
  r.content_type = std::string(asset.content_type);
  r.static_body = asset.body;
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("Content-Security-Policy", content_security_policy(req.host));
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  return r;
}

WebResponse mint_dev_token(const ServerContext& ctx, const WebRequest& req) {
  json::error_code ec;
  json::value v = json::parse(req.body, ec);
  if (ec || !v.is_object()) return error_response(400, "bad_request", R"(the body must be a JSON object {"user":"..."})");
  const json::object& o = v.get_object();
  for (const auto& kv : o) {
    if (kv.key() != "user")
      return error_response(400, "bad_request", fmt::format("unknown field '{}'", std::string_view(kv.key())));
  }
  const json::value* user = o.if_contains("user");
  if (user == nullptr || !user->is_string()) return error_response(400, "bad_request", "'user' (a string) is required");
  auto id = normalize_user_id(std::string_view(user->get_string()));
  if (!id)
    return error_response(400, "bad_request", "'user' is not a valid user id (1-128 bytes of A-Z a-z 0-9 . _ @ + -)");

  JwtClaims claims;
  claims.sub = *id;
  claims.iat = ctx.clock->now_s();
  claims.exp = *claims.iat + kDevTokenTtlSeconds;
  if (!ctx.config.issuer.empty()) claims.iss = ctx.config.issuer;
  if (!ctx.config.audience.empty()) claims.aud = ctx.config.audience;
  spdlog::info("dev token issued for {} to {}", claims.sub, req.remote);

  return json_response(200, json::object{{"token", sign_jwt(claims, ctx.jwt_secret)},
                                         {"user", claims.sub},
                                         {"exp", claims.exp}});
}

// GET: lets the page know, without minting anything, that it can sign in by
// user id (a 404 says dev tokens are off).
WebResponse dev_tokens_on() {
  return json_response(200, json::object{{"dev_tokens", true}, {"ttl_seconds", kDevTokenTtlSeconds}});
}

WebResponse route(const ServerContext& ctx, const WebRequest& req) {
  std::string_view path = req.target.substr(0, req.target.find('?'));
  if (path == kDevTokenPath) {
    if (!ctx.config.dev_tokens) return not_found();
    if (req.method == "POST") return mint_dev_token(ctx, req);
    if (req.method == "GET" || req.method == "HEAD") return dev_tokens_on();
    return method_not_allowed("GET, HEAD, POST");
  }
  const WebAsset* asset = find_asset(path);
  if (asset == nullptr) return not_found();
  if (req.method != "GET" && req.method != "HEAD") return method_not_allowed("GET, HEAD");
  return serve_asset(*asset, req);
}

}  // namespace

// Every answer of the client listener's HTTP side goes through here or the
// two builders below, which is where nosniff is set.
static WebResponse with_nosniff(WebResponse r) {
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

WebResponse handle_web_request(const ServerContext& ctx, const WebRequest& req) {
  return with_nosniff(route(ctx, req));
}

WebResponse web_body_too_large() {
  return with_nosniff(error_response(
      413, "too_large", fmt::format("request bodies are limited to {} bytes", kMaxClientHttpBodyBytes)));
}

WebResponse web_forbidden_origin(std::string_view origin) {
  return with_nosniff(error_response(403, "forbidden_origin",
                                    fmt::format("origin '{}' is not in auth.allowed_origins",
                                                to_valid_utf8(origin.substr(0, 256)))));
}

}  // namespace oms::server
