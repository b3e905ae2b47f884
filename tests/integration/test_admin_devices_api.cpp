// The admin endpoint's devices (contract 4.5): GET /v1/users/{user}/devices,
// DELETE /v1/users/{user}/devices/{device} (the device stops holding messages
// back, its sessions close 4403), the devices and receipts in GET
// /v1/users/{user}, omsctl `device list|remove` and `user show`, and the
// device and receipt metrics.
#include <doctest/doctest.h>

#include "tests/support/devices.h"
#include "tests/support/harness.h"

using namespace oms::test;
using boost::json::array;
using boost::json::value;

namespace {

constexpr int kCloseDeviceRemoved = 4403;

// GET /v1/users/{user}/devices -> device name -> its object.
std::map<std::string, Json> devices_by_name(const OmsdProcess& omsd, std::string_view user) {
  std::map<std::string, Json> out;
  for (const auto& d : devices_of(omsd, user)) out[str_of(d.get_object(), "device")] = d.get_object();
  return out;
}

}  // namespace

TEST_CASE("admin devices: listed with times, sessions, active and what each has not acked") {
  OmsdProcess omsd;
  const HttpResult none = omsd.admin().get("/v1/users/nobody@contoso.com/devices");
  OMS_CHECK_HTTP(none, 200);
  CHECK(none.json.is_object());
  if (none.json.is_object()) CHECK(arr_of(none.json.get_object(), "devices").empty());
  CHECK(arr_of(user_info(omsd, "nobody@contoso.com"), "devices").empty());

  // Bob has two devices, both offline; Alice (no device name: legacy)
  // leaves him three messages.
  sign_in_device(omsd, kBob, "desk")->close();
  sign_in_device(omsd, kBob, "phone")->close();
  auto alice = sign_in(omsd, kAlice);
  const auto ids = send_checked(*alice, kBob, 3, "stored", "message ");

  // The desk signs in and acks all three (ok: durable).
  auto desk = sign_in_device(omsd, kBob, "desk");
  const auto got = desk->receive_messages(3, /*auto_ack=*/false);
  CHECK(ids_of(got) == ids);
  CHECK(str_of(desk->ack_with_rid(ids), "type") == "ok");

  auto bob = devices_by_name(omsd, kBob);
  REQUIRE(bob.size() == 2);
  REQUIRE(bob.count("desk") == 1);
  REQUIRE(bob.count("phone") == 1);
  for (const auto& [name, d] : bob) {
    const std::string& name_ = name;  // (INFO captures; clang 14 cannot capture a binding)
    INFO(name_);
    CHECK(is_iso8601_ms(str_of(d, "first_seen")));
    CHECK(is_iso8601_ms(str_of(d, "last_seen")));
    CHECK(str_of(d, "first_seen") <= str_of(d, "last_seen"));
    CHECK(bool_of(d, "active") == true);  // within [devices] idle_seconds
  }
  CHECK(int_of(bob["desk"], "sessions") == 1);
  // (The phone's sign-out is recorded after its close: wait for it.)
  CHECK(wait_until([&] { return int_of(devices_by_name(omsd, kBob)["phone"], "sessions") == 0; },
                   std::chrono::seconds(10)));
  CHECK(int_of(bob["desk"], "unacked") == 0);
  CHECK(int_of(bob["phone"], "unacked") == 3);  // the phone still has to get them

  // GET /v1/users/bob: the same devices; the mailbox counts the messages
  // still stored (the phone has not acked them), no receipts.
  const Json info = user_info(omsd, kBob);
  const auto& listed = arr_of(info, "devices");
  REQUIRE(listed.size() == 2);
  CHECK(str_of(listed[0].get_object(), "device") == "desk");  // sorted by name
  CHECK(int_of(listed[1].get_object(), "unacked") == 3);
  CHECK(int_of(obj_of(info, "mailbox"), "count") == 3);
  CHECK(int_of(obj_of(info, "mailbox"), "receipts") == 0);
  for (const auto& s : arr_of(info, "sessions")) CHECK(str_of(s.get_object(), "device") == "desk");

  // Alice got three `delivered` receipts at the desk's ack: receipts, not
  // messages, in her mailbox; her legacy device has them unacked.
  const Json a = user_info(omsd, kAlice);
  CHECK(int_of(obj_of(a, "mailbox"), "count") == 0);
  CHECK(int_of(obj_of(a, "mailbox"), "receipts") == 3);
  auto alices = devices_by_name(omsd, kAlice);
  REQUIRE(alices.count("legacy") == 1);
  CHECK(int_of(alices["legacy"], "unacked") == 3);
  CHECK(int_of(alices["legacy"], "sessions") == 1);
  CHECK(wait_until([&] { return metric(omsd, "oms_receipts_written_total{state=\"delivered\"}") == 3; },
                   std::chrono::seconds(10)));
  CHECK(metric(omsd, "oms_receipts_written_total{state=\"expired\"}") == 0);
}

TEST_CASE("admin devices: DELETE forgets a device, closes its sessions 4403 and releases what it held") {
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();
  auto desk = sign_in_device(omsd, kBob, "desk");
  auto phone = sign_in_device(omsd, kBob, "phone");
  auto phone_too = sign_in_device(omsd, kCarol, "phone");  // another user's device of that name
  CHECK(metric(omsd, "oms_sessions_by_device{kind=\"named\"}") == 3);
  CHECK(metric(omsd, "oms_sessions_by_device{kind=\"legacy\"}") == 0);
  auto alice = sign_in(omsd, kAlice);
  CHECK(metric(omsd, "oms_sessions_by_device{kind=\"legacy\"}") == 1);

  // Delivered live to both of Bob's devices; only the desk acks.
  const auto ids = send_checked(*alice, kBob, 2, "delivered", "message ");
  CHECK(ids_of(desk->receive_messages(2, /*auto_ack=*/false)) == ids);
  CHECK(str_of(desk->ack_with_rid(ids), "type") == "ok");
  CHECK(mailbox_count(omsd, kBob) == 2);  // the phone holds them back
  const double forgotten_before = metric(omsd, "oms_devices_forgotten_total");

  const HttpResult r = admin.del("/v1/users/bob@contoso.com/devices/phone");
  OMS_CHECK_HTTP(r, 200);
  REQUIRE(r.json.is_object());
  const Json& o = r.json.get_object();
  CHECK(bool_of(o, "removed") == true);
  CHECK(int_of(o, "released") == 2);
  CHECK(int_of(o, "sessions_closed") == 1);
  CHECK(phone->expect_closed(kCloseDeviceRemoved) == kCloseDeviceRemoved);

  // Nothing waits for the phone any more; the desk and Carol's phone go on.
  wait_for_mailbox_count(omsd, kBob, 0);
  auto bob = devices_by_name(omsd, kBob);
  CHECK(bob.size() == 1);
  CHECK(bob.count("desk") == 1);
  CHECK(str_of(desk->ping(), "type") == "pong");
  CHECK(str_of(phone_too->ping(), "type") == "pong");
  CHECK(devices_by_name(omsd, kCarol).count("phone") == 1);
  CHECK(wait_until([&] { return metric(omsd, "oms_devices_forgotten_total") == forgotten_before + 1; },
                   std::chrono::seconds(10)));
  CHECK(wait_until([&] { return metric(omsd, "oms_devices_released_total") >= 2; }, std::chrono::seconds(10)));

  // Unknown now (and unknown device or user): 404 not_found; a name no
  // device can have: 400.
  for (const char* target : {"/v1/users/bob@contoso.com/devices/phone", "/v1/users/bob@contoso.com/devices/tv",
                             "/v1/users/nobody@contoso.com/devices/desk"}) {
    INFO(target);
    const HttpResult nf = admin.del(target);
    OMS_CHECK_HTTP(nf, 404);
    CHECK(nf.error_code() == "not_found");
  }
  const HttpResult bad = admin.del("/v1/users/bob@contoso.com/devices/bad%20name");
  OMS_CHECK_HTTP(bad, 400);
  CHECK(bad.error_code() == "bad_request");
  OMS_CHECK_HTTP(admin.request(http::verb::post, "/v1/users/bob@contoso.com/devices", value(Json{})), 405);
  OMS_CHECK_HTTP(admin.get("/v1/users/bob@contoso.com/devices/desk"), 405);

  // The phone may come back: a new device, given what is still stored (nothing).
  auto again = sign_in_device(omsd, kBob, "phone");
  CHECK(devices_by_name(omsd, kBob).count("phone") == 1);
  CHECK(int_of(devices_by_name(omsd, kBob)["phone"], "unacked") == 0);
}

TEST_CASE("admin devices: removing legacy closes the sessions without a device name only") {
  OmsdProcess omsd;
  auto old1 = sign_in(omsd, kBob);
  auto old2 = sign_in_older(omsd, kBob);
  auto desk = sign_in_device(omsd, kBob, "desk");
  CHECK(int_of(devices_by_name(omsd, kBob)["legacy"], "sessions") == 2);
  const HttpResult r = omsd.admin().del("/v1/users/bob@contoso.com/devices/legacy");
  OMS_CHECK_HTTP(r, 200);
  if (r.json.is_object()) CHECK(int_of(r.json.get_object(), "sessions_closed") == 2);
  CHECK(old1->expect_closed(kCloseDeviceRemoved) == kCloseDeviceRemoved);
  CHECK(old2->expect_closed(kCloseDeviceRemoved) == kCloseDeviceRemoved);
  CHECK(str_of(desk->ping(), "type") == "pong");
  CHECK(devices_by_name(omsd, kBob).count("legacy") == 0);
}

TEST_CASE("admin devices: omsctl device list, device remove and user show") {
  if (omsctl_binary_path().empty()) {
    MESSAGE("omsctl was not built: skipping this test");
    return;
  }
  OmsdProcess omsd;
  auto desk = sign_in_device(omsd, kBob, "desk");
  auto tablet = sign_in_device(omsd, kBob, "tablet");
  {
    const CommandResult r = omsctl(omsd, {"device", "list", kBob});
    INFO(describe(r));
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("DEVICE") != std::string::npos);
    CHECK(r.out.find("UNACKED") != std::string::npos);
    CHECK(r.out.find("desk") != std::string::npos);
    CHECK(r.out.find("tablet") != std::string::npos);
  }
  {
    const CommandResult r = omsctl(omsd, {"device", "list", kBob}, /*json=*/true);
    INFO(describe(r));
    CHECK(r.exit_code == 0);
    boost::system::error_code ec;
    const value v = boost::json::parse(r.out, ec);
    REQUIRE(!ec);
    const value* devices = find_key(v, "devices");
    REQUIRE(devices != nullptr);
    CHECK(devices->as_array().size() == 2);
  }
  {
    const CommandResult r = omsctl(omsd, {"user", "show", kBob});
    INFO(describe(r));
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Devices") != std::string::npos);
    CHECK(r.out.find("tablet") != std::string::npos);
    CHECK(r.out.find("Receipts") != std::string::npos);
  }
  {
    const CommandResult r = omsctl(omsd, {"device", "remove", kBob, "tablet"});
    INFO(describe(r));
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("1 session(s) closed") != std::string::npos);
  }
  CHECK(tablet->expect_closed(kCloseDeviceRemoved) == kCloseDeviceRemoved);
  CHECK(devices_by_name(omsd, kBob).count("tablet") == 0);
  {
    const CommandResult r = omsctl(omsd, {"device", "remove", kBob, "tablet"});  // 404
    INFO(describe(r));
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("not_found") != std::string::npos);
  }
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"device"}, {"device", "list"}, {"device", "remove", kBob}, {"device", "rename", kBob, "x"}}) {
    const CommandResult r = omsctl(omsd, args);
    INFO(describe(r));
    CHECK(r.exit_code == 2);
  }
  CHECK(str_of(desk->ping(), "type") == "pong");
}
