// Cluster: what one omsd node shares with the others through Redis
// (contract 5) — presence and sessions, live-delivery hints, the node's
// heartbeat and the purge of dead nodes. Mailboxes are never here: they are
// in the shared store (PostgreSQL); Redis is never the only copy of a
// message, and a lost hint costs latency, not a message.
//
// In Redis (one database):
//   oms:node:<node>        heartbeat, a key with a TTL (PX), refreshed by the node
//   oms:nodes              set of nodes that registered
//   oms:pres:<user>        hash node -> "<sessions>|<state>": the user's sessions per node
//   oms:nodeusers:<node>   set of users with sessions on the node (for its purge)
//   oms:nodedev:<node>     hash "<user>\x1f<device>" -> open sessions of that device on the node
//   oms:purged:<node>      set by the purge of a node presumed dead
// Channels:
//   oms:presence           "<user>|<node>|<sessions>|<state>|<set>": a node's view of a user changed
//                          (<set> = 1: a presence.set there, the user's state for every node)
//   oms:u:<user>           hints: a message or receipt committed to <user>'s mailbox,
//                          "<node>|<seq>|<kind>|<receipt>|<mseq>|<len1>|<len2>|" then its
//                          message frame (len1 bytes) and missed notice (len2)
//   oms:reread             "<node>": that node dropped hints (its Redis connection was down,
//                          or Redis did not read them); every other node has its sessions
//                          read their mailboxes (server/hint_line.h)
//
// A node subscribes to oms:u:<user> while it holds a session of <user> (on
// the connection of the I/O thread that runs the session); the sender's
// node publishes after the COMMIT. After each (re)subscription the node
// pokes its sessions of that user to read their mailbox, so a message
// committed before the subscription took effect is not left waiting.
// Any live node purges a node whose heartbeat key expired: its presence
// entries go (an offline event for each user) and its open device sessions
// are signed out in the store; one Lua script does it, so one node does it.
// A node that finds itself purged (it was stopped longer than the TTL) closes
// its client sessions (they reconnect, to it or another node) and registers
// again.
//
// Threads: one publisher thread (commands, heartbeat, purge) and one
// subscriber thread (oms:presence, oms:reread), each with its own
// connection, reconnecting with backoff. The hints (oms:u:<user>) are read
// by the I/O threads themselves, one connection per I/O context
// subscribed to the users of its sessions (server/hint_reader.h): from
// Redis to the session no other thread wakes.
// Hints go out on a third connection (CLIENT REPLY OFF, non-blocking), written
// by the store's completion thread itself after each batch (flush_hints):
// from a COMMIT to Redis no other thread wakes. The publisher thread opens
// that connection and takes over its writes only when the socket is full.
// Every public method is thread-safe and never blocks on Redis.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "common/status.h"

namespace boost::asio {
class io_context;
}

namespace oms::server {

struct ServerContext;
struct Delivery;

struct ClusterCounters {
  std::atomic<std::uint64_t> hints_published{0};
  std::atomic<std::uint64_t> hints_received{0};
  std::atomic<std::uint64_t> hints_dropped{0};     // not published: Redis unreachable or not reading (16 MiB queued)
  std::atomic<std::uint64_t> presence_events{0};   // received from other nodes
  std::atomic<std::uint64_t> redis_errors{0};      // lost connections
  std::atomic<std::uint64_t> nodes_purged{0};      // dead nodes this node purged
  std::atomic<std::uint64_t> self_purges{0};       // times this node found itself purged
  std::atomic<bool> connected{false};
  std::atomic<std::int64_t> hint_readers_connected{0};  // I/O threads whose hint subscription is up
};

class Cluster {
 public:
  // `node_id`: unique per node; `node_ttl_seconds`: a dead node's entries
  // are gone within it.
  Cluster(ServerContext& ctx, std::string redis_url, std::string node_id, std::int64_t node_ttl_seconds);
  ~Cluster();  // stop()
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Checks the URL, starts the threads (which connect, purge this node's
  // leftovers of an earlier run, load the other nodes' presence and
  // register). Does not wait for Redis: a node serves without it (presence
  // local only, no hints) and catches up when it is back.
  Status start();
  // What the router does with presence news from other nodes (set before
  // start(); server.cpp wires them to Router): `state_set` — a presence.set
  // elsewhere changed the user's state here (before, after, and for the
  // missed digest the seq at entering dnd/presenting); `visible` — what
  // others see of a user not signed in here changed.
  struct PresenceHooks {
    std::function<void(const std::string& user, proto::PresenceState before, proto::PresenceState after,
                       std::uint64_t suppressed_since_seq)>
        state_set;
    std::function<void(const std::string& user, proto::PresenceState before, proto::PresenceState after)> visible;
  };
  void set_presence_hooks(PresenceHooks hooks);
  // The server's I/O contexts (before start()): each gets its own
  // subscription to the hints of the users whose sessions it runs
  // (server/hint_reader.h), read on its thread. (Without them no hint is
  // read: the sessions see other nodes' messages at their next read.)
  void attach_io(const std::vector<boost::asio::io_context*>& contexts);
  // At the start of a shutdown: the I/O contexts' subscriptions close, so
  // that nothing stays pending on the contexts (their threads can finish).
  void close_readers();
  // Stops the threads; this node's entries are removed when Redis is
  // reachable (a clean shutdown does not wait for the TTL).
  void stop();

  const std::string& node_id() const;
  const ClusterCounters& counters() const;
  std::int64_t node_ttl_ms() const;

  // ---- local changes (any thread) ----
  // The user's sessions or state on this node changed (sign-in, sign-out,
  // presence.set: `state_set`); the publisher sends this node's view.
  void local_presence_changed(const std::string& user, bool state_set);
  // A session of `user` opened (signed in) or closed on the I/O context
  // `home` (SessionInbox::home()): that context's hint subscription.
  void local_session(const std::string& user, const void* home, bool open);
  // A device session opened (+1) or closed (-1) on this node (recorded in
  // the store): what a purge signs out if the node dies.
  void device_session(const std::string& user, const std::string& device, int delta);
  // The epoch of this node's registration: a session records it when its
  // device is recorded, and skips the store's sign-out at its end when it
  // changed (a purge signed it out already).
  std::uint64_t epoch() const;

  // A message or receipt committed to `mailbox`: a hint for the nodes that
  // hold its sessions (the frames travel with it when `d` has them). Queued;
  // it goes out at the next flush_hints() (the publisher thread flushes too,
  // at least once a heartbeat period).
  void publish_delivery(const std::string& mailbox, const Delivery& d);
  // Writes the queued hints in one non-blocking send(); the store calls it
  // on its completion thread after each batch's callbacks (server.cpp).
  void flush_hints();

  // ---- reads (any thread; memory only) ----
  // The user's state on other nodes: nullopt when no other node holds a
  // session of theirs.
  std::optional<proto::PresenceState> remote_state(const std::string& user) const;
  // The state for routing and presence: this node's when it holds a session
  // of the user, else the other nodes', else offline.
  proto::PresenceState state_of(const std::string& user) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace oms::server
