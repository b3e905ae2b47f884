// A synthetic user as its client knows it: identity, current session, what
// it has received (for the loss/duplicate/order checks) and, when asked, its
// presence history (for checking `sent` statuses against it). Whether it is
// online is a question for its Connection: online(const User&), connection.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/protocol.h"
#include "load-tests/driver/id_set.h"

namespace oms::load {

class Connection;

// A presence change of a user as the client knows it: asked for at
// `requested_ns`, confirmed (ok / welcome / closed) at `confirmed_ns`.
struct PresenceSpan {
  std::int64_t requested_ns = 0;
  std::int64_t confirmed_ns = 0;
  proto::PresenceState state = proto::PresenceState::kOffline;
};

// REQUIRES: touched only on its owner worker's thread (or by anyone once the
// workers have stopped).
struct User {
  std::uint32_t index = 0;
  std::string id;     // normalised user id
  std::string token;  // HS256 JWT for `id`
  std::shared_ptr<Connection> conn;  // the current session, if any
  bool keep_online = false;          // reconnect when the server drops the session
  std::uint32_t sessions = 0;        // sessions started so far
  std::uint32_t reconnects = 0;
  std::uint64_t send_seq = 0;        // per-sender sequence number, embedded in bodies

  // Receive-side checks (after dedup by id across this user's sessions).
  IdSet seen;
  IdSet notices;  // ids of `missed` notices
  std::unordered_map<std::uint32_t, std::uint64_t> last_seq;  // sender -> last seq received

  bool track_history = false;
  std::vector<PresenceSpan> history;
  proto::PresenceState state = proto::PresenceState::kOffline;  // last confirmed

  std::int64_t signin_started_ns = 0;
  std::int64_t welcome_ns = 0;
  std::int64_t drained_ns = 0;
  std::uint64_t welcome_count = 0;  // mailbox.count announced at the last welcome
};

}  // namespace oms::load
