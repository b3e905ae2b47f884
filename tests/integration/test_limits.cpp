// Limits and malformed input (protocol.md §1.3 errors, §1.6, §3 config):
// mailbox_full, too_large, bad_request, rate_limited, ping, the frame limit
// (1009) and binary frames (1003). Every refusal stores nothing.
#include <doctest/doctest.h>

#include "tests/support/harness.h"
#include "tests/support/wait.h"

using namespace oms::test;
using boost::json::array;
using boost::json::value;

namespace {

// A request that must be refused with bad_request, echoing `rid`, and leave
// the session usable.
void expect_bad_request(WsClient& c, Json frame) {
  const value rid = c.next_rid();
  frame["rid"] = rid;
  const Json r = c.request(frame);
  OMS_CHECK_ERROR(r, "bad_request");
  CHECK(r.at("rid") == rid);
}

}  // namespace

TEST_CASE("limits: mailbox_full when the message count quota is reached") {
  OmsdProcess omsd(with_config("[mailbox]\nmax_messages = 3\n"));
  auto alice = sign_in(omsd, kAlice);
  auto carol = sign_in(omsd, kCarol);
  for (int i = 0; i < 3; ++i) OMS_CHECK_SENT(alice->send(kBob, "q" + std::to_string(i)), "stored");
  OMS_CHECK_ERROR(alice->send(kBob, "one too many"), "mailbox_full");
  OMS_CHECK_ERROR(carol->send(kBob, "also full for carol"), "mailbox_full");
  CHECK(mailbox_count(omsd, kBob) == 3);
  // The quota is per mailbox.
  OMS_CHECK_SENT(alice->send(kDave, "dave has room"), "stored");
  {
    auto bob = sign_in(omsd, kBob);
    const auto msgs = bob->receive_messages(3);
    CHECK(bodies_of(msgs) == std::vector<std::string>{"q0", "q1", "q2"});
    bob->take("mailbox.drained");
    bob->close();
  }
  wait_for_presence(omsd, kBob, "offline");
  wait_for_mailbox_count(omsd, kBob, 0);
  OMS_CHECK_SENT(alice->send(kBob, "room again"), "stored");
}

TEST_CASE("limits: mailbox_full when the byte quota is reached") {
  OmsdProcess omsd(with_config("[mailbox]\nmax_bytes = 100\n"));
  auto alice = sign_in(omsd, kAlice);
  OMS_CHECK_SENT(alice->send(kBob, std::string(60, 'a')), "stored");
  OMS_CHECK_ERROR(alice->send(kBob, std::string(60, 'b')), "mailbox_full");
  CHECK(mailbox_count(omsd, kBob) == 1);
  // Quota counts body bytes: 60 + 30 fits in 100.
  OMS_CHECK_SENT(alice->send(kBob, std::string(30, 'c')), "stored");
  CHECK(mailbox_count(omsd, kBob) == 2);
}

TEST_CASE("limits: too_large when the body exceeds max_body_bytes") {
  OmsdProcess omsd(with_config("[limits]\nmax_body_bytes = 100\n"));
  auto alice = sign_in(omsd, kAlice);
  OMS_CHECK_ERROR(alice->send(kBob, std::string(101, 'x')), "too_large");
  CHECK(mailbox_count(omsd, kBob) == 0);
  OMS_CHECK_SENT(alice->send(kBob, std::string(100, 'x')), "stored");
  // Bytes, not characters: 50 × "é" is 100 bytes, 51 × "é" is 102.
  std::string e50, e51;
  for (int i = 0; i < 50; ++i) e50 += "\xc3\xa9";
  e51 = e50 + "\xc3\xa9";
  OMS_CHECK_SENT(alice->send(kBob, e50), "stored");
  OMS_CHECK_ERROR(alice->send(kBob, e51), "too_large");
  CHECK(mailbox_count(omsd, kBob) == 2);

  // Also when the recipient is online: refused, nothing pushed.
  auto carol = sign_in(omsd, kCarol);
  carol->take("mailbox.drained");
  OMS_CHECK_ERROR(alice->send(kCarol, std::string(101, 'y')), "too_large");
  carol->expect_no("message");
}

TEST_CASE("limits: an unknown type is a bad_request") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  expect_bad_request(*alice, Json{{"type", "shout"}, {"to", kBob}, {"body", "HEY"}});
  expect_bad_request(*alice, Json{{"to", kBob}, {"body", "no type"}});
  expect_bad_request(*alice, Json{{"type", 7}});
  CHECK(type_of(alice->ping()) == "pong");
  CHECK(mailbox_count(omsd, kBob) == 0);
}

TEST_CASE("limits: a send with a missing field is a bad_request") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  expect_bad_request(*alice, Json{{"type", "send"}, {"body", "to whom?"}, {"client_msg_id", "m1"}});
  expect_bad_request(*alice, Json{{"type", "send"}, {"to", kBob}, {"client_msg_id", "m2"}});
  expect_bad_request(*alice, Json{{"type", "ack"}});
  CHECK(mailbox_count(omsd, kBob) == 0);
}

TEST_CASE("limits: a field of the wrong JSON type is a bad_request") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  expect_bad_request(*alice, Json{{"type", "send"}, {"to", kBob}, {"body", 42}, {"client_msg_id", "w1"}});
  expect_bad_request(*alice, Json{{"type", "send"}, {"to", 7}, {"body", "x"}, {"client_msg_id", "w2"}});
  expect_bad_request(*alice, Json{{"type", "send"}, {"to", array{kBob}}, {"body", "x"}, {"client_msg_id", "w3"}});
  expect_bad_request(*alice, Json{{"type", "send"}, {"to", kBob}, {"body", "x"}, {"client_msg_id", 5}});
  expect_bad_request(*alice, Json{{"type", "ack"}, {"ids", "0000000000000001"}});
  expect_bad_request(*alice, Json{{"type", "ack"}, {"ids", array{1, 2}}});
  CHECK(mailbox_count(omsd, kBob) == 0);
}

TEST_CASE("limits: an invalid user id or client_msg_id is a bad_request") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  for (const std::string& to : {std::string("bob smith"), std::string(""), std::string(129, 'b'),
                               std::string("bob/contoso"), std::string("b\xc3\xb6" "b@contoso.com")}) {
    CAPTURE(to);
    expect_bad_request(*alice, Json{{"type", "send"}, {"to", to}, {"body", "x"}, {"client_msg_id", "u"}});
  }
  // 128 bytes is the maximum and fine.
  OMS_CHECK_SENT(alice->send(std::string(128, 'b'), "longest id"), "stored");
  expect_bad_request(*alice, Json{{"type", "send"}, {"to", kBob}, {"body", "x"},
                                  {"client_msg_id", std::string(65, 'c')}});
  OMS_CHECK_SENT(alice->send(kBob, "64 byte id", std::string(64, 'c')), "stored");
  CHECK(mailbox_count(omsd, kBob) == 1);
}

TEST_CASE("limits: text that is not a JSON object is a bad_request") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  for (const char* text : {"not json", "[1,2,3]", "\"send\"", "{\"type\":\"send\",", "42"}) {
    CAPTURE(text);
    alice->send_text(text);
    const Json r = alice->take("error");
    OMS_CHECK_ERROR(r, "bad_request");
  }
  CHECK(type_of(alice->ping()) == "pong");
}

TEST_CASE("limits: invalid unicode in a JSON string is a bad_request") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  // A lone surrogate escape: valid JSON syntax, not valid Unicode / UTF-8.
  alice->send_text(R"({"type":"send","rid":11,"to":"bob@contoso.com","body":"bad \ud800 body","client_msg_id":"s1"})");
  const Json r = alice->take("error");
  OMS_CHECK_ERROR(r, "bad_request");
  // The text does not decode, so the rid may not be recoverable.
  WARN_MESSAGE((r.contains("rid") && r.at("rid") == value(11)), "rid not echoed: " << to_text(r));
  CHECK(mailbox_count(omsd, kBob) == 0);
}

TEST_CASE("limits: invalid UTF-8 in a text frame is refused and nothing is stored") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  alice->take("mailbox.drained");
  // Raw invalid bytes (0xff, a truncated sequence) inside a text frame.
  const std::string frame = std::string(R"({"type":"send","rid":12,"to":"bob@contoso.com","body":"bad )") +
                            "\xff\xfe\xc3" + R"(","client_msg_id":"s2"})";
  const auto ec = alice->try_send_text(frame);
  CHECK_MESSAGE(!ec, "write failed: " << ec.message());
  // protocol.md §1.3 says bad_request; RFC 6455 §8.1 says fail the connection
  // (1007). Either is a refusal; what must not happen is a stored message.
  const auto f = alice->try_recv(std::chrono::seconds(5));
  if (f) {
    OMS_CHECK_ERROR(*f, "bad_request");
    CHECK(type_of(alice->ping()) == "pong");
  } else {
    const int code = alice->expect_closed();
    MESSAGE("invalid UTF-8 closed the connection with " << code << " instead of bad_request");
    CHECK(code == 1007);
  }
  CHECK(mailbox_count(omsd, kBob) == 0);
}

TEST_CASE("limits: rate_limited when a sender exceeds its send rate") {
  OmsdProcess omsd(with_config("[limits]\nsend_rate_per_second = 1\nsend_burst = 3\n"));
  auto alice = sign_in(omsd, kAlice);
  int sent = 0, limited = 0;
  for (int i = 0; i < 8; ++i) {
    const Json r = alice->send(kBob, "r" + std::to_string(i));
    INFO("reply: " << to_text(r));
    if (type_of(r) == "sent") {
      ++sent;
    } else {
      OMS_CHECK_ERROR(r, "rate_limited");
      ++limited;
    }
  }
  CHECK(sent >= 3);
  CHECK(limited >= 1);
  CHECK(mailbox_count(omsd, kBob) == sent);
  // Other senders are not affected.
  auto carol = sign_in(omsd, kCarol);
  OMS_CHECK_SENT(carol->send(kBob, "carol's own budget"), "stored");
}

TEST_CASE("limits: signing out and in again does not buy a fresh burst") {
  // The bucket used to live with the user's sessions and went with the last
  // one: every reconnect brought `send_burst` new tokens.
  OmsdProcess omsd(with_config("[limits]\nsend_rate_per_second = 0.01\nsend_burst = 3\n"));
  int sent = 0;
  for (int round = 0; round < 3; ++round) {
    auto alice = sign_in(omsd, kAlice);
    for (int i = 0; i < 3; ++i) {
      const Json r = alice->send(kBob, "round " + std::to_string(round) + " #" + std::to_string(i));
      INFO("reply: " << to_text(r));
      if (type_of(r) == "sent") ++sent;
      else OMS_CHECK_ERROR(r, "rate_limited");
    }
    alice->close();
    // Wait until the server has let go of every session of Alice's, so that
    // nothing of the old sign-in can carry the bucket over.
    REQUIRE(oms::test::wait_until([&] { return arr_of(user_info(omsd, kAlice), "sessions").empty(); },
                                  std::chrono::seconds(10)));
  }
  CHECK(sent == 3);  // the burst once, not once per sign-in
  CHECK(mailbox_count(omsd, kBob) == 3);
}

TEST_CASE("limits: a rid that is neither a string nor an integer is a bad_request") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  alice->take("mailbox.drained");
  for (const value& rid : {value(Json{{"n", 1}}), value(array{1}), value(true), value(1.5)}) {
    CAPTURE(to_text(rid));
    alice->send_json(Json{{"type", "send"}, {"rid", rid}, {"to", kBob}, {"body", "x"}, {"client_msg_id", "r"}});
    const Json r = alice->recv();
    OMS_CHECK_ERROR(r, "bad_request");
  }
  CHECK(mailbox_count(omsd, kBob) == 0);
}

TEST_CASE("limits: ping is answered with pong echoing the rid") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  const Json p1 = alice->request(Json{{"type", "ping"}, {"rid", 9}});
  OMS_CHECK_TYPE(p1, "pong");
  CHECK(p1.at("rid") == value(9));
  const Json p2 = alice->request(Json{{"type", "ping"}, {"rid", "nine"}});
  OMS_CHECK_TYPE(p2, "pong");
  CHECK(p2.at("rid") == value("nine"));
  alice->send_json(Json{{"type", "ping"}});
  OMS_CHECK_TYPE(alice->take("pong"), "pong");
}

TEST_CASE("limits: a frame over max_frame_bytes closes the connection with 1009") {
  // (omsd requires the body limit to be at least 1 KiB below the frame limit.)
  OmsdProcess omsd(with_config("[limits]\nmax_frame_bytes = 4096\nmax_body_bytes = 2048\n"));
  auto alice = sign_in(omsd, kAlice);
  // Under the frame limit: fine.
  OMS_CHECK_SENT(alice->send(kBob, std::string(2000, 'f')), "stored");
  const std::string big = boost::json::serialize(Json{
      {"type", "send"}, {"rid", 99}, {"to", kBob}, {"body", std::string(5000, 'F')}, {"client_msg_id", "big"}});
  const auto ec = alice->try_send_text(big);
  (void)ec;  // the server may close before reading it all
  alice->expect_closed(1009);
  CHECK(mailbox_count(omsd, kBob) == 1);
}

TEST_CASE("limits: the default frame limit is 64 KiB") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  const std::string big = boost::json::serialize(Json{
      {"type", "send"}, {"rid", 99}, {"to", kBob}, {"body", std::string(70 * 1024, 'F')}, {"client_msg_id", "big"}});
  const auto ec = alice->try_send_text(big);
  (void)ec;
  // omsd answers close 1009 as soon as the frame header says 70 KiB, while
  // the client may still be writing the rest: the close frame can then be
  // lost to the TCP reset (seen about 1 run in 3 under ASan, with omsd from
  // before issue 15 too). Either way the connection ends and nothing is stored.
  const int code = alice->expect_closed();
  CHECK((code == 1009 || code == -1));
  CHECK(mailbox_count(omsd, kBob) == 0);
}

TEST_CASE("limits: a binary frame closes the connection with 1003") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  const std::string payload = boost::json::serialize(Json{
      {"type", "send"}, {"rid", 5}, {"to", kBob}, {"body", "binary"}, {"client_msg_id", "bin"}});
  alice->send_binary(payload);
  alice->expect_closed(1003);
  for (const auto& f : alice->queued()) CHECK(type_of(f) != "sent");
  CHECK(mailbox_count(omsd, kBob) == 0);
}

TEST_CASE("limits: undelivered messages expire after the mailbox ttl") {
  OmsdProcess omsd(with_config("[mailbox]\nttl_seconds = 1\nsweep_interval_seconds = 1\n"));
  auto alice = sign_in(omsd, kAlice);
  OMS_CHECK_SENT(alice->send(kBob, "short-lived"), "stored");
  // Expiry is the documented way a message leaves a mailbox unread.
  wait_for_mailbox_count(omsd, kBob, 0, std::chrono::seconds(10));
  auto bob = sign_in(omsd, kBob);
  CHECK(int_of(obj_of(bob->welcome(), "mailbox"), "count") == 0);
  bob->take("mailbox.drained");
  bob->expect_no("message");
}

TEST_CASE("limits: sessions per user are limited and the others are unaffected") {
  // server/PROTOCOL.md: beyond limits.max_sessions_per_user, too_many_sessions + 4429.
  OmsdProcess omsd(with_config("[limits]\nmax_sessions_per_user = 2\n"));
  auto bob1 = sign_in(omsd, kBob);
  auto bob2 = sign_in(omsd, kBob);
  auto bob3 = connect_client(omsd);
  const Json r = bob3->hello_raw(omsd.token(kBob));
  INFO("third hello: " << to_text(r));
  CHECK(type_of(r) == "error");
  CHECK(type_of(r) != "welcome");
  bob3->expect_closed();
  CHECK(type_of(bob1->ping()) == "pong");
  CHECK(type_of(bob2->ping()) == "pong");
  // Another user is not limited by bob's sessions.
  auto alice = sign_in(omsd, kAlice);
  OMS_CHECK_SENT(alice->send(kBob, "to both"), "delivered");
  bob1->take("message");
  bob2->take("message");
}
