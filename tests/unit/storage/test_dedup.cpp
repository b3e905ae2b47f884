// Idempotent appends: (sender, client_msg_id) within the dedup window.
#include <doctest/doctest.h>

#include <set>

#include <rocksdb/db.h>

#include "storage/keys.h"
#include "tests/unit/storage/store_test_util.h"

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;

namespace {

// Entries in the dedup column family of a closed RocksDB store.
std::size_t dedup_entries(const std::string& path) {
  std::vector<std::string> names;
  REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> desc;
  for (auto& n : names) desc.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  REQUIRE(rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, desc, &handles, &db).ok());
  std::size_t n = 0;
  for (auto* h : handles) {
    if (h->GetName() != keys::kCfDedup) continue;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
  return n;
}

// Entries in the dedup table of a PostgreSQL store.
std::size_t pg_dedup_entries(const StoreOptions& o) {
  auto c = pg::Connection::open(o.postgres_dsn);
  REQUIRE_MESSAGE(c.is_ok(), c.status().to_string());
  auto r = (*c)->exec("SELECT count(*)::int8 FROM dedup");
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  return static_cast<std::size_t>(r->i64(0, 0));
}

}  // namespace

TEST_SUITE("storage") {

TEST_CASE("dedup: the same sender and id returns the first result and stores nothing") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-dedup");
    ManualClock clock;
    StoreOptions o = backend.options_in(dir);
    o.clock = &clock;
    o.dedup_window_ms = 1000;
    {
      auto store = open_mailboxes(o);
      AppendRequest first = message("bob", "alice", "hello", "id-1");
      first.dedup_payload = "first reply";
      auto r1 = append_wait(*store, first);
      REQUIRE(r1.is_ok());
      CHECK_FALSE(r1->duplicate);
      const auto sent_at = r1->sent_at_ms;

      clock.advance_ms(999);
      AppendRequest again = message("carol", "alice", "a different body", "id-1");
      again.dedup_payload = "second reply";
      auto r2 = append_wait(*store, again);
      REQUIRE(r2.is_ok());
      CHECK(r2->duplicate);
      CHECK(r2->seq == r1->seq);
      CHECK(r2->sent_at_ms == sent_at);
      CHECK(r2->mailbox == "bob");
      CHECK(r2->dedup_payload == "first reply");
      CHECK(read_all(*store, "bob").size() == 1);
      CHECK(read_all(*store, "carol").empty());
      CHECK(store->counters().duplicates == 1);
      CHECK(store->counters().appended == 1);

      // Another sender may use the same id; no id means no dedup.
      auto r3 = append_wait(*store, message("bob", "dave", "hello", "id-1"));
      REQUIRE(r3.is_ok());
      CHECK_FALSE(r3->duplicate);
      CHECK(r3->seq != r1->seq);
      append_ok(*store, message("bob", "alice", "hello"));
      append_ok(*store, message("bob", "alice", "hello"));
      CHECK(read_all(*store, "bob").size() == 4);

      // Acked or not, the first result stands within the window.
      CHECK(*ack_wait(*store, "bob", {r1->seq}) == 1);
      auto r4 = append_wait(*store, message("bob", "alice", "hello", "id-1"));
      REQUIRE(r4.is_ok());
      CHECK(r4->duplicate);
      CHECK(r4->seq == r1->seq);
    }
    {
      // Dedup entries are durable.
      auto store = open_mailboxes(o);
      auto r = append_wait(*store, message("bob", "alice", "hello", "id-1"));
      REQUIRE(r.is_ok());
      CHECK(r->duplicate);

      // After the window the same id stores anew.
      clock.advance_ms(1);  // 1000 ms after the first
      auto fresh = append_wait(*store, message("bob", "alice", "hello again", "id-1"));
      REQUIRE(fresh.is_ok());
      CHECK_FALSE(fresh->duplicate);
      CHECK(fresh->seq > r->seq);
      auto dup = append_wait(*store, message("bob", "alice", "hello again", "id-1"));
      REQUIRE(dup.is_ok());
      CHECK(dup->duplicate);
      CHECK(dup->seq == fresh->seq);
    }
  });
}

TEST_CASE("dedup: a burst of the same send stores exactly one message") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-dedup-burst");
    auto store = open_mailboxes(backend.options_in(dir));
    constexpr int kN = 200;
    CompletionLatch latch(kN);
    std::mutex mu;
    std::set<std::uint64_t> seqs;
    std::atomic<int> firsts{0};
    for (int i = 0; i < kN; ++i)
      store->append(message("bob", "alice", "once", "burst"), [&](Result<AppendResult> r) {
        CHECK(r.is_ok());
        if (r) {
          if (!r->duplicate) ++firsts;
          std::lock_guard<std::mutex> lock(mu);
          seqs.insert(r->seq);
        }
        latch.count_down();
      });
    latch.wait();
    CHECK(firsts == 1);
    CHECK(seqs.size() == 1);
    CHECK(read_all(*store, "bob").size() == 1);
  });
}

TEST_CASE("dedup: a refused append leaves no dedup entry behind") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-dedup-refused");
    StoreOptions o = backend.options_in(dir);
    o.max_messages = 1;
    auto store = open_mailboxes(o);
    append_ok(*store, message("bob", "alice", "fills it"));
    CHECK(append_wait(*store, message("bob", "alice", "x", "id-9")).status().code() ==
          Code::kMailboxFull);
    CHECK(*purge_wait(*store, "bob") == 1);
    auto r = append_wait(*store, message("bob", "alice", "x", "id-9"));
    REQUIRE(r.is_ok());
    CHECK_FALSE(r->duplicate);
  });
}

// The entries left are counted where each back end keeps them.
TEST_CASE("dedup: the sweep removes entries older than the window") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-dedup-sweep");
    ManualClock clock;
    StoreOptions o = backend.options_in(dir);
    o.clock = &clock;
    o.dedup_window_ms = 1000;
    {
      auto store = open_mailboxes(o);
      for (int i = 0; i < 10; ++i)
        append_ok(*store, message("bob", "alice", "x", fmt::format("old-{}", i)));
      clock.advance_ms(600);
      for (int i = 0; i < 5; ++i)
        append_ok(*store, message("bob", "alice", "x", fmt::format("new-{}", i)));
      clock.advance_ms(400);  // the old ones are exactly one window old
      CHECK(*sweep_wait(*store) == 0);  // messages do not expire for 30 days
      // Gone entries are gone for find_duplicate too; the others are found.
      CHECK_FALSE(store->find_duplicate("alice", "old-0")->has_value());
      CHECK(store->find_duplicate("alice", "new-0")->has_value());
    }
    if (o.backend == Backend::kPostgres) CHECK(pg_dedup_entries(o) == 5);
    else CHECK(dedup_entries(rocks_path(dir)) == 5);
  });
}

}  // TEST_SUITE
