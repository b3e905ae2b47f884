// The format upgrade on open: a store written by main before devices and
// receipts (format version 1; data/v1-store-main-55299c0.tar.gz, made with
// that commit's storage layer: 6 messages for bob, one acked, 1 for dave,
// dedup entries, policy NoArchive granted to erin) opens as version 2 with
// everything in it, and devices and receipts work on it.
#include <cstdlib>
#include <string>

#include <doctest/doctest.h>
#include <rocksdb/db.h>

#include "storage/keys.h"
#include "tests/unit/storage/store_test_util.h"

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;

namespace {

// Unpacks the fixture into `dir`; returns the store's path.
std::string unpack_v1(const TempDir& dir) {
  const std::string cmd = std::string("tar -xzf '") + OMS_TEST_DATA_DIR + "/v1-store-main-55299c0.tar.gz' -C '" +
                          dir.path().string() + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return (dir.path() / "store").string();
}

std::uint32_t format_version_of(const std::string& path) {
  rocksdb::DB* raw = nullptr;
  std::vector<std::string> names;
  rocksdb::Options o;
  REQUIRE(rocksdb::DB::ListColumnFamilies(o, path, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> desc;
  for (auto& n : names) desc.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  REQUIRE(rocksdb::DB::OpenForReadOnly(o, path, desc, &handles, &raw).ok());
  std::string v;
  REQUIRE(raw->Get(rocksdb::ReadOptions(), std::string(keys::kFormatVersionKey), &v).ok());
  for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
  delete raw;
  return keys::decode_format_version(v).value_or(0);
}

}  // namespace

TEST_SUITE("storage") {

TEST_CASE("upgrade: a version-1 store written by main opens as version 2 with everything in it") {
  TempDir dir("oms-storage-upgrade");
  const std::string path = unpack_v1(dir);
  REQUIRE(format_version_of(path) == 1);
  StoreOptions o;
  o.path = path;
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
  auto again = open_ok(o);  // and opens again as version 2
  CHECK(again->mailboxes().stats("bob@contoso.com").count == 6);
  CHECK(read_for(again->mailboxes(), "bob@contoso.com", "desk").empty());
}

}  // TEST_SUITE
