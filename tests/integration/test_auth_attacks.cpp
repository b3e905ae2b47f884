// Authentication and authorization attacks beyond the sign-in cases of
// test_signin.cpp: identity only ever comes from the verified token, a user
// reaches only their own mailbox, and the admin surface is not reachable from
// the client listener or with a client's credentials.
#include <doctest/doctest.h>

#include <cstdio>

#include "tests/support/harness.h"

using namespace oms::test;
using boost::json::array;
using boost::json::value;

namespace {

void expect_token_refused(const OmsdProcess& omsd, const std::string& token) {
  auto c = connect_client(omsd);
  c->send_json(Json{{"type", "hello"},
                    {"rid", 1},
                    {"token", token},
                    {"client", Json{{"features", array{"offline-messages"}}}}});
  OMS_CHECK_ERROR(c->recv(), "unauthenticated");
  c->expect_closed(4401);
}

Json hs256_header() { return Json{{"alg", "HS256"}, {"typ", "JWT"}}; }

// A message id as the server writes them: 16 lower-case hex digits.
std::string hex_id(std::uint64_t n) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(n));
  return buf;
}

}  // namespace

TEST_CASE("auth attack: an oversize but correctly signed token is refused") {
  OmsdProcess omsd;
  Json payload{{"sub", kBob}, {"exp", unix_now_s() + 600}, {"pad", std::string(9000, 'p')}};
  expect_token_refused(omsd, hand_signed_token(hs256_header(), payload, omsd.jwt_secret()));
  // Control: the same token without the padding signs in.
  payload.erase("pad");
  auto c = connect_client(omsd);
  CHECK(str_of(c->hello(hand_signed_token(hs256_header(), payload, omsd.jwt_secret())), "user") == kBob);
}

TEST_CASE("auth attack: alg spelled differently, or a header that is not an object") {
  OmsdProcess omsd;
  const Json payload{{"sub", kBob}, {"exp", unix_now_s() + 600}};
  for (const char* alg : {"hs256", "HS256 ", "none", "None", ""}) {
    CAPTURE(alg);
    expect_token_refused(omsd, hand_signed_token(Json{{"alg", alg}, {"typ", "JWT"}}, payload, omsd.jwt_secret()));
  }
  // No alg at all.
  expect_token_refused(omsd, hand_signed_token(Json{{"typ", "JWT"}}, payload, omsd.jwt_secret()));
}

TEST_CASE("auth attack: the admin token is not a client credential and a client token is not an admin one") {
  OmsdProcess omsd;
  expect_token_refused(omsd, omsd.admin_token());
  const std::string client_token = omsd.token(kAlice);
  const HttpResult r = omsd.admin().get("/v1/policies", Auth::bearer(client_token));
  OMS_CHECK_HTTP(r, 401);
  // A token signed with the admin token as the HMAC key is no better.
  expect_token_refused(omsd, mint_token(omsd.admin_token(), kAlice));
}

TEST_CASE("auth attack: the admin API is not served on the client listener") {
  OmsdProcess omsd;
  AdminClient on_client_port(omsd.client_port(), omsd.admin_token());
  for (const char* target : {"/v1/policies", "/v1/users/bob@contoso.com", "/metrics",
                             "/v1/configuration/im"}) {
    CAPTURE(target);
    const HttpResult r = on_client_port.get(target);
    CHECK(r.status == 404);
    CHECK(r.raw.find("Global") == std::string::npos);
    CHECK(r.raw.find("oms_") == std::string::npos);
  }
  const HttpResult del = on_client_port.request(http::verb::delete_, "/v1/users/bob@contoso.com/mailbox");
  CHECK(del.status >= 400);
  // A request with a body is refused before it is read (the connection may
  // end without a reply).
  try {
    const HttpResult patch = on_client_port.patch("/v1/configuration/im", Json{{"enable_offline_im", false}});
    CHECK(patch.status >= 400);
  } catch (const TestError&) {
  } catch (const boost::system::system_error&) {
  }
  // Nothing changed.
  const HttpResult im = omsd.admin().get("/v1/configuration/im");
  OMS_CHECK_HTTP(im, 200);
  CHECK(im.json.at("enable_offline_im") == value(true));
}

TEST_CASE("auth attack: identity fields in frames never override the token") {
  OmsdProcess omsd;
  // A hello naming someone else signs in as the token's user.
  auto c = connect_client(omsd);
  const std::string alice_token = omsd.token(kAlice);
  c->send_json(Json{{"type", "hello"},
                    {"rid", 1},
                    {"token", alice_token},
                    {"user", kCarol},
                    {"sub", kCarol},
                    {"client", Json{{"features", array{"offline-messages"}}}}});
  const Json w = c->recv();
  OMS_CHECK_TYPE(w, "welcome");
  CHECK(str_of(w, "user") == kAlice);
  c->take("mailbox.drained");

  // A send that claims to come from Carol is either refused or sent as
  // Alice; never as Carol.
  const Json r = c->request(Json{{"type", "send"},
                                 {"to", kBob},
                                 {"body", "forged?"},
                                 {"client_msg_id", "f1"},
                                 {"from", kCarol},
                                 {"user", kCarol}});
  const std::string t = type_of(r);
  CHECK((t == "sent" || t == "error"));
  if (t == "sent") {
    auto bob = sign_in(omsd, kBob);
    const Json m = bob->take("message");
    CHECK(str_of(m, "from") == kAlice);
    CHECK(str_of(m, "body") == "forged?");
  } else {
    OMS_CHECK_ERROR(r, "bad_request");
    CHECK(mailbox_count(omsd, kBob) == 0);
  }
  // Carol's view: she sent nothing and has nothing.
  CHECK(mailbox_count(omsd, kCarol) == 0);
}

TEST_CASE("auth attack: acking ids of another mailbox in bulk deletes nothing") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  std::vector<std::string> bobs_ids;
  for (int i = 0; i < 5; ++i) bobs_ids.push_back(str_of(alice->send(kBob, "for bob " + std::to_string(i)), "id"));
  auto mallory = sign_in(omsd, kCarol);
  array ids;
  for (const auto& id : bobs_ids) ids.emplace_back(id);
  // Guesses around the real ids too.
  for (int i = 0; i < 64; ++i) ids.emplace_back(hex_id(static_cast<std::uint64_t>(i)));
  const Json ok = mallory->request(Json{{"type", "ack"}, {"ids", ids}});
  OMS_CHECK_TYPE(ok, "ok");
  CHECK(mailbox_count(omsd, kBob) == 5);
  auto bob = sign_in(omsd, kBob);
  CHECK(ids_of(bob->receive_messages(5)) == bobs_ids);
}
