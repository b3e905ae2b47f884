#include "common/protocol.h"

#include <algorithm>
#include <array>

namespace oms::proto {
namespace {

struct PresenceName {
  PresenceState state;
  std::string_view name;
};

// The wire names of contract §1.2, in enum order.
constexpr std::array<PresenceName, 8> kPresenceNames{{
    {PresenceState::kOffline, "offline"},
    {PresenceState::kAvailable, "available"},
    {PresenceState::kBusy, "busy"},
    {PresenceState::kDnd, "dnd"},
    {PresenceState::kPresenting, "presenting"},
    {PresenceState::kAway, "away"},
    {PresenceState::kBrb, "brb"},
    {PresenceState::kAppearOffline, "appear-offline"},
}};

}  // namespace

std::string_view presence_name(PresenceState s) {
  for (const auto& p : kPresenceNames)
    if (p.state == s) return p.name;
  return "offline";
}

std::optional<PresenceState> parse_presence(std::string_view s) {
  for (const auto& p : kPresenceNames)
    if (p.name == s) return p.state;
  return std::nullopt;
}

std::optional<PresenceState> parse_settable_presence(std::string_view s) {
  auto state = parse_presence(s);
  if (!state || *state == PresenceState::kOffline) return std::nullopt;
  return state;
}

std::string_view message_kind_name(MessageKind k) {
  switch (k) {
    case MessageKind::kLive: return "live";
    case MessageKind::kOffline: return "offline";
    case MessageKind::kMissed: return "missed";
  }
  return "live";
}

std::optional<MessageKind> parse_message_kind(std::string_view s) {
  if (s == "live") return MessageKind::kLive;
  if (s == "offline") return MessageKind::kOffline;
  if (s == "missed") return MessageKind::kMissed;
  return std::nullopt;
}

std::string_view receipt_state_name(ReceiptState s) {
  switch (s) {
    case ReceiptState::kDelivered: return "delivered";
    case ReceiptState::kExpired: return "expired";
    case ReceiptState::kPurged: return "purged";
  }
  return "delivered";
}

std::optional<ReceiptState> parse_receipt_state(std::string_view s) {
  if (s == "delivered") return ReceiptState::kDelivered;
  if (s == "expired") return ReceiptState::kExpired;
  if (s == "purged") return ReceiptState::kPurged;
  return std::nullopt;
}

bool valid_device_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxDeviceBytes || name == kLegacyDevice) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool ClientInfo::supports_offline_messages() const {
  return std::find(features.begin(), features.end(), kFeatureOfflineMessages) != features.end();
}

}  // namespace oms::proto
