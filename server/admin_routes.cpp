// The admin API's handlers, one per route, and the route table
// (admin_routes.h). Each handler gets a request that has matched its route,
// passed the token check and had its path parameters checked.
#include <filesystem>
#include <future>
#include <optional>
#include <system_error>
#include <variant>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/clock.h"
#include "common/ids.h"
#include "common/iso8601.h"
#include "common/protocol.h"
#include "server/admin_devices.h"
#include "server/admin_routes.h"
#include "server/backup.h"
#include "server/cluster.h"
#include "server/context.h"
#include "server/session_inbox.h"
#include "storage/mailbox_store.h"
#include "storage/policy_store.h"

namespace oms::server {

namespace json = boost::json;

namespace {

AdminResponse json_response(unsigned status, const json::value& v) {
  return {status, "application/json", json::serialize(v)};
}

unsigned status_for(const Status& s) {
  switch (s.code()) {
    case Code::kNotFound: return 404;
    case Code::kAlreadyExists: return 409;
    case Code::kFailedPrecondition: return 409;
    case Code::kInvalidArgument: return 400;
    case Code::kUnavailable: return 503;
    case Code::kStoreFull: return 507;
    default: return 500;
  }
}

AdminResponse error_from(const Status& s) {
  std::string_view code = code_name(s.code());
  if (s.code() == Code::kFailedPrecondition) code = "global_policy_protected";
  return admin_error(status_for(s), code, s.message());
}

AdminResponse bad_request(std::string_view message) { return admin_error(400, "bad_request", message); }

AdminResponse no_such_policy(std::string_view identity) {
  return admin_error(404, "not_found", fmt::format("no client policy '{}'", identity));
}

json::object policy_json(const storage::ClientPolicy& p) {
  return {{"identity", p.identity},
          {"enable_im_auto_archiving", p.enable_im_auto_archiving},
          {"enable_delivery_receipts", p.enable_delivery_receipts}};
}

// A JSON object body with only the allowed fields, or an error response.
std::variant<json::object, AdminResponse> parse_object(std::string_view body,
                                                       std::initializer_list<std::string_view> allowed) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return bad_request(fmt::format("the body is not valid JSON: {}", ec.message()));
  if (!v.is_object()) return bad_request("the body must be a JSON object");
  for (const auto& kv : v.as_object()) {
    bool ok = false;
    for (auto a : allowed) ok = ok || kv.key() == a;
    if (!ok) return bad_request(fmt::format("unknown field '{}'", std::string_view(kv.key())));
  }
  return std::move(v.as_object());
}

// Reads an optional bool field; an error response when it has another type.
std::optional<AdminResponse> read_bool(const json::object& o, std::string_view key, std::optional<bool>& out) {
  auto it = o.find(key);
  if (it == o.end()) return std::nullopt;
  if (!it->value().is_bool()) return bad_request(fmt::format("'{}' must be true or false", key));
  out = it->value().as_bool();
  return std::nullopt;
}

json::value iso_or_null(const std::optional<std::int64_t>& ms) {
  if (!ms) return nullptr;
  return json::string(format_iso8601_ms(*ms));
}

// A backup directory name from a time: 2026-11-27T03-41-00.123Z (no ':' so
// it is a valid file name everywhere and sorts by time).
std::string backup_name(std::int64_t epoch_ms) {
  std::string name = format_iso8601_ms(epoch_ms);
  for (char& c : name)
    if (c == ':') c = '-';
  return name;
}

// Bytes and files under `dir` (regular files, recursively).
std::pair<std::uint64_t, std::uint64_t> tree_size(const std::filesystem::path& dir) {
  std::uint64_t bytes = 0, files = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    auto n = it->file_size(fec);
    if (fec) continue;
    bytes += n;
    ++files;
  }
  return {bytes, files};
}

// ---- /healthz, /readyz (no token), /metrics ----

AdminResponse get_health(const AdminCall&) { return json_response(200, json::object{{"status", "ok"}}); }

AdminResponse get_readiness(const AdminCall& call) {
  const ServerContext& ctx = call.ctx;
  const bool ready =
      ctx.listeners_ready.load() && !ctx.shutting_down.load() && ctx.store && ctx.store->writable();
  if (ready && ctx.disk_guard && ctx.disk_guard->full()) {
    const storage::DiskState d = ctx.disk_guard->state();
    return json_response(503, json::object{{"status", "not_ready"},
                                           {"reason", "store_full"},
                                           {"free_bytes", d.available},
                                           {"usable_bytes", d.usable},
                                           {"min_free_bytes", d.low_mark},
                                           {"resume_free_bytes", d.high_mark},
                                           {"ballast_present", d.ballast_present}});
  }
  if (!ready) {
    std::string why = ctx.shutting_down.load()     ? "shutting down"
                      : !ctx.listeners_ready.load() ? "listeners not up"
                                                    : "the store cannot write";
    return json_response(503, json::object{{"status", "not_ready"}, {"reason", why}});
  }
  return json_response(200, json::object{{"status", "ready"}});
}

AdminResponse get_metrics(const AdminCall& call) {
  ServerContext& ctx = call.ctx;
  std::string text = ctx.metrics.render(ctx.store->counters(), ctx.store->writable());
  if (ctx.scans_queued)
    text += fmt::format(
        "# HELP oms_scans_queued Mailbox scans (sign-in, delivery pages) waiting or running.\n"
        "# TYPE oms_scans_queued gauge\noms_scans_queued {}\n"
        "# HELP oms_scans_refused_total Scans refused: the user had limits.max_queued_scans_per_user queued.\n"
        "# TYPE oms_scans_refused_total counter\noms_scans_refused_total {}\n",
        ctx.scans_queued(), ctx.scans_refused());
  const auto by_device = ctx.registry.sessions_by_device();
  Metrics::render_sessions_by_device(text, by_device.named, by_device.legacy);
  if (ctx.disk_guard) Metrics::render_disk(text, ctx.disk_guard->state(), ctx.disk_guard->refused());
  if (ctx.cluster) {
    const ClusterCounters& c = ctx.cluster->counters();
    fmt::format_to(std::back_inserter(text),
                   "# HELP oms_cluster_redis_connected 1 while this node's Redis connection is up (cluster mode).\n"
                   "# TYPE oms_cluster_redis_connected gauge\noms_cluster_redis_connected {}\n"
                   "# HELP oms_cluster_hint_readers_connected I/O threads whose hint subscription to Redis is up.\n"
                   "# TYPE oms_cluster_hint_readers_connected gauge\noms_cluster_hint_readers_connected {}\n"
                   "# HELP oms_cluster_hints_total Live-delivery hints, by direction (cluster mode; received: once\n"
                   "# per I/O thread holding sessions of the hint's user).\n"
                   "# TYPE oms_cluster_hints_total counter\n"
                   "oms_cluster_hints_total{{direction=\"published\"}} {}\n"
                   "oms_cluster_hints_total{{direction=\"received\"}} {}\n"
                   "oms_cluster_hints_total{{direction=\"dropped\"}} {}\n"
                   "# HELP oms_cluster_presence_events_total Presence changes received from other nodes.\n"
                   "# TYPE oms_cluster_presence_events_total counter\noms_cluster_presence_events_total {}\n"
                   "# HELP oms_cluster_redis_errors_total Redis connections lost.\n"
                   "# TYPE oms_cluster_redis_errors_total counter\noms_cluster_redis_errors_total {}\n"
                   "# HELP oms_cluster_nodes_purged_total Dead nodes this node purged.\n"
                   "# TYPE oms_cluster_nodes_purged_total counter\noms_cluster_nodes_purged_total {}\n"
                   "# HELP oms_cluster_self_purges_total Times this node found itself purged and rejoined.\n"
                   "# TYPE oms_cluster_self_purges_total counter\noms_cluster_self_purges_total {}\n",
                   c.connected.load() ? 1 : 0, c.hint_readers_connected.load(), c.hints_published.load(),
                   c.hints_received.load(),
                   c.hints_dropped.load(), c.presence_events.load(), c.redis_errors.load(), c.nodes_purged.load(),
                   c.self_purges.load());
  }
  return {200, "text/plain; version=0.0.4; charset=utf-8", std::move(text)};
}

// ---- /v1/policies[/{identity}] ----

AdminResponse list_policies(const AdminCall& call) {
  auto& policies = call.ctx.database->policies();
  json::array arr;
  for (const auto& pol : policies.list()) arr.push_back(policy_json(pol));
  return json_response(200, json::object{{"policies", std::move(arr)}});
}

AdminResponse create_policy(const AdminCall& call) {
  auto& policies = call.ctx.database->policies();
  auto parsed = parse_object(call.req.body, {"identity", "enable_im_auto_archiving", "enable_delivery_receipts"});
  if (auto* e = std::get_if<AdminResponse>(&parsed)) return *e;
  auto& o = std::get<json::object>(parsed);
  auto id = o.find("identity");
  if (id == o.end() || !id->value().is_string()) return bad_request("'identity' (a string) is required");
  storage::ClientPolicy pol;
  pol.identity = std::string(id->value().as_string());
  std::optional<bool> archiving, receipts;
  if (auto e = read_bool(o, "enable_im_auto_archiving", archiving)) return *e;
  if (auto e = read_bool(o, "enable_delivery_receipts", receipts)) return *e;
  pol.enable_im_auto_archiving = archiving.value_or(true);
  pol.enable_delivery_receipts = receipts.value_or(true);
  if (!is_valid_policy_identity(pol.identity))
    return bad_request("'identity' must be 1–64 characters of [A-Za-z0-9._-]");
  if (Status s = policies.create(pol); !s) return error_from(s);
  return json_response(201, policy_json(*policies.get(pol.identity)));
}

AdminResponse get_policy(const AdminCall& call) {
  auto& policies = call.ctx.database->policies();
  const std::string& identity = call.param("identity");
  auto pol = policies.get(identity);
  if (!pol) return no_such_policy(identity);
  json::object o = policy_json(*pol);
  o["users"] = policies.users_granted(pol->identity).size();
  return json_response(200, o);
}

AdminResponse change_policy(const AdminCall& call) {
  auto& policies = call.ctx.database->policies();
  const std::string& identity = call.param("identity");
  auto parsed = parse_object(call.req.body, {"enable_im_auto_archiving", "enable_delivery_receipts"});
  if (auto* e = std::get_if<AdminResponse>(&parsed)) return *e;
  auto pol = policies.get(identity);
  if (!pol) return no_such_policy(identity);
  const auto& o = std::get<json::object>(parsed);
  std::optional<bool> archiving, receipts;
  if (auto e = read_bool(o, "enable_im_auto_archiving", archiving)) return *e;
  if (auto e = read_bool(o, "enable_delivery_receipts", receipts)) return *e;
  if (archiving) pol->enable_im_auto_archiving = *archiving;
  if (receipts) pol->enable_delivery_receipts = *receipts;
  if (Status s = policies.update(*pol); !s) return error_from(s);
  return json_response(200, policy_json(*policies.get(identity)));
}

AdminResponse remove_policy(const AdminCall& call) {
  auto& policies = call.ctx.database->policies();
  const std::string& identity = call.param("identity");
  auto pol = policies.get(identity);
  if (!pol) return no_such_policy(identity);
  auto users = policies.users_granted(pol->identity).size();
  if (Status s = policies.remove(identity); !s) return error_from(s);
  return json_response(200, json::object{{"removed", pol->identity}, {"users_reverted", users}});
}

// ---- /v1/users/{user}[/policy|/mailbox] (devices: admin_devices.cpp) ----

AdminResponse show_user(const AdminCall& call) {
  ServerContext& ctx = call.ctx;
  auto& policies = ctx.database->policies();
  const std::string& user = call.param("user");
  auto state = ctx.cluster ? ctx.cluster->state_of(user) : ctx.registry.state_of(user);
  json::array sessions;
  for (const auto& s : ctx.registry.session_infos(user)) {
    json::array features;
    for (const auto& f : s.client.features) features.push_back(json::string(f));
    sessions.push_back(json::object{
        {"session", s.session_id},
        {"client", json::object{{"name", s.client.name}, {"version", s.client.version},
                                {"features", std::move(features)}}},
        {"device", s.device.empty() ? std::string(proto::kLegacyDevice) : s.device},
        {"connected_at", format_iso8601_ms(s.connected_at_ms)}});
  }
  auto eff = policies.effective_policy_for(user);
  // The mailbox as stored (no device's acks left out); receipts apart.
  auto summary = ctx.store->summary(user, "");
  if (!summary) return error_from(summary.status());
  auto devices = devices_json(ctx, user);
  if (!devices) return error_from(devices.status());
  return json_response(
      200, json::object{
               {"user", user},
               {"presence", proto::presence_name(state)},
               {"sessions", std::move(sessions)},
               {"policy", json::object{{"identity", eff.policy.identity},
                                       {"source", eff.granted ? "granted" : "global"},
                                       {"enable_im_auto_archiving", eff.policy.enable_im_auto_archiving},
                                       {"enable_delivery_receipts", eff.policy.enable_delivery_receipts}}},
               {"mailbox", json::object{{"count", summary->count},
                                        {"missed", summary->missed},
                                        {"bytes", summary->bytes},
                                        {"oldest", iso_or_null(summary->oldest_ms)},
                                        {"receipts", summary->receipts}}},
               {"devices", std::move(*devices)}});
}

AdminResponse grant_policy(const AdminCall& call) {
  auto& policies = call.ctx.database->policies();
  const std::string& user = call.param("user");
  auto parsed = parse_object(call.req.body, {"policy"});
  if (auto* e = std::get_if<AdminResponse>(&parsed)) return *e;
  auto& o = std::get<json::object>(parsed);
  auto it = o.find("policy");
  if (it == o.end() || !(it->value().is_string() || it->value().is_null()))
    return bad_request("'policy' must be a policy identity or null (revert to Global)");
  std::optional<std::string> policy;
  if (it->value().is_string()) policy = std::string(it->value().as_string());
  // Granting Global explicitly is the same as reverting to it.
  if (policy && lower_ascii(*policy) == lower_ascii(storage::kGlobalPolicy)) policy.reset();
  Status s = policy ? policies.grant(user, std::string_view(*policy)) : policies.grant(user, std::nullopt);
  if (!s) return error_from(s);
  auto granted = policies.granted_policy(user);
  return json_response(200, json::object{{"user", user},
                                         {"policy", granted ? json::value(json::string(*granted))
                                                            : json::value(nullptr)}});
}

AdminResponse purge_mailbox(const AdminCall& call) {
  const std::string& user = call.param("user");
  std::promise<Result<std::uint64_t>> done;
  auto fut = done.get_future();
  call.ctx.store->purge(user, [&done](Result<std::uint64_t> r) { done.set_value(std::move(r)); });
  auto r = fut.get();
  if (!r) return error_from(r.status());
  return json_response(200, json::object{{"user", user}, {"removed", *r}});
}

// Closes every session of `user` (4401, `reason`); how many there were.
std::size_t close_sessions_of(ServerContext& ctx, const std::string& user, std::string_view reason) {
  auto sessions = ctx.registry.sessions_of(user);
  for (const auto& s : sessions) s->post_close(4401, std::string(reason));
  ctx.metrics.operator_session_closes.fetch_add(sessions.size(), std::memory_order_relaxed);
  return sessions.size();
}

// Contract 4.3: tokens issued before now are refused from now on (durably),
// then every session of the user is closed. In that order: a sign-in racing
// the revocation either is closed here or sees the revocation itself.
AdminResponse revoke_user(const AdminCall& call) {
  ServerContext& ctx = call.ctx;
  const std::string& user = call.param("user");
  // iat has second resolution: a token issued in this very second may have
  // been issued before the revocation. Refuse it too (now + 1 s).
  const std::int64_t at_s = ctx.clock->now_s() + 1;
  if (Status s = ctx.database->policies().revoke_tokens(user, at_s); !s) return error_from(s);
  const std::size_t closed = close_sessions_of(ctx, user, "token revoked");
  return json_response(200, json::object{{"user", user},
                                         {"revoked_at", format_iso8601_ms(at_s * 1000)},
                                         {"sessions_closed", closed}});
}

// Closes the user's sessions without revoking anything: they may sign in again.
AdminResponse kick_user(const AdminCall& call) {
  const std::string& user = call.param("user");
  const std::size_t closed = close_sessions_of(call.ctx, user, "session closed by an operator");
  return json_response(200, json::object{{"user", user}, {"sessions_closed", closed}});
}

// ---- /v1/users/{user}/devices[/{device}] (contract 4.5; admin_devices.h) ----

AdminResponse list_devices(const AdminCall& call) {
  const std::string& user = call.param("user");
  auto devices = devices_json(call.ctx, user);
  if (!devices) return error_from(devices.status());
  return json_response(200, json::object{{"user", user}, {"devices", std::move(*devices)}});
}

AdminResponse forget_device(const AdminCall& call) {
  const std::string& user = call.param("user");
  const std::string& device = call.param("device");
  if (!valid_device_param(device))
    return bad_request(fmt::format("'{}' is not a device name (1-64 bytes of [A-Za-z0-9._-], or legacy)", device));
  auto removed = remove_device(call.ctx, user, device);
  if (!removed) {
    if (removed.status().code() == Code::kNotFound)
      return admin_error(404, "not_found", fmt::format("{} has no device '{}'", user, device));
    return error_from(removed.status());
  }
  return json_response(200, json::object{{"user", user},
                                         {"device", device},
                                         {"removed", true},
                                         {"released", removed->released},
                                         {"sessions_closed", removed->sessions_closed}});
}

// Any other sub-resource of a user: 404, but only once the user id has been
// checked (a bad one is a 400 here too).
AdminResponse no_such_user_resource(const AdminCall& call) { return no_such_endpoint(call.req.target); }

// ---- /v1/backup ----

// A RocksDB checkpoint of the store (consistent; hard links when it is on
// the store's file system) into `[backup] dir`/NAME, never anywhere else
// (protocol 4.4). The directory it creates is a complete store/: restoring
// is copying it to DATA_DIR/store (deploy/OPERATIONS.md, "Backup and
// restore"). Directories are made 0700 and files 0600 (the checkpoint's
// copies would have the umask's mode); appends and acks go on meanwhile
// (storage/rocks_database.cpp).
AdminResponse take_backup(const AdminCall& call) {
  ServerContext& ctx = call.ctx;
  std::string name;
  if (!call.req.body.empty()) {
    auto parsed = parse_object(call.req.body, {"name", "path"});
    if (auto* e = std::get_if<AdminResponse>(&parsed)) return *e;
    const auto& o = std::get<json::object>(parsed);
    if (o.contains("path"))
      return admin_error(400, "path_not_allowed",
                         "backups go to the configured [backup] dir; give a 'name', not a 'path'");
    if (auto it = o.find("name"); it != o.end()) {
      if (!it->value().is_string() || !valid_backup_name(it->value().as_string()))
        return admin_error(400, "bad_backup_name",
                           "'name' must be 1-64 characters of A-Z a-z 0-9 . _ - (not '.' or '..')");
      name = std::string(it->value().as_string());
    }
  }
  if (name.empty()) name = backup_name(ctx.clock->now_ms());
  std::error_code ec;
  std::filesystem::path root = ctx.config.backup_dir.empty()
                                   ? std::filesystem::path(ctx.config.data_dir) / "backups"
                                   : std::filesystem::path(ctx.config.backup_dir);
  root = std::filesystem::absolute(root, ec).lexically_normal();
  if (!root.has_filename()) root = root.parent_path();
  const std::filesystem::path dir = root / name;
  if (std::filesystem::exists(std::filesystem::symlink_status(dir, ec)))
    return admin_error(409, "already_exists", fmt::format("backup '{}' already exists", name));
  // A checkpoint copies the live WAL: on a disk already below its watermark
  // it would eat the reserve that acks and RocksDB's flushes need.
  if (ctx.disk_guard && ctx.disk_guard->full())
    return admin_error(507, "store_full",
                       "the data dir's disk is below its free-space watermark: no backup until space is freed");
  if (Status s = make_private_dir(root); !s) return admin_error(500, "backup_failed", s.message());
  const std::int64_t started = ctx.clock->now_ms();
  if (Status s = ctx.database->checkpoint(dir.string()); !s) {
    if (std::filesystem::exists(std::filesystem::symlink_status(dir, ec)))  // a race on the name
      return admin_error(409, "already_exists", fmt::format("backup '{}' already exists", name));
    return admin_error(500, "backup_failed", s.message());
  }
  if (Status s = make_tree_private(dir); !s) return admin_error(500, "backup_failed", s.message());
  const auto [bytes, files] = tree_size(dir);
  ctx.metrics.backups_total.fetch_add(1, std::memory_order_relaxed);
  return json_response(200, json::object{{"name", name},
                                         {"path", dir.string()},
                                         {"bytes", bytes},
                                         {"files", files},
                                         {"created_at", format_iso8601_ms(started)},
                                         {"took_ms", ctx.clock->now_ms() - started}});
}

// ---- /v1/configuration/im ----

AdminResponse im_configuration_json(const storage::PolicyStore& policies) {
  return json_response(200, json::object{{"enable_offline_im", policies.im_configuration().enable_offline_im}});
}

AdminResponse get_im_configuration(const AdminCall& call) {
  return im_configuration_json(call.ctx.database->policies());
}

AdminResponse change_im_configuration(const AdminCall& call) {
  auto& policies = call.ctx.database->policies();
  auto parsed = parse_object(call.req.body, {"enable_offline_im"});
  if (auto* e = std::get_if<AdminResponse>(&parsed)) return *e;
  std::optional<bool> enable;
  if (auto e = read_bool(std::get<json::object>(parsed), "enable_offline_im", enable)) return *e;
  storage::ImConfiguration cfg = policies.im_configuration();
  if (enable) cfg.enable_offline_im = *enable;
  if (Status s = policies.set_im_configuration(cfg); !s) return error_from(s);
  return im_configuration_json(policies);
}

constexpr AdminAccess kPublic = AdminAccess::kPublic;
constexpr AdminAccess kToken = AdminAccess::kAdminToken;

// Match order matters only where patterns overlap: the user catch-all
// comes after the user's named sub-resources.
constexpr AdminRoute kRoutes[] = {
    {"GET", "/healthz", kPublic, "", get_health},
    {"HEAD", "/healthz", kPublic, "", get_health},
    {"GET", "/readyz", kPublic, "", get_readiness},
    {"HEAD", "/readyz", kPublic, "", get_readiness},
    {"GET", "/metrics", kToken, "", get_metrics},
    {"GET", "/v1/policies", kToken, "", list_policies},
    {"POST", "/v1/policies", kToken, "policy.new", create_policy},
    {"GET", "/v1/policies/{identity}", kToken, "", get_policy},
    {"PATCH", "/v1/policies/{identity}", kToken, "policy.set", change_policy},
    {"DELETE", "/v1/policies/{identity}", kToken, "policy.remove", remove_policy},
    {"GET", "/v1/users/{user}", kToken, "", show_user},
    {"PUT", "/v1/users/{user}/policy", kToken, "policy.grant", grant_policy},
    {"DELETE", "/v1/users/{user}/mailbox", kToken, "mailbox.purge", purge_mailbox},
    {"POST", "/v1/users/{user}/revoke", kToken, "user.revoke", revoke_user},
    {"DELETE", "/v1/users/{user}/sessions", kToken, "user.kick", kick_user},
    {"GET", "/v1/users/{user}/devices", kToken, "", list_devices},
    {"DELETE", "/v1/users/{user}/devices/{device}", kToken, "device.remove", forget_device},
    {"*", "/v1/users/{user}/{resource}", kToken, "", no_such_user_resource},
    {"POST", "/v1/backup", kToken, "backup", take_backup},
    {"GET", "/v1/configuration/im", kToken, "", get_im_configuration},
    {"PATCH", "/v1/configuration/im", kToken, "im-config.set", change_im_configuration},
};

}  // namespace

std::span<const AdminRoute> admin_routes() { return kRoutes; }

}  // namespace oms::server
