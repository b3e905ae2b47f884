// Sign-in (protocol.md §1.1): hello → welcome with the mailbox notice; every
// refused token or first frame → error "unauthenticated" + close 4401.
#include <doctest/doctest.h>

#include "tests/support/harness.h"

using namespace oms::test;
using boost::json::array;
using boost::json::value;

namespace {

// The refusal of §1.1: an unauthenticated error, then close 4401.
void expect_refused(WsClient& c) {
  const Json e = c.recv();
  OMS_CHECK_ERROR(e, "unauthenticated");
  c.expect_closed(4401);
}

// Sends a hello with `token` (rid 1) and expects the refusal.
void expect_token_refused(const OmsdProcess& omsd, const std::string& token) {
  auto c = connect_client(omsd);
  c->send_json(Json{{"type", "hello"},
                    {"rid", 1},
                    {"token", token},
                    {"client", Json{{"name", "desk"}, {"version", "2.1.0"},
                                    {"features", array{"offline-messages"}}}}});
  expect_refused(*c);
}

}  // namespace

TEST_CASE("signin: welcome carries the normalised user, a session, presence and an empty mailbox") {
  OmsdProcess omsd;
  auto c = connect_client(omsd);
  c->send_json(Json{{"type", "hello"},
                    {"rid", "hello-1"},
                    {"token", omsd.token("Bob@Contoso.COM")},
                    {"client", Json{{"name", "desk"}, {"version", "2.1.0"},
                                    {"features", array{"offline-messages"}}}}});
  const Json w = c->reply(value("hello-1"));
  OMS_CHECK_TYPE(w, "welcome");
  INFO("welcome: " << to_text(w));
  CHECK(str_of(w, "user") == "bob@contoso.com");
  CHECK(!str_of(w, "session").empty());
  CHECK(str_of(w, "presence") == "available");
  const Json& mb = obj_of(w, "mailbox");
  CHECK(int_of(mb, "count") == 0);
  CHECK(int_of(mb, "missed") == 0);
  CHECK(int_of(mb, "bytes") == 0);
  CHECK(arr_of(mb, "from").empty());
  CHECK((!mb.contains("oldest") || mb.at("oldest").is_null()));
  // Decision: drained follows even an empty mailbox.
  c->take("mailbox.drained");

  // A second device gets its own session.
  auto c2 = sign_in(omsd, kBob);
  CHECK(c2->user() == "bob@contoso.com");
  CHECK(c2->session() != c->session());
}

TEST_CASE("signin: the mailbox notice counts waiting messages by sender with bytes and the oldest") {
  OmsdProcess omsd;
  {
    auto alice = sign_in(omsd, kAlice);
    auto carol = sign_in(omsd, kCarol);
    OMS_CHECK_SENT(alice->send(kBob, "hello"), "stored");
    OMS_CHECK_SENT(alice->send(kBob, "second!"), "stored");
    OMS_CHECK_SENT(carol->send(kBob, "from carol"), "stored");
  }
  auto bob = connect_client(omsd);
  const Json w = bob->hello(omsd.token(kBob));
  INFO("welcome: " << to_text(w));
  const Json& mb = obj_of(w, "mailbox");
  CHECK(int_of(mb, "count") == 3);
  CHECK(int_of(mb, "missed") == 0);
  const std::int64_t body_bytes = 5 + 7 + 10;
  CHECK(int_of(mb, "bytes") >= body_bytes);
  WARN_MESSAGE(int_of(mb, "bytes") == body_bytes, "mailbox bytes is not the sum of body bytes");
  const auto from = from_counts(arr_of(mb, "from"));
  CHECK(from.size() == 2);
  CHECK(from.count("alice@contoso.com") == 1);
  CHECK(from.count("carol@contoso.com") == 1);
  if (from.size() == 2) {
    CHECK(from.at("alice@contoso.com") == 2);
    CHECK(from.at("carol@contoso.com") == 1);
  }
  const std::string oldest = str_of(mb, "oldest");
  CHECK(is_iso8601_ms(oldest));

  // Then the messages, oldest first, as kind "offline".
  const auto msgs = bob->receive_messages(3);
  CHECK(bodies_of(msgs) == std::vector<std::string>{"hello", "second!", "from carol"});
  for (const auto& m : msgs) {
    INFO("message: " << to_text(m));
    CHECK(str_of(m, "kind") == "offline");
    CHECK(is_iso8601_ms(str_of(m, "sent_at")));
  }
  CHECK(str_of(msgs[0], "from") == "alice@contoso.com");
  CHECK(str_of(msgs[2], "from") == "carol@contoso.com");
  CHECK(str_of(msgs[0], "sent_at") == oldest);
  bob->take("mailbox.drained");
}

TEST_CASE("signin: the refusal of a hello echoes its rid") {
  // §1: "A client request may carry rid; the reply to it echoes rid."
  OmsdProcess omsd;
  auto c = connect_client(omsd);
  c->send_json(Json{{"type", "hello"}, {"rid", "h-1"}, {"token", expired_token(omsd.jwt_secret(), kBob)}});
  const Json e = c->recv();
  OMS_CHECK_ERROR(e, "unauthenticated");
  INFO("error: " << to_text(e));
  CHECK(e.contains("rid"));
  if (e.contains("rid")) CHECK(e.at("rid") == value("h-1"));
  c->expect_closed(4401);
}

TEST_CASE("signin: a token that is not a JWT is refused with 4401") {
  OmsdProcess omsd;
  expect_token_refused(omsd, "not-a-jwt");
}

TEST_CASE("signin: a token signed with another key is refused with 4401") {
  OmsdProcess omsd;
  expect_token_refused(omsd, bad_signature_token(omsd.jwt_secret(), kBob));
}

TEST_CASE("signin: a token whose payload was altered is refused with 4401") {
  OmsdProcess omsd;
  expect_token_refused(omsd, tampered_token(omsd.jwt_secret(), kBob, kAlice));
}

TEST_CASE("signin: an expired token is refused with 4401") {
  OmsdProcess omsd;
  expect_token_refused(omsd, expired_token(omsd.jwt_secret(), kBob));
}

TEST_CASE("signin: a token not valid yet (nbf) is refused with 4401") {
  OmsdProcess omsd;
  expect_token_refused(omsd, not_yet_valid_token(omsd.jwt_secret(), kBob));
}

TEST_CASE("signin: a token issued in the future (iat) is refused with 4401") {
  OmsdProcess omsd;
  const Json header{{"alg", "HS256"}, {"typ", "JWT"}};
  const Json payload{{"sub", kBob}, {"iat", unix_now_s() + 3600}, {"exp", unix_now_s() + 7200}};
  expect_token_refused(omsd, hand_signed_token(header, payload, omsd.jwt_secret()));
}

TEST_CASE("signin: an alg none token is refused with 4401") {
  OmsdProcess omsd;
  expect_token_refused(omsd, alg_none_token(kBob));
}

TEST_CASE("signin: a token with another HMAC alg is refused with 4401") {
  OmsdProcess omsd;
  const Json payload{{"sub", kBob}, {"exp", unix_now_s() + 3600}};
  // Correctly signed for what its header says, but only HS256 is accepted.
  expect_token_refused(omsd, hand_signed_token(Json{{"alg", "HS512"}, {"typ", "JWT"}}, payload,
                                               omsd.jwt_secret(), "HS512"));
  expect_token_refused(omsd, hand_signed_token(Json{{"alg", "HS384"}, {"typ", "JWT"}}, payload,
                                               omsd.jwt_secret(), "HS384"));
  // An HS256 signature under a header that claims another alg.
  expect_token_refused(omsd, hand_signed_token(Json{{"alg", "RS256"}, {"typ", "JWT"}}, payload,
                                               omsd.jwt_secret(), "HS256"));
}

TEST_CASE("signin: a token without exp is refused with 4401") {
  OmsdProcess omsd;
  const Json header{{"alg", "HS256"}, {"typ", "JWT"}};
  expect_token_refused(omsd, hand_signed_token(header, Json{{"sub", kBob}, {"iat", unix_now_s()}},
                                               omsd.jwt_secret()));
}

TEST_CASE("signin: a token whose sub is not a valid user id is refused with 4401") {
  OmsdProcess omsd;
  expect_token_refused(omsd, omsd.token("bob smith"));
  expect_token_refused(omsd, omsd.token(std::string(129, 'b')));
}

TEST_CASE("signin: a hand-signed HS256 token is accepted (control for the refusals)") {
  OmsdProcess omsd;
  const Json header{{"alg", "HS256"}, {"typ", "JWT"}};
  const Json payload{{"sub", "Dave@Contoso.com"}, {"exp", unix_now_s() + 600}};
  auto c = connect_client(omsd);
  const Json w = c->hello(hand_signed_token(header, payload, omsd.jwt_secret()));
  CHECK(str_of(w, "user") == "dave@contoso.com");
}

TEST_CASE("signin: a hello without a token is refused with 4401") {
  OmsdProcess omsd;
  auto c = connect_client(omsd);
  c->send_json(Json{{"type", "hello"},
                    {"rid", 1},
                    {"client", Json{{"name", "desk"}, {"version", "2.1.0"},
                                    {"features", array{"offline-messages"}}}}});
  expect_refused(*c);
}

TEST_CASE("signin: a first frame other than hello is refused with 4401") {
  OmsdProcess omsd;
  SUBCASE("ping") {
    auto c = connect_client(omsd);
    c->send_json(Json{{"type", "ping"}, {"rid", 9}});
    expect_refused(*c);
  }
  SUBCASE("presence.set") {
    auto c = connect_client(omsd);
    c->send_json(Json{{"type", "presence.set"}, {"rid", 2}, {"state", "dnd"}});
    expect_refused(*c);
  }
  SUBCASE("not JSON") {
    auto c = connect_client(omsd);
    c->send_text("hello there");
    expect_refused(*c);
  }
  SUBCASE("send: refused and nothing stored") {
    auto c = connect_client(omsd);
    c->send_json(Json{{"type", "send"},
                      {"rid", 4},
                      {"to", kBob},
                      {"body", "sneaky"},
                      {"client_msg_id", "c-1"}});
    expect_refused(*c);
    CHECK(mailbox_count(omsd, kBob) == 0);
    auto bob = sign_in(omsd, kBob);
    CHECK(int_of(obj_of(bob->welcome(), "mailbox"), "count") == 0);
  }
}

TEST_CASE("signin: no frame is accepted before welcome even after a refused hello") {
  OmsdProcess omsd;
  auto c = connect_client(omsd);
  c->send_json(Json{{"type", "hello"}, {"rid", 1}, {"token", expired_token(omsd.jwt_secret(), kAlice)}});
  // Pipelined right behind the refused hello: must not be acted upon.
  const auto ec = c->try_send_text(boost::json::serialize(Json{
      {"type", "send"}, {"rid", 2}, {"to", kBob}, {"body", "sneaky"}, {"client_msg_id", "c-2"}}));
  (void)ec;  // the server may already have closed
  const Json e = c->recv();
  OMS_CHECK_ERROR(e, "unauthenticated");
  c->expect_closed(4401);
  for (const auto& f : c->queued()) {
    INFO("frame after the refusal: " << to_text(f));
    CHECK(type_of(f) != "sent");
  }
  CHECK(mailbox_count(omsd, kBob) == 0);
}

TEST_CASE("signin: the sign-in timeout closes a connection that sends nothing") {
  OmsdProcess omsd(with_config("[auth]\nsignin_timeout_ms = 300\n"));
  auto silent = connect_client(omsd);
  // Signed-in sessions are not subject to the sign-in timeout.
  auto bob = sign_in(omsd, kBob);
  const auto start = SteadyClock::now();
  const int code = silent->expect_closed(std::nullopt, std::chrono::seconds(5));
  MESSAGE("sign-in timeout close code: " << code);
  // Whatever precedes the close is a refusal, never a welcome.
  for (const auto& f : silent->queued()) {
    INFO("frame before the close: " << to_text(f));
    CHECK(type_of(f) == "error");
    if (type_of(f) == "error") CHECK(str_of(f, "code") == "unauthenticated");
  }
  CHECK(SteadyClock::now() - start < std::chrono::seconds(5));
  CHECK(bob->is_open());
  CHECK(type_of(bob->ping()) == "pong");
}

TEST_CASE("signin: issuer and audience are enforced when configured") {
  OmsdProcess omsd(with_config("[auth]\nissuer = \"oms-tests\"\naudience = \"oms\"\n"));
  const std::string secret = omsd.jwt_secret();
  oms::JwtClaims good;
  good.sub = kBob;
  good.exp = unix_now_s() + 600;
  good.iss = "oms-tests";
  good.aud = "oms";
  {
    auto c = connect_client(omsd);
    CHECK(str_of(c->hello(mint_token(secret, good)), "user") == kBob);
  }
  oms::JwtClaims no_iss = good;
  no_iss.iss.reset();
  expect_token_refused(omsd, mint_token(secret, no_iss));
  oms::JwtClaims wrong_aud = good;
  wrong_aud.aud = "someone-else";
  expect_token_refused(omsd, mint_token(secret, wrong_aud));
}

TEST_CASE("signin: the WebSocket endpoint is /v1/ws") {
  OmsdProcess omsd;
  WsClient c;
  const auto h = c.try_connect(omsd.client_port(), "/v2/elsewhere");
  CHECK(h.http_status != 101);
  WARN(h.http_status == 404);
  WsClient ok;
  CHECK(ok.try_connect(omsd.client_port(), "/v1/ws").http_status == 101);
}
