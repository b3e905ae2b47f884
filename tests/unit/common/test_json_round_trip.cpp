// Every frame of both directions survives encode -> decode unchanged, and the
// encoder writes the contract's exact text where the contract shows it.
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "common/ids.h"
#include "common/iso8601.h"
#include "common/json_decode.h"
#include "common/json_encode.h"
#include "tests/unit/common/frame_checks.h"

namespace oms::proto {

// ---- client frames: round trips ---------------------------------------------

TEST_CASE("codec: hello round trip, with and without client info") {
  Hello h;
  h.rid = std::int64_t{1};
  h.token = "aaa.bbb.ccc";
  h.client.name = "desk";
  h.client.version = "2.1.0";
  h.client.features = {"offline-messages", "x-other"};
  Hello back = round_trip_client(h);
  CHECK(back.rid == h.rid);
  CHECK(back.token == h.token);
  CHECK(back.client.name == "desk");
  CHECK(back.client.version == "2.1.0");
  CHECK(back.client.features == h.client.features);
  CHECK(back.client.supports_offline_messages());

  Hello old;
  old.rid = std::string("r-1");
  old.token = "t";
  CHECK(parse_json(encode(ClientFrame{old})).if_contains("client") == nullptr);
  Hello old_back = round_trip_client(old);
  CHECK(old_back.rid == old.rid);
  CHECK(old_back.client.features.empty());
  CHECK_FALSE(old_back.client.supports_offline_messages());
}

TEST_CASE("codec: hello from the contract example") {
  auto h = decode_client_as<Hello>(
      R"({"type":"hello","rid":1,"token":"<JWT>",
          "client":{"name":"desk","version":"2.1.0","features":["offline-messages"]}})");
  CHECK(h.rid == Rid{std::int64_t{1}});
  CHECK(h.token == "<JWT>");
  CHECK(h.client.supports_offline_messages());
  // A client object without features, and a null client, are older clients.
  CHECK_FALSE(decode_client_as<Hello>(R"({"type":"hello","token":"t","client":{"name":"x"}})")
                  .client.supports_offline_messages());
  CHECK_FALSE(decode_client_as<Hello>(R"({"type":"hello","token":"t","client":null})")
                  .client.supports_offline_messages());
}

TEST_CASE("codec: presence.set round trip for every settable state") {
  for (auto s : {PresenceState::kAvailable, PresenceState::kBusy, PresenceState::kDnd,
                 PresenceState::kPresenting, PresenceState::kAway, PresenceState::kBrb,
                 PresenceState::kAppearOffline}) {
    PresenceSet p;
    p.rid = std::int64_t{2};
    p.state = s;
    PresenceSet back = round_trip_client(p);
    CHECK(back.state == s);
    CHECK(back.rid == p.rid);
  }
}

TEST_CASE("codec: presence.subscribe round trip normalises users") {
  PresenceSubscribe p;
  p.rid = std::int64_t{3};
  p.users = {"alice@contoso.com", "carol@contoso.com"};
  CHECK(round_trip_client(p).users == p.users);
  auto d = decode_client_as<PresenceSubscribe>(R"({"type":"presence.subscribe","users":["Alice@Contoso.COM"]})");
  CHECK(d.users == std::vector<std::string>{"alice@contoso.com"});
  CHECK(std::holds_alternative<std::monostate>(d.rid));
  CHECK(decode_client_as<PresenceSubscribe>(R"({"type":"presence.subscribe","users":[]})").users.empty());
}

TEST_CASE("codec: send round trip, special characters in the body") {
  Send s;
  s.rid = std::int64_t{4};
  s.to = "bob@contoso.com";
  s.body = "Lunch? \"quoted\" back\\slash \n\t\r\b\f ctrl\x01\x1f del\x7f é 日本 😀";
  s.client_msg_id = "5f0c-e1";
  Send back = round_trip_client(s);
  CHECK(back.rid == s.rid);
  CHECK(back.to == s.to);
  CHECK(back.body == s.body);
  CHECK(back.client_msg_id == s.client_msg_id);

  Send plain;
  plain.to = "bob";
  plain.body = "x";
  std::string text = encode(ClientFrame{plain});
  CHECK(parse_json(text).if_contains("client_msg_id") == nullptr);
  CHECK(parse_json(text).if_contains("rid") == nullptr);
  CHECK(round_trip_client(plain).client_msg_id.empty());

  // "to" is normalised; a null client_msg_id is absent; unknown fields ignored.
  auto d = decode_client_as<Send>(
      R"({"type":"send","to":"Bob@Contoso.com","body":"hi","client_msg_id":null,"extra":{"a":[1]}})");
  CHECK(d.to == "bob@contoso.com");
  CHECK(d.client_msg_id.empty());
}

TEST_CASE("codec: ack round trip formats ids") {
  Ack a;
  a.rid = std::string("ack-1");
  a.ids = {0, 1, 0xdeadbeef, ~std::uint64_t{0}};
  std::string text = encode(ClientFrame{a});
  CHECK(text.find("\"00000000deadbeef\"") != std::string::npos);
  CHECK(round_trip_client(a).ids == a.ids);
  CHECK(decode_client_as<Ack>(R"({"type":"ack","ids":[]})").ids.empty());
}

TEST_CASE("codec: ping round trip, rid forms") {
  Ping p;
  CHECK(std::holds_alternative<std::monostate>(round_trip_client(p).rid));
  p.rid = std::int64_t{-9};
  CHECK(round_trip_client(p).rid == p.rid);
  p.rid = std::int64_t{std::numeric_limits<std::int64_t>::max()};
  CHECK(round_trip_client(p).rid == p.rid);
  p.rid = std::string("");
  CHECK(round_trip_client(p).rid == p.rid);
  p.rid = std::string("a\"b\\c\u00e9");
  CHECK(round_trip_client(p).rid == p.rid);
}

// ---- server frames ------------------------------------------------------------

TEST_CASE("codec: welcome round trip with and without oldest") {
  Welcome w;
  w.rid = std::int64_t{1};
  w.user = "bob@contoso.com";
  w.session = "s-123";
  w.presence = PresenceState::kAvailable;
  w.mailbox.count = 3;
  w.mailbox.missed = 1;
  w.mailbox.bytes = 412;
  w.mailbox.from = {{"alice@contoso.com", 2}, {"carol@contoso.com", 1}};
  w.mailbox.oldest_ms = 1'795'428'000'000;  // 2026-11-23T10:00:00.000Z
  std::string text = encode(ServerFrame{w});
  auto obj = parse_json(text);
  CHECK(str(obj.at("mailbox").at("oldest")) == "2026-11-23T10:00:00.000Z");
  CHECK(str(obj.at("presence")) == "available");

  Welcome back = round_trip_server(w);
  CHECK(back.rid == w.rid);
  CHECK(back.user == w.user);
  CHECK(back.session == w.session);
  CHECK(back.presence == w.presence);
  CHECK(back.mailbox.count == 3);
  CHECK(back.mailbox.missed == 1);
  CHECK(back.mailbox.bytes == 412);
  REQUIRE(back.mailbox.from.size() == 2);
  CHECK(back.mailbox.from[1].user == "carol@contoso.com");
  CHECK(back.mailbox.from[1].count == 1);
  CHECK(back.mailbox.oldest_ms == w.mailbox.oldest_ms);

  Welcome empty;
  empty.user = "bob";
  empty.session = "s";
  empty.presence = PresenceState::kDnd;
  auto e = parse_json(encode(ServerFrame{empty}));
  CHECK(e.at("mailbox").at("oldest").is_null());
  CHECK(e.if_contains("rid") == nullptr);
  Welcome eback = round_trip_server(empty);
  CHECK_FALSE(eback.mailbox.oldest_ms.has_value());
  CHECK(eback.mailbox.from.empty());
  CHECK(eback.presence == PresenceState::kDnd);
}

TEST_CASE("codec: ok, pong, mailbox.drained round trip") {
  Ok ok;
  ok.rid = std::int64_t{2};
  CHECK(round_trip_server(ok).rid == ok.rid);
  CHECK(encode(ServerFrame{Ok{}}) == R"({"type":"ok"})");
  Pong pong;
  pong.rid = std::string("9");
  CHECK(round_trip_server(pong).rid == pong.rid);
  CHECK(encode(ServerFrame{Pong{std::int64_t{9}}}) == R"({"type":"pong","rid":9})");
  round_trip_server(MailboxDrained{});
  CHECK(encode(ServerFrame{MailboxDrained{}}) == R"({"type":"mailbox.drained"})");
}

TEST_CASE("codec: error round trip and encode_error") {
  Error e;
  e.rid = std::int64_t{4};
  e.code = "mailbox_full";
  e.message = "bob's mailbox is full (\"10000\" messages)";
  Error back = round_trip_server(e);
  CHECK(back.rid == e.rid);
  CHECK(back.code == e.code);
  CHECK(back.message == e.message);
  CHECK(encode_error(e.rid, e.code, e.message) == encode(ServerFrame{e}));
  CHECK(encode_error({}, "unauthenticated", "token expired") ==
        R"({"type":"error","code":"unauthenticated","message":"token expired"})");
}

TEST_CASE("codec: sent round trip and encode_sent") {
  Sent s;
  s.rid = std::int64_t{4};
  s.id = format_message_id(77);
  s.status = "stored";
  s.recipient = PresenceState::kOffline;
  std::string text = encode_sent(s);
  CHECK(text == encode(ServerFrame{s}));
  CHECK(text == R"({"type":"sent","rid":4,"id":"000000000000004d","status":"stored","recipient":"offline"})");
  Sent back = round_trip_server(s);
  CHECK(back.rid == s.rid);
  CHECK(back.id == s.id);
  CHECK(back.status == "stored");
  CHECK(back.recipient == PresenceState::kOffline);
  CHECK_FALSE(back.duplicate);

  s.duplicate = true;
  s.status = "missed";
  s.recipient = PresenceState::kPresenting;
  CHECK(parse_json(encode_sent(s)).at("duplicate").as_bool());
  Sent dup = round_trip_server(s);
  CHECK(dup.duplicate);
  CHECK(dup.recipient == PresenceState::kPresenting);
}

TEST_CASE("codec: message round trip and encode_message, every kind") {
  for (auto kind : {MessageKind::kLive, MessageKind::kOffline, MessageKind::kMissed}) {
    Message m;
    m.id = format_message_id(1234567);
    m.from = "alice@contoso.com";
    m.sent_at_ms = 1'795'428'000'123;
    m.body = "Lunch?\n\"yes\" \\ é 😀 \x01";
    m.kind = kind;
    std::string text = encode_message(m);
    CHECK(text == encode(ServerFrame{m}));
    auto obj = parse_json(text);
    CHECK(str(obj.at("sent_at")) == "2026-11-23T10:00:00.123Z");
    CHECK(str(obj.at("kind")) == message_kind_name(kind));
    Message back = round_trip_server(m);
    CHECK(back.id == m.id);
    CHECK(back.from == m.from);
    CHECK(back.sent_at_ms == m.sent_at_ms);
    CHECK(back.body == m.body);
    CHECK(back.kind == kind);
  }
}

TEST_CASE("codec: missed, missed.summary, presence round trip") {
  Missed m;
  m.id = format_message_id(5);
  m.from = "alice@contoso.com";
  m.sent_at_ms = 0;
  m.reason = "dnd";
  m.preview = "Lunch?";
  Missed mb = round_trip_server(m);
  CHECK(mb.id == m.id);
  CHECK(mb.from == m.from);
  CHECK(mb.sent_at_ms == 0);
  CHECK(mb.reason == "dnd");
  CHECK(mb.preview == "Lunch?");

  MissedSummary s;
  s.count = 3;
  s.from = {{"alice", 2}, {"carol", 1}};
  MissedSummary sb = round_trip_server(s);
  CHECK(sb.count == 3);
  REQUIRE(sb.from.size() == 2);
  CHECK(sb.from[0].user == "alice");
  CHECK(sb.from[0].count == 2);

  for (int i = 0; i <= static_cast<int>(PresenceState::kAppearOffline); ++i) {
    PresenceEvent p;
    p.user = "alice@contoso.com";
    p.state = static_cast<PresenceState>(i);
    PresenceEvent pb = round_trip_server(p);
    CHECK(pb.user == p.user);
    CHECK(pb.state == p.state);
  }
}

TEST_CASE("codec: sent_at ISO-8601 round trip over many instants") {
  std::mt19937_64 rng(7);
  // Years 0000..9999 are what the 4-digit format can carry.
  const std::int64_t lo = -62'167'219'200'000;  // 0000-01-01T00:00:00.000Z
  const std::int64_t hi = 253'402'300'799'999;  // 9999-12-31T23:59:59.999Z
  std::vector<std::int64_t> instants = {lo, hi, -1, 0, 1, 999, 1000, 951'782'400'000 /* 2000-02-29 */,
                                        4'107'542'399'999 /* 2100-02-28T23:59:59.999 */};
  for (int i = 0; i < 5000; ++i)
    instants.push_back(lo + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(hi - lo)));
  // Built once, outside the loop: GCC 12 -O3 trips a false -Wrestrict on
  // short literal assignments inlined into a loop.
  Message m{"0000000000000001", "a", 0, "b", MessageKind::kLive};
  for (std::int64_t ms : instants) {
    m.sent_at_ms = ms;
    auto d = decode_server_frame(encode_message(m));
    REQUIRE_MESSAGE(d.ok(), ms);
    CHECK_MESSAGE(std::get<Message>(d.frame()).sent_at_ms == ms, format_iso8601_ms(ms));
  }
}

}  // namespace oms::proto
