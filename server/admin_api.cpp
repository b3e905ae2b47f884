#include "server/admin_api.h"

#include <filesystem>
#include <future>
#include <system_error>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "common/json_codec.h"
#include "common/ids.h"
#include "common/jwt.h"
#include "server/context.h"
#include "server/log.h"
#include "storage/mailbox_store.h"
#include "storage/policy_store.h"

namespace oms::server {

namespace json = boost::json;

namespace {

AdminResponse json_response(unsigned status, const json::value& v) {
  return {status, "application/json", json::serialize(v)};
}

// The message may quote request bytes (a target, a field): Boost.JSON writes
// strings as they are, so ill-formed UTF-8 is replaced first.
AdminResponse error(unsigned status, std::string_view code, std::string_view message) {
  return json_response(status,
                       json::object{{"error", json::object{{"code", code}, {"message", proto::to_valid_utf8(message)}}}});
}

unsigned status_for(const Status& s) {
  switch (s.code()) {
    case Code::kNotFound: return 404;
    case Code::kAlreadyExists: return 409;
    case Code::kFailedPrecondition: return 409;
    case Code::kInvalidArgument: return 400;
    case Code::kUnavailable: return 503;
    default: return 500;
  }
}

AdminResponse error_from(const Status& s) {
  std::string_view code = code_name(s.code());
  if (s.code() == Code::kFailedPrecondition) code = "global_policy_protected";
  return error(status_for(s), code, s.message());
}

json::object policy_json(const storage::ClientPolicy& p) {
  return {{"identity", p.identity}, {"enable_im_auto_archiving", p.enable_im_auto_archiving}};
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// The path split on '/', percent-decoded; the query string is ignored.
std::optional<std::vector<std::string>> split_path(std::string_view target) {
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < target.size()) {
    if (target[i] == '/') {
      ++i;
      continue;
    }
    std::size_t j = target.find('/', i);
    if (j == std::string_view::npos) j = target.size();
    auto seg = percent_decode(target.substr(i, j - i));
    if (!seg) return std::nullopt;
    parts.push_back(std::move(*seg));
    i = j;
  }
  return parts;
}

// A JSON object body with only the allowed fields, or an error response.
std::variant<json::object, AdminResponse> parse_object(std::string_view body,
                                                       std::initializer_list<std::string_view> allowed) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return error(400, "bad_request", fmt::format("the body is not valid JSON: {}", ec.message()));
  if (!v.is_object()) return error(400, "bad_request", "the body must be a JSON object");
  for (const auto& kv : v.as_object()) {
    bool ok = false;
    for (auto a : allowed) ok = ok || kv.key() == a;
    if (!ok) return error(400, "bad_request", fmt::format("unknown field '{}'", std::string_view(kv.key())));
  }
  return std::move(v.as_object());
}

// Reads an optional bool field; an error response when it has another type.
std::optional<AdminResponse> read_bool(const json::object& o, std::string_view key, std::optional<bool>& out) {
  auto it = o.find(key);
  if (it == o.end()) return std::nullopt;
  if (!it->value().is_bool())
    return error(400, "bad_request", fmt::format("'{}' must be true or false", key));
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

}  // namespace

AdminResponse AdminApi::handle(const AdminRequest& req) {
  ctx_.metrics.admin_requests_total.fetch_add(1, std::memory_order_relaxed);
  auto parts_opt = split_path(req.target);
  if (!parts_opt) return error(400, "bad_request", "malformed percent-encoding in the path");
  const std::vector<std::string>& p = *parts_opt;
  const std::string_view m = req.method;

  auto method_not_allowed = [&] {
    return error(405, "method_not_allowed", fmt::format("{} is not allowed on {}", m, req.target));
  };

  // ---- unauthenticated probes ----
  if (p.size() == 1 && p[0] == "healthz") {
    if (m != "GET" && m != "HEAD") return method_not_allowed();
    return json_response(200, json::object{{"status", "ok"}});
  }
  if (p.size() == 1 && p[0] == "readyz") {
    if (m != "GET" && m != "HEAD") return method_not_allowed();
    const bool ready = ctx_.listeners_ready.load() && !ctx_.shutting_down.load() && ctx_.store &&
                       ctx_.store->writable();
    if (!ready) {
      std::string why = ctx_.shutting_down.load()     ? "shutting down"
                        : !ctx_.listeners_ready.load() ? "listeners not up"
                                                       : "the store cannot write";
      return json_response(503, json::object{{"status", "not_ready"}, {"reason", why}});
    }
    return json_response(200, json::object{{"status", "ready"}});
  }

  // ---- everything else needs the admin token ----
  constexpr std::string_view kBearer = "Bearer ";
  if (!req.authorization.starts_with(kBearer) ||
      !constant_time_equal(req.authorization.substr(kBearer.size()), ctx_.admin_token)) {
    ctx_.metrics.admin_unauthorized_total.fetch_add(1, std::memory_order_relaxed);
    return error(401, "unauthenticated", "missing or wrong admin token (Authorization: Bearer <token>)");
  }

  auto audit = [&](std::string_view what, const AdminResponse& res) {
    // Target and body are quoted as JSON strings: a newline or a quote in a
    // request cannot forge another audit line or field.
    logger_for(LogComponent::kAudit).info("who=admin-token remote={} action={} method={} target={} body={} status={}",
                               req.remote, what, m, json::serialize(json::string(proto::to_valid_utf8(req.target))),
                               req.body.empty() ? std::string("-")
                                                : json::serialize(json::string(proto::to_valid_utf8(req.body))),
                               res.status);
    return res;
  };
  auto& policies = ctx_.database->policies();

  if (p.size() == 1 && p[0] == "metrics") {
    if (m != "GET") return method_not_allowed();
    return {200, "text/plain; version=0.0.4; charset=utf-8",
            ctx_.metrics.render(ctx_.store->counters(), ctx_.store->writable())};
  }

  if (p.size() < 2 || p[0] != "v1") return error(404, "not_found", fmt::format("no such endpoint: {}", req.target));

  // /v1/policies[/{identity}]
  if (p[1] == "policies" && p.size() == 2) {
    if (m == "GET") {
      json::array arr;
      for (const auto& pol : policies.list()) arr.push_back(policy_json(pol));
      return json_response(200, json::object{{"policies", std::move(arr)}});
    }
    if (m == "POST") {
      auto parsed = parse_object(req.body, {"identity", "enable_im_auto_archiving"});
      if (auto* e = std::get_if<AdminResponse>(&parsed)) return audit("policy.new", *e);
      auto& o = std::get<json::object>(parsed);
      auto id = o.find("identity");
      if (id == o.end() || !id->value().is_string())
        return audit("policy.new", error(400, "bad_request", "'identity' (a string) is required"));
      storage::ClientPolicy pol;
      pol.identity = std::string(id->value().as_string());
      std::optional<bool> archiving;
      if (auto e = read_bool(o, "enable_im_auto_archiving", archiving)) return audit("policy.new", *e);
      pol.enable_im_auto_archiving = archiving.value_or(true);
      if (!is_valid_policy_identity(pol.identity))
        return audit("policy.new", error(400, "bad_request",
                                         "'identity' must be 1–64 characters of [A-Za-z0-9._-]"));
      if (Status s = policies.create(pol); !s) return audit("policy.new", error_from(s));
      return audit("policy.new", json_response(201, policy_json(*policies.get(pol.identity))));
    }
    return method_not_allowed();
  }
  if (p[1] == "policies" && p.size() == 3) {
    const std::string& identity = p[2];
    if (m == "GET") {
      auto pol = policies.get(identity);
      if (!pol) return error(404, "not_found", fmt::format("no client policy '{}'", identity));
      json::object o = policy_json(*pol);
      o["users"] = policies.users_granted(pol->identity).size();
      return json_response(200, o);
    }
    if (m == "PATCH") {
      auto parsed = parse_object(req.body, {"enable_im_auto_archiving"});
      if (auto* e = std::get_if<AdminResponse>(&parsed)) return audit("policy.set", *e);
      auto pol = policies.get(identity);
      if (!pol) return audit("policy.set", error(404, "not_found", fmt::format("no client policy '{}'", identity)));
      std::optional<bool> archiving;
      if (auto e = read_bool(std::get<json::object>(parsed), "enable_im_auto_archiving", archiving))
        return audit("policy.set", *e);
      if (archiving) pol->enable_im_auto_archiving = *archiving;
      if (Status s = policies.update(*pol); !s) return audit("policy.set", error_from(s));
      return audit("policy.set", json_response(200, policy_json(*policies.get(identity))));
    }
    if (m == "DELETE") {
      auto pol = policies.get(identity);
      if (!pol) return audit("policy.remove", error(404, "not_found", fmt::format("no client policy '{}'", identity)));
      auto users = policies.users_granted(pol->identity).size();
      if (Status s = policies.remove(identity); !s) return audit("policy.remove", error_from(s));
      return audit("policy.remove",
                   json_response(200, json::object{{"removed", pol->identity}, {"users_reverted", users}}));
    }
    return method_not_allowed();
  }

  // /v1/users/{user}[/policy|/mailbox]
  if (p[1] == "users" && (p.size() == 3 || p.size() == 4)) {
    auto user = normalize_user_id(p[2]);
    if (!user) return error(400, "bad_request", fmt::format("'{}' is not a valid user id", p[2]));
    if (p.size() == 3) {
      if (m != "GET") return method_not_allowed();
      auto state = ctx_.registry.state_of(*user);
      json::array sessions;
      for (const auto& s : ctx_.registry.session_infos(*user)) {
        json::array features;
        for (const auto& f : s.client.features) features.push_back(json::string(f));
        sessions.push_back(json::object{
            {"session", s.session_id},
            {"client", json::object{{"name", s.client.name}, {"version", s.client.version},
                                    {"features", std::move(features)}}},
            {"connected_at", format_iso8601_ms(s.connected_at_ms)}});
      }
      auto eff = policies.effective_policy_for(*user);
      auto summary = ctx_.store->summary(*user);
      if (!summary) return error_from(summary.status());
      return json_response(
          200, json::object{
                   {"user", *user},
                   {"presence", proto::presence_name(state)},
                   {"sessions", std::move(sessions)},
                   {"policy", json::object{{"identity", eff.policy.identity},
                                           {"source", eff.granted ? "granted" : "global"},
                                           {"enable_im_auto_archiving", eff.policy.enable_im_auto_archiving}}},
                   {"mailbox", json::object{{"count", summary->count},
                                            {"missed", summary->missed},
                                            {"bytes", summary->bytes},
                                            {"oldest", iso_or_null(summary->oldest_ms)}}}});
    }
    if (p[3] == "policy") {
      if (m != "PUT") return method_not_allowed();
      auto parsed = parse_object(req.body, {"policy"});
      if (auto* e = std::get_if<AdminResponse>(&parsed)) return audit("policy.grant", *e);
      auto& o = std::get<json::object>(parsed);
      auto it = o.find("policy");
      if (it == o.end() || !(it->value().is_string() || it->value().is_null()))
        return audit("policy.grant",
                     error(400, "bad_request", "'policy' must be a policy identity or null (revert to Global)"));
      std::optional<std::string> policy;
      if (it->value().is_string()) policy = std::string(it->value().as_string());
      // Granting Global explicitly is the same as reverting to it.
      if (policy && lower_ascii(*policy) == lower_ascii(storage::kGlobalPolicy)) policy.reset();
      Status s = policy ? policies.grant(*user, std::string_view(*policy)) : policies.grant(*user, std::nullopt);
      if (!s) return audit("policy.grant", error_from(s));
      auto granted = policies.granted_policy(*user);
      return audit("policy.grant",
                   json_response(200, json::object{{"user", *user},
                                                   {"policy", granted ? json::value(json::string(*granted))
                                                                      : json::value(nullptr)}}));
    }
    if (p[3] == "mailbox") {
      if (m != "DELETE") return method_not_allowed();
      std::promise<Result<std::uint64_t>> done;
      auto fut = done.get_future();
      ctx_.store->purge(*user, [&done](Result<std::uint64_t> r) { done.set_value(std::move(r)); });
      auto r = fut.get();
      if (!r) return audit("mailbox.purge", error_from(r.status()));
      return audit("mailbox.purge", json_response(200, json::object{{"user", *user}, {"removed", *r}}));
    }
  }

  // /v1/backup: a RocksDB checkpoint of the store (consistent; hard links
  // when it is on the store's file system). The directory it creates is a
  // complete store/: restoring is copying it to DATA_DIR/store (README).
  if (p.size() == 2 && p[1] == "backup") {
    if (m != "POST") return method_not_allowed();
    std::filesystem::path dir;
    if (!req.body.empty()) {
      auto parsed = parse_object(req.body, {"path"});
      if (auto* e = std::get_if<AdminResponse>(&parsed)) return audit("backup", *e);
      const auto& o = std::get<json::object>(parsed);
      if (auto it = o.find("path"); it != o.end()) {
        if (!it->value().is_string() || it->value().as_string().empty())
          return audit("backup", error(400, "bad_request", "'path' must be a non-empty string"));
        dir = std::string(it->value().as_string());
        if (!dir.is_absolute())
          return audit("backup", error(400, "bad_request", "'path' must be an absolute path"));
      }
    }
    std::error_code ec;
    if (dir.empty())
      dir = std::filesystem::absolute(ctx_.config.data_dir, ec) / "backups" / backup_name(ctx_.clock->now_ms());
    dir = dir.lexically_normal();
    if (!dir.has_filename()) dir = dir.parent_path();
    if (std::filesystem::exists(dir, ec))
      return audit("backup", error(409, "already_exists", fmt::format("'{}' already exists", dir.string())));
    std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec)
      return audit("backup", error(500, "backup_failed", fmt::format("cannot create '{}': {}",
                                                                     dir.parent_path().string(), ec.message())));
    const std::int64_t started = ctx_.clock->now_ms();
    if (Status s = ctx_.database->checkpoint(dir.string()); !s)
      return audit("backup", error(500, "backup_failed", s.message()));
    const auto [bytes, files] = tree_size(dir);
    ctx_.metrics.backups_total.fetch_add(1, std::memory_order_relaxed);
    return audit("backup", json_response(200, json::object{{"path", dir.string()},
                                                           {"bytes", bytes},
                                                           {"files", files},
                                                           {"created_at", format_iso8601_ms(started)},
                                                           {"took_ms", ctx_.clock->now_ms() - started}}));
  }

  // /v1/configuration/im
  if (p.size() == 3 && p[1] == "configuration" && p[2] == "im") {
    if (m == "GET")
      return json_response(200, json::object{{"enable_offline_im", policies.im_configuration().enable_offline_im}});
    if (m == "PATCH") {
      auto parsed = parse_object(req.body, {"enable_offline_im"});
      if (auto* e = std::get_if<AdminResponse>(&parsed)) return audit("im-config.set", *e);
      std::optional<bool> enable;
      if (auto e = read_bool(std::get<json::object>(parsed), "enable_offline_im", enable))
        return audit("im-config.set", *e);
      storage::ImConfiguration cfg = policies.im_configuration();
      if (enable) cfg.enable_offline_im = *enable;
      if (Status s = policies.set_im_configuration(cfg); !s) return audit("im-config.set", error_from(s));
      return audit("im-config.set",
                   json_response(200, json::object{{"enable_offline_im", policies.im_configuration().enable_offline_im}}));
    }
    return method_not_allowed();
  }

  return error(404, "not_found", fmt::format("no such endpoint: {}", req.target));
}

}  // namespace oms::server
