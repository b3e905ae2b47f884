// omsctl end to end (protocol.md §3): the operator CLI against a real omsd,
// checking exit codes, --json output and the effect through the admin API.
// Skipped (with a message) when omsctl was not built.
#include <doctest/doctest.h>

#include <sstream>

#include "tests/support/harness.h"
#include "tests/support/process.h"

using namespace oms::test;
using boost::json::array;
using boost::json::value;

namespace {

#define OMS_SKIP_WITHOUT_OMSCTL()                                   \
  do {                                                              \
    if (omsctl_binary_path().empty()) {                             \
      MESSAGE("omsctl was not built: skipping this test");          \
      return;                                                       \
    }                                                               \
  } while (0)

#define OMS_CHECK_EXIT_OK(r)                         \
  do {                                               \
    const CommandResult& oms_c_ = (r);               \
    INFO(describe(oms_c_));                          \
    CHECK(oms_c_.exit_code == 0);                    \
  } while (0)

#define OMS_CHECK_EXIT_FAILED(r)                     \
  do {                                               \
    const CommandResult& oms_c_ = (r);               \
    INFO(describe(oms_c_));                          \
    CHECK(oms_c_.exit_code > 0);                     \
    CHECK(!oms_c_.timed_out);                        \
  } while (0)

value json_out(const CommandResult& r) {
  boost::system::error_code ec;
  value v = boost::json::parse(r.out, ec);
  if (ec) throw TestError("omsctl --json output is not JSON: " + describe(r));
  return v;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

}  // namespace

TEST_CASE("omsctl: policy new set grant get and remove") {
  OMS_SKIP_WITHOUT_OMSCTL();
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();

  OMS_CHECK_EXIT_OK(omsctl(omsd, {"policy", "new", "OfflineIM", "--enable-im-auto-archiving", "false"}));
  const HttpResult p = admin.get("/v1/policies/OfflineIM");
  OMS_CHECK_HTTP(p, 200);
  if (p.json.is_object()) CHECK(bool_of(p.json.get_object(), "enable_im_auto_archiving") == false);
  OMS_CHECK_EXIT_FAILED(omsctl(omsd, {"policy", "new", "OfflineIM"}));  // 409

  OMS_CHECK_EXIT_OK(omsctl(omsd, {"policy", "grant", kAlice, "OfflineIM"}));
  const Json pol = obj_of(user_info(omsd, kAlice), "policy");
  CHECK(str_of(pol, "identity") == "OfflineIM");
  CHECK(str_of(pol, "source") == "granted");
  OMS_CHECK_EXIT_FAILED(omsctl(omsd, {"policy", "grant", kAlice, "NoSuchPolicy"}));  // 404

  {
    const CommandResult r = omsctl(omsd, {"policy", "get", "OfflineIM"}, /*json=*/true);
    OMS_CHECK_EXIT_OK(r);
    const value v = json_out(r);
    INFO("json: " << to_text(v));
    const value* identity = find_key(v, "identity");
    const value* setting = find_key(v, "enable_im_auto_archiving");
    REQUIRE(identity != nullptr);
    REQUIRE(setting != nullptr);
    CHECK(*identity == value("OfflineIM"));
    CHECK(*setting == value(false));
  }
  {
    const CommandResult r = omsctl(omsd, {"policy", "get"});
    OMS_CHECK_EXIT_OK(r);
    CHECK(r.out.find("Global") != std::string::npos);
    CHECK(r.out.find("OfflineIM") != std::string::npos);
  }

  OMS_CHECK_EXIT_OK(omsctl(omsd, {"policy", "set", "OfflineIM", "--enable-im-auto-archiving", "true"}));
  if (auto r = admin.get("/v1/policies/OfflineIM"); r.json.is_object())
    CHECK(bool_of(r.json.get_object(), "enable_im_auto_archiving") == true);

  OMS_CHECK_EXIT_OK(omsctl(omsd, {"policy", "grant", kAlice, "--global"}));
  CHECK(str_of(obj_of(user_info(omsd, kAlice), "policy"), "source") == "global");

  OMS_CHECK_EXIT_FAILED(omsctl(omsd, {"policy", "remove", "Global"}));  // 409
  OMS_CHECK_EXIT_OK(omsctl(omsd, {"policy", "remove", "OfflineIM"}));
  OMS_CHECK_HTTP(admin.get("/v1/policies/OfflineIM"), 404);
  OMS_CHECK_EXIT_FAILED(omsctl(omsd, {"policy", "remove", "OfflineIM"}));  // 404
}

TEST_CASE("omsctl: policy new and set --enable-delivery-receipts, shown by policy get and user show") {
  OMS_SKIP_WITHOUT_OMSCTL();
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();
  const auto receipts_of = [&](const std::string& identity) {
    const HttpResult r = admin.get("/v1/policies/" + identity);
    OMS_CHECK_HTTP(r, 200);
    return r.json.is_object() && bool_of(r.json.get_object(), "enable_delivery_receipts");
  };
  OMS_CHECK_EXIT_OK(omsctl(omsd, {"policy", "new", "Quiet", "--enable-delivery-receipts", "false"}));
  CHECK_FALSE(receipts_of("Quiet"));
  OMS_CHECK_EXIT_OK(omsctl(omsd, {"policy", "new", "Both", "--enable-im-auto-archiving", "false",
                                  "--enable-delivery-receipts=true"}));
  CHECK(receipts_of("Both"));
  OMS_CHECK_EXIT_OK(omsctl(omsd, {"policy", "set", "Quiet", "--enable-delivery-receipts", "true"}));
  CHECK(receipts_of("Quiet"));
  OMS_CHECK_EXIT_OK(omsctl(omsd, {"policy", "set", "Global", "--enable-delivery-receipts", "false"}));
  CHECK_FALSE(receipts_of("Global"));
  if (auto r = admin.get("/v1/policies/Global"); r.json.is_object())
    CHECK(bool_of(r.json.get_object(), "enable_im_auto_archiving") == true);  // untouched

  // Bad values and nothing to change are usage/value errors (exit 2), and change nothing.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"policy", "set", "Quiet", "--enable-delivery-receipts", "maybe"},
           {"policy", "set", "Quiet"},
           {"policy", "new", "Other", "--enable-delivery-receipts"}}) {
    const CommandResult r = omsctl(omsd, args);
    INFO(describe(r));
    CHECK(r.exit_code == 2);
  }
  CHECK(receipts_of("Quiet"));
  OMS_CHECK_HTTP(admin.get("/v1/policies/Other"), 404);

  {
    const CommandResult r = omsctl(omsd, {"policy", "get"});
    OMS_CHECK_EXIT_OK(r);
    CHECK(r.out.find("EnableDeliveryReceipts") != std::string::npos);
    // Global's row: IDENTITY, archiving, receipts.
    std::istringstream lines(r.out);
    bool seen = false;
    for (std::string line; std::getline(lines, line);) {
      std::istringstream cols(line);
      std::string identity, archiving, receipts;
      cols >> identity >> archiving >> receipts;
      if (identity != "Global") continue;
      seen = true;
      CHECK(archiving == "true");
      CHECK(receipts == "false");
    }
    CHECK(seen);
  }
  {
    const CommandResult r = omsctl(omsd, {"policy", "get", "Quiet"}, /*json=*/true);
    OMS_CHECK_EXIT_OK(r);
    const value* setting = find_key(json_out(r), "enable_delivery_receipts");
    REQUIRE(setting != nullptr);
    CHECK(*setting == value(true));
  }
  {
    const CommandResult r = omsctl(omsd, {"user", "show", kBob});
    OMS_CHECK_EXIT_OK(r);
    CHECK(r.out.find("EnableDeliveryReceipts") != std::string::npos);
  }
}

TEST_CASE("omsctl: a granted policy from omsctl refuses the sender's offline messages") {
  OMS_SKIP_WITHOUT_OMSCTL();
  OmsdProcess omsd;
  OMS_CHECK_EXIT_OK(omsctl(omsd, {"policy", "new", "OfflineIM", "--enable-im-auto-archiving", "false"}));
  OMS_CHECK_EXIT_OK(omsctl(omsd, {"policy", "grant", kAlice, "OfflineIM"}));
  auto alice = sign_in(omsd, kAlice);
  OMS_CHECK_ERROR(alice->send(kBob, "refused"), "offline_disabled");
  CHECK(mailbox_count(omsd, kBob) == 0);
}

TEST_CASE("omsctl: im-config get and set") {
  OMS_SKIP_WITHOUT_OMSCTL();
  OmsdProcess omsd;
  OMS_CHECK_EXIT_OK(omsctl(omsd, {"im-config", "set", "--enable-offline-im", "false"}));
  const HttpResult g = omsd.admin().get("/v1/configuration/im");
  OMS_CHECK_HTTP(g, 200);
  if (g.json.is_object()) CHECK(bool_of(g.json.get_object(), "enable_offline_im") == false);
  const CommandResult r = omsctl(omsd, {"im-config", "get"}, /*json=*/true);
  OMS_CHECK_EXIT_OK(r);
  const value v = json_out(r);
  const value* sw = find_key(v, "enable_offline_im");
  REQUIRE(sw != nullptr);
  CHECK(*sw == value(false));
  auto alice = sign_in(omsd, kAlice);
  OMS_CHECK_ERROR(alice->send(kBob, "switch is off"), "offline_disabled");
  OMS_CHECK_EXIT_FAILED(omsctl(omsd, {"im-config", "set", "--enable-offline-im", "maybe"}));
}

TEST_CASE("omsctl: user show and mailbox purge") {
  OMS_SKIP_WITHOUT_OMSCTL();
  OmsdProcess omsd;
  {
    auto alice = sign_in(omsd, kAlice);
    OMS_CHECK_SENT(alice->send(kBob, "one"), "stored");
    OMS_CHECK_SENT(alice->send(kBob, "two"), "stored");
  }
  {
    const CommandResult r = omsctl(omsd, {"user", "show", kBob}, /*json=*/true);
    OMS_CHECK_EXIT_OK(r);
    const value v = json_out(r);
    INFO("json: " << to_text(v));
    const value* mb = find_key(v, "mailbox");
    REQUIRE(mb != nullptr);
    REQUIRE(mb->is_object());
    CHECK(int_of(mb->get_object(), "count") == 2);
  }
  {
    const CommandResult r = omsctl(omsd, {"user", "show", kBob});
    OMS_CHECK_EXIT_OK(r);
    CHECK(r.out.find(kBob) != std::string::npos);
  }
  {
    const CommandResult r = omsctl(omsd, {"mailbox", "purge", kBob}, /*json=*/true);
    OMS_CHECK_EXIT_OK(r);
    const value v = json_out(r);
    INFO("json: " << to_text(v));
    const value* removed = find_key(v, "removed");
    REQUIRE(removed != nullptr);
    CHECK(removed->to_number<std::int64_t>() == 2);
  }
  CHECK(mailbox_count(omsd, kBob) == 0);
  OMS_CHECK_EXIT_OK(omsctl(omsd, {"mailbox", "purge", kBob}));
  OMS_CHECK_EXIT_FAILED(omsctl(omsd, {"user", "show", "not a user"}));
}

TEST_CASE("omsctl: token issue prints a token the server accepts") {
  OMS_SKIP_WITHOUT_OMSCTL();
  OmsdProcess omsd;
  // Only the secret is needed: the data dir alone.
  const CommandResult r = run_command({omsctl_binary_path(), "--data-dir", omsd.data_dir().string(),
                                       "token", "issue", "Carol@Contoso.com", "--ttl", "10m"});
  OMS_CHECK_EXIT_OK(r);
  const std::string token = trim(r.out);
  CHECK(std::count(token.begin(), token.end(), '.') == 2);
  auto carol = connect_client(omsd);
  const Json w = carol->hello(token);
  CHECK(str_of(w, "user") == "carol@contoso.com");
  OMS_CHECK_EXIT_FAILED(run_command({omsctl_binary_path(), "--data-dir", omsd.data_dir().string(),
                                     "token", "issue", "not a user"}));
}

TEST_CASE("omsctl: the data dir alone is enough to reach the server") {
  OMS_SKIP_WITHOUT_OMSCTL();
  OmsdProcess omsd;
  const CommandResult r = run_command({omsctl_binary_path(), "--data-dir", omsd.data_dir().string(),
                                       "policy", "new", "OfflineIM", "--enable-im-auto-archiving",
                                       "false"});
  OMS_CHECK_EXIT_OK(r);
  OMS_CHECK_HTTP(omsd.admin().get("/v1/policies/OfflineIM"), 200);
}

TEST_CASE("omsctl: a wrong admin token or an unreachable server is a failure exit") {
  OMS_SKIP_WITHOUT_OMSCTL();
  OmsdProcess omsd;
  TempDir dir("omsctl-token");
  const auto wrong = write_config_file(dir.path() / "wrong.token", "definitely-not-the-token\n");
  const auto right = write_config_file(dir.path() / "right.token", omsd.admin_token() + "\n");
  OMS_CHECK_EXIT_FAILED(run_command({omsctl_binary_path(), "--admin", omsd.admin_url(), "--token-file",
                                     wrong.string(), "policy", "new", "Sneaky"}));
  OMS_CHECK_HTTP(omsd.admin().get("/v1/policies/Sneaky"), 404);
  OMS_CHECK_EXIT_OK(run_command({omsctl_binary_path(), "--admin", omsd.admin_url(), "--token-file",
                                 right.string(), "policy", "get"}));
  const std::string url = omsd.admin_url();
  CHECK(omsd.stop() == 0);
  OMS_CHECK_EXIT_FAILED(run_command({omsctl_binary_path(), "--admin", url, "--token-file",
                                     right.string(), "policy", "get"}));
}

TEST_CASE("omsctl: backup writes a checkpoint and metrics lists the counters") {
  OMS_SKIP_WITHOUT_OMSCTL();
  OmsdProcess omsd;
  {
    auto alice = sign_in(omsd, kAlice);
    OMS_CHECK_SENT(alice->send(kBob, "in the backup"), "stored");
  }
  const auto dir = std::filesystem::absolute(omsd.data_dir() / "backups" / "omsctl-backup").lexically_normal();
  const CommandResult b = omsctl(omsd, {"backup", "omsctl-backup"});
  OMS_CHECK_EXIT_OK(b);
  CHECK(b.out.find(dir.string()) != std::string::npos);
  CHECK(std::filesystem::exists(dir / "CURRENT"));
  // The same name again: the server refuses, omsctl fails; so does a path.
  OMS_CHECK_EXIT_FAILED(omsctl(omsd, {"backup", "omsctl-backup"}));
  OMS_CHECK_EXIT_FAILED(omsctl(omsd, {"backup", (omsd.root_dir() / "elsewhere").string()}));
  CHECK_FALSE(std::filesystem::exists(omsd.root_dir() / "elsewhere"));
  OMS_CHECK_EXIT_FAILED(omsctl(omsd, {"backup", "a", "b"}));

  const CommandResult m = omsctl(omsd, {"metrics"});
  OMS_CHECK_EXIT_OK(m);
  CHECK(m.out.find("oms_backups_total") != std::string::npos);
  CHECK(m.out.find("_bucket") == std::string::npos);
  const value jv = json_out(omsctl(omsd, {"metrics"}, true));
  REQUIRE(jv.is_object());
  const Json& j = jv.as_object();
  CHECK(int_of(j, "oms_backups_total") == 1);
  CHECK(int_of(j, "oms_messages_total{status=\"stored\"}") == 1);
  const CommandResult raw = omsctl(omsd, {"metrics", "--raw"});
  OMS_CHECK_EXIT_OK(raw);
  CHECK(raw.out.find("# TYPE oms_store_append_seconds histogram") != std::string::npos);
}

TEST_CASE("omsctl: user kick and user revoke") {
  OMS_SKIP_WITHOUT_OMSCTL();
  OmsdProcess omsd;
  const std::string token = omsd.token(kAlice);
  auto a = connect_client(omsd);
  a->hello(token);
  {
    const CommandResult r = omsctl(omsd, {"user", "kick", kAlice});
    OMS_CHECK_EXIT_OK(r);
    CHECK(r.out.find("closed 1 session(s)") != std::string::npos);
  }
  a->expect_closed(4401);
  a = connect_client(omsd);
  a->hello(token);  // a kick revokes nothing
  {
    const CommandResult r = omsctl(omsd, {"user", "revoke", kAlice}, /*json=*/true);
    OMS_CHECK_EXIT_OK(r);
    const value v = json_out(r);
    INFO("json: " << to_text(v));
    const value* closed = find_key(v, "sessions_closed");
    REQUIRE(closed != nullptr);
    CHECK(closed->to_number<std::int64_t>() == 1);
  }
  a->expect_closed(4401);
  a = connect_client(omsd);
  OMS_CHECK_ERROR(a->hello_raw(token), "unauthenticated");
  OMS_CHECK_EXIT_FAILED(omsctl(omsd, {"user", "revoke", "not a user"}));
}
