// The admin API's routing rules (server/admin_routes.h): what a request gets
// before any handler touches the store — 400 for a bad %-escape or user id,
// 401 without the token (even for unknown paths), 404, 405 — and the route
// table's own consistency. The handlers are covered end to end by
// tests/integration/test_admin.cpp.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <utility>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "server/admin_api.h"
#include "server/admin_routes.h"
#include "server/context.h"
#include "server/router.h"  // ServerContext owns a Router

using oms::server::AdminApi;
using oms::server::AdminRequest;
using oms::server::AdminResponse;
using oms::server::ServerContext;

namespace {

constexpr std::string_view kToken = "unit-admin-token";
const std::string kBearer = "Bearer " + std::string(kToken);

// A context without a store: every request here is answered by the router
// (or by a handler that needs no store) before the store would be reached.
struct World {
  ServerContext ctx;
  AdminApi api{ctx};
  World() { ctx.admin_token = std::string(kToken); }

  AdminResponse call(std::string_view method, std::string_view target, bool with_token = true) {
    const std::string auth = with_token ? kBearer : std::string();
    return api.handle(AdminRequest{method, target, auth, "", "127.0.0.1:1"});
  }
};

std::string error_code(const AdminResponse& r) {
  const auto v = boost::json::parse(r.body);
  return std::string(v.at("error").at("code").as_string());
}

}  // namespace

TEST_CASE("admin routing: /healthz answers without a token however the path is spelled") {
  World w;
  for (const char* target : {"/healthz", "//healthz/", "/%68ealthz", "/healthz?x=1"}) {
    CAPTURE(target);
    const AdminResponse r = w.call("GET", target, false);
    CHECK(r.status == 200);
    CHECK(r.body == R"({"status":"ok"})");
    CHECK(w.call("HEAD", target, false).status == 200);
  }
  // Not ready until the listeners are up (checked before the store is).
  const AdminResponse ready = w.call("GET", "/readyz", false);
  CHECK(ready.status == 503);
  CHECK(ready.body == R"({"status":"not_ready","reason":"listeners not up"})");
}

TEST_CASE("admin routing: a wrong method on a probe is a 405 without a token") {
  World w;
  const AdminResponse r = w.call("POST", "/healthz", false);
  CHECK(r.status == 405);
  CHECK(error_code(r) == "method_not_allowed");
  CHECK(w.call("get", "/readyz", false).status == 405);  // methods are case-sensitive
}

TEST_CASE("admin routing: everything else needs the token, even a path nothing serves") {
  World w;
  for (const char* target : {"/metrics", "/v1/policies", "/v1/nothing-here", "/", "/healthz/x"}) {
    CAPTURE(target);
    const AdminResponse r = w.call("GET", target, false);
    CHECK(r.status == 401);
    CHECK(error_code(r) == "unauthenticated");
  }
  CHECK(w.ctx.metrics.admin_unauthorized_total.load() == 5);
  CHECK(w.ctx.metrics.admin_requests_total.load() == 5);
}

TEST_CASE("admin routing: a malformed %-escape is a 400 before the token is checked") {
  World w;
  for (const char* target : {"/v1/policies/%zz", "/v1/%4", "/%"}) {
    CAPTURE(target);
    const AdminResponse r = w.call("GET", target, false);
    CHECK(r.status == 400);
    CHECK(r.body == R"({"error":{"code":"bad_request","message":"malformed percent-encoding in the path"}})");
  }
}

TEST_CASE("admin routing: unknown paths are 404 and name the target") {
  World w;
  for (const char* target : {"/v1", "/v1/nothing-here", "/v2/policies", "/metrics/x", "/v1/policies/a/b",
                             "/v1/users/alice@contoso.com/a/b", "/healthz/x"}) {
    CAPTURE(target);
    const AdminResponse r = w.call("GET", target);
    CHECK(r.status == 404);
    CHECK(r.body == R"({"error":{"code":"not_found","message":"no such endpoint: )" + std::string(target) + "\"}}");
  }
}

TEST_CASE("admin routing: a known path with another method is a 405 that names both") {
  World w;
  const AdminResponse r = w.call("PUT", "/v1/policies");
  CHECK(r.status == 405);
  CHECK(r.body == R"({"error":{"code":"method_not_allowed","message":"PUT is not allowed on /v1/policies"}})");
  for (const auto& mt : std::initializer_list<std::pair<const char*, const char*>>{
           {"HEAD", "/metrics"},
           {"POST", "/v1/policies/Global"},
           {"POST", "/v1/users/alice@contoso.com"},
           {"GET", "/v1/users/alice@contoso.com/policy"},
           {"GET", "/v1/users/alice@contoso.com/mailbox"},
           {"GET", "/v1/backup"},
           {"POST", "/v1/configuration/im"}}) {
    const char* method = mt.first;  // (not a structured binding: clang 14
    const char* target = mt.second;  // cannot capture those in CAPTURE's lambda)
    CAPTURE(method);
    CAPTURE(target);
    CHECK(w.call(method, target).status == 405);
  }
}

TEST_CASE("admin routing: a bad user id is a 400 on every path under /v1/users/{user}") {
  World w;
  // Checked before the method and before the sub-resource: even a path that
  // would be a 404 or a 405 with a good user id.
  for (const auto& mt : std::initializer_list<std::pair<const char*, const char*>>{
           {"GET", "/v1/users/bad!"},
           {"POST", "/v1/users/bad!"},
           {"PUT", "/v1/users/bad!/policy"},
           {"GET", "/v1/users/bad!/policy"},
           {"DELETE", "/v1/users/bad!/mailbox"},
           {"GET", "/v1/users/bad!/whatever"}}) {
    const char* method = mt.first;  // (not a structured binding: clang 14
    const char* target = mt.second;  // cannot capture those in CAPTURE's lambda)
    CAPTURE(method);
    CAPTURE(target);
    const AdminResponse r = w.call(method, target);
    CHECK(r.status == 400);
    CHECK(r.body == R"({"error":{"code":"bad_request","message":"'bad!' is not a valid user id"}})");
  }
  CHECK(w.call("GET", "/v1/users/alice@contoso.com/whatever").status == 404);
  CHECK(w.call("DELETE", "/v1/users/alice@contoso.com/whatever").status == 404);
}

TEST_CASE("admin routing: the table has one route per method and pattern, patterns well formed") {
  std::set<std::pair<std::string_view, std::string_view>> seen;
  for (const auto& route : oms::server::admin_routes()) {
    CAPTURE(route.method);
    CAPTURE(route.pattern);
    CHECK(seen.insert({route.method, route.pattern}).second);
    CHECK(route.pattern.starts_with('/'));
    const bool has_handler = route.handler != nullptr;
    CHECK(has_handler);
    // Reads are not audited; every other method is.
    const bool read = route.method == "GET" || route.method == "HEAD" || route.method == "*";
    CHECK(route.audit_action.empty() == read);
    if (route.access == oms::server::AdminAccess::kPublic) CHECK(read);
  }
}
