// The locks of the PostgreSQL MailboxStore's batch transaction: the first
// statement (begin: the appends' mailbox rows, the users' advisory locks,
// the dedup keys), and the locks a batch takes later, which never wait
// (the rules: pg_schema.h, pg_mailbox_store.h). Writer thread.
#include <algorithm>

#include "storage/pg_mailbox_batch.h"
#include "storage/pg_mailbox_store.h"

namespace oms::storage {
namespace {

// Same limit as the RocksDB store's keys (keys.h kMaxShortField).
constexpr std::size_t kMaxShortField = 255;

// Locks (and creates) mailbox rows, in the array's (byte) order, so that
// two batches never wait on each other in a cycle over these rows.
const std::string kLockMailboxes =
    "INSERT INTO mailboxes (mailbox) SELECT * FROM unnest($1::text[]) "
    "ON CONFLICT (mailbox) DO UPDATE SET mailbox = EXCLUDED.mailbox "
    "RETURNING mailbox, next_mseq, count, bytes, receipts";
// A lock taken after the batch's first statement (a receipt's sender, an
// expired message's mailbox) never waits: the row is created if missing,
// then locked NOWAIT. Should another transaction hold it, the attempt ends
// (lock_not_available) and the batch runs again with that mailbox locked
// up front, in the sorted first statement. So a transaction only ever
// waits in its first statement, for rows in byte order: no cycle of
// waits between nodes (a deadlock costs deadlock_timeout, 1 s, first).
// (Only the rows not there: an INSERT that meets an existing row whose
// latest version is another transaction's, as the lock statement leaves
// it, waits for that transaction; 20 ms at most, lock_and_read.)
const std::string kCreateMailboxes =
    "INSERT INTO mailboxes (mailbox) SELECT m FROM unnest($1::text[]) AS u(m) "
    "WHERE NOT EXISTS (SELECT 1 FROM mailboxes x WHERE x.mailbox = u.m) ON CONFLICT (mailbox) DO NOTHING";
const std::string kTryLockMailboxes =
    "SELECT mailbox, next_mseq, count, bytes, receipts FROM mailboxes WHERE mailbox = ANY($1::text[]) "
    "ORDER BY mailbox FOR UPDATE NOWAIT";
// After a mailbox row is locked: its deltas (what acks, purges and the
// sweep removed meanwhile) are folded into the totals this batch writes.
// Only the deltas committed when this statement starts: one written later
// stays for the next append (the row lock keeps two folds apart).
const std::string kFoldDeltas =
    "WITH d AS (DELETE FROM mailbox_deltas WHERE mailbox = ANY($1::text[]) "
    "RETURNING mailbox, count, bytes, receipts) "
    "SELECT mailbox, sum(count)::int8, sum(bytes)::int8, sum(receipts)::int8 FROM d GROUP BY mailbox";
// The users' advisory locks (acks, devices, purges, the sweep; pg_schema.h),
// in one order, waiting: only in a batch's first statement, after its row
// locks. Later ones never wait (kTryAckLocks: the number not taken).
const std::string kAckLocks =
    "SELECT pg_advisory_xact_lock(7302516, h) FROM (SELECT DISTINCT hashtext(m) AS h "
    "FROM unnest($1::text[]) AS u(m) ORDER BY 1) s";
const std::string kTryAckLocks =
    "SELECT count(*) FILTER (WHERE NOT pg_try_advisory_xact_lock(7302516, h))::int8 FROM "
    "(SELECT DISTINCT hashtext(m) AS h FROM unnest($1::text[]) AS u(m) ORDER BY 1) s";

// Adds folded deltas (kFoldDeltas' rows) to the locked mailboxes' totals.
void add_folded(pg_detail::Batch& b, const pg::Rows& rows) {
  for (int i = 0; i < rows.size(); ++i) {
    auto it = b.locked.find(std::string(rows.str(i, 0)));
    if (it == b.locked.end()) continue;  // (cannot happen: only locked ones are folded)
    it->second.count += rows.i64(i, 1);
    it->second.bytes += rows.i64(i, 2);
    it->second.receipts += rows.i64(i, 3);
    it->second.dirty = true;
  }
}

}  // namespace

using pg_detail::Batch;
using pg_detail::kLockDedup;
using pg_detail::kLockNotAvailable;
using pg_detail::kNextSeqs;
using pg_detail::kReadDedup;
using pg_detail::Totals;

// One round trip (a pipeline): BEGIN, then lock the mailboxes the batch
// appends to and the dedup keys it uses, read those dedup entries, and
// take the appends' sequence numbers (after the locks: see the header).
Status PgMailboxStore::begin(Batch& b, std::vector<WriteRequest>& requests) {
  static const std::string kBegin = "BEGIN";
  std::vector<std::string> mailboxes, users;
  std::vector<std::string> from, ids;
  b.appends_left = 0;
  for (auto& r : requests) {
    // The users the batch's acks, purges, receipt marks and device changes
    // are about are locked here too (their advisory locks, after the
    // appends' rows), each kind in one sorted statement: a chat batch
    // appends to a partner and acks its own mailbox, and two nodes'
    // batches locking those one after the other deadlocked (cluster-bench,
    // cross-node chat: 5 store_error bursts in 20 s). An ack does not lock
    // the mailbox row: the two nodes of a chat pair, each appending to the
    // user the other acks for, no longer take turns (each waited for the
    // other's COMMIT: the cross-node p99). (Receipts' senders' rows are
    // still locked later, when read.)
    if (auto* ack = std::get_if<AckOp>(&r); ack && valid_mailbox(ack->mailbox)) users.push_back(ack->mailbox);
    if (auto* pu = std::get_if<PurgeOp>(&r); pu && valid_mailbox(pu->mailbox)) users.push_back(pu->mailbox);
    if (auto* rw = std::get_if<ReceiptWantedOp>(&r); rw && valid_mailbox(rw->mailbox)) users.push_back(rw->mailbox);
    if (auto* d = std::get_if<DeviceOp>(&r); d && valid_mailbox(d->user)) users.push_back(d->user);
    auto* a = std::get_if<AppendOp>(&r);
    if (!a || !valid_mailbox(a->req.mailbox)) continue;
    mailboxes.push_back(a->req.mailbox);
    ++b.appends_left;
    if (!a->req.client_msg_id.empty() && a->req.from.size() <= kMaxShortField &&
        a->req.client_msg_id.size() <= kMaxShortField) {
      from.push_back(a->req.from);
      ids.push_back(a->req.client_msg_id);
    }
  }
  mailboxes.insert(mailboxes.end(), b.prelock.begin(), b.prelock.end());
  std::sort(mailboxes.begin(), mailboxes.end());
  mailboxes.erase(std::unique(mailboxes.begin(), mailboxes.end()), mailboxes.end());
  users.insert(users.end(), b.prelock_ack.begin(), b.prelock_ack.end());
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  const pg::Params none;
  pg::Params lock, ack_lock, keys, count;
  lock.text_array(mailboxes);
  ack_lock.text_array(users);
  keys.text_array(from).text_array(ids);
  count.i64(static_cast<std::int64_t>(b.appends_left));
  std::vector<pg::Connection::Step> steps{{&kBegin, &none, false}};
  if (!mailboxes.empty()) {
    steps.push_back({&kLockMailboxes, &lock});
    steps.push_back({&kFoldDeltas, &lock});
  }
  if (!users.empty()) steps.push_back({&kAckLocks, &ack_lock});
  if (!from.empty()) {
    // Two nodes storing the same (from, client_msg_id) meet here: the
    // second waits for the first's COMMIT, then reads its entry.
    steps.push_back({&kLockDedup, &keys});
    steps.push_back({&kReadDedup, &keys});
  }
  if (b.appends_left > 0) steps.push_back({&kNextSeqs, &count});
  auto r = writer_conn_->pipeline(steps);
  if (!r) {
    b.sqlstate = writer_conn_->sqlstate();
    return b.failed = r.status();
  }
  std::size_t at = 1;
  if (!mailboxes.empty()) {
    const pg::Rows& rows = (*r)[at++];
    for (int i = 0; i < rows.size(); ++i)
      b.locked.emplace(std::string(rows.str(i, 0)),
                       Totals{rows.i64(i, 1), rows.i64(i, 2), rows.i64(i, 3), rows.i64(i, 4), false});
    add_folded(b, (*r)[at++]);
    b.note_wrote();
  }
  if (!users.empty()) {
    ++at;
    b.ack_locked.insert(users.begin(), users.end());
  }
  if (!from.empty()) {
    pg_detail::found_dedup(b, (*r)[at + 1]);  // (after the advisory locks' rows)
    at += 2;
  }
  if (b.appends_left > 0) {
    const pg::Rows& seqs = (*r)[at++];
    for (int i = 0; i < seqs.size(); ++i) b.seq_pool.push_back(static_cast<std::uint64_t>(seqs.i64(i, 0)));
    std::sort(b.seq_pool.begin(), b.seq_pool.end());
  }
  return Status::ok();
}

Status PgMailboxStore::lock_mailboxes(Batch& b, std::vector<std::string> mailboxes) {
  std::sort(mailboxes.begin(), mailboxes.end());
  mailboxes.erase(std::unique(mailboxes.begin(), mailboxes.end()), mailboxes.end());
  std::erase_if(mailboxes, [&](const std::string& m) { return b.locked.count(m) != 0; });
  if (mailboxes.empty()) return Status::ok();
  auto r = lock_and_read(b, mailboxes, {});
  return r ? Status::ok() : b.failed;
}

Result<std::vector<pg::Rows>> PgMailboxStore::lock_and_read(Batch& b, const std::string& mailbox,
                                                             std::vector<pg::Connection::Step> reads) {
  std::vector<std::string> mailboxes;
  if (b.locked.count(mailbox) == 0) mailboxes.push_back(mailbox);
  return lock_and_read(b, mailboxes, std::move(reads));
}

Result<std::vector<pg::Rows>> PgMailboxStore::lock_and_read(Batch& b, const std::vector<std::string>& mailboxes,
                                                             std::vector<pg::Connection::Step> reads) {
  // Creating a missing row waits for another transaction that inserted it
  // and has not committed; should that one wait for a lock this batch holds
  // (a user's advisory lock), the two deadlock until deadlock_timeout (1 s).
  // So the creation waits 20 ms at most: then it fails as NOWAIT does
  // (lock_not_available) and the batch reruns with these rows up front.
  static const std::string kShortWait = "SET LOCAL lock_timeout = '20ms'";
  static const std::string kWaitAgain = "SET LOCAL lock_timeout = DEFAULT";
  const pg::Params none;
  pg::Params p;
  if (!mailboxes.empty()) {
    p.text_array(mailboxes);
    reads.insert(reads.begin(), {{&kShortWait, &none, false},
                                 {&kCreateMailboxes, &p},
                                 {&kWaitAgain, &none, false},
                                 {&kTryLockMailboxes, &p},
                                 {&kFoldDeltas, &p}});
  }
  auto r = writer_conn_->pipeline(reads);
  if (!r) {
    b.sqlstate = writer_conn_->sqlstate();
    if (b.sqlstate == kLockNotAvailable) b.missed_locks = mailboxes;
    if (b.failed.is_ok()) b.failed = r.status();
    return r.status();
  }
  if (!mailboxes.empty()) {
    const pg::Rows& rows = (*r)[3];
    for (int i = 0; i < rows.size(); ++i)
      b.locked.emplace(std::string(rows.str(i, 0)),
                       Totals{rows.i64(i, 1), rows.i64(i, 2), rows.i64(i, 3), rows.i64(i, 4), false});
    add_folded(b, (*r)[4]);
    // What this batch deleted before it locked them counts in the totals
    // it writes now (not twice: as a delta too).
    for (const std::string& m : mailboxes) {
      auto d = b.deltas.find(m);
      auto t = b.locked.find(m);
      if (d == b.deltas.end() || t == b.locked.end()) continue;
      t->second.count += d->second.count;
      t->second.bytes += d->second.bytes;
      t->second.receipts += d->second.receipts;
      t->second.dirty = true;
      b.deltas.erase(d);
    }
    b.note_wrote();
    // Numbers taken before these locks could commit behind another node's
    // later ones in these mailboxes: take fresh ones from now on.
    b.seq_pool.clear();
    b.pool_next = 0;
    r->erase(r->begin(), r->begin() + 5);
  }
  return r;
}

Status PgMailboxStore::ack_lock(Batch& b, std::vector<std::string> users) {
  auto r = ack_lock_and_read(b, std::move(users), {});
  return r ? Status::ok() : b.failed;
}

Result<std::vector<pg::Rows>> PgMailboxStore::ack_lock_and_read(Batch& b, std::vector<std::string> users,
                                                                 std::vector<pg::Connection::Step> reads) {
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  std::erase_if(users, [&](const std::string& u) { return b.ack_locked.count(u) != 0; });
  if (users.empty() && reads.empty()) return std::vector<pg::Rows>();
  if (!write_sign_outs(b)) return b.failed;  // (reads of devices see them)
  pg::Params p;
  if (!users.empty()) {
    p.text_array(users);
    reads.insert(reads.begin(), {&kTryAckLocks, &p});
  }
  auto r = writer_conn_->pipeline(reads);
  if (!r) {
    b.sqlstate = writer_conn_->sqlstate();
    if (b.failed.is_ok()) b.failed = r.status();
    return r.status();
  }
  if (!users.empty()) {
    if (r->front().i64(0, 0) > 0) {
      // Held by another transaction: this attempt ends, and the batch runs
      // again with these locked in its first statement (as kTryLockMailboxes).
      b.sqlstate = std::string(kLockNotAvailable);
      b.missed_ack_locks = users;
      if (b.failed.is_ok()) b.failed = Status::io_error("postgres: a user's lock is held by another transaction");
      return b.failed;
    }
    b.ack_locked.insert(users.begin(), users.end());
    r->erase(r->begin());
  }
  return r;
}

Status PgMailboxStore::refold(Batch& b, const std::string& mailbox) {
  pg::Params p;
  p.text_array(std::vector<std::string>{mailbox});
  auto r = exec(b, kFoldDeltas, p);
  if (!r) return b.failed;
  add_folded(b, *r);
  return Status::ok();
}

}  // namespace oms::storage
