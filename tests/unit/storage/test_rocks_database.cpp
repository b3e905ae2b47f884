// RocksDB only (rocks_database.cpp): the on-disk format version check at
// open, and checkpoints, whose copy is opened as a RocksDB directory.
#include <doctest/doctest.h>

#include <rocksdb/db.h>

#include "storage/keys.h"
#include "tests/unit/storage/store_test_util.h"

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;

TEST_SUITE("storage") {

TEST_CASE("store: refuses to open an unknown on-disk format version") {
  TempDir dir("oms-storage-format");
  { auto store = open_ok(rocks_options_in(dir)); }
  {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options o;
    std::vector<std::string> names;
    REQUIRE(rocksdb::DB::ListColumnFamilies(o, rocks_path(dir), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> desc;
    for (auto& n : names) desc.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    REQUIRE(rocksdb::DB::Open(o, rocks_path(dir), desc, &handles, &raw).ok());
    REQUIRE(raw->Put(rocksdb::WriteOptions(), std::string(keys::kFormatVersionKey),
                     keys::encode_format_version(keys::kFormatVersion + 1))
                .ok());
    for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
    delete raw;
  }
  auto r = open_store(rocks_options_in(dir));
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kFailedPrecondition);
  CHECK(r.status().message().find("version " + std::to_string(keys::kFormatVersion + 1)) != std::string::npos);
}

TEST_CASE("store: a checkpoint is an openable copy") {
  TempDir dir("oms-storage-checkpoint");
  auto store = open_ok(rocks_options_in(dir));
  const auto seq = append_ok(store->mailboxes(), message("bob", "alice", "keep me"));
  const std::string cp = (dir.path() / "cp").string();
  REQUIRE(store->checkpoint(cp).is_ok());
  CHECK_FALSE(store->checkpoint(cp).is_ok());  // must not exist
  append_ok(store->mailboxes(), message("bob", "alice", "after the checkpoint"));

  StoreOptions o = rocks_options_in(dir);
  o.path = cp;
  auto copy = open_mailboxes(o);
  auto msgs = read_all(*copy, "bob");
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].seq == seq);
  CHECK(msgs[0].body == "keep me");
  CHECK(copy->last_seq() == seq);
}

}  // TEST_SUITE
