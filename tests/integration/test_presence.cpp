// Presence (protocol.md §1.2): presence.set, presence.subscribe and the
// presence events, "offline" for no session and for appear-offline.
#include <doctest/doctest.h>

#include "tests/support/harness.h"

using namespace oms::test;
using boost::json::array;
using boost::json::value;

namespace {

// The next presence event about `user`; CHECKs its state.
void expect_presence(WsClient& c, std::string_view user, std::string_view state) {
  const Json ev = c.take("presence");
  INFO("presence event: " << to_text(ev));
  CHECK(str_of(ev, "user") == user);
  CHECK(str_of(ev, "state") == state);
}

const std::vector<std::string> kSettable = {"available", "busy",  "dnd",           "presenting",
                                            "away",      "brb",   "appear-offline"};

}  // namespace

TEST_CASE("presence: every settable state is accepted with ok") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  for (const auto& state : kSettable) {
    CAPTURE(state);
    const Json r = alice->set_presence(state);
    OMS_CHECK_TYPE(r, "ok");
  }
  // The rid is echoed verbatim, strings included.
  const Json r = alice->request(Json{{"type", "presence.set"}, {"rid", "p-7"}, {"state", "busy"}});
  OMS_CHECK_TYPE(r, "ok");
  CHECK(r.at("rid") == value("p-7"));
}

TEST_CASE("presence: offline and unknown states are refused with bad_request") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  for (const value& state : {value("offline"), value("sleeping"), value(""), value("DND-ish"), value(5)}) {
    CAPTURE(to_text(state));
    const Json r = alice->request(Json{{"type", "presence.set"}, {"state", state}});
    OMS_CHECK_ERROR(r, "bad_request");
  }
  OMS_CHECK_ERROR(alice->request(Json{{"type", "presence.set"}}), "bad_request");  // no state
  CHECK(type_of(alice->ping()) == "pong");  // the session survives
}

TEST_CASE("presence: subscribe reports the current state at once and then every change") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  auto bob = sign_in(omsd, kBob);
  auto carol = sign_in(omsd, kCarol);
  // Case-insensitive user ids: events name the normalised id.
  OMS_CHECK_TYPE(bob->subscribe({"ALICE@contoso.com"}), "ok");
  OMS_CHECK_TYPE(carol->subscribe({kAlice}), "ok");
  expect_presence(*bob, kAlice, "available");
  expect_presence(*carol, kAlice, "available");
  for (const char* state : {"busy", "dnd", "presenting", "away", "brb", "available"}) {
    CAPTURE(state);
    OMS_CHECK_TYPE(alice->set_presence(state), "ok");
    expect_presence(*bob, kAlice, state);
    expect_presence(*carol, kAlice, state);
  }
}

TEST_CASE("presence: a user with no session is offline and comes online by signing in") {
  OmsdProcess omsd;
  auto bob = sign_in(omsd, kBob);
  OMS_CHECK_TYPE(bob->subscribe({kCarol, kDave}), "ok");
  const auto events = bob->take_n("presence", 2);
  std::map<std::string, std::string> states;
  for (const auto& e : events) states[str_of(e, "user")] = str_of(e, "state");
  CHECK(states == std::map<std::string, std::string>{{kCarol, "offline"}, {kDave, "offline"}});

  auto carol = sign_in(omsd, kCarol);
  expect_presence(*bob, kCarol, "available");
  carol->close();
  expect_presence(*bob, kCarol, "offline");
}

TEST_CASE("presence: appear-offline is reported to others as offline") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  auto bob = sign_in(omsd, kBob);
  OMS_CHECK_TYPE(bob->subscribe({kAlice}), "ok");
  expect_presence(*bob, kAlice, "available");
  OMS_CHECK_TYPE(alice->set_presence("appear-offline"), "ok");
  expect_presence(*bob, kAlice, "offline");

  // A new subscriber sees offline right away too.
  auto carol = sign_in(omsd, kCarol);
  OMS_CHECK_TYPE(carol->subscribe({kAlice}), "ok");
  expect_presence(*carol, kAlice, "offline");

  OMS_CHECK_TYPE(alice->set_presence("available"), "ok");
  expect_presence(*bob, kAlice, "available");
  expect_presence(*carol, kAlice, "available");
}

TEST_CASE("presence: a user goes offline only when the last session closes") {
  OmsdProcess omsd;
  auto alice1 = sign_in(omsd, kAlice);
  auto alice2 = sign_in(omsd, kAlice);
  auto bob = sign_in(omsd, kBob);
  OMS_CHECK_TYPE(bob->subscribe({kAlice}), "ok");
  expect_presence(*bob, kAlice, "available");

  alice1->close();
  bob->expect_no("presence");
  CHECK(str_of(user_info(omsd, kAlice), "presence") == "available");

  // The last one goes away without a close frame: still noticed.
  alice2->drop();
  expect_presence(*bob, kAlice, "offline");
  CHECK(str_of(user_info(omsd, kAlice), "presence") == "offline");
}

TEST_CASE("presence: subscribing to an invalid user id is a bad_request") {
  OmsdProcess omsd;
  auto bob = sign_in(omsd, kBob);
  OMS_CHECK_ERROR(bob->subscribe({"not a user"}), "bad_request");
  OMS_CHECK_ERROR(bob->request(Json{{"type", "presence.subscribe"}, {"users", kAlice}}), "bad_request");
  OMS_CHECK_ERROR(bob->request(Json{{"type", "presence.subscribe"}}), "bad_request");
  CHECK(type_of(bob->ping()) == "pong");
}
