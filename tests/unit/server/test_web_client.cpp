#include <doctest/doctest.h>

#include <string>

#include "server/context.h"
#include "server/router.h"  // ServerContext owns a Router
#include "server/web_client.h"

using oms::server::handle_web_request;
using oms::server::ServerContext;
using oms::server::WebRequest;
using oms::server::WebResponse;

namespace {

std::string header(const WebResponse& r, std::string_view name) {
  for (const auto& [n, v] : r.headers)
    if (n == name) return v;
  return "";
}

WebResponse get(const ServerContext& ctx, std::string_view target, std::string_view host = "127.0.0.1:8080") {
  WebRequest req;
  req.method = "GET";
  req.target = target;
  req.host = host;
  return handle_web_request(ctx, req);
}

}  // namespace

TEST_CASE("web client: every embedded file is served with its type") {
  ServerContext ctx;
  REQUIRE(!oms::server::web_assets().empty());
  for (const auto& a : oms::server::web_assets()) {
    INFO(a.path);
    const WebResponse r = get(ctx, a.path);
    CHECK(r.status == 200);
    CHECK(r.content_type == a.content_type);
    CHECK(r.payload() == a.body);
    CHECK(!a.body.empty());
  }
  CHECK(get(ctx, "/").payload() == get(ctx, "/index.html").payload());
}

TEST_CASE("web client: the CSP names ws(s) of a plain Host only") {
  ServerContext ctx;
  CHECK(header(get(ctx, "/"), "Content-Security-Policy").find("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;") !=
        std::string::npos);
  CHECK(header(get(ctx, "/", "[::1]:8080"), "Content-Security-Policy").find("ws://[::1]:8080") != std::string::npos);
  // A Host that could add a directive or a header is not echoed.
  for (std::string_view host : {"", "a; script-src *", "a\r\nSet-Cookie: x=1", "a b", "evil.com/x"}) {
    INFO(host);
    const std::string csp = header(get(ctx, "/", host), "Content-Security-Policy");
    CHECK(csp.find("connect-src 'self';") != std::string::npos);
    CHECK(csp.find("ws://") == std::string::npos);
  }
}

TEST_CASE("web client: dev token endpoint follows auth.dev_tokens") {
  ServerContext ctx;
  ctx.jwt_secret = "secret";
  WebRequest req;
  req.method = "POST";
  req.target = "/v1/dev/token";
  req.body = R"({"user":"alice@contoso.com"})";
  CHECK(handle_web_request(ctx, req).status == 404);
  ctx.config.dev_tokens = true;
  const WebResponse r = handle_web_request(ctx, req);
  CHECK(r.status == 200);
  CHECK(r.payload().find("\"token\":\"") != std::string_view::npos);
  CHECK(header(r, "X-Content-Type-Options") == "nosniff");
}
