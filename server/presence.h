// PresenceRegistry: who is signed in, with which sessions, in which state,
// and who watches whom.
//
// Contract:
//  - A user is online while they have at least one signed-in session; the
//    first session makes them `available`, later sessions keep the state.
//    Without sessions (or in appear-offline) others see `offline`.
//  - Presence is per user: presence.set from any session sets it for all.
//  - The lock of a shard is held only to read or copy out; frames are sent
//    after it is released.
// Thread-safe (sharded mutexes). Sessions are held weakly.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/protocol.h"

namespace oms::server {

class SessionInbox;

struct SessionInfo {
  std::string session_id;
  proto::ClientInfo client;
  std::int64_t connected_at_ms = 0;
  std::string device;  // its device (contract 4.1): client.device, or kLegacyDevice
};

class PresenceRegistry {
 public:
  using SessionPtr = std::shared_ptr<SessionInbox>;

  struct Added {
    proto::PresenceState state = proto::PresenceState::kAvailable;
    bool first = false;  // the user just came online
    // Sessions of the same named device, which this one replaces (4409):
    // the caller closes them. (They stay registered until they are gone.)
    std::vector<SessionPtr> replaced;
  };
  // Registers a signed-in session. nullopt when the user already has
  // `max_sessions` (not counting those it replaces). Otherwise the user's
  // state after sign-in.
  // `first_state`: the state when this is the user's first session here
  // (in cluster mode, the state the user has on other nodes).
  std::optional<Added> add_session(const std::string& user, const SessionPtr& s, SessionInfo info,
                                   std::size_t max_sessions,
                                   proto::PresenceState first_state = proto::PresenceState::kAvailable);
  // Unregisters. Returns the user's state before, when this was the last
  // session (the user is now offline); nullopt otherwise.
  std::optional<proto::PresenceState> remove_session(const std::string& user, const SessionInbox* s);

  // The state used for routing: kOffline without sessions.
  proto::PresenceState state_of(const std::string& user) const;
  // The user's signed-in sessions here.
  std::size_t session_count(const std::string& user) const;
  // The state others see: appear-offline shows as offline.
  static proto::PresenceState visible(proto::PresenceState s);

  // Live sessions of `user` (copied out under the lock).
  std::vector<SessionPtr> sessions_of(const std::string& user) const;
  std::vector<SessionInfo> session_infos(const std::string& user) const;

  struct StateChange {
    proto::PresenceState before = proto::PresenceState::kOffline;
    proto::PresenceState after = proto::PresenceState::kOffline;
    std::uint64_t suppressed_since_seq = 0;  // when leaving dnd/presenting: seq at entry
  };
  // Sets the user's state (the user must be online). `current_seq` is the
  // store's last sequence number, remembered on entering dnd/presenting.
  StateChange set_state(const std::string& user, proto::PresenceState s, std::uint64_t current_seq);

  // `watcher` gets presence events for `user` (weakly held). False when it
  // already watched them.
  bool subscribe(const std::string& user, const SessionPtr& watcher);
  void unsubscribe(const std::string& user, const SessionInbox* watcher);
  std::vector<SessionPtr> watchers_of(const std::string& user) const;

 private:
  struct Entry {
    proto::PresenceState state = proto::PresenceState::kOffline;
    std::uint64_t suppressed_since_seq = 0;
    struct Member {
      const SessionInbox* key;
      std::weak_ptr<SessionInbox> session;
      SessionInfo info;
    };
    std::vector<Member> sessions;
    std::vector<std::pair<const SessionInbox*, std::weak_ptr<SessionInbox>>> watchers;
    bool idle() const { return sessions.empty() && watchers.empty(); }
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> users;
  };
  static constexpr std::size_t kShards = 32;
  Shard& shard(std::string_view user) const;
  mutable std::array<Shard, kShards> shards_;

  // ---- devices (contract 4.5: the admin endpoint's view) ----
 public:
  // Live sessions of `user` whose SessionInfo::device is `device`
  // (kLegacyDevice for sessions without a name), copied out under the lock:
  // the sessions a `device remove` closes.
  std::vector<SessionPtr> sessions_of_device(const std::string& user, std::string_view device) const;

  struct SessionsByDevice {
    std::uint64_t named = 0;   // sessions that named their device
    std::uint64_t legacy = 0;  // sessions of the shared `legacy` device
  };
  // Live sessions of every user, by kind of device (for /metrics). Takes
  // each shard's lock in turn: O(sessions), meant for a scrape, not a hot path.
  SessionsByDevice sessions_by_device() const;
};

}  // namespace oms::server
