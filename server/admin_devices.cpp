// Devices in the admin API (contract 4.5); see admin_devices.h.
#include "server/admin_devices.h"

#include <future>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "common/iso8601.h"
#include "common/protocol.h"
#include "server/context.h"
#include "server/session_inbox.h"
#include "storage/mailbox_store.h"

namespace oms::server {

namespace json = boost::json;

namespace {

// The close a forgotten device's sessions get (contract 4.1).
constexpr std::uint16_t kCloseDeviceRemoved = 4403;
constexpr std::string_view kDeviceRemovedReason = "device removed";

AdminResponse json_response(unsigned status, const json::value& v) {
  return {status, "application/json", json::serialize(v)};
}

AdminResponse store_error(const Status& s) {
  const unsigned status = s.code() == Code::kNotFound      ? 404
                          : s.code() == Code::kUnavailable ? 503
                                                           : 500;
  return admin_error(status, code_name(s.code()), s.message());
}

// A name a device can have: one a client may give, or the shared `legacy`.
bool valid_device_param(std::string_view device) {
  return device == proto::kLegacyDevice || proto::valid_device_name(device);
}

}  // namespace

Result<json::array> devices_json(ServerContext& ctx, const std::string& user) {
  auto devices = ctx.store->devices(user);
  if (!devices) return devices.status();
  json::array out;
  for (const auto& d : *devices) {
    // What waits for this device: messages and receipts it has not acked.
    auto waiting = ctx.store->summary(user, d.device);
    if (!waiting) return waiting.status();
    out.push_back(json::object{{"device", d.device},
                               {"first_seen", format_iso8601_ms(d.first_seen_ms)},
                               {"last_seen", format_iso8601_ms(d.last_seen_ms)},
                               {"active", d.active},
                               {"capable", d.capable},
                               {"sessions", d.sessions},
                               {"unacked", waiting->count + waiting->receipts}});
  }
  return out;
}

std::size_t close_device_sessions(ServerContext& ctx, const std::string& user, std::string_view device) {
  auto sessions = ctx.registry.sessions_of_device(user, device);
  for (const auto& s : sessions) s->post_close(kCloseDeviceRemoved, std::string(kDeviceRemovedReason));
  ctx.metrics.operator_session_closes.fetch_add(sessions.size(), std::memory_order_relaxed);
  return sessions.size();
}

AdminResponse list_devices(const AdminCall& call) {
  const std::string& user = call.param("user");
  auto devices = devices_json(call.ctx, user);
  if (!devices) return store_error(devices.status());
  return json_response(200, json::object{{"user", user}, {"devices", std::move(*devices)}});
}

// Forgets the device (durably: it stops holding messages back, and what
// then waits for no active device is deleted), then closes its sessions. In
// that order: a session of the device that signs in meanwhile either is
// closed here or signs in as a new device.
AdminResponse remove_device(const AdminCall& call) {
  ServerContext& ctx = call.ctx;
  const std::string& user = call.param("user");
  const std::string& device = call.param("device");
  if (!valid_device_param(device))
    return admin_error(400, "bad_request",
                       fmt::format("'{}' is not a device name (1-64 bytes of [A-Za-z0-9._-], or legacy)", device));
  std::promise<Result<std::uint64_t>> done;
  auto fut = done.get_future();
  ctx.store->forget_device(user, device, [&done](Result<std::uint64_t> r) { done.set_value(std::move(r)); });
  auto released = fut.get();
  if (!released) {
    if (released.status().code() == Code::kNotFound)
      return admin_error(404, "not_found", fmt::format("{} has no device '{}'", user, device));
    return store_error(released.status());
  }
  const std::size_t closed = close_device_sessions(ctx, user, device);
  return json_response(200, json::object{{"user", user},
                                         {"device", device},
                                         {"removed", true},
                                         {"released", *released},
                                         {"sessions_closed", closed}});
}

}  // namespace oms::server
