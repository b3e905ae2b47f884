// The admin API's device routes (contract 4.5), beside admin_routes.cpp:
//   GET    /v1/users/{user}/devices           list_devices
//   DELETE /v1/users/{user}/devices/{device}  remove_device
// and the device list that GET /v1/users/{user} shows too.
//
// Internal to the admin API. Handlers block (store reads, a forget write):
// they run on the admin pool like every admin request.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <boost/json/array.hpp>

#include "common/status.h"
#include "server/admin_routes.h"

namespace oms::server {

// The user's devices as the admin API shows them, sorted by name:
// [{"device","first_seen","last_seen","active","capable","sessions","unacked"}]
// (times ISO-8601 UTC with ms; `unacked`: messages and receipts stored that
// the device has not acked, a mailbox scan per device). An unknown user has
// none.
Result<boost::json::array> devices_json(ServerContext& ctx, const std::string& user);

// Closes the sessions of `user` signed in as `device` (kLegacyDevice: those
// without a name) with 4403 "device removed"; how many there were.
std::size_t close_device_sessions(ServerContext& ctx, const std::string& user, std::string_view device);

AdminResponse list_devices(const AdminCall& call);
AdminResponse remove_device(const AdminCall& call);

}  // namespace oms::server
