// Admin additions of protocol.md 4.5, black box: the device list, forgetting
// a device, devices in GET /v1/users/{user}, the enable_delivery_receipts
// policy setting, and omsctl's device commands. Written from the contract alone.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/devices.h"
#include "tests/support/process.h"

using namespace oms::test;
using boost::json::array;
using boost::json::value;

namespace {

const std::string kBobDevices = std::string("/v1/users/") + kBob + "/devices";

bool is_2xx(int status) { return status >= 200 && status < 300; }

std::vector<std::string> names_of(const array& devices) {
  std::vector<std::string> out;
  for (const auto& d : devices) out.push_back(str_of(d.get_object(), "device"));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("admin devices: GET /v1/users/{user}/devices lists every device with its fields") {
  OmsdProcess omsd;
  const std::int64_t t0 = unix_now_ms();
  register_device(omsd, kBob, "phone");
  auto alice = sign_in(omsd, kAlice);
  const Json s1 = alice->send(kBob, "one");
  const Json s2 = alice->send(kBob, "two");
  OMS_CHECK_SENT(s1, "stored");
  OMS_CHECK_SENT(s2, "stored");
  auto desk = sign_in_device(omsd, kBob, "desk");
  desk->receive_messages(2, false);
  OMS_CHECK_TYPE(desk->ack_with_rid({str_of(s1, "id")}), "ok");

  const array devices = devices_of(omsd, kBob);
  INFO("devices: " << to_text(value(devices)));
  CHECK(names_of(devices) == std::vector<std::string>{"desk", "phone"});
  const std::int64_t now = unix_now_ms();
  for (const auto& v : devices) {
    const Json& d = v.get_object();
    INFO("device: " << to_text(d));
    const auto first = parse_iso8601_ms(str_of(d, "first_seen"));
    const auto last = parse_iso8601_ms(str_of(d, "last_seen"));
    REQUIRE(first.has_value());
    REQUIRE(last.has_value());
    CHECK(*first >= t0 - 5);
    CHECK(*first <= *last);
    CHECK(*last <= now + 5);
    CHECK(bool_of(d, "active"));
  }
  REQUIRE(find_device(devices, "desk").has_value());
  REQUIRE(find_device(devices, "phone").has_value());
  const Json dd = *find_device(devices, "desk");
  const Json pd = *find_device(devices, "phone");
  CHECK(int_of(dd, "sessions") == 1);
  CHECK(int_of(pd, "sessions") == 0);
  CHECK(int_of(dd, "unacked") == 1);
  CHECK(int_of(pd, "unacked") == 2);

  // GET /v1/users/{user} lists the devices too.
  const value user(user_info(omsd, kBob));
  const value* listed = find_key(user, "devices");
  REQUIRE_MESSAGE(listed != nullptr, "GET /v1/users/bob lists no devices: " << to_text(user));
  REQUIRE(listed->is_array());
  CHECK(names_of(listed->get_array()) == std::vector<std::string>{"desk", "phone"});

  // Legacy sessions are the device "legacy".
  auto legacy = sign_in(omsd, kBob);
  legacy->barrier();
  const auto l = find_device(devices_of(omsd, kBob), "legacy");
  REQUIRE_MESSAGE(l.has_value(), "the legacy device is not listed");
  CHECK(int_of(*l, "sessions") == 1);
  CHECK(int_of(*l, "unacked") == 2);  // s1 (the phone has not acked it) and s2

  // An offline device's last_seen stays where its last session left it.
  const auto p2 = find_device(devices_of(omsd, kBob), "phone");
  REQUIRE(p2.has_value());
  CHECK(str_of(*p2, "last_seen") == str_of(pd, "last_seen"));
  CHECK(str_of(*p2, "first_seen") == str_of(pd, "first_seen"));

  // A user never seen: an empty list, not an error.
  const HttpResult none = omsd.admin().get("/v1/users/nobody@contoso.com/devices");
  OMS_CHECK_HTTP(none, 200);
  CHECK(none.raw.find("\"devices\"") != std::string::npos);
  if (none.json.is_object()) CHECK(arr_of(none.json.get_object(), "devices").empty());
}

TEST_CASE("admin devices: a device idle past idle_seconds is listed as not active") {
  OmsdProcess omsd(with_config("[devices]\nidle_seconds = 1\nreconcile_seconds = 1\n"));
  register_device(omsd, kBob, "phone");
  auto desk = sign_in_device(omsd, kBob, "desk");
  std::string last;
  const bool idle = wait_until(
      [&] {
        const auto p = find_device(devices_of(omsd, kBob), "phone");
        last = p ? to_text(*p) : "<not listed>";
        return p && !bool_of(*p, "active");
      },
      std::chrono::seconds(10), std::chrono::milliseconds(100));
  CHECK_MESSAGE(idle, "phone still active 10 s after its session ended: " << last);
  // A device with an open session stays active however long it is open.
  const auto d = find_device(devices_of(omsd, kBob), "desk");
  REQUIRE(d.has_value());
  CHECK(bool_of(*d, "active"));
  CHECK(int_of(*d, "sessions") == 1);
}

TEST_CASE("admin devices: DELETE forgets a device, closes its sessions, and it stops holding messages") {
  OmsdProcess omsd(with_config("[devices]\nmax_per_user = 2\nreconcile_seconds = 1\n"));
  register_device(omsd, kBob, "desk");
  register_device(omsd, kBob, "phone");
  auto alice = sign_in(omsd, kAlice);
  alice->take("mailbox.drained");
  const Json m1 = alice->send(kBob, "desk acks this one");
  const Json m2 = alice->send(kBob, "nobody acked this one yet");
  OMS_CHECK_SENT(m1, "stored");
  OMS_CHECK_SENT(m2, "stored");
  auto desk = sign_in_device(omsd, kBob, "desk");
  desk->receive_messages(2, false);
  OMS_CHECK_TYPE(desk->ack_with_rid({str_of(m1, "id")}), "ok");
  CHECK(str_of(alice->take("receipt"), "msg") == str_of(m1, "id"));
  CHECK(mailbox_count(omsd, kBob) == 2);  // m1 still waits for the phone

  auto phone = sign_in_device(omsd, kBob, "phone");
  phone->receive_messages(2, false);  // not acked
  const HttpResult del = omsd.admin().del(kBobDevices + "/phone");
  INFO("DELETE phone: " << del.status << " " << del.raw);
  CHECK(is_2xx(del.status));
  phone->expect_closed(4403);
  CHECK(phone->close_reason() == "device removed");
  CHECK(!find_device(devices_of(omsd, kBob), "phone"));

  // m1 waited only for the phone: gone within a minute (20 s here). m2 still
  // waits for the desk: removing a device purges nothing.
  wait_for_mailbox_count(omsd, kBob, 1, std::chrono::seconds(20));
  alice->expect_no("receipt");
  CHECK(type_of(desk->ping()) == "pong");
  OMS_CHECK_TYPE(desk->ack_with_rid({str_of(m2, "id")}), "ok");
  const Json r2 = alice->take("receipt");
  CHECK(str_of(r2, "msg") == str_of(m2, "id"));
  CHECK(str_of(r2, "state") == "delivered");
  wait_for_mailbox_count(omsd, kBob, 0);

  // The forgotten device's slot is free (max_per_user = 2), and the phone
  // coming back is a device seen for the first time: it gets what is stored.
  auto tablet = sign_in_device(omsd, kBob, "tablet");
  CHECK(type_of(tablet->ping()) == "pong");
  tablet->close();
  OMS_CHECK_HTTP(omsd.admin().del(kBobDevices + "/tablet"), del.status);
  const Json m3 = alice->send(kBob, "for whoever comes");
  OMS_CHECK_SENT(m3, "delivered");  // the desk is online
  phone = sign_in_device(omsd, kBob, "phone");
  CHECK(int_of(welcome_mailbox(*phone), "count") == 1);
  CHECK(str_of(phone->take("message"), "id") == str_of(m3, "id"));

  // Unknown devices and users: 404 with an error body.
  const HttpResult unknown = omsd.admin().del(kBobDevices + "/no-such-device");
  OMS_CHECK_HTTP(unknown, 404);
  CHECK(!unknown.error_code().empty());
  OMS_CHECK_HTTP(omsd.admin().del("/v1/users/nobody@contoso.com/devices/desk"), 404);
  OMS_CHECK_HTTP(omsd.admin().del(kBobDevices + "/tablet"), 404);  // already forgotten
}

TEST_CASE("admin devices: without the admin token, 401 and nothing changes") {
  OmsdProcess omsd;
  auto desk = sign_in_device(omsd, kBob, "desk");
  desk->take("mailbox.drained");
  AdminClient admin = omsd.admin();
  for (const Auth& auth : {Auth::none(), Auth::bearer("not-the-admin-token")}) {
    const HttpResult get = admin.get(kBobDevices, auth);
    OMS_CHECK_HTTP(get, 401);
    CHECK(get.raw.find("desk") == std::string::npos);
    OMS_CHECK_HTTP(admin.del(kBobDevices + "/desk", auth), 401);
  }
  CHECK(type_of(desk->ping()) == "pong");
  CHECK(desk->is_open());
  CHECK(find_device(devices_of(omsd, kBob), "desk").has_value());
}

TEST_CASE("admin devices: the enable_delivery_receipts policy setting") {
  OmsdProcess omsd;
  AdminClient admin = omsd.admin();
  const HttpResult global = admin.get("/v1/policies/Global");
  OMS_CHECK_HTTP(global, 200);
  REQUIRE(global.json.is_object());
  CHECK(bool_of(global.json.get_object(), "enable_delivery_receipts") == true);

  OMS_CHECK_HTTP(admin.post("/v1/policies", Json{{"identity", "Quiet"}}), 201);
  const HttpResult quiet = admin.get("/v1/policies/Quiet");
  REQUIRE(quiet.json.is_object());
  CHECK(bool_of(quiet.json.get_object(), "enable_delivery_receipts") == true);  // the default

  OMS_CHECK_HTTP(admin.patch("/v1/policies/Quiet", Json{{"enable_delivery_receipts", false}}), 200);
  const HttpResult bad = admin.patch("/v1/policies/Quiet", Json{{"enable_delivery_receipts", "no"}});
  CHECK(bad.status >= 400);
  CHECK(bad.status < 500);
  omsd.restart();
  const HttpResult after = omsd.admin().get("/v1/policies/Quiet");
  REQUIRE(after.json.is_object());
  CHECK(bool_of(after.json.get_object(), "enable_delivery_receipts") == false);
  CHECK(bool_of(after.json.get_object(), "enable_im_auto_archiving") == true);

  if (omsctl_binary_path().empty()) return;
  const CommandResult set =
      omsctl(omsd, {"policy", "set", "Global", "--enable-delivery-receipts", "false"});
  INFO(describe(set));
  CHECK(set.exit_code == 0);
  const HttpResult g2 = omsd.admin().get("/v1/policies/Global");
  REQUIRE(g2.json.is_object());
  CHECK(bool_of(g2.json.get_object(), "enable_delivery_receipts") == false);
}

TEST_CASE("admin devices: omsctl device list and device remove") {
  if (omsctl_binary_path().empty()) {
    MESSAGE("omsctl was not built: skipping this test");
    return;
  }
  OmsdProcess omsd;
  register_device(omsd, kBob, "desk");
  auto phone = sign_in_device(omsd, kBob, "phone");
  phone->take("mailbox.drained");

  const CommandResult list = omsctl(omsd, {"device", "list", kBob});
  {
    INFO(describe(list));
    CHECK(list.exit_code == 0);
    CHECK(list.out.find("desk") != std::string::npos);
    CHECK(list.out.find("phone") != std::string::npos);
  }
  const CommandResult json = omsctl(omsd, {"device", "list", kBob}, /*json=*/true);
  {
    INFO(describe(json));
    CHECK(json.exit_code == 0);
    boost::system::error_code ec;
    const value v = boost::json::parse(json.out, ec);
    CHECK(!ec);
    const value* d = ec ? nullptr : find_key(v, "devices");
    CHECK((d != nullptr && d->is_array() && names_of(d->get_array()) ==
                                                 std::vector<std::string>{"desk", "phone"}));
  }

  const CommandResult rm = omsctl(omsd, {"device", "remove", kBob, "phone"});
  {
    INFO(describe(rm));
    CHECK(rm.exit_code == 0);
  }
  phone->expect_closed(4403);
  CHECK(phone->close_reason() == "device removed");
  CHECK(names_of(devices_of(omsd, kBob)) == std::vector<std::string>{"desk"});

  const CommandResult again = omsctl(omsd, {"device", "remove", kBob, "phone"});
  INFO(describe(again));
  CHECK(again.exit_code > 0);
  CHECK(!again.timed_out);
}
