// The admin endpoint (protocol.md §2): bearer auth on everything but
// /healthz and /readyz, policies, grants, users, mailboxes, the organisation
// switch, metrics, and JSON errors with fitting statuses.
#include <doctest/doctest.h>

#include <regex>
#include <sstream>

#include "tests/support/harness.h"

using namespace oms::test;
using boost::json::array;
using boost::json::value;

namespace {

struct Endpoint {
  http::verb method;
  std::string target;
  std::optional<value> body;
};

std::vector<Endpoint> every_protected_endpoint() {
  return {
      {http::verb::get, "/v1/policies", std::nullopt},
      {http::verb::get, "/v1/policies/Global", std::nullopt},
      {http::verb::post, "/v1/policies", value(Json{{"identity", "Sneaky"}, {"enable_im_auto_archiving", false}})},
      {http::verb::patch, "/v1/policies/Global", value(Json{{"enable_im_auto_archiving", false}})},
      {http::verb::delete_, "/v1/policies/Keep", std::nullopt},
      {http::verb::put, "/v1/users/alice@contoso.com/policy", value(Json{{"policy", "Keep"}})},
      {http::verb::get, "/v1/users/bob@contoso.com", std::nullopt},
      {http::verb::delete_, "/v1/users/bob@contoso.com/mailbox", std::nullopt},
      {http::verb::get, "/v1/users/alice@contoso.com/devices", std::nullopt},
      {http::verb::delete_, "/v1/users/alice@contoso.com/devices/legacy", std::nullopt},
      {http::verb::get, "/v1/configuration/im", std::nullopt},
      {http::verb::patch, "/v1/configuration/im", value(Json{{"enable_offline_im", false}})},
      {http::verb::get, "/metrics", std::nullopt},
  };
}

std::string describe(const Endpoint& e) {
  return std::string(http::to_string(e.method)) + " " + e.target;
}

Json policy_of(const HttpResult& r) {
  if (!r.json.is_object()) throw TestError("not a JSON object: " + r.raw);
  return r.json.get_object();
}

}  // namespace

TEST_CASE("admin: every endpoint but healthz and readyz needs the admin token") {
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();
  OMS_CHECK_HTTP(admin.post("/v1/policies", Json{{"identity", "Keep"}}), 201);
  {
    auto alice = sign_in(omsd, kAlice);
    OMS_CHECK_SENT(alice->send(kBob, "must survive"), "stored");
  }
  const std::vector<std::pair<std::string, Auth>> bad_auths = {
      {"no Authorization", Auth::none()},
      {"wrong token", Auth::bearer(omsd.admin_token() + "x")},
      {"empty bearer", Auth::raw_header("Bearer ")},
      {"other scheme", Auth::raw_header("Basic " + omsd.admin_token())},
      {"token without scheme", Auth::raw_header(omsd.admin_token())},
  };
  for (const auto& ep : every_protected_endpoint()) {
    for (const auto& [what, auth] : bad_auths) {
      const std::string& what_ = what;  // (INFO captures; clang 14 cannot capture a binding)
      INFO(describe(ep) << " with " << what_);
      const HttpResult r = admin.request(ep.method, ep.target, ep.body, auth);
      OMS_CHECK_HTTP(r, 401);
      CHECK(r.error_code() == "unauthenticated");
    }
  }
  // Nothing changed.
  const HttpResult list = admin.get("/v1/policies");
  OMS_CHECK_HTTP(list, 200);
  std::map<std::string, bool> policies;
  const Json list_body = policy_of(list);
  for (const auto& p : arr_of(list_body, "policies"))
    policies[str_of(p.get_object(), "identity")] = bool_of(p.get_object(), "enable_im_auto_archiving");
  CHECK(policies == std::map<std::string, bool>{{"Global", true}, {"Keep", true}});
  CHECK(bool_of(policy_of(admin.get("/v1/configuration/im")), "enable_offline_im") == true);
  CHECK(str_of(obj_of(user_info(omsd, kAlice), "policy"), "source") == "global");
  CHECK(mailbox_count(omsd, kBob) == 1);
  CHECK(arr_of(user_info(omsd, kAlice), "devices").size() == 1);  // legacy, not forgotten
}

TEST_CASE("admin: healthz and readyz answer without a token") {
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();
  const HttpResult h = admin.get("/healthz", Auth::none());
  OMS_CHECK_HTTP(h, 200);
  CHECK(str_of(policy_of(h), "status") == "ok");
  const HttpResult r = admin.get("/readyz", Auth::none());
  OMS_CHECK_HTTP(r, 200);
  CHECK(str_of(policy_of(r), "status") == "ready");
  OMS_CHECK_HTTP(admin.get("/healthz", Auth::bearer("whatever")), 200);
}

TEST_CASE("admin: policies are listed created read changed and removed") {
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();
  const HttpResult list = admin.get("/v1/policies");
  OMS_CHECK_HTTP(list, 200);
  const Json list_body = policy_of(list);
  const auto& policies = arr_of(list_body, "policies");
  REQUIRE(policies.size() == 1);
  CHECK(str_of(policies[0].get_object(), "identity") == "Global");
  CHECK(bool_of(policies[0].get_object(), "enable_im_auto_archiving") == true);

  // Unset settings take the defaults.
  const HttpResult created = admin.post("/v1/policies", Json{{"identity", "OfflineIM"}});
  OMS_CHECK_HTTP(created, 201);
  CHECK(str_of(policy_of(created), "identity") == "OfflineIM");
  CHECK(bool_of(policy_of(created), "enable_im_auto_archiving") == true);
  const HttpResult got = admin.get("/v1/policies/OfflineIM");
  OMS_CHECK_HTTP(got, 200);
  CHECK(bool_of(policy_of(got), "enable_im_auto_archiving") == true);
  CHECK(arr_of(policy_of(admin.get("/v1/policies")), "policies").size() == 2);

  const HttpResult patched = admin.patch("/v1/policies/OfflineIM", Json{{"enable_im_auto_archiving", false}});
  OMS_CHECK_HTTP(patched, 200);
  CHECK(str_of(policy_of(patched), "identity") == "OfflineIM");
  CHECK(bool_of(policy_of(patched), "enable_im_auto_archiving") == false);
  // Identities are case-insensitive; the display spelling is kept.
  const HttpResult lower = admin.get("/v1/policies/offlineim");
  OMS_CHECK_HTTP(lower, 200);
  CHECK(str_of(policy_of(lower), "identity") == "OfflineIM");
  CHECK(bool_of(policy_of(lower), "enable_im_auto_archiving") == false);

  // Created with settings.
  const HttpResult off = admin.post("/v1/policies", Json{{"identity", "Quiet"}, {"enable_im_auto_archiving", false}});
  OMS_CHECK_HTTP(off, 201);
  CHECK(bool_of(policy_of(off), "enable_im_auto_archiving") == false);

  const HttpResult removed = admin.del("/v1/policies/OfflineIM");
  OMS_CHECK_HTTP(removed, 200);
  CHECK(str_of(policy_of(removed), "removed") == "OfflineIM");
  CHECK(int_of(policy_of(removed), "users_reverted") == 0);
  const HttpResult gone = admin.get("/v1/policies/OfflineIM");
  OMS_CHECK_HTTP(gone, 404);
  CHECK(gone.error_code() == "not_found");
  OMS_CHECK_HTTP(admin.del("/v1/policies/OfflineIM"), 404);
  OMS_CHECK_HTTP(admin.patch("/v1/policies/OfflineIM", Json{{"enable_im_auto_archiving", true}}), 404);
}

TEST_CASE("admin: creating an existing policy is a 409") {
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();
  OMS_CHECK_HTTP(admin.post("/v1/policies", Json{{"identity", "OfflineIM"}, {"enable_im_auto_archiving", false}}), 201);
  for (const char* id : {"OfflineIM", "offlineim", "Global", "GLOBAL"}) {
    CAPTURE(id);
    const HttpResult r = admin.post("/v1/policies", Json{{"identity", id}, {"enable_im_auto_archiving", true}});
    OMS_CHECK_HTTP(r, 409);
    CHECK(r.error_code() == "already_exists");
  }
  // The existing one is untouched.
  CHECK(bool_of(policy_of(admin.get("/v1/policies/OfflineIM")), "enable_im_auto_archiving") == false);
}

TEST_CASE("admin: the Global policy cannot be removed but can be changed") {
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();
  const HttpResult r = admin.del("/v1/policies/Global");
  OMS_CHECK_HTTP(r, 409);
  CHECK(r.error_code() == "global_policy_protected");
  OMS_CHECK_HTTP(admin.del("/v1/policies/global"), 409);
  OMS_CHECK_HTTP(admin.get("/v1/policies/Global"), 200);
  const HttpResult p = admin.patch("/v1/policies/Global", Json{{"enable_im_auto_archiving", false}});
  OMS_CHECK_HTTP(p, 200);
  CHECK(bool_of(policy_of(p), "enable_im_auto_archiving") == false);
}

TEST_CASE("admin: malformed policy requests are 400") {
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();
  struct Bad {
    std::string what;
    http::verb method;
    std::string target;
    std::string body;
  };
  const std::vector<Bad> bads = {
      {"no identity", http::verb::post, "/v1/policies", R"({"enable_im_auto_archiving":false})"},
      {"invalid identity", http::verb::post, "/v1/policies", R"({"identity":"Bad Name!"})"},
      {"identity not a string", http::verb::post, "/v1/policies", R"({"identity":5})"},
      {"setting not a bool", http::verb::post, "/v1/policies", R"({"identity":"X","enable_im_auto_archiving":"yes"})"},
      {"not JSON", http::verb::post, "/v1/policies", "identity=X"},
      {"not an object", http::verb::post, "/v1/policies", R"(["X"])"},
      {"patch not a bool", http::verb::patch, "/v1/policies/Global", R"({"enable_im_auto_archiving":1})"},
      {"patch not JSON", http::verb::patch, "/v1/policies/Global", "{"},
      {"switch not a bool", http::verb::patch, "/v1/configuration/im", R"({"enable_offline_im":"off"})"},
      {"grant not a string", http::verb::put, "/v1/users/alice@contoso.com/policy", R"({"policy":3})"},
      {"grant without policy", http::verb::put, "/v1/users/alice@contoso.com/policy", R"({})"},
      {"invalid user id", http::verb::put, "/v1/users/not%20a%20user/policy", R"({"policy":null})"},
  };
  for (const auto& b : bads) {
    INFO(b.what);
    const HttpResult r = admin.request_raw(b.method, b.target, b.body, "application/json");
    OMS_CHECK_HTTP(r, 400);
    CHECK(r.error_code() == "bad_request");
    CHECK(r.json.is_object());
  }
  // Nothing was created or changed.
  CHECK(arr_of(policy_of(admin.get("/v1/policies")), "policies").size() == 1);
  CHECK(bool_of(policy_of(admin.get("/v1/policies/Global")), "enable_im_auto_archiving") == true);
  CHECK(bool_of(policy_of(admin.get("/v1/configuration/im")), "enable_offline_im") == true);
}

TEST_CASE("admin: granting a policy and reverting to Global") {
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();
  OMS_CHECK_HTTP(admin.post("/v1/policies", Json{{"identity", "OfflineIM"}, {"enable_im_auto_archiving", false}}), 201);

  const HttpResult g = admin.put("/v1/users/Alice@Contoso.com/policy", Json{{"policy", "OfflineIM"}});
  OMS_CHECK_HTTP(g, 200);
  CHECK(str_of(policy_of(g), "user") == "alice@contoso.com");
  CHECK(str_of(policy_of(g), "policy") == "OfflineIM");
  const Json pol = obj_of(user_info(omsd, kAlice), "policy");
  CHECK(str_of(pol, "identity") == "OfflineIM");
  CHECK(str_of(pol, "source") == "granted");
  CHECK(bool_of(pol, "enable_im_auto_archiving") == false);

  const HttpResult unknown = admin.put("/v1/users/alice@contoso.com/policy", Json{{"policy", "Nope"}});
  OMS_CHECK_HTTP(unknown, 404);
  CHECK(unknown.error_code() == "not_found");
  CHECK(str_of(obj_of(user_info(omsd, kAlice), "policy"), "identity") == "OfflineIM");

  const HttpResult revert = admin.put("/v1/users/alice@contoso.com/policy", Json{{"policy", nullptr}});
  OMS_CHECK_HTTP(revert, 200);
  CHECK(policy_of(revert).at("policy").is_null());
  const Json pol2 = obj_of(user_info(omsd, kAlice), "policy");
  CHECK(str_of(pol2, "identity") == "Global");
  CHECK(str_of(pol2, "source") == "global");
  CHECK(bool_of(pol2, "enable_im_auto_archiving") == true);

  // Removing a policy reverts its users and says how many.
  OMS_CHECK_HTTP(admin.put("/v1/users/alice@contoso.com/policy", Json{{"policy", "OfflineIM"}}), 200);
  OMS_CHECK_HTTP(admin.put("/v1/users/bob@contoso.com/policy", Json{{"policy", "offlineim"}}), 200);
  const HttpResult removed = admin.del("/v1/policies/OfflineIM");
  OMS_CHECK_HTTP(removed, 200);
  CHECK(int_of(policy_of(removed), "users_reverted") == 2);
  CHECK(str_of(obj_of(user_info(omsd, kBob), "policy"), "source") == "global");
}

TEST_CASE("admin: the user view shows presence sessions effective policy and mailbox") {
  OmsdProcess omsd;
  auto alice = connect_client(omsd);
  const Json w = alice->hello(omsd.token(kAlice), kCapableFeatures, "desk", "2.1.0");
  OMS_CHECK_SENT(alice->send(kBob, "12345"), "stored");
  OMS_CHECK_SENT(alice->send(kBob, "123"), "stored");

  const Json a = user_info(omsd, kAlice);
  INFO("alice: " << to_text(a));
  CHECK(str_of(a, "user") == kAlice);
  CHECK(str_of(a, "presence") == "available");
  const auto& sessions = arr_of(a, "sessions");
  REQUIRE(sessions.size() == 1);
  const Json& s = sessions[0].get_object();
  CHECK(str_of(s, "session") == str_of(w, "session"));
  CHECK(str_of(obj_of(s, "client"), "name") == "desk");
  CHECK(str_of(obj_of(s, "client"), "version") == "2.1.0");
  CHECK(is_iso8601_ms(str_of(s, "connected_at")));
  CHECK(str_of(obj_of(a, "policy"), "identity") == "Global");
  CHECK(str_of(obj_of(a, "policy"), "source") == "global");
  CHECK(bool_of(obj_of(a, "policy"), "enable_im_auto_archiving") == true);
  CHECK(int_of(obj_of(a, "mailbox"), "count") == 0);

  const Json b = user_info(omsd, "BOB@contoso.com");
  INFO("bob: " << to_text(b));
  CHECK(str_of(b, "user") == kBob);
  CHECK(str_of(b, "presence") == "offline");
  CHECK(arr_of(b, "sessions").empty());
  const Json& mb = obj_of(b, "mailbox");
  CHECK(int_of(mb, "count") == 2);
  CHECK(int_of(mb, "missed") == 0);
  CHECK(int_of(mb, "bytes") >= 8);
  CHECK(is_iso8601_ms(str_of(mb, "oldest")));

  OMS_CHECK_TYPE(alice->set_presence("dnd"), "ok");
  CHECK(str_of(user_info(omsd, kAlice), "presence") == "dnd");
  const HttpResult bad = omsd.admin().get("/v1/users/not%20valid");
  OMS_CHECK_HTTP(bad, 400);
}

TEST_CASE("admin: purging a mailbox removes everything and says how many") {
  OmsdProcess omsd;
  {
    auto alice = sign_in(omsd, kAlice);
    for (int i = 0; i < 3; ++i) OMS_CHECK_SENT(alice->send(kBob, "p" + std::to_string(i)), "stored");
    OMS_CHECK_SENT(alice->send(kCarol, "for carol"), "stored");
  }
  AdminClient admin = omsd.admin();
  const HttpResult r = admin.del("/v1/users/bob@contoso.com/mailbox");
  OMS_CHECK_HTTP(r, 200);
  CHECK(str_of(policy_of(r), "user") == kBob);
  CHECK(int_of(policy_of(r), "removed") == 3);
  CHECK(mailbox_count(omsd, kBob) == 0);
  CHECK(mailbox_count(omsd, kCarol) == 1);
  const HttpResult again = admin.del("/v1/users/bob@contoso.com/mailbox");
  OMS_CHECK_HTTP(again, 200);
  CHECK(int_of(policy_of(again), "removed") == 0);

  auto bob = sign_in(omsd, kBob);
  CHECK(int_of(obj_of(bob->welcome(), "mailbox"), "count") == 0);
  bob->take("mailbox.drained");
  bob->expect_no("message");
}

TEST_CASE("admin: the organisation switch can be read and changed") {
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();
  const HttpResult g = admin.get("/v1/configuration/im");
  OMS_CHECK_HTTP(g, 200);
  CHECK(bool_of(policy_of(g), "enable_offline_im") == true);
  const HttpResult p = admin.patch("/v1/configuration/im", Json{{"enable_offline_im", false}});
  OMS_CHECK_HTTP(p, 200);
  CHECK(bool_of(policy_of(p), "enable_offline_im") == false);
  CHECK(bool_of(policy_of(admin.get("/v1/configuration/im")), "enable_offline_im") == false);
  OMS_CHECK_HTTP(admin.patch("/v1/configuration/im", Json{{"enable_offline_im", true}}), 200);
  CHECK(bool_of(policy_of(admin.get("/v1/configuration/im")), "enable_offline_im") == true);
}

namespace {

// name{labels} -> value for every sample; CHECKs the text format line by line.
std::map<std::string, double> parse_prometheus(const std::string& text) {
  static const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?) ([-+]?([0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?|NaN|Inf))( -?[0-9]+)?$)");
  static const std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*$)");
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      if (line.rfind("# HELP", 0) == 0 || line.rfind("# TYPE", 0) == 0) {
        INFO("line: " << line);
        CHECK(std::regex_match(line, comment));
      }
      continue;
    }
    std::smatch m;
    INFO("line: " << line);
    CHECK(std::regex_match(line, m, sample));
    if (!m.empty()) out[m[1].str()] = std::strtod(m[3].str().c_str(), nullptr);
  }
  return out;
}

}  // namespace

TEST_CASE("admin: metrics are Prometheus text and move with traffic") {
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();
  const HttpResult before = admin.get("/metrics");
  OMS_CHECK_HTTP(before, 200);
  CHECK(before.content_type.rfind("text/plain", 0) == 0);
  CHECK(before.raw.find("# TYPE ") != std::string::npos);
  const auto m0 = parse_prometheus(before.raw);
  CHECK(!m0.empty());
  {
    auto alice = sign_in(omsd, kAlice);
    for (int i = 0; i < 3; ++i) OMS_CHECK_SENT(alice->send(kBob, "metric me"), "stored");
  }
  const auto m1 = parse_prometheus(admin.get("/metrics").raw);
  int increased = 0;
  for (const auto& [name, v] : m1) {
    const auto it = m0.find(name);
    if (it == m0.end() ? v > 0 : v > it->second) ++increased;
  }
  CHECK_MESSAGE(increased > 0, "no sample grew after sign-ins and 3 stored messages");
}

TEST_CASE("admin: unknown paths are 404 and wrong methods 405") {
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();
  const HttpResult nf = admin.get("/v1/nothing-here");
  OMS_CHECK_HTTP(nf, 404);
  CHECK(nf.error_code() == "not_found");
  const HttpResult m1 = admin.request(http::verb::put, "/v1/policies", value(Json{{"identity", "X"}}));
  OMS_CHECK_HTTP(m1, 405);
  CHECK(m1.error_code() == "method_not_allowed");
  OMS_CHECK_HTTP(admin.request(http::verb::post, "/v1/configuration/im", value(Json{{"enable_offline_im", false}})), 405);
  OMS_CHECK_HTTP(admin.request(http::verb::post, "/v1/users/bob@contoso.com", value(Json{})), 405);
  // Nothing was created by the refused requests.
  OMS_CHECK_HTTP(admin.get("/v1/policies/X"), 404);
  CHECK(bool_of(policy_of(admin.get("/v1/configuration/im")), "enable_offline_im") == true);
}

TEST_CASE("admin: every change is one audit line, with request bytes quoted") {
  OmsdProcess omsd;
  auto admin = omsd.admin();
  OMS_CHECK_HTTP(admin.post("/v1/policies", Json{{"identity", "Sales"}, {"enable_im_auto_archiving", false}}), 201);
  // A body crafted to look like a second audit line when logged raw.
  const std::string forged = "{\"x\":1}\n2026-01-01T00:00:00.000 info [audit] who=admin-token action=purge";
  OMS_CHECK_HTTP(admin.request_raw(http::verb::patch, "/v1/policies/Sales", forged, "application/json"), 400);
  const auto audit_lines = [&] {
    std::vector<std::string> lines;
    std::istringstream in(omsd.stderr_tail(400));
    for (std::string l; std::getline(in, l);)
      if (l.find("[audit]") != std::string::npos) lines.push_back(l);
    return lines;
  };
  std::vector<std::string> lines;
  CHECK(wait_until([&] { return (lines = audit_lines()).size() >= 2; }, std::chrono::seconds(5)));
  REQUIRE(lines.size() >= 2);
  INFO("audit lines:\n" << lines[0] << "\n" << lines[1]);
  CHECK(lines.size() == 2);
  CHECK(lines[0].find("who=admin-token") != std::string::npos);
  CHECK(lines[0].find("target=\"/v1/policies\"") != std::string::npos);
  CHECK(lines[0].find("\\\"identity\\\":\\\"Sales\\\"") != std::string::npos);
  CHECK(lines[0].find("status=201") != std::string::npos);
  CHECK(lines[1].find("\\n2026-01-01") != std::string::npos);
  CHECK(lines[1].find("status=400") != std::string::npos);
}

TEST_CASE("admin: request bytes that are not UTF-8 still get a JSON error body") {
  OmsdProcess omsd;
  auto admin = omsd.admin();
  const HttpResult r = admin.get("/v1/\xff\xfe/policies");
  OMS_CHECK_HTTP(r, 404);
  CHECK(r.error_code() == "not_found");
}
