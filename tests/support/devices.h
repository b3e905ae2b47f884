// Conveniences for the device and receipt tests (protocol.md 4.1, 4.2, 4.5):
// signing in as a named device, the admin device list, and the per-device
// stream of stored messages and receipts.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/harness.h"

namespace oms::test {

// A connected client signed in as `device` of `user` (hello.client.device).
std::unique_ptr<WsClient> sign_in_device(const OmsdProcess& omsd, std::string_view user,
                                         std::string_view device,
                                         const std::vector<std::string>& features = kCapableFeatures);

// Makes `device` known to the server (signs in, then closes normally), so it
// is an active device that holds stored messages back from then on.
void register_device(const OmsdProcess& omsd, std::string_view user, std::string_view device);

// GET /v1/users/{user}/devices → its "devices" array (status CHECKed to be 200).
boost::json::array devices_of(const OmsdProcess& omsd, std::string_view user);
// The entry of `device` in a devices array, if listed.
std::optional<Json> find_device(const boost::json::array& devices, std::string_view device);

// Takes the next `n` frames that are messages or receipts, in arrival order,
// acking each by id without a rid (unless !auto_ack). Other frames stay queued.
std::vector<Json> take_stream(WsClient& c, std::size_t n, bool auto_ack = false,
                              std::optional<std::chrono::milliseconds> timeout = {});

// Sends `n` messages `from` → `to` (bodies prefix0, prefix1, ...), each
// CHECKed to get `sent` with `status`; their ids in order.
std::vector<std::string> send_checked(WsClient& from, std::string_view to, int n, std::string_view status,
                                      std::string_view prefix = "m");

// The welcome frame's mailbox object.
const Json& welcome_mailbox(const WsClient& c);

}  // namespace oms::test
