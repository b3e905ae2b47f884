#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "server/config.h"

using oms::server::Config;
using oms::server::load_config;

namespace {

struct ConfigFile {
  std::filesystem::path path;
  explicit ConfigFile(const std::string& text) {
    path = std::filesystem::temp_directory_path() /
           ("oms-config-test-" + std::to_string(std::random_device{}()) + ".toml");
    std::ofstream(path) << text;
  }
  ~ConfigFile() { std::filesystem::remove(path); }
};

oms::Result<Config> load(std::vector<std::string> args) {
  std::vector<char*> argv;
  static std::string prog = "omsd";
  argv.push_back(prog.data());
  for (auto& a : args) argv.push_back(a.data());
  bool help = false;
  return load_config(static_cast<int>(argv.size()), argv.data(), help);
}

}  // namespace

TEST_CASE("config: defaults are the documented ones") {
  auto c = load({});
  REQUIRE(c.is_ok());
  CHECK(c->data_dir == "./oms-data");
  CHECK(c->listen == "127.0.0.1:8080");
  CHECK(c->admin_listen == "127.0.0.1:8081");
  CHECK(c->max_messages == 10000);
  CHECK(c->max_bytes == 52428800);
  CHECK(c->ttl_days == 30);
  CHECK(c->max_body_bytes == 16384);
  CHECK(c->max_frame_bytes == 65536);
  CHECK(c->sync);
  CHECK(c->ttl_ms() == 30LL * 86400 * 1000);
  CHECK_FALSE(c->dev_tokens);  // the dev token endpoint is opt-in
}

TEST_CASE("config: auth.dev_tokens is a bool") {
  ConfigFile on("[auth]\ndev_tokens = true\n");
  auto c = load({"--config", on.path.string()});
  REQUIRE(c.is_ok());
  CHECK(c->dev_tokens);
  ConfigFile bad("[auth]\ndev_tokens = \"yes\"\n");
  auto b = load({"--config", bad.path.string()});
  REQUIRE_FALSE(b.is_ok());
  CHECK(b.status().message().find("auth.dev_tokens") != std::string::npos);
}

TEST_CASE("config: auth.allowed_origins and limits.max_connections_per_ip") {
  auto d = load({});
  REQUIRE(d.is_ok());
  CHECK(d->allowed_origins.empty());
  CHECK(d->max_connections_per_ip == 1000);
  ConfigFile ok("[auth]\nallowed_origins = [\"https://im.contoso.com\", \"http://127.0.0.1:8080\"]\n"
                "[limits]\nmax_connections_per_ip = 0\n");
  auto c = load({"--config", ok.path.string()});
  REQUIRE(c.is_ok());
  CHECK(c->allowed_origins == std::vector<std::string>{"https://im.contoso.com", "http://127.0.0.1:8080"});
  CHECK(c->max_connections_per_ip == 0);
  for (const char* bad : {"allowed_origins = \"https://a.example\"", "allowed_origins = [1]",
                          "allowed_origins = [\"a.example\"]", "allowed_origins = [\"https://a.example/\"]",
                          "allowed_origins = [\"ftp://a.example\"]", "allowed_origins = [\"https://\"]"}) {
    CAPTURE(bad);
    ConfigFile f(std::string("[auth]\n") + bad + "\n");
    auto r = load({"--config", f.path.string()});
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("auth.allowed_origins") != std::string::npos);
  }
}

TEST_CASE("config: TOML values, then flags override them") {
  ConfigFile f(R"(
[server]
listen = "127.0.0.1:9000"
[mailbox]
max_messages = 5
ttl_seconds = 7
[limits]
max_body_bytes = 100
)");
  auto c = load({"--config", f.path.string(), "--listen", "127.0.0.1:0", "--data-dir=/tmp/x"});
  REQUIRE(c.is_ok());
  CHECK(c->listen == "127.0.0.1:0");
  CHECK(c->data_dir == "/tmp/x");
  CHECK(c->max_messages == 5);
  CHECK(c->max_body_bytes == 100);
  CHECK(c->ttl_ms() == 7000);
}

TEST_CASE("config: errors name the key") {
  SUBCASE("unknown key") {
    ConfigFile f("[mailbox]\nmax_mesages = 5\n");
    auto c = load({"--config", f.path.string()});
    REQUIRE_FALSE(c.is_ok());
    CHECK(c.status().message().find("mailbox.max_mesages") != std::string::npos);
  }
  SUBCASE("wrong type") {
    ConfigFile f("[limits]\nmax_body_bytes = \"big\"\n");
    auto c = load({"--config", f.path.string()});
    REQUIRE_FALSE(c.is_ok());
    CHECK(c.status().message().find("limits.max_body_bytes") != std::string::npos);
  }
  SUBCASE("out of range") {
    ConfigFile f("[delivery]\nwindow = 0\n");
    auto c = load({"--config", f.path.string()});
    REQUIRE_FALSE(c.is_ok());
    CHECK(c.status().message().find("delivery.window") != std::string::npos);
  }
  SUBCASE("send queue smaller than the window") {
    ConfigFile f("[delivery]\nwindow = 256\nmax_send_queue = 100\n");
    auto c = load({"--config", f.path.string()});
    REQUIRE_FALSE(c.is_ok());
    CHECK(c.status().message().find("delivery.max_send_queue") != std::string::npos);
  }
  SUBCASE("TOML syntax") {
    ConfigFile f("[mailbox\n");
    auto c = load({"--config", f.path.string()});
    REQUIRE_FALSE(c.is_ok());
  }
  SUBCASE("bad endpoint flag") {
    auto c = load({"--listen", "nowhere"});
    REQUIRE_FALSE(c.is_ok());
    CHECK(c.status().message().find("server.listen") != std::string::npos);
  }
  SUBCASE("unknown flag") {
    auto c = load({"--frobnicate"});
    REQUIRE_FALSE(c.is_ok());
  }
  SUBCASE("missing config file") {
    auto c = load({"--config", "/nonexistent/omsd.toml"});
    REQUIRE_FALSE(c.is_ok());
  }
}

TEST_CASE("config: log.levels sets a level per component") {
  SUBCASE("inline table") {
    ConfigFile f("[log]\nlevel = \"warn\"\nlevels = { session = \"debug\", audit = \"info\" }\n");
    auto c = load({"--config", f.path.string()});
    REQUIRE(c.is_ok());
    CHECK(c->log_level == "warn");
    CHECK(c->log_levels == std::map<std::string, std::string>{{"audit", "info"}, {"session", "debug"}});
  }
  SUBCASE("[log.levels] section") {
    ConfigFile f("[log.levels]\nadmin = \"trace\"\nstore = \"off\"\n");
    auto c = load({"--config", f.path.string()});
    REQUIRE(c.is_ok());
    CHECK(c->log_levels.at("admin") == "trace");
    CHECK(c->log_levels.at("store") == "off");
  }
  SUBCASE("unknown component: refused by name") {
    ConfigFile f("[log]\nlevels = { sesion = \"debug\" }\n");
    auto c = load({"--config", f.path.string()});
    REQUIRE_FALSE(c.is_ok());
    CHECK(c.status().message().find("log.levels.sesion") != std::string::npos);
  }
  SUBCASE("bad level") {
    ConfigFile f("[log]\nlevels = { session = \"loud\" }\n");
    auto c = load({"--config", f.path.string()});
    REQUIRE_FALSE(c.is_ok());
    CHECK(c.status().message().find("log.levels.session") != std::string::npos);
  }
  SUBCASE("not a table") {
    ConfigFile f("[log]\nlevels = \"debug\"\n");
    auto c = load({"--config", f.path.string()});
    REQUIRE_FALSE(c.is_ok());
    CHECK(c.status().message().find("log.levels") != std::string::npos);
  }
}

TEST_CASE("config: the tls keys, and no TLS by default") {
  auto d = load({});
  REQUIRE(d.is_ok());
  CHECK_FALSE(d->tls_configured());
  CHECK_FALSE(d->client_tls());
  CHECK_FALSE(d->admin_tls());
  CHECK(d->tls_min_version == "1.2");

  ConfigFile both("[tls]\ncert_file = \"/x/cert.pem\"\nkey_file = \"/x/key.pem\"\n");
  auto c = load({"--config", both.path.string()});
  REQUIRE(c.is_ok());
  CHECK(c->client_tls());
  CHECK(c->admin_tls());

  ConfigFile client_only(
      "[tls]\ncert_file = \"/x/cert.pem\"\nkey_file = \"/x/key.pem\"\nadmin = false\nmin_version = \"1.3\"\n");
  auto co = load({"--config", client_only.path.string()});
  REQUIRE(co.is_ok());
  CHECK(co->client_tls());
  CHECK_FALSE(co->admin_tls());
  CHECK(co->tls_min_version == "1.3");

  for (const char* text : {"[tls]\ncert_file = \"/x/cert.pem\"\n", "[tls]\nkey_file = \"/x/key.pem\"\n",
                           "[tls]\nmin_version = \"1.1\"\n", "[tls]\nclient = \"yes\"\n", "[tls]\ncert = \"/x\"\n"}) {
    CAPTURE(text);
    ConfigFile f(text);
    auto r = load({"--config", f.path.string()});
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().find("tls.") != std::string::npos);
  }
}
