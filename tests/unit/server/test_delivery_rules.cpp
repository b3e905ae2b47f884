#include "server/delivery_rules.h"

#include <doctest/doctest.h>

namespace oms::server {
namespace {

using proto::MessageKind;
using proto::PresenceState;

constexpr PresenceState kAllStates[] = {PresenceState::kOffline, PresenceState::kAvailable,
                                        PresenceState::kBusy,    PresenceState::kDnd,
                                        PresenceState::kPresenting, PresenceState::kAway,
                                        PresenceState::kBrb,     PresenceState::kAppearOffline};

SendFacts to(PresenceState recipient, bool sender_capable = true) {
  SendFacts f;
  f.recipient = recipient;
  f.sender_capable = sender_capable;
  return f;
}

TEST_CASE("delivery rules: an interruptible recipient gets a live message") {
  for (auto s : {PresenceState::kAvailable, PresenceState::kBusy, PresenceState::kAway, PresenceState::kBrb}) {
    CAPTURE(proto::presence_name(s));
    CHECK_FALSE(needs_policy(s));
    CHECK(decide(to(s)) == Verdict::kDelivered);
    CHECK(decide(to(s, /*sender_capable=*/false)) == Verdict::kDelivered);  // older clients chat live
  }
  CHECK(message_kind(Verdict::kDelivered) == MessageKind::kLive);
  CHECK(sent_status(Verdict::kDelivered) == "delivered");
}

TEST_CASE("delivery rules: dnd and presenting make a missed message") {
  for (auto s : {PresenceState::kDnd, PresenceState::kPresenting}) {
    CAPTURE(proto::presence_name(s));
    CHECK_FALSE(needs_policy(s));
    CHECK(decide(to(s)) == Verdict::kMissed);
    CHECK(decide(to(s, false)) == Verdict::kMissed);
  }
  CHECK(message_kind(Verdict::kMissed) == MessageKind::kMissed);
  CHECK(sent_status(Verdict::kMissed) == "missed");
}

TEST_CASE("delivery rules: an offline or appear-offline recipient gets an offline message") {
  for (auto s : {PresenceState::kOffline, PresenceState::kAppearOffline}) {
    CAPTURE(proto::presence_name(s));
    CHECK(needs_policy(s));
    CHECK(decide(to(s)) == Verdict::kStored);
  }
  CHECK(message_kind(Verdict::kStored) == MessageKind::kOffline);
  CHECK(sent_status(Verdict::kStored) == "stored");
}

TEST_CASE("delivery rules: refusals for an offline recipient, in order") {
  SendFacts f = to(PresenceState::kOffline, /*sender_capable=*/false);
  f.organisation_allows_offline = false;
  f.policy_allows_offline = false;
  CHECK(decide(f) == Verdict::kRefusedOrganisation);  // the organisation's switch first
  f.organisation_allows_offline = true;
  CHECK(decide(f) == Verdict::kRefusedPolicy);  // then the sender's policy
  f.policy_allows_offline = true;
  CHECK(decide(f) == Verdict::kRefusedClient);  // then the sender's client
  f.sender_capable = true;
  CHECK(decide(f) == Verdict::kStored);

  f.recipient = PresenceState::kAppearOffline;
  f.organisation_allows_offline = false;
  CHECK(decide(f) == Verdict::kRefusedOrganisation);  // appear-offline is offline to the sender
}

TEST_CASE("delivery rules: an online recipient is never refused") {
  // An online recipient: neither switch nor policy nor client matters.
  for (auto s : kAllStates) {
    if (needs_policy(s)) continue;
    SendFacts f = to(s, false);
    f.organisation_allows_offline = false;
    f.policy_allows_offline = false;
    CHECK_FALSE(is_refusal(decide(f)));
  }
}

TEST_CASE("delivery rules: refusal codes and messages") {
  CHECK(is_refusal(Verdict::kRefusedOrganisation));
  CHECK(is_refusal(Verdict::kRefusedPolicy));
  CHECK(is_refusal(Verdict::kRefusedClient));
  CHECK_FALSE(is_refusal(Verdict::kDelivered));
  CHECK_FALSE(is_refusal(Verdict::kMissed));
  CHECK_FALSE(is_refusal(Verdict::kStored));
  CHECK(refusal_code(Verdict::kRefusedOrganisation) == "offline_disabled");
  CHECK(refusal_code(Verdict::kRefusedPolicy) == "offline_disabled");
  CHECK(refusal_code(Verdict::kRefusedClient) == "client_unsupported");
  CHECK(refusal_message(Verdict::kRefusedOrganisation, "") ==
        "the recipient is offline and offline messages are turned off for the organisation");
  CHECK(refusal_message(Verdict::kRefusedPolicy, "NoArchive") ==
        "the recipient is offline and your client policy 'NoArchive' does not allow offline messages");
  CHECK(refusal_message(Verdict::kRefusedClient, "") ==
        "the recipient is offline and this client does not support offline messages");
}

TEST_CASE("delivery rules: a capable client announces offline-messages") {
  proto::ClientInfo c;
  CHECK_FALSE(offline_capable(c));  // no client object: an older client
  c.features = {"typing"};
  CHECK_FALSE(offline_capable(c));
  c.features.push_back(std::string(proto::kFeatureOfflineMessages));
  CHECK(offline_capable(c));
}

TEST_CASE("delivery rules: an older client gets live messages only, a capable one all through its window") {
  CHECK(on_arrival(false, MessageKind::kLive) == Arrival::kSendLive);
  CHECK(on_arrival(false, MessageKind::kOffline) == Arrival::kDrop);
  CHECK(on_arrival(false, MessageKind::kMissed) == Arrival::kDrop);
  for (auto k : {MessageKind::kLive, MessageKind::kOffline, MessageKind::kMissed})
    CHECK(on_arrival(true, k) == Arrival::kThroughWindow);
}

TEST_CASE("delivery rules: a live message that waited for the sign-in is read as offline") {
  CHECK(kind_when_read(MessageKind::kLive, 5, 10) == MessageKind::kOffline);
  CHECK(kind_when_read(MessageKind::kLive, 10, 10) == MessageKind::kOffline);
  CHECK(kind_when_read(MessageKind::kLive, 11, 10) == MessageKind::kLive);  // stored after sign-in
  CHECK(kind_when_read(MessageKind::kOffline, 5, 10) == MessageKind::kOffline);
  CHECK(kind_when_read(MessageKind::kMissed, 5, 10) == MessageKind::kMissed);
  CHECK(kind_when_read(MessageKind::kMissed, 11, 10) == MessageKind::kMissed);
}

}  // namespace
}  // namespace oms::server
