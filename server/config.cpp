#include "server/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <string_view>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "server/log.h"

namespace oms::server {
namespace {

// Every key the TOML file may hold; anything else is refused by name.
const std::set<std::string, std::less<>> kKnownKeys = {
    "server.data_dir", "server.listen", "server.admin_listen", "server.io_threads",
    "server.store_threads", "server.admin_threads", "server.jwt_secret_file", "server.admin_token_file",
    "auth.signin_timeout_ms", "auth.leeway_seconds", "auth.issuer", "auth.audience",
    "auth.dev_tokens", "auth.allowed_origins",
    "mailbox.max_messages", "mailbox.max_bytes", "mailbox.ttl_days", "mailbox.ttl_seconds",
    "mailbox.sweep_interval_seconds", "mailbox.dedup_window_seconds",
    "delivery.window", "delivery.max_send_queue",
    "limits.max_body_bytes", "limits.max_frame_bytes", "limits.send_rate_per_second",
    "limits.send_burst", "limits.max_sessions_per_user", "limits.max_subscriptions",
    "limits.max_connections", "limits.max_connections_per_ip", "limits.max_admin_connections", "limits.idle_timeout_seconds",
    "limits.handshake_timeout_seconds",
    "limits.max_admin_body_bytes", "limits.max_queued_scans_per_user", "limits.max_send_queue_bytes",
    "limits.write_stall_seconds", "limits.request_rate_per_second", "limits.request_burst",
    "limits.max_ack_writes_in_flight",
    "store.sync", "store.max_batch", "store.max_queued_writes", "store.block_cache_mb",
    "store.min_free_bytes", "store.min_free_percent", "store.resume_free_bytes",
    "store.critical_free_bytes", "store.write_floor_bytes", "store.ballast_bytes", "store.disk_check_ms",
    "store.backend", "postgres.dsn", "postgres.read_connections", "postgres.late_locks",
    "cluster.redis_url", "cluster.node_id", "cluster.node_ttl_seconds",
    "log.level", "log.format",
    "log.levels",
    "tls.cert_file", "tls.key_file", "tls.client", "tls.admin", "tls.min_version",
    "backup.dir",
    "devices.idle_seconds", "devices.max_per_user", "devices.reconcile_seconds",
    "receipts.max_per_mailbox",
};

Status bad(std::string_view key, std::string_view why) {
  return Status::invalid_argument(fmt::format("config: {}: {}", key, why));
}

template <class T>
Status read_int(const toml::table& t, std::string_view key, T& out, std::int64_t lo, std::int64_t hi) {
  auto node = t.at_path(key);
  if (!node) return Status::ok();
  auto v = node.value<std::int64_t>();
  if (!node.is_integer() || !v) return bad(key, "must be an integer");
  if (*v < lo || *v > hi) return bad(key, fmt::format("must be between {} and {}", lo, hi));
  out = static_cast<T>(*v);
  return Status::ok();
}

Status read_double(const toml::table& t, std::string_view key, double& out, double lo, double hi) {
  auto node = t.at_path(key);
  if (!node) return Status::ok();
  if (!node.is_number()) return bad(key, "must be a number");
  double v = node.value<double>().value_or(0);
  if (v < lo || v > hi) return bad(key, fmt::format("must be between {} and {}", lo, hi));
  out = v;
  return Status::ok();
}

Status read_string(const toml::table& t, std::string_view key, std::string& out) {
  auto node = t.at_path(key);
  if (!node) return Status::ok();
  if (!node.is_string()) return bad(key, "must be a string");
  out = *node.value<std::string>();
  return Status::ok();
}

Status read_bool(const toml::table& t, std::string_view key, bool& out) {
  auto node = t.at_path(key);
  if (!node) return Status::ok();
  if (!node.is_boolean()) return bad(key, "must be true or false");
  out = *node.value<bool>();
  return Status::ok();
}

Status check_unknown(const toml::table& t) {
  for (auto&& [section, node] : t) {
    const auto* sub = node.as_table();
    if (!sub) return bad(section.str(), "unknown key (settings live in [sections])");
    for (auto&& [key, _] : *sub) {
      std::string full = fmt::format("{}.{}", section.str(), key.str());
      if (!kKnownKeys.count(full)) return bad(full, "unknown key");
    }
  }
  return Status::ok();
}

// log.levels = { session = "debug", audit = "info" }: a table of component
// names (server/log.h) to level strings; the levels are checked in validate().
Status read_log_levels(const toml::table& t, std::map<std::string, std::string>& out) {
  auto node = t.at_path("log.levels");
  if (!node) return Status::ok();
  const auto* levels = node.as_table();
  if (!levels) return bad("log.levels", R"(must be a table, e.g. { session = "debug" })");
  for (auto&& [name, value] : *levels) {
    const std::string key = fmt::format("log.levels.{}", name.str());
    if (std::find(kLogComponents.begin(), kLogComponents.end(), name.str()) == kLogComponents.end())
      return bad(key, fmt::format("unknown component (known: {})", fmt::join(kLogComponents, ", ")));
    if (!value.is_string()) return bad(key, "must be a string");
    out[std::string(name.str())] = *value.value<std::string>();
  }
  return Status::ok();
}

// auth.allowed_origins = ["https://im.contoso.com", ...]: scheme://host[:port]
// with nothing after it, as browsers send the Origin header.
Status read_origins(const toml::table& t, std::vector<std::string>& out) {
  constexpr std::string_view key = "auth.allowed_origins";
  auto node = t.at_path(key);
  if (!node) return Status::ok();
  const auto* arr = node.as_array();
  if (!arr) return bad(key, R"(must be an array of origins, e.g. ["https://im.contoso.com"])");
  if (arr->size() > 256) return bad(key, "at most 256 origins");
  for (const auto& v : *arr) {
    if (!v.is_string()) return bad(key, "every origin must be a string");
    std::string o = *v.value<std::string>();
    const auto scheme_end = o.find("://");
    const bool scheme_ok = o.starts_with("http://") || o.starts_with("https://");
    if (!scheme_ok || o.size() == scheme_end + 3 || o.find('/', scheme_end + 3) != std::string::npos ||
        o.size() > 253)
      return bad(key, fmt::format("'{}' is not an origin (scheme://host[:port], no path)", o));
    out.push_back(std::move(o));
  }
  return Status::ok();
}

#define OMS_TRY(expr)                 \
  do {                                \
    Status _s = (expr);               \
    if (!_s.is_ok()) return _s;       \
  } while (0)

constexpr std::int64_t kMaxI = 1LL << 40;

Status apply_toml(const toml::table& t, Config& c) {
  OMS_TRY(check_unknown(t));
  OMS_TRY(read_string(t, "server.data_dir", c.data_dir));
  OMS_TRY(read_string(t, "server.listen", c.listen));
  OMS_TRY(read_string(t, "server.admin_listen", c.admin_listen));
  OMS_TRY(read_int(t, "server.io_threads", c.io_threads, 0, 256));
  OMS_TRY(read_int(t, "server.store_threads", c.store_threads, 1, 64));
  OMS_TRY(read_int(t, "server.admin_threads", c.admin_threads, 1, 64));
  OMS_TRY(read_string(t, "server.jwt_secret_file", c.jwt_secret_file));
  OMS_TRY(read_string(t, "server.admin_token_file", c.admin_token_file));
  OMS_TRY(read_int(t, "auth.signin_timeout_ms", c.signin_timeout_ms, 100, 600'000));
  OMS_TRY(read_int(t, "auth.leeway_seconds", c.leeway_seconds, 0, 3600));
  OMS_TRY(read_string(t, "auth.issuer", c.issuer));
  OMS_TRY(read_string(t, "auth.audience", c.audience));
  OMS_TRY(read_bool(t, "auth.dev_tokens", c.dev_tokens));
  OMS_TRY(read_origins(t, c.allowed_origins));
  OMS_TRY(read_int(t, "mailbox.max_messages", c.max_messages, 1, kMaxI));
  OMS_TRY(read_int(t, "mailbox.max_bytes", c.max_bytes, 1, kMaxI));
  OMS_TRY(read_int(t, "mailbox.ttl_days", c.ttl_days, 0, 36500));
  OMS_TRY(read_int(t, "mailbox.ttl_seconds", c.ttl_seconds, 0, kMaxI));
  OMS_TRY(read_int(t, "mailbox.sweep_interval_seconds", c.sweep_interval_seconds, 1, 86400 * 7));
  OMS_TRY(read_int(t, "mailbox.dedup_window_seconds", c.dedup_window_seconds, 0, 86400 * 30));
  OMS_TRY(read_int(t, "devices.idle_seconds", c.device_idle_seconds, 1, 86400LL * 3650));
  OMS_TRY(read_int(t, "devices.max_per_user", c.max_devices_per_user, 1, 1000));
  OMS_TRY(read_int(t, "devices.reconcile_seconds", c.device_reconcile_seconds, 1, 3600));
  OMS_TRY(read_int(t, "receipts.max_per_mailbox", c.max_receipts_per_mailbox, 1, 1'000'000));
  OMS_TRY(read_int(t, "delivery.window", c.window, 1, 65536));
  OMS_TRY(read_int(t, "delivery.max_send_queue", c.max_send_queue, 16, 1 << 20));
  OMS_TRY(read_int(t, "limits.max_body_bytes", c.max_body_bytes, 1, 1 << 20));
  OMS_TRY(read_int(t, "limits.max_frame_bytes", c.max_frame_bytes, 1024, 1 << 24));
  OMS_TRY(read_double(t, "limits.send_rate_per_second", c.send_rate_per_second, 0.001, 1e9));
  OMS_TRY(read_double(t, "limits.send_burst", c.send_burst, 1, 1e9));
  OMS_TRY(read_int(t, "limits.max_sessions_per_user", c.max_sessions_per_user, 1, 1024));
  OMS_TRY(read_int(t, "limits.max_subscriptions", c.max_subscriptions, 0, 100'000));
  OMS_TRY(read_int(t, "limits.max_connections", c.max_connections, 1, 10'000'000));
  OMS_TRY(read_int(t, "limits.max_connections_per_ip", c.max_connections_per_ip, 0, 10'000'000));
  OMS_TRY(read_int(t, "limits.max_admin_connections", c.max_admin_connections, 1, 100'000));
  OMS_TRY(read_int(t, "limits.idle_timeout_seconds", c.idle_timeout_seconds, 1, 86400));
  OMS_TRY(read_int(t, "limits.handshake_timeout_seconds", c.handshake_timeout_seconds, 1, 3600));
  OMS_TRY(read_int(t, "limits.max_admin_body_bytes", c.max_admin_body_bytes, 1024, 1 << 24));
  OMS_TRY(read_int(t, "limits.max_queued_scans_per_user", c.max_queued_scans_per_user, 1, 100000));
  OMS_TRY(read_int(t, "limits.max_send_queue_bytes", c.max_send_queue_bytes, 1 << 20, std::int64_t{1} << 32));
  OMS_TRY(read_int(t, "limits.write_stall_seconds", c.write_stall_seconds, 1, 86400));
  OMS_TRY(read_double(t, "limits.request_rate_per_second", c.request_rate_per_second, 0.001, 1e9));
  OMS_TRY(read_double(t, "limits.request_burst", c.request_burst, 1, 1e9));
  OMS_TRY(read_int(t, "limits.max_ack_writes_in_flight", c.max_ack_writes_in_flight, 1, 4096));
  OMS_TRY(read_bool(t, "store.sync", c.sync));
  OMS_TRY(read_int(t, "store.max_batch", c.max_batch, 1, 1 << 20));
  OMS_TRY(read_int(t, "store.max_queued_writes", c.max_queued_writes, 16, 1 << 24));
  OMS_TRY(read_int(t, "store.block_cache_mb", c.block_cache_mb, 1, 1 << 20));
  constexpr std::int64_t kMaxDiskBytes = std::int64_t{1} << 50;
  OMS_TRY(read_int(t, "store.min_free_bytes", c.min_free_bytes, 0, kMaxDiskBytes));
  OMS_TRY(read_int(t, "store.min_free_percent", c.min_free_percent, 0, 50));
  OMS_TRY(read_int(t, "store.resume_free_bytes", c.resume_free_bytes, 0, kMaxDiskBytes));
  OMS_TRY(read_int(t, "store.critical_free_bytes", c.critical_free_bytes, 0, kMaxDiskBytes));
  OMS_TRY(read_int(t, "store.write_floor_bytes", c.write_floor_bytes, 0, kMaxDiskBytes));
  OMS_TRY(read_int(t, "store.ballast_bytes", c.ballast_bytes, 0, kMaxDiskBytes));
  OMS_TRY(read_int(t, "store.disk_check_ms", c.disk_check_ms, 10, 60'000));
  OMS_TRY(read_string(t, "store.backend", c.store_backend));
  OMS_TRY(read_string(t, "postgres.dsn", c.postgres_dsn));
  OMS_TRY(read_int(t, "postgres.read_connections", c.postgres_read_connections, 1, 256));
  OMS_TRY(read_bool(t, "postgres.late_locks", c.postgres_late_locks));
  OMS_TRY(read_string(t, "cluster.redis_url", c.cluster_redis_url));
  OMS_TRY(read_string(t, "cluster.node_id", c.cluster_node_id));
  OMS_TRY(read_int(t, "cluster.node_ttl_seconds", c.cluster_node_ttl_seconds, 2, 3600));
  OMS_TRY(read_string(t, "log.level", c.log_level));
  OMS_TRY(read_string(t, "log.format", c.log_format));
  OMS_TRY(read_log_levels(t, c.log_levels));
  OMS_TRY(read_string(t, "tls.cert_file", c.tls_cert_file));
  OMS_TRY(read_string(t, "tls.key_file", c.tls_key_file));
  OMS_TRY(read_bool(t, "tls.client", c.tls_client));
  OMS_TRY(read_bool(t, "tls.admin", c.tls_admin));
  OMS_TRY(read_string(t, "tls.min_version", c.tls_min_version));
  OMS_TRY(read_string(t, "backup.dir", c.backup_dir));
  return Status::ok();
}

Status validate(const Config& c) {
  static const std::set<std::string, std::less<>> levels = {"trace", "debug", "info", "warn",
                                                            "error", "critical", "off"};
  if (!levels.count(c.log_level)) return bad("log.level", "must be trace|debug|info|warn|error|off");
  for (const auto& [component, level] : c.log_levels)
    if (!levels.count(level))
      return bad(fmt::format("log.levels.{}", component), "must be trace|debug|info|warn|error|off");
  if (c.log_format != "text" && c.log_format != "json") return bad("log.format", "must be text or json");
  if (c.max_body_bytes + 1024 > c.max_frame_bytes)
    return bad("limits.max_body_bytes", "must be at least 1 KiB below limits.max_frame_bytes");
  // Message frames are bounded by the window; the queue must hold a full
  // window plus replies and events, or a reading client would be cut off.
  if (c.max_send_queue < c.window + 64)
    return bad("delivery.max_send_queue", fmt::format("must be at least delivery.window + 64 ({})", c.window + 64));
  if (c.data_dir.empty()) return bad("server.data_dir", "must not be empty");
  if (c.store_backend != "rocksdb" && c.store_backend != "postgres")
    return bad("store.backend", R"(must be "rocksdb" or "postgres")");
  if (c.store_backend == "postgres" && c.postgres_dsn.empty())
    return bad("postgres.dsn", R"(must be set when store.backend = "postgres")");
  for (char ch : c.cluster_node_id)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.')
      return bad("cluster.node_id", "may hold only letters, digits, '-', '_' and '.'");
  if (c.cluster_node_id.size() > 64) return bad("cluster.node_id", "must be at most 64 bytes");
  if (auto r = parse_endpoint(c.listen, "server.listen"); !r) return r.status();
  if (auto r = parse_endpoint(c.admin_listen, "server.admin_listen"); !r) return r.status();
  // The files themselves are read (and the key checked against the
  // certificate) when the server starts: server/tls.cpp.
  if (c.tls_cert_file.empty() != c.tls_key_file.empty())
    return bad(c.tls_cert_file.empty() ? "tls.cert_file" : "tls.key_file",
               "tls.cert_file and tls.key_file must be set together");
  if (c.tls_min_version != "1.2" && c.tls_min_version != "1.3")
    return bad("tls.min_version", R"(must be "1.2" or "1.3")");
  return Status::ok();
}

}  // namespace

Result<Endpoint> parse_endpoint(const std::string& s, const char* key) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return bad(key, fmt::format("'{}' is not HOST:PORT", s));
  Endpoint ep;
  ep.host = s.substr(0, colon);
  if (ep.host.size() > 2 && ep.host.front() == '[' && ep.host.back() == ']')
    ep.host = ep.host.substr(1, ep.host.size() - 2);
  std::string_view port = std::string_view(s).substr(colon + 1);
  unsigned v = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (ec != std::errc() || p != port.data() + port.size() || v > 65535)
    return bad(key, fmt::format("'{}' has no valid port", s));
  ep.port = static_cast<unsigned short>(v);
  return ep;
}

std::string usage() {
  return "usage: omsd [--config FILE] [--data-dir DIR] [--listen HOST:PORT]\n"
         "            [--admin-listen HOST:PORT] [--jwt-secret-file FILE]\n"
         "            [--admin-token-file FILE] [--log-level LEVEL]\n"
         "Defaults: --data-dir ./oms-data --listen 127.0.0.1:8080 --admin-listen 127.0.0.1:8081\n"
         "Every other setting lives in the TOML file; see deploy/omsd.toml.\n";
}

Result<Config> load_config(int argc, char** argv, bool& help) {
  help = false;
  Config c;
  // First pass: find --config so flags can override it.
  std::string file;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--config" && i + 1 < argc) file = argv[i + 1];
    if (a.starts_with("--config=")) file = std::string(a.substr(9));
  }
  if (!file.empty()) {
    try {
      toml::table t = toml::parse_file(file);
      OMS_TRY(apply_toml(t, c));
    } catch (const toml::parse_error& e) {
      return Status::invalid_argument(fmt::format("config: {}: {} (line {})", file, e.description(),
                                                  e.source().begin.line));
    }
    c.config_file = file;
  }
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_inline = false;
    if (auto eq = a.find('='); a.starts_with("--") && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_inline = true;
    }
    if (a == "--help" || a == "-h") {
      help = true;
      return c;
    }
    auto take = [&](std::string& out) -> Status {
      if (has_inline) {
        out = value;
        return Status::ok();
      }
      if (i + 1 >= argc) return Status::invalid_argument(fmt::format("flag {} needs a value", a));
      out = argv[++i];
      return Status::ok();
    };
    std::string ignored;
    if (a == "--config") OMS_TRY(take(ignored));
    else if (a == "--data-dir") OMS_TRY(take(c.data_dir));
    else if (a == "--listen") OMS_TRY(take(c.listen));
    else if (a == "--admin-listen") OMS_TRY(take(c.admin_listen));
    else if (a == "--jwt-secret-file") OMS_TRY(take(c.jwt_secret_file));
    else if (a == "--admin-token-file") OMS_TRY(take(c.admin_token_file));
    else if (a == "--log-level") OMS_TRY(take(c.log_level));
    else return Status::invalid_argument(fmt::format("unknown flag '{}'\n{}", a, usage()));
  }
  OMS_TRY(validate(c));
  return c;
}

}  // namespace oms::server
