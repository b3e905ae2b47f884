// The decoders refuse malformed frames with a precise message and recover
// the rid when they can; nothing throws.
#include <random>
#include <string>

#include <doctest/doctest.h>

#include "common/ids.h"
#include "common/json_decode.h"
#include "common/json_encode.h"
#include "tests/unit/common/frame_checks.h"

namespace oms::proto {

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
  // A string rid: at most 128 bytes; a longer one is refused and not echoed.
  CHECK(std::get<std::string>(decode_client_as<Ping>(
                                  R"({"type":"ping","rid":")" + std::string(kMaxRidBytes, 'r') + "\"}")
                                  .rid)
            .size() == kMaxRidBytes);
  check_bad(R"({"type":"ping","rid":")" + std::string(kMaxRidBytes + 1, 'r') + "\"}",
            "field \"rid\" is longer than 128 bytes");
  check_bad(R"({"type":"ping","rid":")" + std::string(100000, 'r') + "\"}",
            "field \"rid\" is longer than 128 bytes");
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

// ---- server frames: refusals ---------------------------------------------------

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

TEST_CASE("decode: auth.refresh carries a token") {
  auto d = oms::proto::decode_client_frame(R"({"type":"auth.refresh","rid":7,"token":"a.b.c"})");
  REQUIRE(d.ok());
  auto* r = std::get_if<oms::proto::AuthRefresh>(&d.frame());
  REQUIRE(r != nullptr);
  CHECK(r->token == "a.b.c");
  CHECK(std::get<std::int64_t>(r->rid) == 7);
  auto missing = oms::proto::decode_client_frame(R"({"type":"auth.refresh","rid":8})");
  REQUIRE_FALSE(missing.ok());
  CHECK(std::get<std::int64_t>(missing.error().rid) == 8);
  oms::proto::DecodeLimits small;
  small.max_token_bytes = 4;
  CHECK_FALSE(oms::proto::decode_client_frame(R"({"type":"auth.refresh","token":"a.b.c"})", small).ok());
}
