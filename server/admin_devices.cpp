// Devices in the admin API (contract 4.5); see admin_devices.h.
#include "server/admin_devices.h"

#include <future>

#include <boost/json.hpp>

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

bool valid_device_param(std::string_view device) {
  return device == proto::kLegacyDevice || proto::valid_device_name(device);
}

Result<DeviceRemoved> remove_device(ServerContext& ctx, const std::string& user, const std::string& device) {
  std::promise<Result<std::uint64_t>> done;
  auto fut = done.get_future();
  ctx.store->forget_device(user, device, [&done](Result<std::uint64_t> r) { done.set_value(std::move(r)); });
  auto released = fut.get();
  if (!released) return released.status();
  return DeviceRemoved{*released, close_device_sessions(ctx, user, device)};
}

std::size_t close_device_sessions(ServerContext& ctx, const std::string& user, std::string_view device) {
  auto sessions = ctx.registry.sessions_of_device(user, device);
  for (const auto& s : sessions) s->post_close(kCloseDeviceRemoved, std::string(kDeviceRemovedReason));
  ctx.metrics.operator_session_closes.fetch_add(sessions.size(), std::memory_order_relaxed);
  return sessions.size();
}

}  // namespace oms::server
