// Devices (contract 4.1) in the store: acks per device, deletion once every
// active device acked, idle and forgotten devices, the device cap.
#include <doctest/doctest.h>

#include "tests/unit/storage/store_test_util.h"

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;

TEST_SUITE("storage") {

TEST_CASE("devices: every device gets every message, it leaves once both acked") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-devices");
    auto store = open_mailboxes(backend.options_in(dir));
    REQUIRE(*sign_in_wait(*store, "bob", "desk"));
    REQUIRE(*sign_in_wait(*store, "bob", "phone"));
    sign_out_wait(*store, "bob", "desk");
    sign_out_wait(*store, "bob", "phone");
    std::vector<std::uint64_t> seqs;
    for (int i = 0; i < 5; ++i) seqs.push_back(append_ok(*store, message("bob", "alice", "m" + std::to_string(i))));

    CHECK(seqs_of(read_for(*store, "bob", "desk")) == seqs);
    REQUIRE(ack_wait(*store, "bob", "desk", seqs).is_ok());
    CHECK(read_for(*store, "bob", "desk").empty());         // never again for desk
    CHECK(seqs_of(read_for(*store, "bob", "phone")) == seqs);  // the same five, in order
    CHECK(store->stats("bob").count == 5);
    auto sum = store->summary("bob", "phone");
    REQUIRE(sum.is_ok());
    CHECK(sum->count == 5);
    CHECK(store->summary("bob", "desk")->count == 0);

    REQUIRE(ack_wait(*store, "bob", "desk", seqs).is_ok());  // a repeat changes nothing
    CHECK(store->stats("bob").count == 5);
    REQUIRE(ack_wait(*store, "bob", "phone", seqs).is_ok());
    CHECK(store->stats("bob").count == 0);
    CHECK(read_all(*store, "bob").empty());
  });
}

TEST_CASE("devices: one device deletes at its ack (v1 behaviour), and a new device gets what is left") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-devices-one");
    auto store = open_mailboxes(backend.options_in(dir));
    REQUIRE(sign_in_wait(*store, "bob", std::string(proto::kLegacyDevice)).is_ok());
    const auto a = append_ok(*store, message("bob", "alice", "a"));
    const auto b = append_ok(*store, message("bob", "alice", "b"));
    REQUIRE(*ack_wait(*store, "bob", "", {a}) == 1);
    CHECK(store->stats("bob").count == 1);
    REQUIRE(*sign_in_wait(*store, "bob", "phone"));  // first seen: gets what is still stored
    CHECK(seqs_of(read_for(*store, "bob", "phone")) == std::vector<std::uint64_t>{b});
  });
}

TEST_CASE("devices: an idle device stops holding messages back, reconcile deletes what waits for nobody") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-devices-idle");
    ManualClock clock;
    StoreOptions o = backend.options_in(dir);
    o.clock = &clock;
    o.device_idle_ms = 10'000;
    auto store = open_mailboxes(o);
    REQUIRE(sign_in_wait(*store, "bob", "desk").is_ok());
    REQUIRE(sign_in_wait(*store, "bob", "old").is_ok());
    sign_out_wait(*store, "bob", "old");
    const auto m1 = append_ok(*store, message("bob", "alice", "1"));
    const auto m2 = append_ok(*store, message("bob", "alice", "2"));
    REQUIRE(ack_wait(*store, "bob", "desk", {m1}).is_ok());
    CHECK(store->stats("bob").count == 2);  // "old" is active: m1 waits for it

    clock.advance_ms(10'001);  // "old" is idle now; desk has a session
    auto devs = store->devices("bob");
    REQUIRE(devs.is_ok());
    REQUIRE(devs->size() == 2);
    CHECK((*devs)[0].device == "desk");
    CHECK((*devs)[0].active);
    CHECK((*devs)[0].sessions == 1);
    CHECK_FALSE((*devs)[1].active);
    REQUIRE(*reconcile_wait(*store) == 1);  // m1: everyone active acked it
    CHECK(store->stats("bob").count == 1);
    REQUIRE(ack_wait(*store, "bob", "desk", {m2}).is_ok());  // deleted at once now
    CHECK(store->stats("bob").count == 0);
  });
}

// Sign-outs in one batch are written together (PostgreSQL: before the batch
// next reads devices, or with its COMMIT): an ack later in the same batch
// must see the signed-out device's fresh last_seen, or it takes the device
// for idle and deletes what the device has not acked; and sign-outs after
// the batch's last read must still be written.
TEST_CASE("devices: sign-outs in one batch with an ack: the ack sees them, and all are written") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-devices-sign-outs");
    ManualClock clock;
    StoreOptions o = backend.options_in(dir);
    o.clock = &clock;
    o.device_idle_ms = 30'000;
    std::uint64_t m1 = 0;
    {
      auto store = open_mailboxes(o);
      REQUIRE(sign_in_wait(*store, "bob", "desk").is_ok());
      REQUIRE(sign_in_wait(*store, "bob", "old").is_ok());
      for (int i = 0; i < 20; ++i) REQUIRE(sign_in_wait(*store, "u" + std::to_string(i), "phone").is_ok());
      m1 = append_ok(*store, message("bob", "alice", "1"));
    }  // (reopened below without sessions, the writer held at its first batch)
    WriterGate gate(o);
    auto store = open_mailboxes(o);
    std::promise<Result<AppendResult>> blocker;
    auto blocker_f = blocker.get_future();
    store->append(message("zed", "alice", "hold"), [&](Result<AppendResult> r) { blocker.set_value(r); });
    gate.wait_entered();       // the writer is inside batch 1; what follows is batch 2
    // Every device's last_seen is older than device_idle_ms now, and older
    // than the RocksDB store's last_seen write interval (60 s).
    clock.advance_ms(60'001);

    std::vector<std::promise<Result<std::uint64_t>>> out(22);
    auto done = [&](int i) { return [&, i](Result<std::uint64_t> r) { out[i].set_value(r); }; };
    std::promise<Result<bool>> desk;
    store->device_signed_in("bob", "desk", true, [&](Result<bool> r) { desk.set_value(r); });
    store->device_signed_out("bob", "old", done(20));
    store->ack("bob", "desk", {m1}, done(21));
    for (int i = 0; i < 20; ++i) store->device_signed_out("u" + std::to_string(i), "phone", done(i));
    gate.release();
    REQUIRE(blocker_f.get().is_ok());
    auto desk_f = desk.get_future();
    REQUIRE(wait_result(desk_f).is_ok());
    for (auto& p : out) {
      auto f = p.get_future();
      REQUIRE(wait_result(f).is_ok());
    }
    CHECK(gate.writes() == 2);  // everything after the blocker was one batch
    CHECK(store->stats("bob").count == 1);  // "old" signed out just now: active, m1 waits for it
    for (int i = 0; i < 20; ++i) {
      auto devs = store->devices("u" + std::to_string(i));
      REQUIRE(devs.is_ok());
      REQUIRE(devs->size() == 1);
      CHECK((*devs)[0].sessions == 0);
      CHECK((*devs)[0].active);  // last_seen = the sign-out's time
    }
  });
}

TEST_CASE("devices: forgetting a device releases what only it held back, and keeps nothing of it") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-devices-forget");
    auto store = open_mailboxes(backend.options_in(dir));
    REQUIRE(sign_in_wait(*store, "bob", "desk").is_ok());
    REQUIRE(sign_in_wait(*store, "bob", "phone").is_ok());
    const auto m1 = append_ok(*store, message("bob", "alice", "1"));
    const auto m2 = append_ok(*store, message("bob", "alice", "2"));
    REQUIRE(ack_wait(*store, "bob", "desk", {m1, m2}).is_ok());
    REQUIRE(ack_wait(*store, "bob", "phone", {m2}).is_ok());
    CHECK(store->stats("bob").count == 1);
    CHECK(forget_wait(*store, "bob", "nope").status().code() == Code::kNotFound);
    CHECK(store->device_known("bob", "phone"));
    REQUIRE(*forget_wait(*store, "bob", "phone") == 1);  // m1 waited for phone only
    CHECK_FALSE(store->device_known("bob", "phone"));
    CHECK(store->device_known("bob", "desk"));
    CHECK_FALSE(store->device_known("carol", "desk"));
    CHECK(store->stats("bob").count == 0);
    auto devs = store->devices("bob");
    REQUIRE(devs->size() == 1);
    CHECK((*devs)[0].device == "desk");
  });
}

TEST_CASE("devices: at most max_devices_per_user active named devices") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-devices-cap");
    ManualClock clock;
    StoreOptions o = backend.options_in(dir);
    o.clock = &clock;
    o.max_devices_per_user = 2;
    o.device_idle_ms = 1000;
    auto store = open_mailboxes(o);
    REQUIRE(sign_in_wait(*store, "bob", "a").is_ok());
    REQUIRE(sign_in_wait(*store, "bob", "b").is_ok());
    CHECK(sign_in_wait(*store, "bob", "c").status().code() == Code::kTooManyDevices);
    REQUIRE(sign_in_wait(*store, "bob", "a").is_ok());  // a known active device signs in again
    REQUIRE(sign_in_wait(*store, "bob", std::string(proto::kLegacyDevice)).is_ok());  // not counted
    REQUIRE(sign_in_wait(*store, "bob", "older", /*capable=*/false).is_ok());  // holds nothing: not counted
    sign_out_wait(*store, "bob", "b");
    clock.advance_ms(1001);  // b idle
    REQUIRE(sign_in_wait(*store, "bob", "c").is_ok());
    CHECK(sign_in_wait(*store, "bob", "b").status().code() == Code::kTooManyDevices);
  });
}

TEST_CASE("devices: acks kept per device survive a reopen, open sessions do not") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-devices-reopen");
    StoreOptions o = backend.options_in(dir);
    std::vector<std::uint64_t> seqs;
    {
      auto store = open_mailboxes(o);
      REQUIRE(sign_in_wait(*store, "bob", "desk").is_ok());
      REQUIRE(sign_in_wait(*store, "bob", "phone").is_ok());
      for (int i = 0; i < 3; ++i) seqs.push_back(append_ok(*store, message("bob", "alice", "m")));
      REQUIRE(ack_wait(*store, "bob", "desk", {seqs[0], seqs[2]}).is_ok());
    }
    auto store = open_mailboxes(o);
    CHECK(seqs_of(read_for(*store, "bob", "desk")) == std::vector<std::uint64_t>{seqs[1]});
    CHECK(seqs_of(read_for(*store, "bob", "phone")) == seqs);
    auto devs = store->devices("bob");
    REQUIRE(devs->size() == 2);
    CHECK((*devs)[0].sessions == 0);
    CHECK((*devs)[0].active);  // within idle_seconds of its last sign-in
  });
}

}  // TEST_SUITE
