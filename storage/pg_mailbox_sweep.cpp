// Purges, the expiry sweep and record deletion in the PostgreSQL
// MailboxStore (the rules: mailbox_store.h, the same decisions as the
// RocksDB store's). Writer thread, except the entry points.
//
// Expiry: sweep_expired() hands the writer one chunk at a time (a SweepOp,
// up to kSweepChunk expired rows by the sent_at_ms index, plus as many
// dedup entries older than the window), and the next chunk only once that
// one committed, so appends and acks never wait behind more than one chunk.
#include <map>
#include <unordered_set>
#include <utility>

#include "storage/pg_mailbox_batch.h"
#include "storage/pg_mailbox_store.h"

namespace oms::storage {
namespace {

// Expired rows deleted per sweep chunk (one writer request each).
constexpr std::int64_t kSweepChunk = 1000;

}  // namespace

using pg_detail::Batch;
using pg_detail::Record;
using pg_detail::Totals;

// A purge deletes every message of the mailbox (not its receipts) with the
// acks kept for them; each message that wanted a receipt and was never
// acked makes a `purged` one.
WriteOutcome PgMailboxStore::apply(Batch& b, PurgeOp& op) {
  if (!valid_mailbox(op.mailbox)) return {Status::ok(), {}, 0};
  if (!flush(b) || !ack_lock(b, {op.mailbox})) return {};
  pg::Params p;
  p.text(op.mailbox);
  auto doomed = exec(b,
                     "SELECT m.seq, octet_length(m.body)::int8, m.want_receipt, m.from_user, m.client_msg_id, "
                     "EXISTS (SELECT 1 FROM acks a WHERE a.mailbox = m.mailbox AND a.seq = m.seq) "
                     "FROM messages m WHERE m.mailbox = $1 AND m.receipt_state = 0 ORDER BY m.seq",
                     p);
  if (!doomed) return {};
  std::vector<Record> recs;
  std::vector<std::pair<std::string, ReceiptRecord>> receipts;
  for (int i = 0; i < doomed->size(); ++i) {
    Record rec;
    rec.seq = static_cast<std::uint64_t>(doomed->i64(i, 0));
    rec.bytes = doomed->i64(i, 1);
    recs.push_back(rec);
    if (doomed->boolean(i, 2) && !doomed->boolean(i, 5))
      receipts.push_back({std::string(doomed->str(i, 3)),
                          {rec.seq, std::string(doomed->str(i, 4)), op.mailbox, proto::ReceiptState::kPurged, b.now_ms}});
  }
  if (!delete_records(b, op.mailbox, recs) || !emit_receipts(b, std::move(receipts))) return {};
  b.purged += recs.size();
  return {Status::ok(), {}, recs.size()};
}

// One chunk of the expiry sweep: up to kSweepChunk expired messages and
// receipts (and dedup entries older than the window), deleted here.
WriteOutcome PgMailboxStore::apply(Batch& b, SweepOp&) {
  sweep_more_.store(false);
  if (!flush(b)) return {};
  std::uint64_t removed = 0;
  bool more = false;
  if (ttl_ms_ > 0) {
    pg::Params p;
    p.i64(expiry_cutoff(b.now_ms)).i64(kSweepChunk);
    auto found = exec(b,
                      "SELECT m.mailbox, m.seq, octet_length(m.body)::int8, m.want_receipt, m.from_user, "
                      "m.client_msg_id, m.receipt_state, "
                      "EXISTS (SELECT 1 FROM acks a WHERE a.mailbox = m.mailbox AND a.seq = m.seq) "
                      "FROM messages m WHERE m.sent_at_ms < $1 ORDER BY m.sent_at_ms LIMIT $2",
                      p);
    if (!found) return {};
    more = found->size() == kSweepChunk;
    std::vector<std::string> mailboxes;
    for (int i = 0; i < found->size(); ++i) mailboxes.emplace_back(found->str(i, 0));
    if (!ack_lock(b, mailboxes)) return {};
    // (Read before the locks: a record acked or purged meanwhile by another
    // node is simply not deleted again below.)
    std::map<std::string, std::vector<Record>> by_mailbox;
    for (int i = 0; i < found->size(); ++i) {
      Record rec;
      rec.seq = static_cast<std::uint64_t>(found->i64(i, 1));
      rec.bytes = found->i64(i, 2);
      rec.receipt = found->i16(i, 6) != 0;
      rec.want_receipt = found->boolean(i, 3) && !found->boolean(i, 7);
      rec.from = std::string(found->str(i, 4));
      rec.client_msg_id = std::string(found->str(i, 5));
      by_mailbox[std::string(found->str(i, 0))].push_back(std::move(rec));
    }
    std::vector<std::pair<std::string, ReceiptRecord>> receipts;
    for (auto& [mailbox, recs] : by_mailbox) {
      std::unordered_set<std::uint64_t> deleted;
      if (!delete_records(b, mailbox, recs, &deleted)) return {};
      for (const Record& rec : recs) {
        if (rec.receipt || deleted.count(rec.seq) == 0) continue;
        ++removed;
        // Never acked: its sender learns it expired.
        if (rec.want_receipt)
          receipts.push_back({rec.from, {rec.seq, rec.client_msg_id, mailbox, proto::ReceiptState::kExpired, b.now_ms}});
      }
    }
    if (!emit_receipts(b, std::move(receipts))) return {};
  }
  pg::Params d;
  d.i64(b.now_ms - opts_.dedup_window_ms).i64(kSweepChunk);
  auto dedup = exec(b,
                    "DELETE FROM dedup WHERE ctid IN (SELECT ctid FROM dedup WHERE created_ms <= $1 LIMIT $2)", d);
  if (!dedup) return {};
  if (dedup->affected() > 0) b.note_wrote();
  more = more || dedup->affected() == static_cast<std::uint64_t>(kSweepChunk);
  b.expired += removed;
  sweep_more_.store(more);
  return {Status::ok(), {}, removed};
}

void PgMailboxStore::sweep_expired(CountCallback done) {
  {
    std::lock_guard lock(sweep_->mu);
    sweep_->waiters.push_back(std::move(done));
    if (sweep_->running) return;
    sweep_->running = true;
    sweep_->removed = 0;
  }
  sweep_chunk();
}

void PgMailboxStore::sweep_chunk() {
  SweepOp op;
  op.done = [this, sweep = sweep_](Result<std::uint64_t> r) {
    std::vector<CountCallback> waiters;
    Result<std::uint64_t> answer = r;
    {
      std::lock_guard lock(sweep->mu);
      if (r) {
        sweep->removed += *r;
        answer = sweep->removed;
      }
      if (!r || !sweep_more_.exchange(false)) {
        waiters.swap(sweep->waiters);
        sweep->running = false;
      }
    }
    // (Outside the lock: a refused enqueue answers on this thread.)
    if (waiters.empty()) {
      sweep_chunk();  // enqueues only: never waits for the write
      return;
    }
    for (auto& w : waiters)
      if (w) w(answer);
  };
  batcher_.enqueue(std::move(op));
}

Status PgMailboxStore::delete_records(Batch& b, const std::string& mailbox, const std::vector<Record>& recs,
                                      std::unordered_set<std::uint64_t>* deleted) {
  if (recs.empty()) return Status::ok();
  std::vector<std::int64_t> seqs;
  for (const Record& r : recs) seqs.push_back(static_cast<std::int64_t>(r.seq));
  pg::Params p;
  p.text(mailbox).i64_array(seqs);
  auto gone = exec(b,
                   "WITH d AS (DELETE FROM messages WHERE mailbox = $1 AND seq = ANY($2::int8[]) "
                   "RETURNING seq, octet_length(body)::int8 AS bytes, receipt_state), "
                   "a AS (DELETE FROM acks WHERE mailbox = $1 AND seq = ANY($2::int8[]) RETURNING 1) "
                   "SELECT seq, bytes, receipt_state FROM d",
                   p);
  if (!gone) return b.failed;
  b.note_wrote();
  for (int i = 0; i < gone->size(); ++i) {
    const auto seq = static_cast<std::uint64_t>(gone->i64(i, 0));
    if (deleted) deleted->insert(seq);
    b.removed(mailbox, seq, gone->i16(i, 2) != 0, gone->i64(i, 1));
  }
  return Status::ok();
}

}  // namespace oms::storage
