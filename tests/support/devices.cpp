#include "tests/support/devices.h"

namespace oms::test {

std::unique_ptr<WsClient> sign_in_device(const OmsdProcess& omsd, std::string_view user,
                                         std::string_view device,
                                         const std::vector<std::string>& features) {
  auto c = connect_client(omsd);
  c->hello_device(omsd.token(user), device, features);
  return c;
}

void register_device(const OmsdProcess& omsd, std::string_view user, std::string_view device) {
  auto c = sign_in_device(omsd, user, device);
  c->barrier();  // the server has handled the sign-in completely
  c->close();
}

boost::json::array devices_of(const OmsdProcess& omsd, std::string_view user) {
  const std::string target = "/v1/users/" + std::string(user) + "/devices";
  const HttpResult r = omsd.admin().get(target);
  CHECK_MESSAGE(r.status == 200, "GET " << target << " -> " << r.status << " " << r.raw);
  if (!r.json.is_object()) throw TestError("GET " + target + ": not a JSON object: " + r.raw);
  return arr_of(r.json.get_object(), "devices");
}

std::vector<std::string> send_checked(WsClient& from, std::string_view to, int n, std::string_view status,
                                      std::string_view prefix) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    const Json r = from.send(to, std::string(prefix) + std::to_string(i));
    OMS_CHECK_SENT(r, status);
    ids.push_back(str_of(r, "id"));
  }
  return ids;
}

std::optional<Json> find_device(const boost::json::array& devices, std::string_view device) {
  for (const auto& d : devices)
    if (d.is_object() && has(d.get_object(), "device") && str_of(d.get_object(), "device") == device)
      return d.get_object();
  return std::nullopt;
}

std::vector<Json> take_stream(WsClient& c, std::size_t n, bool auto_ack,
                              std::optional<std::chrono::milliseconds> timeout) {
  const auto deadline = SteadyClock::now() + timeout.value_or(c.timeout());
  std::vector<Json> out;
  while (out.size() < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0)
      throw TestError("stream: wanted " + std::to_string(n) + " messages/receipts, got " +
                      std::to_string(out.size()));
    Json f = c.take_any({"message", "receipt"}, left);
    if (auto_ack) c.ack({str_of(f, "id")});
    out.push_back(std::move(f));
  }
  return out;
}

const Json& welcome_mailbox(const WsClient& c) { return obj_of(c.welcome(), "mailbox"); }

}  // namespace oms::test
