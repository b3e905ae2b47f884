#include <doctest/doctest.h>

#include "server/presence.h"
#include "server/session_inbox.h"

using oms::proto::PresenceState;
using oms::server::PresenceRegistry;

namespace {

// A session that records nothing: the registry only holds and hands it out.
struct NullSession final : oms::server::SessionInbox {
  void post_frame(std::shared_ptr<const std::string>) override {}
  void post_stored(std::shared_ptr<const oms::server::Delivery>) override {}
  void post_close(std::uint16_t, std::string) override {}
};

}  // namespace

TEST_CASE("presence: first session makes the user available, last makes them offline") {
  PresenceRegistry reg;
  auto a = std::make_shared<NullSession>();
  auto b = std::make_shared<NullSession>();
  CHECK(reg.state_of("bob") == PresenceState::kOffline);
  auto added = reg.add_session("bob", a, {}, 4);
  REQUIRE(added);
  CHECK(added->first);
  CHECK(added->state == PresenceState::kAvailable);
  reg.set_state("bob", PresenceState::kDnd, 10);
  auto second = reg.add_session("bob", b, {}, 4);
  REQUIRE(second);
  CHECK_FALSE(second->first);
  CHECK(second->state == PresenceState::kDnd);  // a second device keeps the state
  CHECK(reg.sessions_of("bob").size() == 2);
  CHECK_FALSE(reg.remove_session("bob", a.get()));
  auto gone = reg.remove_session("bob", b.get());
  REQUIRE(gone);
  CHECK(*gone == PresenceState::kDnd);
  CHECK(reg.state_of("bob") == PresenceState::kOffline);
}

TEST_CASE("presence: sessions per user are capped") {
  PresenceRegistry reg;
  std::vector<std::shared_ptr<NullSession>> s;
  for (int i = 0; i < 3; ++i) s.push_back(std::make_shared<NullSession>());
  CHECK(reg.add_session("u", s[0], {}, 2));
  CHECK(reg.add_session("u", s[1], {}, 2));
  CHECK_FALSE(reg.add_session("u", s[2], {}, 2));
}

TEST_CASE("presence: leaving dnd reports the seq at entry, and appear-offline is visible as offline") {
  PresenceRegistry reg;
  auto a = std::make_shared<NullSession>();
  REQUIRE(reg.add_session("u", a, {}, 4));
  reg.set_state("u", PresenceState::kPresenting, 42);
  auto change = reg.set_state("u", PresenceState::kAvailable, 99);
  CHECK(change.before == PresenceState::kPresenting);
  CHECK(change.suppressed_since_seq == 42);
  CHECK(PresenceRegistry::visible(PresenceState::kAppearOffline) == PresenceState::kOffline);
  CHECK(PresenceRegistry::visible(PresenceState::kBusy) == PresenceState::kBusy);
}

TEST_CASE("presence: watchers are held weakly and listed per user") {
  PresenceRegistry reg;
  auto w = std::make_shared<NullSession>();
  CHECK(reg.subscribe("alice", w));
  CHECK_FALSE(reg.subscribe("alice", w));
  CHECK(reg.watchers_of("alice").size() == 1);
  w.reset();
  CHECK(reg.watchers_of("alice").empty());
}

TEST_CASE("presence: sessions of one device, and open sessions by kind of device") {
  PresenceRegistry reg;
  auto desk = std::make_shared<NullSession>();
  auto phone = std::make_shared<NullSession>();
  auto old1 = std::make_shared<NullSession>();
  auto old2 = std::make_shared<NullSession>();
  auto carol_desk = std::make_shared<NullSession>();
  const auto info = [](std::string device) {
    oms::server::SessionInfo i;
    i.device = std::move(device);
    return i;
  };
  REQUIRE(reg.add_session("bob", desk, info("desk"), 16));
  REQUIRE(reg.add_session("bob", phone, info("phone"), 16));
  REQUIRE(reg.add_session("bob", old1, info("legacy"), 16));
  REQUIRE(reg.add_session("bob", old2, {}, 16));  // no device recorded: legacy
  REQUIRE(reg.add_session("carol", carol_desk, info("desk"), 16));

  auto bobs_desk = reg.sessions_of_device("bob", "desk");
  REQUIRE(bobs_desk.size() == 1);
  CHECK(bobs_desk[0].get() == desk.get());
  CHECK(reg.sessions_of_device("bob", "legacy").size() == 2);
  CHECK(reg.sessions_of_device("bob", "tv").empty());
  CHECK(reg.sessions_of_device("dave", "desk").empty());

  auto n = reg.sessions_by_device();
  CHECK(n.named == 3);
  CHECK(n.legacy == 2);
  phone.reset();  // gone without unregistering: not counted, not handed out
  old2.reset();
  n = reg.sessions_by_device();
  CHECK(n.named == 2);
  CHECK(n.legacy == 1);
  CHECK(reg.sessions_of_device("bob", "phone").empty());
  CHECK(reg.sessions_of_device("bob", "legacy").size() == 1);
}
