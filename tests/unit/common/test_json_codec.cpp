#include "common/json_codec.h"

#include <memory>
#include <random>
#include <string>

#include <boost/json.hpp>
#include <doctest/doctest.h>
#include <fmt/format.h>

#include "common/clock.h"
#include "common/ids.h"

namespace oms::proto {
namespace {

namespace json = boost::json;

// Every encoder's output must be a JSON object that Boost.JSON accepts.
json::object parse_json(const std::string& text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  REQUIRE_MESSAGE(!ec, text);
  REQUIRE_MESSAGE(v.is_object(), text);
  return v.as_object();
}

// The string value of a JSON value ("" when it is not a string).
std::string str(const json::value& v) {
  if (!v.is_string()) return {};
  return std::string(v.get_string().data(), v.get_string().size());
}

template <class F>
F decode_client_as(std::string_view text, const DecodeLimits& limits = {}) {
  auto d = decode_client_frame(text, limits);
  REQUIRE_MESSAGE(d.ok(), (d.ok() ? std::string() : d.error().message), " for ", text);
  REQUIRE_MESSAGE(std::holds_alternative<F>(d.frame()), text);
  return std::get<F>(d.frame());
}

template <class F>
F round_trip_client(const F& f) {
  std::string text = encode(ClientFrame{f});
  parse_json(text);
  return decode_client_as<F>(text);
}

template <class F>
F round_trip_server(const F& f) {
  std::string text = encode(ServerFrame{f});
  parse_json(text);
  auto d = decode_server_frame(text);
  REQUIRE_MESSAGE(d.ok(), (d.ok() ? std::string() : d.error().message), " for ", text);
  REQUIRE_MESSAGE(std::holds_alternative<F>(d.frame()), text);
  return std::get<F>(d.frame());
}

// Decoding `text` fails with exactly `message` and recovers `rid`.
void check_bad(std::string_view text, std::string_view message, const Rid& rid = {},
               const DecodeLimits& limits = {}) {
  auto d = decode_client_frame(text, limits);
  REQUIRE_MESSAGE(!d.ok(), text);
  CHECK_MESSAGE(d.error().message == message, text, " -> ", d.error().message);
  CHECK_MESSAGE(d.error().rid == rid, text);
}

}  // namespace

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

// ---- client frames: refusals -------------------------------------------------

TEST_CASE("codec: not JSON, not an object, invalid UTF-8") {
  auto d = decode_client_frame("{\"type\":");
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().message.rfind("not JSON", 0) == 0);
  CHECK(std::holds_alternative<std::monostate>(d.error().rid));
  CHECK(decode_client_frame("").error().message.rfind("not JSON", 0) == 0);
  CHECK(decode_client_frame("{} {}").error().message.rfind("not JSON", 0) == 0);
  CHECK(decode_client_frame("{\"type\":\"ping\",}").error().message.rfind("not JSON", 0) == 0);

  check_bad("[1,2]", "not a JSON object");
  check_bad("\"ping\"", "not a JSON object");
  check_bad("null", "not a JSON object");

  check_bad("{\"type\":\"send\",\"rid\":1,\"to\":\"bob\",\"body\":\"caf\xc3\"}", "invalid UTF-8");
  check_bad("{\"type\":\"send\",\"to\":\"bob\",\"body\":\"\xff\"}", "invalid UTF-8");
  check_bad("{\"type\":\"send\",\"to\":\"bob\",\"body\":\"\xed\xa0\x80\"}", "invalid UTF-8");  // surrogate
  check_bad("{\"type\":\"send\",\"to\":\"bob\",\"body\":\"\xc0\xaf\"}", "invalid UTF-8");      // overlong
  check_bad("{\"type\":\"send\",\"to\":\"bob\",\"body\":\"\xf4\x90\x80\x80\"}", "invalid UTF-8");
  // Valid multi-byte UTF-8 passes.
  CHECK(decode_client_as<Send>("{\"type\":\"send\",\"to\":\"bob\",\"body\":\"\xf0\x9f\x98\x80\"}").body ==
        "\xf0\x9f\x98\x80");
}

TEST_CASE("codec: type and rid") {
  check_bad(R"({"rid":5})", "missing field \"type\"", std::int64_t{5});
  check_bad(R"({"type":7,"rid":"x"})", "field \"type\" must be a string", std::string("x"));
  check_bad(R"({"type":"explode","rid":6})", "unknown type \"explode\"", std::int64_t{6});
  check_bad(R"({"type":"Ping"})", "unknown type \"Ping\"");
  check_bad(R"({"type":"welcome"})", "unknown type \"welcome\"");  // a server frame
  check_bad(R"({"type":"ping","rid":1.5})", "field \"rid\" must be a string or an integer");
  check_bad(R"({"type":"ping","rid":null})", "field \"rid\" must be a string or an integer");
  check_bad(R"({"type":"ping","rid":[1]})", "field \"rid\" must be a string or an integer");
  check_bad(R"({"type":"ping","rid":true})", "field \"rid\" must be a string or an integer");
  check_bad(R"({"type":"ping","rid":18446744073709551615})", "field \"rid\" must be a string or an integer");
  // A long unknown type is quoted, cut short.
  auto d = decode_client_frame(R"({"type":")" + std::string(1000, 'z') + "\"}");
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().message.size() < 100);
}

TEST_CASE("codec: hello refusals") {
  check_bad(R"({"type":"hello","rid":1})", "missing field \"token\"", std::int64_t{1});
  check_bad(R"({"type":"hello","rid":1,"token":5})", "field \"token\" must be a string", std::int64_t{1});
  DecodeLimits limits;
  limits.max_token_bytes = 10;
  check_bad(R"({"type":"hello","rid":1,"token":"01234567890"})", "token too long", std::int64_t{1}, limits);
  CHECK(decode_client_as<Hello>(R"({"type":"hello","token":"0123456789"})", limits).token.size() == 10);
  check_bad(R"({"type":"hello","rid":1,"token":"t","client":"desk"})", "field \"client\" must be an object",
            std::int64_t{1});
  check_bad(R"({"type":"hello","token":"t","client":{"name":1}})", "field \"client.name\" must be a string");
  check_bad(R"({"type":"hello","token":"t","client":{"version":[]}})",
            "field \"client.version\" must be a string");
  check_bad(R"({"type":"hello","token":"t","client":{"features":"offline-messages"}})",
            "field \"client.features\" must be an array of strings");
  check_bad(R"({"type":"hello","token":"t","client":{"features":["a",1]}})",
            "field \"client.features\" must be an array of strings");
  limits = {};
  limits.max_features = 2;
  check_bad(R"({"type":"hello","token":"t","client":{"features":["a","b","c"]}})", "too many features (max 2)",
            {}, limits);
}

TEST_CASE("codec: presence refusals") {
  check_bad(R"({"type":"presence.set","rid":2})", "missing field \"state\"", std::int64_t{2});
  check_bad(R"({"type":"presence.set","rid":2,"state":1})", "field \"state\" must be a string", std::int64_t{2});
  check_bad(R"({"type":"presence.set","rid":2,"state":"offline"})", "invalid presence state \"offline\"",
            std::int64_t{2});
  check_bad(R"({"type":"presence.set","state":"DND"})", "invalid presence state \"DND\"");
  check_bad(R"({"type":"presence.set","state":"sleeping"})", "invalid presence state \"sleeping\"");

  check_bad(R"({"type":"presence.subscribe","rid":3})", "missing field \"users\"", std::int64_t{3});
  check_bad(R"({"type":"presence.subscribe","rid":3,"users":"alice"})",
            "field \"users\" must be an array of user ids", std::int64_t{3});
  check_bad(R"({"type":"presence.subscribe","users":["alice",2]})", "field \"users\" must be an array of user ids");
  check_bad(R"({"type":"presence.subscribe","users":["alice","bad user"]})",
            "invalid user id in \"users\": \"bad user\"");
  DecodeLimits limits;
  limits.max_subscribe_users = 2;
  check_bad(R"({"type":"presence.subscribe","rid":"s","users":["a","b","c"]})", "too many users (max 2)",
            std::string("s"), limits);
}

TEST_CASE("codec: send refusals") {
  const Rid r4 = std::int64_t{4};
  check_bad(R"({"type":"send","rid":4,"body":"x"})", "missing field \"to\"", r4);
  check_bad(R"({"type":"send","rid":4,"to":["bob"],"body":"x"})", "field \"to\" must be a string", r4);
  check_bad(R"({"type":"send","rid":4,"to":"bob smith","body":"x"})", "invalid user id in \"to\": \"bob smith\"",
            r4);
  check_bad(R"({"type":"send","rid":4,"to":"","body":"x"})", "invalid user id in \"to\": \"\"", r4);
  check_bad(R"({"type":"send","rid":4,"to":"bob"})", "missing field \"body\"", r4);
  check_bad(R"({"type":"send","rid":4,"to":"bob","body":42})", "field \"body\" must be a string", r4);
  check_bad(R"({"type":"send","rid":4,"to":"bob","body":null})", "field \"body\" must be a string", r4);
  check_bad(R"({"type":"send","rid":4,"to":"bob","body":""})", "field \"body\" must not be empty", r4);
  check_bad(R"({"type":"send","rid":4,"to":"bob","body":"x","client_msg_id":""})",
            "field \"client_msg_id\" must be 1-64 bytes", r4);
  check_bad(R"({"type":"send","rid":4,"to":"bob","body":"x","client_msg_id":")" + std::string(65, 'c') + "\"}",
            "field \"client_msg_id\" must be 1-64 bytes", r4);
  check_bad(R"({"type":"send","rid":4,"to":"bob","body":"x","client_msg_id":7})",
            "field \"client_msg_id\" must be a string", r4);
  CHECK(decode_client_as<Send>(R"({"type":"send","to":"bob","body":"x","client_msg_id":")" +
                               std::string(64, 'c') + "\"}")
            .client_msg_id.size() == 64);

  DecodeLimits limits;
  limits.max_body_bytes = 5;
  check_bad(R"({"type":"send","rid":4,"to":"bob","body":"123456"})", "body exceeds hard limit", r4, limits);
  CHECK(decode_client_as<Send>(R"({"type":"send","to":"bob","body":"12345"})", limits).body == "12345");

  std::string long_user(kMaxUserIdBytes, 'u');
  CHECK(decode_client_as<Send>(R"({"type":"send","to":")" + long_user + R"(","body":"x"})").to == long_user);
  auto d = decode_client_frame(R"({"type":"send","to":")" + long_user + "u" + R"(","body":"x"})");
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().message.rfind("invalid user id in \"to\"", 0) == 0);
}

TEST_CASE("codec: ack refusals") {
  const Rid r = std::string("a");
  check_bad(R"({"type":"ack","rid":"a"})", "missing field \"ids\"", r);
  check_bad(R"({"type":"ack","rid":"a","ids":"0000000000000001"})", "field \"ids\" must be an array of message ids",
            r);
  check_bad(R"({"type":"ack","rid":"a","ids":[1]})", "field \"ids\" must be an array of message ids", r);
  check_bad(R"({"type":"ack","rid":"a","ids":["0000000000000001","xyz"]})", "invalid message id \"xyz\"", r);
  check_bad(R"({"type":"ack","ids":["000000000000000A"]})", "invalid message id \"000000000000000A\"");
  DecodeLimits limits;
  limits.max_ack_ids = 2;
  check_bad(R"({"type":"ack","rid":"a","ids":["0000000000000001","0000000000000002","0000000000000003"]})",
            "too many ids (max 2)", r, limits);
}

TEST_CASE("codec: deep nesting and garbage never throw") {
  std::string deep = R"({"type":"ping","x":)" + std::string(10000, '[') + std::string(10000, ']') + "}";
  CHECK_FALSE(decode_client_frame(deep).ok());
  CHECK_FALSE(decode_server_frame(deep).ok());

  std::mt19937 rng(42);
  std::string base =
      R"({"type":"send","rid":4,"to":"bob@contoso.com","body":"Lunch? \u00e9","client_msg_id":"m1"})";
  for (int i = 0; i < 2000; ++i) {
    std::string t = base;
    for (int k = 0; k < 3; ++k) t[rng() % t.size()] = static_cast<char>(rng() % 256);
    auto d = decode_client_frame(t);
    if (!d.ok()) CHECK_FALSE(d.error().message.empty());
    (void)decode_server_frame(t);
  }
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

TEST_CASE("codec: server frame refusals") {
  auto bad = [](std::string_view text) {
    auto d = decode_server_frame(text);
    REQUIRE_MESSAGE(!d.ok(), text);
    return d.error().message;
  };
  CHECK(bad(R"({"type":"message","id":"1","from":"a","sent_at":"2026-13-01T00:00:00.000Z","body":"b","kind":"live"})") ==
        "field \"sent_at\" must be an ISO-8601 UTC time");
  CHECK(bad(R"({"type":"message","id":"1","from":"a","sent_at":"2026-02-29T00:00:00.000Z","body":"b","kind":"live"})") ==
        "field \"sent_at\" must be an ISO-8601 UTC time");
  CHECK(bad(R"({"type":"message","id":"1","from":"a","sent_at":"2026-01-01T00:00:00.000","body":"b","kind":"live"})") ==
        "field \"sent_at\" must be an ISO-8601 UTC time");
  CHECK(bad(R"({"type":"message","id":"1","from":"a","sent_at":"2026-01-01T00:00:00.000Z","body":"b","kind":"x"})") ==
        "invalid message kind \"x\"");
  CHECK(bad(R"({"type":"sent","id":"1","status":"stored","recipient":"gone"})") == "invalid presence state \"gone\"");
  CHECK(bad(R"({"type":"welcome","user":"u","session":"s","presence":"available"})") == "missing field \"mailbox\"");
  CHECK(bad(R"({"type":"missed.summary","count":-1,"from":[]})") == "field \"count\" must be a non-negative integer");
  CHECK(bad(R"({"type":"send"})") == "unknown type \"send\"");

  // Fractions other than 3 digits are read too.
  auto d = decode_server_frame(
      R"({"type":"message","id":"1","from":"a","sent_at":"1970-01-01T00:00:01.5Z","body":"b","kind":"live"})");
  REQUIRE(d.ok());
  CHECK(std::get<Message>(d.frame()).sent_at_ms == 1500);
  d = decode_server_frame(
      R"({"type":"message","id":"1","from":"a","sent_at":"1970-01-01T00:00:01Z","body":"b","kind":"live"})");
  REQUIRE(d.ok());
  CHECK(std::get<Message>(d.frame()).sent_at_ms == 1000);
}

// ---- the escaper ----------------------------------------------------------------

TEST_CASE("codec: escaping is valid JSON for every byte and keeps UTF-8") {
  std::string all;
  for (int i = 1; i < 128; ++i) all.push_back(static_cast<char>(i));
  all += "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80";  // é 日 😀
  Message m;
  m.id = "x";
  m.from = "a";
  m.body = all;
  std::string text = encode_message(m);
  CHECK(str(parse_json(text).at("body")) == all);
  CHECK(text.find("\\u0001") != std::string::npos);
  CHECK(text.find("\\n") != std::string::npos);
  CHECK(text.find("\xf0\x9f\x98\x80") != std::string::npos);  // passed through, not \u-escaped

  // Ill-formed UTF-8 handed to an encoder still yields valid JSON (U+FFFD).
  m.body = std::string("a\xff") + "b\xc3" + "\xed\xa0\x80" + "c\xe6\x97";
  auto obj = parse_json(encode_message(m));
  CHECK(str(obj.at("body")).find("\xef\xbf\xbd") != std::string::npos);
  CHECK(encode_error({}, "x", std::string_view("\0", 1)) == R"({"type":"error","code":"x","message":"\u0000"})");
}

// The escaper tests 8 plain bytes at a time and falls back to one byte at a
// time: a byte that needs care must be caught wherever it sits in the word.
TEST_CASE("codec: escaping catches a special byte at every offset of a word") {
  auto escaped = [](unsigned char c) -> std::string {
    switch (c) {
      case '"': return "\\\"";
      case '\\': return "\\\\";
      case '\n': return "\\n";
      case '\t': return "\\t";
      default: return fmt::format("\\u{:04x}", c);
    }
  };
  for (unsigned char c : {0x00, 0x01, 0x1f, 0x22, 0x5c, 0x0a, 0x09}) {
    for (std::size_t at = 0; at < 24; ++at) {
      std::string msg(24, 'x');
      msg[at] = static_cast<char>(c);
      const std::string want = R"({"type":"error","code":"x","message":")" + std::string(at, 'x') + escaped(c) +
                               std::string(23 - at, 'x') + R"("})";
      CHECK_MESSAGE(encode_error({}, "x", msg) == want, "byte ", int(c), " at ", at);
    }
  }
  // Bytes that are plain on one side of the line and not on the other.
  for (std::size_t at = 0; at < 24; ++at) {
    std::string msg(24, 'y');
    msg[at] = ' ';
    CHECK(encode_error({}, "x", msg) == R"({"type":"error","code":"x","message":")" + msg + R"("})");
    msg[at] = '\x7f';
    CHECK(encode_error({}, "x", msg) == R"({"type":"error","code":"x","message":")" + msg + R"("})");
    msg[at] = '\x80';  // a lone continuation byte
    CHECK(str(parse_json(encode_error({}, "x", msg)).at("message")) == to_valid_utf8(msg));
  }

  // Views that end exactly at the end of their buffer (no NUL after it): a
  // word read past the end is caught by the sanitizer build.
  for (std::size_t n = 0; n <= 40; ++n) {
    auto buf = std::make_unique<char[]>(n);
    for (std::size_t k = 0; k < n; ++k) buf[k] = k % 11 == 10 ? '"' : static_cast<char>('a' + k % 26);
    const std::string_view view(buf.get(), n);
    CHECK(str(parse_json(encode_error({}, "x", view)).at("message")) == std::string(view));
  }

  // Random mixes of plain runs, escapes and good and bad UTF-8.
  std::mt19937 rng(20261127);
  const std::string pieces[] = {"abcdefgh", "a", "\"", "\\", "\n", std::string(1, '\0'), "\x7f",
                                "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "\xff", "\xc3", "0123456789"};
  for (int round = 0; round < 2000; ++round) {
    std::string msg;
    const int n = static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) msg += pieces[rng() % std::size(pieces)];
    const std::string text = encode_error({}, "x", msg);
    CHECK_MESSAGE(str(parse_json(text).at("message")) == to_valid_utf8(msg), text);
  }
}

TEST_CASE("codec: DecodeError messages survive encode_error as valid JSON") {
  auto d = decode_client_frame(R"({"type":"send","rid":"r","to":"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9x","body":"b"})");
  REQUIRE_FALSE(d.ok());
  std::string text = encode_error(d.error().rid, "bad_request", d.error().message);
  auto obj = parse_json(text);
  CHECK(str(obj.at("rid")) == "r");
  // The quoted id was cut on a character boundary, never inside é.
  CHECK(text.find("\\ufffd") == std::string::npos);
}

}  // namespace oms::proto
