// omsd configuration: defaults, the TOML file (toml++) and command-line flags.
//
// Precedence: built-in defaults < TOML file (--config) < flags. Every key is
// documented in deploy/omsd.toml and deploy/CONFIGURATION.md. A bad value or an unknown key
// stops the process at start with a message that names the key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace oms::server {

struct Config {
  // [server]
  std::string data_dir = "./oms-data";
  std::string listen = "127.0.0.1:8080";
  std::string admin_listen = "127.0.0.1:8081";
  unsigned io_threads = 0;        // 0 = one per core
  unsigned store_threads = 2;     // mailbox scans (sign-in, delivery pages), fair between users
  unsigned admin_threads = 2;     // admin requests and other blocking work, never behind client scans
  std::string jwt_secret_file;    // empty = DATA_DIR/jwt.secret (generated)
  std::string admin_token_file;   // empty = DATA_DIR/admin.token (generated)

  // [auth]
  std::int64_t signin_timeout_ms = 10'000;
  std::int64_t leeway_seconds = 30;
  std::string issuer;    // empty = not checked
  std::string audience;  // empty = not checked
  // POST /v1/dev/token on the client listener mints a token for any user
  // (the browser client's sign-in). For development only: off by default.
  bool dev_tokens = false;
  // Browser Origins allowed to open the WebSocket (exact match, e.g.
  // "https://im.contoso.com"). Empty: any. An upgrade with an Origin header
  // not in a non-empty list gets 403 before the upgrade; requests without an
  // Origin header (non-browser clients) are not affected.
  std::vector<std::string> allowed_origins;

  // [mailbox]
  std::uint64_t max_messages = 10'000;
  std::uint64_t max_bytes = 52'428'800;
  std::uint32_t ttl_days = 30;
  std::int64_t ttl_seconds = 0;  // > 0 overrides ttl_days (tests, short-lived deployments)
  std::int64_t sweep_interval_seconds = 3600;
  std::int64_t dedup_window_seconds = 86'400;
  // [devices] (contract 4.1): a device whose last session ended longer ago
  // than idle_seconds stops holding messages back; at most max_per_user
  // active named devices; what waits for no active device is deleted by a
  // pass every reconcile_seconds.
  std::int64_t device_idle_seconds = 1'209'600;
  std::int64_t max_devices_per_user = 10;
  std::int64_t device_reconcile_seconds = 30;
  // [receipts] (contract 4.2): receipts kept per mailbox, oldest dropped.
  std::int64_t max_receipts_per_mailbox = 10'000;

  // [delivery]
  std::size_t window = 256;             // unacked messages per session
  std::size_t max_send_queue = 4096;    // queued outgoing frames per session; beyond: close 4008

  // [limits]
  std::size_t max_body_bytes = 16'384;
  std::size_t max_frame_bytes = 65'536;
  double send_rate_per_second = 1000;   // per user, token bucket
  double send_burst = 2000;
  std::size_t max_sessions_per_user = 16;
  std::size_t max_subscriptions = 1000;
  std::size_t max_connections = 100'000;
  std::size_t max_connections_per_ip = 1000;  // open client connections per source address (IPv6: per /64); 0 = no limit
  std::size_t max_admin_connections = 64;      // open admin connections (the admin listener)
  std::int64_t idle_timeout_seconds = 120;
  std::int64_t handshake_timeout_seconds = 10;
  std::size_t max_admin_body_bytes = 65'536;
  // Mailbox scans (sign-in summaries, delivery pages) waiting or running per
  // user; beyond it a sign-in is refused with `unavailable` (close 1013).
  std::size_t max_queued_scans_per_user = 32;
  // Protocol 4.4: what one session may make the server hold.
  std::size_t max_send_queue_bytes = 8u << 20;  // queued outgoing bytes per session; beyond: close 4008
  std::int64_t write_stall_seconds = 30;        // frames waiting, nothing read by the peer: close 4008
  double request_rate_per_second = 500;         // non-send requests per user (an ack: 1 + ids/64)
  double request_burst = 2000;
  std::size_t max_ack_writes_in_flight = 8;     // per session; beyond it the session stops reading

  // [store]
  bool sync = true;
  std::size_t max_batch = 8192;
  std::size_t max_queued_writes = 200'000;
  std::size_t block_cache_mb = 64;
  // Free space of the data dir's filesystem (storage/disk_guard.h): below
  // max(min_free_bytes, min_free_percent %) new messages get store_full
  // until it is back at resume_free_bytes (0 = low mark + a quarter); below
  // critical_free_bytes (0 = half the low mark) DATA_DIR/ballast
  // (ballast_bytes, at most 5 % of the filesystem; 0 = none) is deleted.
  std::uint64_t min_free_bytes = 256ull << 20;
  unsigned min_free_percent = 0;
  std::uint64_t resume_free_bytes = 0;
  std::uint64_t critical_free_bytes = 0;
  std::uint64_t write_floor_bytes = 4u << 20;  // below: no write at all (acks too): store_full
  std::uint64_t ballast_bytes = 64ull << 20;
  std::int64_t disk_check_ms = 250;
  // Which back end keeps the mailboxes: "rocksdb" (embedded, DATA_DIR/store)
  // or "postgres" (cluster mode, contract 5: [postgres] dsn).
  std::string store_backend = "rocksdb";

  // [postgres] (store.backend = "postgres")
  std::string postgres_dsn;             // libpq connection string or URI
  unsigned postgres_read_connections = 4;  // pooled connections for reads (scans, summaries)
  bool postgres_late_locks = true;  // appends-only batches lock mailbox rows in their last round trip

  // [cluster] (contract 5): presence, sessions and live hints in Redis.
  // Empty redis_url: a single node (presence in memory only).
  std::string cluster_redis_url;        // redis://HOST:PORT[/DB] or unix:///path
  std::string cluster_node_id;          // unique per node; empty = HOSTNAME-PID
  std::int64_t cluster_node_ttl_seconds = 15;  // a dead node's sessions are gone within this

  // [log]
  std::string log_level = "info";  // trace, debug, info, warn, error, off
  std::string log_format = "text"; // text | json
  // Per-component levels (log.levels = { session = "debug" }): component
  // name (server/log.h) -> level; unset components use log_level.
  std::map<std::string, std::string> log_levels;

  // [tls] Both files set: TLS (wss://, https://) on the listeners chosen by
  // tls_client / tls_admin. Neither set: plain TCP everywhere.
  std::string tls_cert_file;  // PEM, the server certificate first, then its chain
  std::string tls_key_file;   // PEM private key matching the certificate
  bool tls_client = true;     // the client listener (server.listen) uses TLS
  bool tls_admin = true;      // the admin listener (server.admin_listen) uses TLS
  std::string tls_min_version = "1.2";  // "1.2" | "1.3"

  // [backup]: where POST /v1/backup writes (by name, mode 0700); empty =
  // DATA_DIR/backups.
  std::string backup_dir;

  std::string config_file;  // where the TOML came from (empty = none)

  bool tls_configured() const { return !tls_cert_file.empty(); }
  bool client_tls() const { return tls_configured() && tls_client; }
  bool admin_tls() const { return tls_configured() && tls_admin; }

  std::int64_t ttl_ms() const {
    if (ttl_seconds > 0) return ttl_seconds * 1000;
    return static_cast<std::int64_t>(ttl_days) * 86'400'000;
  }
};

// Defaults, then --config FILE, then the other flags. `help` is set for
// --help (usage printed by the caller).
Result<Config> load_config(int argc, char** argv, bool& help);
std::string usage();

// "HOST:PORT" split; port 0 allowed.
struct Endpoint {
  std::string host;
  unsigned short port = 0;
};
Result<Endpoint> parse_endpoint(const std::string& s, const char* key);

}  // namespace oms::server
