// The format upgrade on open, to the current version (3: no mailbox meta
// records, the totals counted from the records at open):
//  - a store written by main before devices and receipts (format version 1;
//    data/v1-store-main-55299c0.tar.gz, made with that commit's storage
//    layer: 6 messages for bob, one acked, 1 for dave, dedup entries, policy
//    NoArchive granted to erin) opens with everything in it, and devices and
//    receipts work on it;
//  - a store written by main with devices and receipts (format version 2;
//    data/v2-store-main-b7e7ec9.tar.gz, made with that commit's storage
//    layer: bob's devices desk and phone, 5 messages from alice wanting
//    receipts, desk acked the first two and phone the first, so the first is
//    gone and desk's ack of the second is kept with its receipt marker;
//    alice holds the 2 delivered receipts; 1 message for dave; all in the
//    WAL, as after a crash) opens with the same totals, kept acks and
//    receipts, and without its meta records.
#include <cstdlib>
#include <memory>
#include <string>

#include <doctest/doctest.h>
#include <rocksdb/db.h>

#include "common/clock.h"
#include "storage/keys.h"
#include "tests/unit/storage/store_test_util.h"

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;

namespace {

// The fixtures' dedup entries live dedup_window_ms (24 h) from when they were
// written, and their messages a ttl: each test runs on a clock a minute
// after its fixture was made (the files' mtimes in the tarball), not on
// today's date, or it would fail a day after the fixture was committed.
constexpr std::int64_t kV1WrittenMs = 1796290500'000;  // 2026-12-03 09:35 UTC
constexpr std::int64_t kV2WrittenMs = 1796318340'000;  // 2026-12-03 17:19 UTC

// Unpacks a fixture into `dir`; returns the store's path.
std::string unpack(const TempDir& dir, const std::string& fixture) {
  const std::string cmd = std::string("tar -xzf '") + OMS_TEST_DATA_DIR + "/" + fixture + "' -C '" +
                          dir.path().string() + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return (dir.path() / "store").string();
}
std::string unpack_v1(const TempDir& dir) { return unpack(dir, "v1-store-main-55299c0.tar.gz"); }

// The format version, and how many records the mailbox_meta family holds.
struct OnDisk {
  std::uint32_t version = 0;
  std::size_t meta_records = 0;
};
OnDisk on_disk(const std::string& path) {
  rocksdb::DB* raw = nullptr;
  std::vector<std::string> names;
  rocksdb::Options o;
  REQUIRE(rocksdb::DB::ListColumnFamilies(o, path, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> desc;
  for (auto& n : names) desc.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  REQUIRE(rocksdb::DB::OpenForReadOnly(o, path, desc, &handles, &raw).ok());
  OnDisk out;
  std::string v;
  REQUIRE(raw->Get(rocksdb::ReadOptions(), std::string(keys::kFormatVersionKey), &v).ok());
  out.version = keys::decode_format_version(v).value_or(0);
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] != keys::kCfMailboxMeta) continue;
    std::unique_ptr<rocksdb::Iterator> it(raw->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++out.meta_records;
  }
  for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
  delete raw;
  return out;
}
std::uint32_t format_version_of(const std::string& path) { return on_disk(path).version; }

}  // namespace

TEST_SUITE("storage") {

TEST_CASE("upgrade: a version-1 store written by main opens as the current version with everything in it") {
  TempDir dir("oms-storage-upgrade");
  const std::string path = unpack_v1(dir);
  REQUIRE(format_version_of(path) == 1);
  ManualClock clock(kV1WrittenMs);
  StoreOptions o;
  o.path = path;
  o.clock = &clock;
  {
    auto store = open_ok(o);
    MailboxStore& mb = store->mailboxes();
    CHECK(mb.last_seq() == 8);
    auto bob = read_all(mb, "bob@contoso.com");
    REQUIRE(bob.size() == 6);
    CHECK(bob[0].body == "v1 message 1");
    CHECK(bob[5].kind == proto::MessageKind::kMissed);
    CHECK(bob[5].reason == "dnd");
    CHECK(mb.stats("bob@contoso.com").count == 6);
    CHECK(mb.stats("bob@contoso.com").receipts == 0);
    CHECK(mb.stats("dave@contoso.com").count == 1);
    auto sum = mb.summary("bob@contoso.com", "desk");
    REQUIRE(sum.is_ok());
    CHECK(sum->count == 6);
    CHECK(sum->missed == 1);
    // A resend of a v1 idempotent send still gets its first result.
    auto dup = append_wait(mb, message("bob@contoso.com", "alice@contoso.com", "again", "v1-a-1"));
    REQUIRE(dup.is_ok());
    CHECK(dup->duplicate);
    CHECK(dup->seq == bob[0].seq);
    // Policies and grants are there.
    auto eff = store->policies().effective_policy_for("erin@contoso.com");
    CHECK(eff.policy.identity == "NoArchive");
    CHECK_FALSE(eff.policy.enable_im_auto_archiving);
    // Devices work on upgraded mailboxes: two devices, both get all six.
    REQUIRE(sign_in_wait(mb, "bob@contoso.com", "desk").is_ok());
    REQUIRE(sign_in_wait(mb, "bob@contoso.com", "phone").is_ok());
    REQUIRE(ack_wait(mb, "bob@contoso.com", "desk", seqs_of(bob)).is_ok());
    CHECK(read_for(mb, "bob@contoso.com", "desk").empty());
    CHECK(seqs_of(read_for(mb, "bob@contoso.com", "phone")) == seqs_of(bob));
    CHECK(mb.stats("bob@contoso.com").count == 6);
  }
  CHECK(format_version_of(path) == keys::kFormatVersion);
  CHECK(on_disk(path).meta_records == 0);
  auto again = open_ok(o);  // and opens again, counting the same totals
  CHECK(again->mailboxes().stats("bob@contoso.com").count == 6);
  CHECK(read_for(again->mailboxes(), "bob@contoso.com", "desk").empty());
}

TEST_CASE("upgrade: a version-2 store (devices, kept acks, receipts) opens as version 3 with the same totals") {
  TempDir dir("oms-storage-upgrade-v2");
  const std::string path = unpack(dir, "v2-store-main-b7e7ec9.tar.gz");
  REQUIRE(format_version_of(path) == 2);
  ManualClock clock(kV2WrittenMs);
  StoreOptions o;
  o.path = path;
  o.clock = &clock;
  const std::string bob = "bob@contoso.com", alice = "alice@contoso.com";
  auto check = [&](MailboxStore& mb) {
    CHECK(mb.last_seq() == 8);
    CHECK(mb.stats(bob).count == 4);
    CHECK(mb.stats(bob).bytes == 4 * std::string("v2 message 2").size());
    CHECK(mb.stats("dave@contoso.com").count == 1);
    CHECK(mb.stats(alice).receipts == 2);
    // desk's kept ack of message 2 still holds it back from desk only.
    CHECK(seqs_of(read_for(mb, bob, "desk")) == std::vector<std::uint64_t>{3, 4, 5});
    CHECK(seqs_of(read_for(mb, bob, "phone")) == std::vector<std::uint64_t>{2, 3, 4, 5});
    auto receipts = read_all(mb, alice);
    REQUIRE(receipts.size() == 2);
    REQUIRE(receipts[0].receipt);
    CHECK(receipts[0].receipt->msg_seq == 1);
    CHECK(receipts[1].receipt->msg_seq == 2);
  };
  {
    auto store = open_ok(o);
    check(store->mailboxes());
  }
  const OnDisk after = on_disk(path);
  CHECK(after.version == keys::kFormatVersion);
  CHECK(after.meta_records == 0);
  auto store = open_ok(o);
  MailboxStore& mb = store->mailboxes();
  check(mb);
  // The totals go on from what was counted: phone's ack of 2 deletes it
  // (desk acked it before), and its receipt marker goes with it.
  REQUIRE(sign_in_wait(mb, bob, "desk").is_ok());
  REQUIRE(sign_in_wait(mb, bob, "phone").is_ok());
  REQUIRE(ack_wait(mb, bob, "phone", {2}).is_ok());
  CHECK(mb.stats(bob).count == 3);
  CHECK(mb.stats(alice).receipts == 2);  // (no second receipt for 2)
  CHECK(seqs_of(read_for(mb, bob, "desk")) == std::vector<std::uint64_t>{3, 4, 5});
  // A resend of a version-2 idempotent send still gets its first result.
  auto dup = append_wait(mb, message(bob, alice, "again", "v2-a-3"));
  REQUIRE(dup.is_ok());
  CHECK(dup->duplicate);
  CHECK(dup->seq == 3);
}

}  // TEST_SUITE
