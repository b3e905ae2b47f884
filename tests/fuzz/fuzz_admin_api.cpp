// libFuzzer harness: the admin endpoint's request handler (server/admin_api)
// over a real RocksDB store in a temporary directory (sync off for speed).
//
// Input: byte 0 picks the method, byte 1 whether the right bearer token is
// sent (so most inputs get past authentication), then the target up to the
// first '\n', then the body.
//
// Oracles: only the statuses the contract uses; every error body is JSON
// with error.code and error.message; a request without the admin token never
// succeeds beyond /healthz and /readyz; the Global policy always exists.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <boost/json/parse.hpp>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "server/admin_api.h"
#include "server/context.h"
#include "server/router.h"
#include "storage/store.h"

namespace {

constexpr std::string_view kToken = "fuzz-admin-token";

struct World {
  std::filesystem::path dir;
  oms::server::ServerContext ctx;
  std::unique_ptr<oms::server::AdminApi> api;
};

World* world = nullptr;

[[noreturn]] void fail(const char* what, const oms::server::AdminRequest& r, const oms::server::AdminResponse& res) {
  std::fprintf(stderr, "fuzz_admin_api: %s\n  %.*s %.*s -> %u %s\n", what, static_cast<int>(r.method.size()),
               r.method.data(), static_cast<int>(r.target.size()), r.target.data(), res.status, res.body.c_str());
  std::abort();
}

void cleanup() {
  if (!world) return;
  world->ctx.store = nullptr;
  world->ctx.database.reset();
  std::error_code ec;
  std::filesystem::remove_all(world->dir, ec);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // What omsd's main() sets up: the audit logger (here into a null sink).
  spdlog::register_logger(
      std::make_shared<spdlog::logger>("audit", std::make_shared<spdlog::sinks::null_sink_mt>()));
  spdlog::set_level(spdlog::level::off);
  world = new World;
  std::string templ = (std::filesystem::temp_directory_path() / "oms-fuzz-admin-XXXXXX").string();
  if (!::mkdtemp(templ.data())) std::abort();
  world->dir = templ;
  oms::storage::StoreOptions so;
  so.path = (world->dir / "store").string();
  so.sync = false;
  auto store = oms::storage::open_store(so);
  if (!store) {
    std::fprintf(stderr, "fuzz_admin_api: cannot open the store: %s\n", store.status().to_string().c_str());
    std::abort();
  }
  world->ctx.database = std::move(*store);
  world->ctx.store = &world->ctx.database->mailboxes();
  world->ctx.admin_token = std::string(kToken);
  world->ctx.jwt_secret = "fuzz-jwt-secret";
  world->ctx.router = std::make_unique<oms::server::Router>(world->ctx);
  world->ctx.run_blocking = [](std::function<void()> fn) { fn(); };
  world->ctx.listeners_ready.store(true);
  world->api = std::make_unique<oms::server::AdminApi>(world->ctx);
  std::atexit(cleanup);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  static constexpr std::string_view kMethods[] = {"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "get"};
  const std::string_view method = kMethods[data[0] % std::size(kMethods)];
  const bool authorised = (data[1] & 1) == 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const std::size_t nl = rest.find('\n');
  const std::string_view target = rest.substr(0, nl);
  const std::string_view body = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
  const std::string auth = authorised ? "Bearer " + std::string(kToken) : std::string(body.substr(0, 16));

  oms::server::AdminRequest req{method, target, auth, body, "127.0.0.1:1"};
  const oms::server::AdminResponse res = world->api->handle(req);

  switch (res.status) {
    case 200: case 201: case 400: case 401: case 404: case 405: case 409: case 413: case 415: case 500: case 503:
      break;
    default:
      fail("unexpected status", req, res);
  }
  // Without the token only /healthz and /readyz may answer 2xx (however the
  // target spells them: empty segments, percent-encoding, a query), and
  // their body is the status alone: nothing protected leaks.
  if (!authorised && res.status < 300) {
    boost::system::error_code ec;
    auto v = boost::json::parse(res.body, ec);
    const bool status_only = !ec && v.is_object() && v.as_object().size() == 1 && v.as_object().contains("status");
    if (!status_only) fail("succeeded without the admin token", req, res);
  }
  if (res.status >= 400 && method != "HEAD") {
    boost::system::error_code ec;
    auto v = boost::json::parse(res.body, ec);
    const auto* obj = (!ec && v.is_object()) ? v.as_object().if_contains("error") : nullptr;
    if (!obj || !obj->is_object() || !obj->as_object().contains("code") || !obj->as_object().contains("message"))
      fail("error body without error.code and error.message", req, res);
  }

  const std::string bearer = "Bearer " + std::string(kToken);
  const oms::server::AdminRequest global{"GET", "/v1/policies/Global", bearer, "", "127.0.0.1:1"};
  const oms::server::AdminResponse g = world->api->handle(global);
  if (g.status != 200) fail("the Global policy is gone", req, g);
  return 0;
}
