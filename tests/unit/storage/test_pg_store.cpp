// PostgreSQL only: what the behavioural tests (one suite, every back end)
// cannot show with one store. Two stores open on one database stand for
// two omsd nodes of a cluster (contract 5): quotas and dedup stay exact
// across them, and a mailbox written by both reads back in seq order
// while it is being written (a reader paging with after_seq never skips a
// seq that commits later). Also: the schema, the per-mailbox gapless
// sequence, and how open fails.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <thread>

#include "storage/pg_connection.h"
#include "tests/unit/storage/store_test_util.h"

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;

namespace {

std::unique_ptr<pg::Connection> connect(const StoreOptions& o) {
  auto c = pg::Connection::open(o.postgres_dsn);
  REQUIRE_MESSAGE(c.is_ok(), c.status().to_string());
  return std::move(c).value();
}

}  // namespace

TEST_SUITE("storage") {

// Appends-only batches lock their mailbox rows in their last round trip
// (postgres.late_locks, pg_mailbox_appends.cpp) or, as every other batch,
// in their first: each cross-node case below runs both ways.
bool late_locks_subcase() {
  bool late = true;
  SUBCASE("late locks") { late = true; }
  SUBCASE("early locks") { late = false; }
  return late;
}

TEST_CASE("postgres: two nodes on one database: exact quota, dedup once, every seq read in order while written") {
  TempDir dir("oms-pg-two-nodes");
  StoreOptions o = pg_options_in(dir);
  o.max_messages = 600;
  o.postgres_late_locks = late_locks_subcase();
  auto a = open_mailboxes(o);
  auto b = open_mailboxes(o);

  // A reader pages through bob's mailbox with after_seq while both nodes
  // append: were a seq to commit after a higher one of the same mailbox,
  // the reader would step over it.
  std::atomic<bool> writing{true};
  std::vector<std::uint64_t> paged;
  std::thread reader([&] {
    std::uint64_t after = 0;
    for (;;) {
      const bool last_round = !writing.load();
      auto page = a->read("bob", "", after, 1000);
      REQUIRE(page.is_ok());
      for (const auto& m : *page) {
        paged.push_back(m.seq);
        after = m.seq;
      }
      if (last_round) break;
    }
  });

  // 4 threads per node, 150 appends each (1200 > 600), each waiting for
  // its append before the next (many small batches on both nodes, so that
  // their transactions interleave), every other one with a client_msg_id
  // that the other node sends too.
  constexpr int kThreadsPerNode = 4, kEach = 150;
  std::atomic<int> ok{0}, full{0}, dup{0}, other{0};
  std::vector<std::thread> threads;
  for (int node = 0; node < 2; ++node)
    for (int t = 0; t < kThreadsPerNode; ++t)
      threads.emplace_back([&, node, t] {
        MailboxStore& s = node == 0 ? *a : *b;
        for (int i = 0; i < kEach; ++i) {
          std::string id = i % 2 == 0 ? fmt::format("shared-{}-{}", t, i) : std::string();
          auto r = append_wait(s, message("bob", "alice", fmt::format("{}-{}-{}", node, t, i), id));
          if (r && r->duplicate) ++dup;
          else if (r) ++ok;
          else if (r.status().code() == Code::kMailboxFull) ++full;
          else ++other;
        }
      });
  for (auto& th : threads) th.join();
  writing = false;
  reader.join();

  CHECK(other == 0);
  CHECK(ok == 600);
  CHECK(a->stats("bob").count == 600);
  CHECK(b->stats("bob").count == 600);
  const auto all = read_all(*b, "bob");
  REQUIRE(all.size() == 600);
  CHECK(paged == seqs_of(all));  // nothing skipped, nothing twice, in order
  for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1].seq < all[i].seq);
  // Each shared id stored at most once, whichever node took it.
  auto c = connect(o);
  auto ids = c->exec("SELECT client_msg_id, count(*)::int8 FROM messages WHERE client_msg_id <> '' "
                     "GROUP BY client_msg_id HAVING count(*) > 1");
  REQUIRE(ids.is_ok());
  CHECK(ids->size() == 0);
  // The per-mailbox sequence has no gaps: 1..600.
  auto mseq = c->exec("SELECT min(mseq), max(mseq), count(DISTINCT mseq)::int8 FROM messages WHERE mailbox = 'bob'");
  REQUIRE(mseq.is_ok());
  CHECK(mseq->i64(0, 0) == 1);
  CHECK(mseq->i64(0, 1) == 600);
  CHECK(mseq->i64(0, 2) == 600);
  // The totals in the row (with their deltas folded) are exact too.
  auto row = c->exec("SELECT count FROM mailboxes WHERE mailbox = 'bob'");
  REQUIRE(row.is_ok());
  CHECK(row->i64(0, 0) == 600);
  const std::uint64_t late = a->counters().late_lock_batches + b->counters().late_lock_batches;
  if (o.postgres_late_locks) CHECK(late > 0);
  else CHECK(late == 0);
  MESSAGE("late-lock batches ", late, ", reruns ", a->counters().late_lock_reruns + b->counters().late_lock_reruns);
}

TEST_CASE("postgres: a duplicate sent to both nodes at once is stored once") {
  TempDir dir("oms-pg-dedup-race");
  StoreOptions o = pg_options_in(dir);
  o.postgres_late_locks = late_locks_subcase();
  auto a = open_mailboxes(o);
  auto b = open_mailboxes(o);
  constexpr int kRounds = 50;
  for (int i = 0; i < kRounds; ++i) {
    std::promise<Result<AppendResult>> pa, pb;
    auto fa = pa.get_future(), fb = pb.get_future();
    const std::string id = fmt::format("id-{}", i);
    a->append(message("bob", "alice", "x", id), [&](Result<AppendResult> r) { pa.set_value(r); });
    b->append(message("bob", "alice", "x", id), [&](Result<AppendResult> r) { pb.set_value(r); });
    auto ra = wait_result(fa), rb = wait_result(fb);
    REQUIRE(ra.is_ok());
    REQUIRE(rb.is_ok());
    CHECK(ra->duplicate != rb->duplicate);
    CHECK(ra->seq == rb->seq);
  }
  CHECK(read_all(*a, "bob").size() == kRounds);
  MESSAGE("late-lock batches ", a->counters().late_lock_batches + b->counters().late_lock_batches, ", reruns ",
          a->counters().late_lock_reruns + b->counters().late_lock_reruns);
}

TEST_CASE("postgres: late locks: another node filling the mailbox or storing the id between the read and the locks, the batch runs again under locks") {
  // Node a's batch reads bob's totals and the dedup entry without locks;
  // then (the write hook, called between that read and the locked round
  // trip) node b takes bob's last places, or stores the same
  // client_msg_id. a's check under the locks must fail and its batch run
  // again under early locks: mailbox_full, or b's result as a duplicate.
  TempDir dir("oms-pg-late-race");
  StoreOptions o = pg_options_in(dir);
  o.max_messages = 4;
  auto b = open_mailboxes(o);
  std::function<void()> meanwhile;
  StoreOptions oa = o;
  oa.inject_write_error = [&]() -> Status {
    if (meanwhile) std::exchange(meanwhile, nullptr)();
    return Status::ok();
  };
  auto a = open_mailboxes(oa);
  REQUIRE(append_wait(*a, message("bob", "alice", "1")).is_ok());  // (creates bob's row: early locks)
  REQUIRE(append_wait(*a, message("bob", "alice", "2")).is_ok());
  CHECK(a->counters().late_lock_batches == 1);
  auto c = connect(o);
  auto row = [&] {
    auto r = c->exec("SELECT next_mseq, count FROM mailboxes WHERE mailbox = 'bob'");
    REQUIRE(r.is_ok());
    return std::pair{r->i64(0, 0), r->i64(0, 1)};
  };

  SUBCASE("the last places") {
    meanwhile = [&] {
      REQUIRE(append_wait(*b, message("bob", "carol", "3")).is_ok());
      REQUIRE(append_wait(*b, message("bob", "carol", "4")).is_ok());
    };
    auto r = append_wait(*a, message("bob", "alice", "5"));
    CHECK(meanwhile == nullptr);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == Code::kMailboxFull);
    CHECK(a->counters().late_lock_reruns == 1);
    const auto all = read_all(*a, "bob");
    REQUIRE(all.size() == 4);
    CHECK(all[3].body == "4");
    CHECK(all[3].mseq == 4);
    CHECK(row() == std::pair<std::int64_t, std::int64_t>{5, 4});  // no gap, exact count
  }
  SUBCASE("the same client_msg_id") {
    AppendResult first;
    meanwhile = [&] {
      auto r = append_wait(*b, message("bob", "alice", "x", "dup-1"));
      REQUIRE(r.is_ok());
      first = *r;
    };
    auto r = append_wait(*a, message("bob", "alice", "x", "dup-1"));
    CHECK(meanwhile == nullptr);
    REQUIRE(r.is_ok());
    CHECK(r->duplicate);
    CHECK(r->seq == first.seq);
    CHECK(a->counters().late_lock_reruns == 1);
    CHECK(read_all(*a, "bob").size() == 3);
    CHECK(row() == std::pair<std::int64_t, std::int64_t>{4, 3});
  }
}

TEST_CASE("postgres: late locks: a client_msg_id sent to two mailboxes by both batch paths at once is stored once") {
  // Node b's batch to carol (a new mailbox: early locks) holds the key's
  // lock from its first round trip and writes the dedup entry at its end;
  // meanwhile (b's write hook, its transaction open) node a's late-lock
  // batch sends the same (from, client_msg_id) to bob. a must wait for b's
  // key lock, then find b's entry: one message, a duplicate with b's seq.
  TempDir dir("oms-pg-late-cross");
  StoreOptions o = pg_options_in(dir);
  auto a = open_mailboxes(o);
  REQUIRE(append_wait(*a, message("bob", "alice", "first")).is_ok());  // (bob's row exists: late locks)
  auto c = connect(o);
  std::promise<Result<AppendResult>> pa;
  auto fa = pa.get_future();
  bool once = true;
  StoreOptions ob = o;
  ob.inject_write_error = [&]() -> Status {
    if (!std::exchange(once, false)) return Status::ok();
    a->append(message("bob", "alice", "x", "both-1"), [&](Result<AppendResult> r) { pa.set_value(r); });
    // Until a's batch answers (it did not wait: the bug) or waits on a lock.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (fa.wait_for(std::chrono::milliseconds(5)) != std::future_status::ready &&
           std::chrono::steady_clock::now() < until) {
      auto w = c->exec("SELECT count(*)::int8 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted");
      if (!w.is_ok() || w->i64(0, 0) > 0) break;  // (no doctest assertion off the test's thread)
    }
    return Status::ok();
  };
  auto b = open_mailboxes(ob);
  auto rb = append_wait(*b, message("carol", "alice", "x", "both-1"));
  auto ra = wait_result(fa);
  REQUIRE(rb.is_ok());
  REQUIRE(ra.is_ok());
  CHECK_FALSE(rb->duplicate);
  CHECK(ra->duplicate);
  CHECK(ra->seq == rb->seq);
  CHECK(ra->mailbox == "carol");
  auto n = c->exec("SELECT count(*)::int8 FROM messages WHERE client_msg_id = 'both-1'");
  REQUIRE(n.is_ok());
  CHECK(n->i64(0, 0) == 1);
}

TEST_CASE("postgres: open fails with a clear status, and checkpoints are pg_basebackup's job") {
  StoreOptions bad;
  bad.backend = Backend::kPostgres;
  CHECK(open_store(bad).status().code() == Code::kInvalidArgument);  // no dsn
  bad.postgres_dsn = "host=/nonexistent-oms-socket-dir dbname=x connect_timeout=2";
  auto r = open_store(bad);
  CHECK(r.status().code() == Code::kIoError);
  CHECK(r.status().message().find("cannot connect") != std::string::npos);
  bad.postgres_dsn = "postgresql://[bad";
  CHECK(open_store(bad).status().code() == Code::kInvalidArgument);

  TempDir dir("oms-pg-open");
  StoreOptions o = pg_options_in(dir);
  {
    auto store = open_ok(o);
    CHECK(store->checkpoint((dir.path() / "copy").string()).code() == Code::kFailedPrecondition);
  }
  auto c = connect(o);
  REQUIRE(c->command("UPDATE oms_schema_version SET version = 99").is_ok());
  auto newer = open_store(o);
  CHECK(newer.status().code() == Code::kFailedPrecondition);
  CHECK(newer.status().message().find("newer") != std::string::npos);
}

TEST_CASE("postgres: vacuum never truncates the messages table (its exclusive lock would stall every append)") {
  TempDir dir("oms-pg-vacuum");
  StoreOptions o = pg_options_in(dir);
  o.max_messages = 10'000;
  auto store = open_mailboxes(o);
  constexpr int kMessages = 2000;
  CompletionLatch latch(kMessages);
  for (int i = 0; i < kMessages; ++i)
    store->append(message("bob", "alice", std::string(200, 'x'), fmt::format("id{}", i)),
                  [&](Result<AppendResult> r) {
                    CHECK(r.is_ok());
                    latch.count_down();
                  });
  latch.wait();
  REQUIRE(*purge_wait(*store, "bob") == kMessages);
  auto c = connect(o);
  auto size = [&] {
    auto r = c->exec("SELECT pg_relation_size('messages')::int8");
    REQUIRE(r.is_ok());
    return r->i64(0, 0);
  };
  const auto before = size();
  REQUIRE(before > 8192 * 10);
  // Every page is empty now: a VACUUM allowed to truncate would give them
  // all back to the filesystem under an ACCESS EXCLUSIVE lock.
  REQUIRE(c->command("VACUUM messages").is_ok());
  CHECK(size() == before);
  append_ok(*store, message("bob", "alice", "after"));
  CHECK(read_all(*store, "bob").size() == 1);
}

TEST_CASE("postgres: after a lost connection the writer reconnects and nothing is half-written") {
  TempDir dir("oms-pg-reconnect");
  StoreOptions o = pg_options_in(dir);
  auto store = open_mailboxes(o);
  append_ok(*store, message("bob", "alice", "one"));
  // Kill every other session on the database (the writer's and the
  // readers'): the next batch fails or reconnects, never half-writes.
  auto c = connect(o);
  REQUIRE(c->command("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")
              .is_ok());
  auto r = append_wait(*store, message("bob", "alice", "two"));
  if (!r) {
    CHECK(r.status().code() == Code::kIoError);
    r = append_wait(*store, message("bob", "alice", "two"));
  }
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  CHECK(store->writable());
  const auto all = read_all(*store, "bob");
  CHECK(all.size() == 2);
  CHECK(store->stats("bob").count == 2);
}

TEST_CASE("postgres: one sweep removes more expired rows than a chunk holds, in several writer requests") {
  TempDir dir("oms-pg-sweep-chunks");
  ManualClock clock;
  StoreOptions o = pg_options_in(dir);
  o.clock = &clock;
  o.ttl_ms_override = 1000;
  o.max_messages = 10'000;
  auto store = open_mailboxes(o);
  constexpr int kMessages = 2500;  // 3 chunks of kSweepChunk (1000)
  CompletionLatch latch(kMessages);
  for (int i = 0; i < kMessages; ++i)
    store->append(message(fmt::format("u{}", i % 7), "alice", "old", fmt::format("id{}", i)),
                  [&](Result<AppendResult> r) {
                    CHECK(r.is_ok());
                    latch.count_down();
                  });
  latch.wait();
  clock.advance_ms(600);
  append_ok(*store, message("u0", "alice", "young"));
  clock.advance_ms(401);
  // Two sweeps asked at once share the run.
  std::promise<Result<std::uint64_t>> second;
  auto second_f = second.get_future();
  std::promise<Result<std::uint64_t>> first;
  auto first_f = first.get_future();
  store->sweep_expired([&](Result<std::uint64_t> r) { first.set_value(r); });
  store->sweep_expired([&](Result<std::uint64_t> r) { second.set_value(r); });
  auto r1 = wait_result(first_f), r2 = wait_result(second_f);
  REQUIRE(r1.is_ok());
  REQUIRE(r2.is_ok());
  CHECK(*r1 == kMessages);
  CHECK(*r2 == kMessages);
  CHECK(store->counters().expired_removed == kMessages);
  CHECK(store->counters().total_messages == 1);
  std::uint64_t counted = 0;
  for (int u = 0; u < 7; ++u) counted += store->stats(fmt::format("u{}", u)).count;
  CHECK(counted == 1);
  clock.advance_ms(1000);
  CHECK(*sweep_wait(*store) == 1);
  auto c = connect(o);
  auto left = c->exec("SELECT (SELECT count(*) FROM messages)::int8, (SELECT count(*) FROM dedup)::int8");
  REQUIRE(left.is_ok());
  CHECK(left->i64(0, 0) == 0);
  CHECK(left->i64(0, 1) == kMessages);  // the dedup window (24 h) is not over
}

TEST_CASE("postgres: acks, sign-ins and purges do not wait for another node's append to the user, and totals stay exact") {
  TempDir dir("oms-pg-ack-no-row-lock");
  StoreOptions o = pg_options_in(dir);
  o.max_messages = 12;
  auto a = open_mailboxes(o);
  auto b = open_mailboxes(o);
  std::vector<std::uint64_t> seqs;
  for (int i = 0; i < 10; ++i) seqs.push_back(append_ok(*a, message("bob", "alice", fmt::format("m{}", i))));
  for (int i = 0; i < 3; ++i) append_ok(*a, message("carol", "alice", "to be purged"));

  // Another node's append transaction holds bob's and carol's rows (until
  // its COMMIT, which waits for the synchronous standby in a cluster).
  auto appender = connect(o);
  REQUIRE(appender->command("BEGIN").is_ok());
  REQUIRE(appender->command("SELECT 1 FROM mailboxes WHERE mailbox IN ('bob', 'carol') FOR UPDATE").is_ok());

  // Node b signs bob in, acks half of his messages and purges carol's,
  // all without waiting for it.
  std::promise<Result<bool>> signed_in;
  std::promise<Result<std::uint64_t>> acked, purged;
  auto fs = signed_in.get_future();
  auto fa = acked.get_future();
  auto fp = purged.get_future();
  b->device_signed_in("bob", "phone", true, [&](Result<bool> r) { signed_in.set_value(std::move(r)); });
  b->ack("bob", "phone", {seqs.begin(), seqs.begin() + 5},
         [&](Result<std::uint64_t> r) { acked.set_value(std::move(r)); });
  b->purge("carol", [&](Result<std::uint64_t> r) { purged.set_value(std::move(r)); });
  const auto patience = std::chrono::seconds(20);
  REQUIRE_MESSAGE(fs.wait_for(patience) == std::future_status::ready, "the sign-in waited for the row lock");
  REQUIRE_MESSAGE(fa.wait_for(patience) == std::future_status::ready, "the ack waited for the row lock");
  REQUIRE_MESSAGE(fp.wait_for(patience) == std::future_status::ready, "the purge waited for the row lock");
  REQUIRE(fs.get().is_ok());
  auto n = fa.get();
  REQUIRE(n.is_ok());
  CHECK(*n == 5);
  auto p = fp.get();
  REQUIRE(p.is_ok());
  CHECK(*p == 3);
  REQUIRE(appender->command("COMMIT").is_ok());

  // The totals count what went, on both nodes, and the quota (12) holds
  // exactly: 5 left, 7 more fit.
  CHECK(a->stats("bob").count == 5);
  CHECK(b->stats("bob").count == 5);
  CHECK(a->stats("carol").count == 0);
  int stored = 0;
  for (int i = 0; i < 8; ++i) {
    auto r = append_wait(i % 2 == 0 ? *a : *b, message("bob", "dave", fmt::format("more {}", i)));
    if (r.is_ok()) ++stored;
    else CHECK(r.status().code() == Code::kMailboxFull);
  }
  CHECK(stored == 7);
  CHECK(a->stats("bob").count == 12);
  CHECK(read_all(*b, "bob").size() == 12);
  // The appends folded bob's deltas into his row; carol's wait for hers.
  auto c = connect(o);
  auto rows = c->exec("SELECT mailbox, count(*)::int8 FROM mailbox_deltas GROUP BY mailbox ORDER BY mailbox");
  REQUIRE(rows.is_ok());
  REQUIRE(rows->size() == 1);
  CHECK(rows->str(0, 0) == "carol");
  auto row = c->exec("SELECT count FROM mailboxes WHERE mailbox = 'bob'");
  REQUIRE(row.is_ok());
  CHECK(row->i64(0, 0) == 12);
  // A store opened now counts the deltas too.
  auto fresh = open_ok(o);
  CHECK(fresh->mailboxes().counters().total_messages.load() == 12);
}

// Another node's batch inserted alice's mailbox row (uncommitted) and then
// waits for bob's user lock, which this node's batch holds while its ack
// of bob's message writes alice's receipt and so creates alice's row: each
// waits for the other. The creation waits 20 ms at most (lock_timeout),
// then the batch runs again with alice's row locked first and bob's lock
// not yet taken: no deadlock (which PostgreSQL breaks after 1 s, aborting
// one of the two).
TEST_CASE("postgres: a row another node inserted and has not committed, while it waits for this batch: no deadlock") {
  TempDir dir("oms-pg-create-wait");
  StoreOptions o = pg_options_in(dir);
  auto store = open_mailboxes(o);
  AppendRequest hi = message("bob", "alice", "hi", "c-1");
  hi.want_receipt = true;
  const std::uint64_t seq = append_ok(*store, hi);
  auto c = connect(o);
  auto deadlocks = [&] {
    auto r = c->exec("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()");
    REQUIRE(r.is_ok());
    return r->i64(0, 0);
  };
  const std::int64_t deadlocks_before = deadlocks();
  auto other = connect(o);
  auto other_pid = other->exec("SELECT pg_backend_pid()::int8");
  REQUIRE(other_pid.is_ok());
  REQUIRE(other->command("BEGIN").is_ok());
  REQUIRE(other->command("INSERT INTO mailboxes (mailbox) VALUES ('alice')").is_ok());

  std::promise<Result<std::uint64_t>> acked;
  auto acked_f = acked.get_future();
  store->ack("bob", "", {seq}, [&](Result<std::uint64_t> r) { acked.set_value(r); });
  // Until the store's writer waits for `other` (polled, bounded).
  pg::Params pid;
  pid.i64(other_pid->i64(0, 0));
  const auto deadline = std::chrono::steady_clock::now() + kCallbackTimeout;
  for (;;) {
    auto w = c->exec("SELECT count(*)::int8 FROM pg_stat_activity WHERE datname = current_database() "
                     "AND wait_event_type = 'Lock' AND pid <> $1::int8",
                     pid);
    REQUIRE(w.is_ok());
    if (w->i64(0, 0) > 0) break;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(other->command("SELECT pg_advisory_xact_lock(7302516, hashtext('bob'))").is_ok());
  REQUIRE(other->command("COMMIT").is_ok());
  auto r = wait_result(acked_f);
  REQUIRE(r.is_ok());
  CHECK(*r == 1);
  CHECK(read_all(*store, "alice").size() == 1);  // the receipt
  CHECK(deadlocks() == deadlocks_before);
}

// A ring of three users on three nodes, each node's batches appending to
// the next user with a receipt wanted and acking its own user's mailbox
// (whose receipts go to the previous user): every batch locks three
// mailboxes, and no two nodes may wait on each other in a cycle.
TEST_CASE("postgres: three nodes in a ring of chats with receipts: no request fails, none waits for a deadlock") {
  TempDir dir("oms-pg-ring");
  StoreOptions o = pg_options_in(dir);
  o.max_messages = 100'000;
  std::vector<std::shared_ptr<MailboxStore>> nodes;
  for (int i = 0; i < 3; ++i) nodes.push_back(open_mailboxes(o));
  const std::vector<std::string> users = {"alice", "bob", "carol"};
  std::atomic<int> failed{0};
  std::atomic<std::int64_t> slowest_ms{0};
  std::vector<std::thread> threads;
  for (int n = 0; n < 3; ++n)
    for (int t = 0; t < 2; ++t)
      threads.emplace_back([&, n] {
        MailboxStore& s = *nodes[static_cast<std::size_t>(n)];
        const std::string& me = users[static_cast<std::size_t>(n)];
        const std::string& next = users[static_cast<std::size_t>((n + 1) % 3)];
        for (int i = 0; i < 60; ++i) {
          const auto t0 = std::chrono::steady_clock::now();
          AppendRequest req = message(next, me, "hi");
          req.want_receipt = true;
          auto r = append_wait(s, std::move(req));
          auto page = s.read(me, "", 0, 20);
          Result<std::uint64_t> acked = std::uint64_t{0};
          if (page && !page->empty()) acked = ack_wait(s, me, seqs_of(*page));
          if (!r || !page || !acked) ++failed;
          const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
          std::int64_t cur = slowest_ms.load();
          while (ms > cur && !slowest_ms.compare_exchange_weak(cur, ms)) {
          }
        }
      });
  for (auto& th : threads) th.join();
  CHECK(failed == 0);
  // deadlock_timeout is 1 s: a round that met a deadlock took longer. Only
  // a warning: a timed bound is noise on a loaded CI machine (an ASan
  // build, two test processes); failed == 0 above is the check.
  MESSAGE("slowest round: " << slowest_ms.load() << " ms");
  WARN(slowest_ms.load() < 900);
}

}  // TEST_SUITE
