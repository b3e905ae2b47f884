// Conveniences shared by the integration tests: signed-in clients and the
// admin look-ups tests use to check what the server stored.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/admin_client.h"
#include "tests/support/json_util.h"
#include "tests/support/omsd_process.h"
#include "tests/support/process.h"
#include "tests/support/tokens.h"
#include "tests/support/ws_client.h"
#include "tests/support/wait.h"

#include <doctest/doctest.h>

namespace oms::test {

// A connected client that has not sent anything yet.
std::unique_ptr<WsClient> connect_client(const OmsdProcess& omsd);
// A connected, signed-in client (hello → welcome), capable by default.
std::unique_ptr<WsClient> sign_in(const OmsdProcess& omsd, std::string_view user,
                                  const std::vector<std::string>& features = kCapableFeatures);
// A signed-in older client (no "offline-messages" feature).
std::unique_ptr<WsClient> sign_in_older(const OmsdProcess& omsd, std::string_view user);

// GET /v1/users/{user} (status CHECKed to be 200).
Json user_info(const OmsdProcess& omsd, std::string_view user);
// mailbox.count of GET /v1/users/{user}.
std::int64_t mailbox_count(const OmsdProcess& omsd, std::string_view user);

// Polls mailbox.count until it is `n` (acks may complete after their reply);
// CHECKs it got there.
void wait_for_mailbox_count(const OmsdProcess& omsd, std::string_view user, std::int64_t n,
                            std::chrono::milliseconds timeout = std::chrono::seconds(5));

// The ids of a list of message frames, in order.
std::vector<std::string> ids_of(const std::vector<Json>& frames);
// The bodies of a list of message frames, in order.
std::vector<std::string> bodies_of(const std::vector<Json>& frames);

}  // namespace oms::test

namespace oms::test {

inline constexpr const char* kAlice = "alice@contoso.com";
inline constexpr const char* kBob = "bob@contoso.com";
inline constexpr const char* kCarol = "carol@contoso.com";
inline constexpr const char* kDave = "dave@contoso.com";

// Polls GET /v1/users/{user} until its presence is `state`; CHECKs it got there.
void wait_for_presence(const OmsdProcess& omsd, std::string_view user, std::string_view state,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));

// omsctl --admin URL --data-dir DIR [--json] ARGS... against `omsd`.
CommandResult omsctl(const OmsdProcess& omsd, const std::vector<std::string>& args, bool json = false);
// A command's exit status and output, for a failed check's message.
std::string describe(const CommandResult& r);
// The value of one sample of GET /metrics (its name with labels, as
// printed); throws when absent.
double metric(const OmsdProcess& omsd, const std::string& sample);

// A "from" list ([{"user":..,"count":..}, ...]) as user -> count.
std::map<std::string, std::int64_t> from_counts(const boost::json::array& from);

// The first value stored under `key` anywhere inside `v` (depth first).
const boost::json::value* find_key(const boost::json::value& v, std::string_view key);

}  // namespace oms::test

// Assertions on replies that print the whole frame when they fail.
#define OMS_CHECK_TYPE(frame, type_)                                          \
  do {                                                                        \
    const ::oms::test::Json& oms_f_ = (frame);                                \
    INFO("frame: " << ::oms::test::to_text(oms_f_));                          \
    CHECK(::oms::test::type_of(oms_f_) == (type_));                           \
  } while (0)

#define OMS_CHECK_SENT(reply, status_)                                        \
  do {                                                                        \
    const ::oms::test::Json& oms_r_ = (reply);                                \
    INFO("reply: " << ::oms::test::to_text(oms_r_));                          \
    CHECK(::oms::test::type_of(oms_r_) == "sent");                            \
    if (::oms::test::type_of(oms_r_) == "sent") {                             \
      CHECK(::oms::test::str_of(oms_r_, "status") == (status_));              \
      CHECK(!::oms::test::str_of(oms_r_, "id").empty());                      \
    }                                                                         \
  } while (0)

#define OMS_CHECK_ERROR(reply, code_)                                         \
  do {                                                                        \
    const ::oms::test::Json& oms_r_ = (reply);                                \
    INFO("reply: " << ::oms::test::to_text(oms_r_));                          \
    CHECK(::oms::test::type_of(oms_r_) == "error");                           \
    if (::oms::test::type_of(oms_r_) == "error") {                            \
      CHECK(::oms::test::str_of(oms_r_, "code") == (code_));                  \
      CHECK(::oms::test::has(oms_r_, "message"));                             \
    }                                                                         \
  } while (0)

#define OMS_CHECK_HTTP(result, status_)                                       \
  do {                                                                        \
    const ::oms::test::HttpResult& oms_h_ = (result);                         \
    INFO("HTTP " << oms_h_.status << " body: " << oms_h_.raw);                \
    CHECK(oms_h_.status == (status_));                                        \
  } while (0)
