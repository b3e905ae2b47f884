#include "common/protocol.h"

#include <doctest/doctest.h>

namespace oms::proto {

TEST_CASE("protocol: presence names round trip") {
  for (int i = 0; i <= static_cast<int>(PresenceState::kAppearOffline); ++i) {
    auto s = static_cast<PresenceState>(i);
    CHECK(parse_presence(presence_name(s)) == s);
  }
  CHECK(presence_name(PresenceState::kOffline) == "offline");
  CHECK(presence_name(PresenceState::kDnd) == "dnd");
  CHECK(presence_name(PresenceState::kBrb) == "brb");
  CHECK(presence_name(PresenceState::kAppearOffline) == "appear-offline");
}

TEST_CASE("protocol: settable presence excludes offline and unknown names") {
  for (auto name : {"available", "busy", "dnd", "presenting", "away", "brb", "appear-offline"})
    CHECK(parse_settable_presence(name).has_value());
  CHECK_FALSE(parse_settable_presence("offline").has_value());
  CHECK(parse_presence("offline") == PresenceState::kOffline);
  CHECK_FALSE(parse_presence("Available").has_value());
  CHECK_FALSE(parse_presence("").has_value());
  CHECK_FALSE(parse_presence("appear_offline").has_value());
  CHECK(suppresses_interruptions(PresenceState::kDnd));
  CHECK(suppresses_interruptions(PresenceState::kPresenting));
  CHECK_FALSE(suppresses_interruptions(PresenceState::kBusy));
}

TEST_CASE("protocol: message kinds") {
  for (auto k : {MessageKind::kLive, MessageKind::kOffline, MessageKind::kMissed})
    CHECK(parse_message_kind(message_kind_name(k)) == k);
  CHECK(message_kind_name(MessageKind::kOffline) == "offline");
  CHECK_FALSE(parse_message_kind("Live").has_value());
}

TEST_CASE("protocol: offline-messages feature") {
  ClientInfo c;
  CHECK_FALSE(c.supports_offline_messages());
  c.features = {"typing", "Offline-Messages"};
  CHECK_FALSE(c.supports_offline_messages());
  c.features.push_back("offline-messages");
  CHECK(c.supports_offline_messages());
}

}  // namespace oms::proto
