// What the admin API does with devices (contract 4.5), for its handlers in
// admin_routes.cpp:
//   GET    /v1/users/{user}/devices           devices_json
//   DELETE /v1/users/{user}/devices/{device}  remove_device
//   GET    /v1/users/{user}                   devices_json too
//
// Internal to the admin API. Both block (store reads, a forget write): call
// them on the admin pool, where every admin request runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/array.hpp>

#include "common/status.h"

namespace oms::server {

struct ServerContext;

// The user's devices as the admin API shows them, sorted by name:
// [{"device","first_seen","last_seen","active","capable","sessions","unacked"}]
// (times ISO-8601 UTC with ms; `unacked`: messages and receipts stored that
// the device has not acked, one mailbox scan per device). An unknown user
// has none.
Result<boost::json::array> devices_json(ServerContext& ctx, const std::string& user);

// A name a device can have: one a client may give, or the shared `legacy`.
bool valid_device_param(std::string_view device);

struct DeviceRemoved {
  std::uint64_t released = 0;       // messages and receipts that waited for it alone
  std::size_t sessions_closed = 0;  // its sessions, closed 4403 "device removed"
};
// Forgets `device` of `user` (durably: it stops holding messages back, and
// what then waits for no active device is deleted), then closes its
// sessions. In that order: a session of the device that signs in meanwhile
// either is closed here or signs in as a new device. not_found when the user
// has no such device.
Result<DeviceRemoved> remove_device(ServerContext& ctx, const std::string& user, const std::string& device);

// Closes the sessions of `user` signed in as `device` (kLegacyDevice: those
// without a name) with 4403 "device removed"; how many there were.
std::size_t close_device_sessions(ServerContext& ctx, const std::string& user, std::string_view device);

}  // namespace oms::server
