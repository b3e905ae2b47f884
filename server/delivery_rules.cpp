#include "server/delivery_rules.h"

#include <cassert>

#include <fmt/format.h>

namespace oms::server {

using proto::MessageKind;

Verdict decide(const SendFacts& facts) {
  if (needs_policy(facts.recipient)) {
    if (!facts.organisation_allows_offline) return Verdict::kRefusedOrganisation;
    if (!facts.policy_allows_offline) return Verdict::kRefusedPolicy;
    if (!facts.sender_capable) return Verdict::kRefusedClient;
    return Verdict::kStored;
  }
  if (proto::suppresses_interruptions(facts.recipient)) return Verdict::kMissed;
  return Verdict::kDelivered;
}

MessageKind message_kind(Verdict v) {
  assert(!is_refusal(v));
  switch (v) {
    case Verdict::kStored: return MessageKind::kOffline;
    case Verdict::kMissed: return MessageKind::kMissed;
    default: return MessageKind::kLive;
  }
}

std::string_view sent_status(Verdict v) {
  assert(!is_refusal(v));
  switch (v) {
    case Verdict::kStored: return "stored";
    case Verdict::kMissed: return "missed";
    default: return "delivered";
  }
}

std::string_view refusal_code(Verdict v) {
  assert(is_refusal(v));
  return v == Verdict::kRefusedClient ? "client_unsupported" : "offline_disabled";
}

std::string refusal_message(Verdict v, std::string_view policy) {
  assert(is_refusal(v));
  switch (v) {
    case Verdict::kRefusedOrganisation:
      return "the recipient is offline and offline messages are turned off for the organisation";
    case Verdict::kRefusedPolicy:
      return fmt::format("the recipient is offline and your client policy '{}' does not allow offline messages",
                         policy);
    default: return "the recipient is offline and this client does not support offline messages";
  }
}

Arrival on_arrival(bool client_capable, MessageKind kind) {
  if (client_capable) return Arrival::kThroughWindow;
  return kind == MessageKind::kLive ? Arrival::kSendLive : Arrival::kDrop;
}

}  // namespace oms::server
