// The delivery rules of the contract (protocol.md §1.3–1.5), in one place:
// what becomes of a message sent to a user, and how a session passes on a
// message that just became durable in its mailbox. Pure functions of plain
// inputs; the router and the sessions apply what they return. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/protocol.h"

namespace oms::server {

// What becomes of one send (after the size and rate limits let it through).
// The refusals come last (is_refusal).
enum class Verdict : std::uint8_t {
  kDelivered,            // recipient online and interruptible: a live message
  kMissed,               // recipient in dnd/presenting: a missed message
  kStored,               // recipient offline (or appear-offline): an offline message
  kRefusedOrganisation,  // offline, and offline messages are off for the organisation
  kRefusedPolicy,        // offline, and the sender's client policy does not allow them
  kRefusedClient,        // offline, and the sender's client does not support them
};

struct SendFacts {
  proto::PresenceState recipient = proto::PresenceState::kOffline;  // routing state
  bool sender_capable = false;  // the sender's client supports offline messages
  // Read only when needs_policy(recipient); the router looks them up only then.
  bool organisation_allows_offline = true;  // the ImConfiguration switch
  bool policy_allows_offline = true;        // the sender's effective client policy
};

// Whether decide() reads the policy fields for a recipient in `state`: only
// for one who is offline (or appears so), so the hot path reads no policy.
inline bool needs_policy(proto::PresenceState recipient) {
  return recipient == proto::PresenceState::kOffline || recipient == proto::PresenceState::kAppearOffline;
}

Verdict decide(const SendFacts& facts);

inline bool is_refusal(Verdict v) { return v >= Verdict::kRefusedOrganisation; }

// The kind the message is stored with. REQUIRES: !is_refusal(v).
proto::MessageKind message_kind(Verdict v);
// The `status` of the `sent` reply: "delivered" | "stored" | "missed".
// REQUIRES: !is_refusal(v).
std::string_view sent_status(Verdict v);
// The error `code` of a refusal: "offline_disabled" | "client_unsupported",
// and its message (`policy` names the sender's effective client policy).
// REQUIRES: is_refusal(v).
std::string_view refusal_code(Verdict v);
std::string refusal_message(Verdict v, std::string_view policy);

// A client that takes part in offline messaging (may send to an offline
// user, receives stored messages): one that announces "offline-messages".
// Older clients chat live only.
inline bool offline_capable(const proto::ClientInfo& client) { return client.supports_offline_messages(); }

// How a signed-in session passes on a message that just became durable in
// its mailbox.
enum class Arrival : std::uint8_t {
  kSendLive,       // an older client: a live message goes out now, outside the window
  kDrop,           // an older client: stored and missed messages wait for a capable one
  kThroughWindow,  // a capable client: the missed notice (if any), then the delivery window
};
Arrival on_arrival(bool client_capable, proto::MessageKind kind);

// The kind a stored message is delivered with when read from the mailbox: a
// live message that waited for this sign-in (stored at or before
// `signin_seq`, the store's last seq at sign-in) is an offline one now.
inline proto::MessageKind kind_when_read(proto::MessageKind stored, std::uint64_t seq, std::uint64_t signin_seq) {
  return stored == proto::MessageKind::kLive && seq <= signin_seq ? proto::MessageKind::kOffline : stored;
}

}  // namespace oms::server
