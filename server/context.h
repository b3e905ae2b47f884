// What every part of a running omsd shares: configuration, the store, the
// presence registry, metrics and the secrets. Owned by Server (server.h),
// outlives every session.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"
#include "server/config.h"
#include "server/connection_slot.h"
#include "server/metrics.h"
#include "server/presence.h"
#include "server/send_rate.h"
#include "server/session_inbox.h"
#include "server/tls.h"
#include "storage/disk_guard.h"
#include "storage/store.h"

namespace oms::server {

class Cluster;
class Router;

struct ServerContext {
  Config config;
  const Clock* clock = &SystemClock::instance();
  // Free-space watermarks and the ballast (storage/disk_guard.h); declared
  // before `database`, whose writer asks it, so that it outlives it.
  std::unique_ptr<storage::DiskGuard> disk_guard;
  std::unique_ptr<storage::Store> database;  // the store back end: owns `store` and the policies
  storage::MailboxStore* store = nullptr;    // database->mailboxes()
  PresenceRegistry registry;
  SendRateLimiter send_rate;     // limits.send_rate_per_second, per user, across sign-ins
  SendRateLimiter request_rate;  // limits.request_rate_per_second: every other request (4.4)
  Metrics metrics;
  std::unique_ptr<Router> router;
  // Cluster mode (contract 5; [cluster] redis_url set): presence, sessions
  // and live hints shared with the other nodes. Null on a single node.
  // (shared_ptr: it may be destroyed where Cluster is incomplete.)
  std::shared_ptr<Cluster> cluster;
  std::string jwt_secret;
  std::string admin_token;
  // Built at start when [tls] is configured (server/tls.h); null otherwise.
  // Config::client_tls() / admin_tls() say which listener uses it.
  std::shared_ptr<boost::asio::ssl::context> tls;
  std::atomic<bool> shutting_down{false};
  std::atomic<bool> listeners_ready{false};
  // limits.max_connections, limits.max_connections_per_ip
  Admission admission{metrics, shutting_down};

  // Runs `fn` on the admin pool (admin requests, other blocking work not
  // done for one user): never on an I/O thread. Set by Server.
  std::function<void(std::function<void()>)> run_blocking;
  // Runs `fn` on the scan pool (server/fair_pool.h): one task of `user` at a
  // time, users in turn. False when the user already has
  // limits.max_queued_scans_per_user tasks queued (fn is dropped: answer the
  // client). Set by Server.
  std::function<bool(const std::string& user, std::function<void()>)> run_for_user;
  // Scan-pool tasks queued or running, and submits refused (for /metrics).
  std::function<std::size_t()> scans_queued;
  std::function<std::uint64_t()> scans_refused;

  // Every open client session, for the shutdown close (1001).
  OpenSessions open_sessions;
};

}  // namespace oms::server
