// A synthetic user as its client knows it: identity, its devices (each with
// its current session and what it has received, for the loss/duplicate/order
// checks, which are per device) and, when asked, its presence history (for
// checking `sent` statuses against it). Whether a device is online is a
// question for its Connection: online(const Device&), connection.h.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
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

// One installation of the user's client (contract 4.1): it signs in with its
// own name, acks for itself, and must get every stored message exactly once
// in order. Without a name (`name` nullopt) it is the shared `legacy` device
// of a v1 client.
// REQUIRES: touched only on its user's owner worker's thread (or by anyone
// once the workers have stopped).
struct Device {
  std::uint32_t index = 0;            // 0 .. devices-1 (the primary is 0)
  std::optional<std::string> name;    // hello.client.device, when sent
  std::shared_ptr<Connection> conn;   // the current session, if any
  std::uint32_t sessions = 0;         // sessions started so far
  std::uint32_t reconnects = 0;

  // Receive-side checks (after dedup by id across this device's sessions).
  IdSet seen;
  IdSet acked;     // ids whose ack was answered `ok` (acks carry a rid in device mode)
  IdSet notices;   // ids of `missed` notices
  IdSet receipts;  // receipt ids received
  std::unordered_map<std::uint32_t, std::uint64_t> last_seq;  // sender -> last seq received

  std::int64_t signin_started_ns = 0;
  std::int64_t welcome_ns = 0;
  std::int64_t drained_ns = 0;
  std::uint64_t welcome_count = 0;     // mailbox.count announced at the last welcome
  std::uint64_t welcome_receipts = 0;  // mailbox.receipts announced at the last welcome
};

// REQUIRES: touched only on its owner worker's thread (or by anyone once the
// workers have stopped).
struct User {
  std::uint32_t index = 0;
  std::string id;     // normalised user id
  std::string token;  // HS256 JWT for `id`
  bool keep_online = false;    // reconnect when the server drops a session
  std::uint64_t send_seq = 0;  // per-sender sequence number, embedded in bodies
  // At least one; sends and presence changes go through the primary.
  std::vector<Device> devices;
  Device& primary() { return devices.front(); }
  const Device& primary() const { return devices.front(); }

  // Kept by the primary device's sessions (presence is per user).
  bool track_history = false;
  std::vector<PresenceSpan> history;
  proto::PresenceState state = proto::PresenceState::kOffline;  // last confirmed
};

}  // namespace oms::load
