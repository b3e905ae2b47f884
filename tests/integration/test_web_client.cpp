// The plain-HTTP side of the client listener (server/PROTOCOL.md, the browser client): the
// embedded browser client at /, its security headers, the JSON 404/405, and
// POST /v1/dev/token (auth.dev_tokens, off by default).
#include <doctest/doctest.h>

#include <string>

#include "tests/support/harness.h"

using namespace oms::test;
using boost::json::value;

namespace {

// A plain HTTP client of the client listener (no Authorization header).
HttpResult web(const OmsdProcess& omsd, http::verb method, std::string_view target, std::string body = "",
               std::string_view content_type = "") {
  AdminClient c(omsd.client_port(), "");
  return c.request_raw(method, target, std::move(body), content_type, Auth::none());
}

HttpResult mint(const OmsdProcess& omsd, std::string body) {
  return web(omsd, http::verb::post, "/v1/dev/token", std::move(body), "application/json");
}

constexpr const char* kDevTokensOn = "[auth]\ndev_tokens = true\n";

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

TEST_CASE("web: / serves the browser client with no-cache, a strict CSP and nosniff") {
  OmsdProcess omsd;
  const HttpResult page = web(omsd, http::verb::get, "/");
  OMS_CHECK_HTTP(page, 200);
  CHECK(page.content_type == "text/html; charset=utf-8");
  CHECK(contains(page.raw, "<!doctype html>"));
  CHECK(contains(page.raw, R"(<script src="/app.js" defer></script>)"));
  CHECK(page.header("Cache-Control") == "no-cache");
  CHECK(page.header("X-Content-Type-Options") == "nosniff");
  const std::string csp = page.header("Content-Security-Policy");
  INFO("CSP: " << csp);
  CHECK(contains(csp, "default-src 'none'"));
  CHECK(contains(csp, "script-src 'self'"));
  CHECK(contains(csp, "style-src 'self'"));
  CHECK(contains(csp, "connect-src 'self' ws://127.0.0.1:" + std::to_string(omsd.client_port())));
  CHECK(contains(csp, "frame-ancestors 'none'"));
  CHECK(!contains(csp, "unsafe-inline"));
  CHECK(!contains(csp, "unsafe-eval"));

  // The same bytes at /index.html; the script and the style sheet beside it.
  CHECK(web(omsd, http::verb::get, "/index.html").raw == page.raw);
  const HttpResult js = web(omsd, http::verb::get, "/app.js?v=1");
  OMS_CHECK_HTTP(js, 200);
  CHECK(js.content_type == "text/javascript; charset=utf-8");
  CHECK(contains(js.raw, "offline-messages"));  // announces the feature (§1.1)
  CHECK(js.header("X-Content-Type-Options") == "nosniff");
  const HttpResult css = web(omsd, http::verb::get, "/app.css");
  OMS_CHECK_HTTP(css, 200);
  CHECK(css.content_type == "text/css; charset=utf-8");
  CHECK(css.header("Cache-Control") == "no-cache");

  // HEAD: the headers of GET, the length of GET, no body.
  const HttpResult head = web(omsd, http::verb::head, "/");
  OMS_CHECK_HTTP(head, 200);
  CHECK(head.raw.empty());
  CHECK(head.content_type == "text/html; charset=utf-8");
  CHECK(head.header("Content-Length") == std::to_string(page.raw.size()));
  CHECK(head.header("Content-Security-Policy") == csp);
}

TEST_CASE("web: unknown paths keep the JSON 404, other methods on a page get 405") {
  OmsdProcess omsd;
  for (const char* target : {"/nope", "/v1/ws", "/app.js/", "/../server/web/app.js", "/v1/dev/token"}) {
    INFO("GET " << target);
    const HttpResult r = web(omsd, http::verb::get, target);
    OMS_CHECK_HTTP(r, 404);
    CHECK(r.content_type == "application/json");
    CHECK(r.error_code() == "not_found");
    CHECK(r.header("X-Content-Type-Options") == "nosniff");
  }
  for (http::verb m : {http::verb::post, http::verb::put, http::verb::delete_}) {
    INFO(http::to_string(m));
    const HttpResult r = web(omsd, m, "/", "x", "text/plain");
    OMS_CHECK_HTTP(r, 405);
    CHECK(r.allow == "GET, HEAD");
    CHECK(r.error_code() == "method_not_allowed");
  }
  // The WebSocket endpoint is unchanged.
  auto c = sign_in(omsd, kAlice);
  CHECK(c->user() == kAlice);
}

TEST_CASE("dev tokens: off by default, the endpoint is a 404") {
  OmsdProcess omsd;
  const HttpResult r = mint(omsd, R"({"user":"alice@contoso.com"})");
  OMS_CHECK_HTTP(r, 404);
  CHECK(r.error_code() == "not_found");
  CHECK(!contains(r.raw, "token\":"));
}

TEST_CASE("dev tokens: on, POST /v1/dev/token mints a token that signs in (normalised user)") {
  OmsdProcess omsd(with_config(kDevTokensOn));
  const HttpResult r = mint(omsd, R"({"user":"Alice@Contoso.COM"})");
  OMS_CHECK_HTTP(r, 200);
  CHECK(r.content_type == "application/json");
  CHECK(r.header("Cache-Control") == "no-store");
  REQUIRE(r.json.is_object());
  const Json& body = r.json.get_object();
  CHECK(str_of(body, "user") == kAlice);
  CHECK(int_of(body, "exp") > unix_now_ms() / 1000);

  auto c = connect_client(omsd);
  const Json w = c->hello(str_of(body, "token"));
  OMS_CHECK_TYPE(w, "welcome");
  CHECK(str_of(w, "user") == kAlice);

  // GET tells the page that dev tokens are on (and mints nothing); other
  // methods are refused.
  const HttpResult get = web(omsd, http::verb::get, "/v1/dev/token");
  OMS_CHECK_HTTP(get, 200);
  CHECK(get.raw == R"({"dev_tokens":true,"ttl_seconds":43200})");
  const HttpResult del = web(omsd, http::verb::delete_, "/v1/dev/token");
  OMS_CHECK_HTTP(del, 405);
  CHECK(del.allow == "GET, HEAD, POST");
}

TEST_CASE("dev tokens: the token carries auth.issuer and auth.audience when they are set") {
  OmsdProcess omsd(with_config("[auth]\ndev_tokens = true\nissuer = \"oms-test\"\naudience = \"oms-clients\"\n"));
  const HttpResult r = mint(omsd, R"({"user":"bob@contoso.com"})");
  OMS_CHECK_HTTP(r, 200);
  REQUIRE(r.json.is_object());
  auto c = connect_client(omsd);
  const Json w = c->hello(str_of(r.json.get_object(), "token"));
  CHECK(str_of(w, "user") == kBob);
  // A token without them (omsctl's kind) is refused by this server.
  auto other = connect_client(omsd);
  const Json refused = other->hello_raw(omsd.token(kBob));
  OMS_CHECK_ERROR(refused, "unauthenticated");
}

TEST_CASE("dev tokens: a bad body is a 400 bad_request, an oversized one a 413") {
  OmsdProcess omsd(with_config(kDevTokensOn));
  for (const char* body : {"", "not json", "[]", "\"alice\"", "{}", R"({"user":7})", R"({"user":""})",
                           R"({"user":"bad user!"})", R"({"user":"alice@contoso.com","admin":true})"}) {
    INFO("body: " << body);
    const HttpResult r = mint(omsd, body);
    OMS_CHECK_HTTP(r, 400);
    CHECK(r.error_code() == "bad_request");
    CHECK(contains(r.raw, "\"message\":"));
  }
  const HttpResult long_id = mint(omsd, R"({"user":")" + std::string(129, 'a') + R"("})");
  OMS_CHECK_HTTP(long_id, 400);
  CHECK(long_id.error_code() == "bad_request");

  const HttpResult big = mint(omsd, R"({"user":")" + std::string(8192, 'a') + R"("})");
  OMS_CHECK_HTTP(big, 413);
  CHECK(big.error_code() == "too_large");

  // Still serving after all that.
  OMS_CHECK_HTTP(mint(omsd, R"({"user":"carol@contoso.com"})"), 200);
}
