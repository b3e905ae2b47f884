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
  // hello.client.device (contract 4.1), as sent (validated by the server:
  // valid_device_name()); nullopt when absent: the shared `legacy` device.
  std::optional<std::string> device;
  bool supports_offline_messages() const;
};

// Sessions without a device name share this device (contract 4.1).
inline constexpr std::string_view kLegacyDevice = "legacy";
inline constexpr std::size_t kMaxDeviceBytes = 64;
// 1-64 bytes of [A-Za-z0-9._-], and not "legacy".
bool valid_device_name(std::string_view name);

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
  std::uint64_t receipts = 0;  // receipts waiting for this device (4.1)
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
// What became of a stored message (contract 4.2).
enum class ReceiptState : std::uint8_t { kDelivered = 1, kExpired = 2, kPurged = 3 };
std::string_view receipt_state_name(ReceiptState s);  // "delivered" | "expired" | "purged"
std::optional<ReceiptState> parse_receipt_state(std::string_view s);
struct Receipt {
  std::string id;   // the receipt's own id (acked like a message id)
  std::string msg;  // the message's id
  std::string client_msg_id;  // the send's, empty when it had none (then omitted)
  std::string to;
  ReceiptState state = ReceiptState::kDelivered;
  std::int64_t at_ms = 0;
};
struct PresenceEvent {
  std::string user;
  PresenceState state = PresenceState::kOffline;
};
struct Pong {
  Rid rid;
};

using ServerFrame = std::variant<Welcome, Ok, Error, Sent, Message, Missed, MissedSummary,
                                 MailboxDrained, PresenceEvent, Pong, Receipt>;

}  // namespace oms::proto
