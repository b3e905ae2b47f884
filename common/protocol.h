// The frames of the wire contract (../shared/spec/protocol.md §1) as plain
// structs. Encoding lives in json_encode.h, decoding in json_decode.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace oms::proto {

// A request id: absent, an integer or a string; replies echo it verbatim.
using Rid = std::variant<std::monostate, std::int64_t, std::string>;
// A string rid longer than this is refused (bad_request, not echoed: 4.4).
inline constexpr std::size_t kMaxRidBytes = 128;

enum class PresenceState : std::uint8_t {
  kOffline = 0,  // reported by the server only: no session, or appear-offline
  kAvailable,
  kBusy,
  kDnd,
  kPresenting,
  kAway,
  kBrb,
  kAppearOffline,  // set by a client; reported to others as offline
};
std::string_view presence_name(PresenceState s);  // "available", "appear-offline", ...
// A state a client may set (never kOffline); nullopt for anything else.
std::optional<PresenceState> parse_settable_presence(std::string_view s);
// Any state name, including "offline" (for clients reading presence events).
std::optional<PresenceState> parse_presence(std::string_view s);
// Do Not Disturb or Presenting: messages become missed messages.
inline bool suppresses_interruptions(PresenceState s) {
  return s == PresenceState::kDnd || s == PresenceState::kPresenting;
}

enum class MessageKind : std::uint8_t { kLive = 0, kOffline = 1, kMissed = 2 };
std::string_view message_kind_name(MessageKind k);  // "live" | "offline" | "missed"
std::optional<MessageKind> parse_message_kind(std::string_view s);

inline constexpr std::string_view kFeatureOfflineMessages = "offline-messages";

// ---- client → server ------------------------------------------------------

struct ClientInfo {
  std::string name;
  std::string version;
  std::vector<std::string> features;
  bool supports_offline_messages() const;
};

struct Hello {
  Rid rid;
  std::string token;
  ClientInfo client;  // "client" may be absent: an older client, no features
};
struct PresenceSet {
  Rid rid;
  PresenceState state = PresenceState::kAvailable;
};
struct PresenceSubscribe {
  Rid rid;
  std::vector<std::string> users;  // normalised user ids
};
struct Send {
  Rid rid;
  std::string to;  // normalised user id
  std::string body;
  std::string client_msg_id;  // empty when absent
};
struct Ack {
  Rid rid;
  std::vector<std::uint64_t> ids;  // parsed message ids
};
struct Ping {
  Rid rid;
};
struct AuthRefresh {  // contract 4.3: a fresh token for the same user
  Rid rid;
  std::string token;
};

using ClientFrame = std::variant<Hello, PresenceSet, PresenceSubscribe, Send, Ack, Ping, AuthRefresh>;

// ---- server → client ------------------------------------------------------

struct SenderCount {
  std::string user;
  std::uint64_t count = 0;
};

struct MailboxNotice {  // the sign-in notification inside welcome
  std::uint64_t count = 0;
  std::uint64_t missed = 0;
  std::uint64_t bytes = 0;
  std::vector<SenderCount> from;
  std::optional<std::int64_t> oldest_ms;
};

struct Welcome {
  Rid rid;
  std::string user;
  std::string session;
  PresenceState presence = PresenceState::kAvailable;
  MailboxNotice mailbox;
};
struct Ok {
  Rid rid;
};
struct Error {
  Rid rid;
  std::string code;
  std::string message;
};
struct Sent {
  Rid rid;
  std::string id;
  std::string status;  // "delivered" | "stored" | "missed"
  PresenceState recipient = PresenceState::kOffline;
  bool duplicate = false;  // extension: true when answered from the dedup index
};
struct Message {
  std::string id;
  std::string from;
  std::int64_t sent_at_ms = 0;
  std::string body;
  MessageKind kind = MessageKind::kLive;
};
struct Missed {
  std::string id;
  std::string from;
  std::int64_t sent_at_ms = 0;
  std::string reason;  // "dnd" | "presenting"
  std::string preview;
};
struct MissedSummary {
  std::uint64_t count = 0;
  std::vector<SenderCount> from;
};
struct MailboxDrained {};
struct PresenceEvent {
  std::string user;
  PresenceState state = PresenceState::kOffline;
};
struct Pong {
  Rid rid;
};

using ServerFrame = std::variant<Welcome, Ok, Error, Sent, Message, Missed, MissedSummary,
                                 MailboxDrained, PresenceEvent, Pong>;

}  // namespace oms::proto
