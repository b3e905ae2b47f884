// A batch of appends only (the store's steady state: senders writing to
// offline recipients), written with its mailbox rows locked in its last
// round trip only. Writer thread.
//
// The general batch (pg_mailbox_store.h, steps 1-4) locks its mailbox rows
// in its first round trip and holds them through every later one and
// COMMIT. Across nodes, a row lock is what makes a mailbox's mseq gapless
// and its seqs commit in order, so two nodes appending to the same
// recipients take turns; while one holds the rows, its own CPU time is part
// of the other's wait (a node capped by its cgroup can be stopped for most
// of a period between its two round trips: cluster-bench's scaling across
// nodes, README "Cluster mode"). Here:
//   1. (no transaction, no lock) read the mailboxes' totals with their
//      pending deltas and the batch's dedup entries; decide each request in
//      memory (bad argument, duplicate of a committed entry or of an earlier
//      request in the batch, new); decline (run_batch takes the batch) when
//      a mailbox row is missing or a new message would bring a mailbox near
//      its quota by these unlocked totals;
//   2. one pipeline: BEGIN; lock the rows in byte order, then the dedup
//      keys' advisory locks, sorted (the only waits, in the order of step 1
//      of the general batch, so no cycle); one statement that
//      folds the rows' deltas, moves next_mseq and the totals, takes the
//      seqs (after the locks: per mailbox they commit in order), inserts the
//      messages and their dedup entries, and checks under the locks what
//      step 1 read without them; COMMIT. The server runs it without waiting
//      for this process: the rows are held for the server's work and the
//      COMMIT only.
// Should the check fail (a mailbox went over its quota meanwhile: 22012, a
// division by zero the statement raises on purpose), or another transaction
// have stored one of the batch's (from, client_msg_id) since step 1 (the
// dedup upsert touches no row: 22012 too), the transaction is rolled
// back and the batch runs again through run_batch, which decides it exactly
// under its locks. Results (seq, mseq) come from the statement's rows.
#include <algorithm>
#include <limits>
#include <map>
#include <unordered_map>

#include "storage/pg_mailbox_batch.h"
#include "storage/pg_mailbox_store.h"

namespace oms::storage {
namespace {

// $1 mailboxes: the totals with the deltas not yet folded (no lock).
const std::string kReadTotals =
    "SELECT m.mailbox, m.count + coalesce(d.c, 0), m.bytes + coalesce(d.b, 0) FROM mailboxes m "
    "LEFT JOIN (SELECT mailbox, sum(count)::int8 AS c, sum(bytes)::int8 AS b FROM mailbox_deltas "
    "WHERE mailbox = ANY($1::text[]) GROUP BY mailbox) d ON d.mailbox = m.mailbox "
    "WHERE m.mailbox = ANY($1::text[])";
// $1 mailboxes, locked in byte order (they exist: step 1 read them).
const std::string kLockRows =
    "SELECT mailbox FROM mailboxes WHERE mailbox = ANY($1::text[]) ORDER BY mailbox FOR UPDATE";
// $1 mailboxes (distinct), $2 new messages and $3 their bytes per mailbox;
// $4 new messages in all; per message in the batch's order: $5 mailbox,
// $6 its offset among the mailbox's new ones, $7 kind, $8 from, $9 reason,
// $10 body, $11 client_msg_id, $12 want_receipt; $13 now; dedup entries:
// $14 from, $15 client_msg_id, $16 payload, $17 the window's cutoff (an
// entry created at or before it may be replaced), $18 their number;
// $19, $20 the quotas. Rows: (mailbox, seq, mseq) per message, and one
// check row ('', 0, 1) that raises division_by_zero when the check fails.
// The i-th message gets the i-th lowest of the seqs taken, so per mailbox
// seqs rise with mseq.
const std::string kAppendBatch = R"sql(
WITH f AS (DELETE FROM mailbox_deltas WHERE mailbox = ANY($1::text[]) RETURNING mailbox, count, bytes, receipts),
fs AS (SELECT mailbox, sum(count)::int8 AS c, sum(bytes)::int8 AS b, sum(receipts)::int8 AS r
       FROM f GROUP BY mailbox),
c AS (SELECT c.m, c.n, c.b, coalesce(fs.c, 0) AS fc, coalesce(fs.b, 0) AS fb, coalesce(fs.r, 0) AS fr
      FROM unnest($1::text[], $2::int8[], $3::int8[]) AS c(m, n, b) LEFT JOIN fs ON fs.mailbox = c.m),
u AS (UPDATE mailboxes x SET next_mseq = x.next_mseq + c.n, count = x.count + c.n + c.fc,
        bytes = x.bytes + c.b + c.fb, receipts = x.receipts + c.fr
      FROM c WHERE x.mailbox = c.m
      RETURNING x.mailbox, x.next_mseq - c.n AS first, x.count, x.bytes),
q AS (SELECT v, row_number() OVER (ORDER BY v) AS i
      FROM (SELECT nextval('oms_seq') AS v FROM generate_series(1, $4::int8)) s),
r AS (SELECT * FROM unnest($5::text[], $6::int8[], $7::int2[], $8::text[], $9::text[], $10::bytea[],
                           $11::text[], $12::bool[]) WITH ORDINALITY AS r(m, off, k, f, rs, bd, cm, w, i)),
ins AS (INSERT INTO messages (mailbox, seq, mseq, sent_at_ms, kind, from_user, reason, body, client_msg_id,
                              want_receipt, receipt_state, receipt_msg_seq, receipt_to)
        SELECT r.m, q.v, u.first + r.off, $13::int8, r.k, r.f, r.rs, r.bd, r.cm, r.w, 0, 0, ''
        FROM r JOIN u ON u.mailbox = r.m JOIN q ON q.i = r.i
        RETURNING mailbox, seq, mseq, from_user, client_msg_id),
dd AS (INSERT INTO dedup (from_user, client_msg_id, mailbox, seq, sent_at_ms, created_ms, payload)
       SELECT ins.from_user, ins.client_msg_id, ins.mailbox, ins.seq, $13::int8, $13::int8, k.p
       FROM ins JOIN unnest($14::text[], $15::text[], $16::bytea[]) AS k(f, c, p)
         ON k.f = ins.from_user AND k.c = ins.client_msg_id
       ON CONFLICT (from_user, client_msg_id) DO UPDATE SET mailbox = EXCLUDED.mailbox, seq = EXCLUDED.seq,
         sent_at_ms = EXCLUDED.sent_at_ms, created_ms = EXCLUDED.created_ms, payload = EXCLUDED.payload
       WHERE dedup.created_ms <= $17::int8
       RETURNING 1)
SELECT ins.mailbox, ins.seq, ins.mseq FROM ins
UNION ALL
SELECT ''::text, 0::int8, (1 / CASE WHEN (SELECT count(*) FROM ins) = $4::int8
                                      AND (SELECT count(*) FROM dd) = $18::int8
                                      AND (SELECT count(*) FROM u) = cardinality($1::text[])
                                      AND NOT EXISTS (SELECT 1 FROM u WHERE u.count > $19::int8
                                                                        OR u.bytes > $20::int8)
                                 THEN 1 ELSE 0 END)::int8)sql";

std::int64_t clamp_i64(std::uint64_t v) {
  return static_cast<std::int64_t>(std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max()));
}

}  // namespace

using pg_detail::dedup_id;

Status PgMailboxStore::run_appends(Batch& b, std::vector<WriteRequest>& requests,
                                   std::vector<WriteOutcome>& outcomes, bool& declined) {
  declined = true;
  // What each request turned out to be (step 1).
  struct Plan {
    enum Kind { kBad, kDuplicate, kDuplicateInBatch, kNew } kind = kBad;
    std::size_t first = 0;  // kDuplicateInBatch: the request it repeats
    std::int64_t off = 0;   // kNew: among its mailbox's new messages
  };
  std::vector<std::string> mailboxes, from, ids;
  for (auto& r : requests) {
    const AppendRequest& req = std::get<AppendOp>(r).req;
    if (!valid_append(req)) continue;
    mailboxes.push_back(req.mailbox);
    if (!req.client_msg_id.empty()) {
      from.push_back(req.from);
      ids.push_back(req.client_msg_id);
    }
  }
  std::sort(mailboxes.begin(), mailboxes.end());
  mailboxes.erase(std::unique(mailboxes.begin(), mailboxes.end()), mailboxes.end());
  if (mailboxes.empty()) return Status::ok();
  if (Status s = ready_connection(); !s) return Status::ok();  // (run_batch reconnects or fails)

  pg::Params p_mailboxes, p_keys;
  p_mailboxes.text_array(mailboxes);
  p_keys.text_array(from).text_array(ids);
  std::vector<pg::Connection::Step> reads{{&kReadTotals, &p_mailboxes}};
  if (!from.empty()) reads.push_back({&pg_detail::kReadDedup, &p_keys});
  auto read = writer_conn_->pipeline(reads);
  if (!read) return Status::ok();  // (run_batch tries again, reconnecting a broken connection)
  struct Room {
    std::int64_t count = 0, bytes = 0, n = 0, new_bytes = 0;
  };
  std::map<std::string, Room> rooms;  // byte order, as the locks
  {
    const pg::Rows& rows = (*read)[0];
    for (int i = 0; i < rows.size(); ++i)
      rooms.emplace(std::string(rows.str(i, 0)), Room{rows.i64(i, 1), rows.i64(i, 2), 0, 0});
  }
  if (rooms.size() != mailboxes.size()) return Status::ok();  // a mailbox row to create: under a lock
  if (!from.empty()) pg_detail::found_dedup(b, (*read)[1]);

  std::vector<Plan> plans(requests.size());
  std::unordered_map<std::string, std::size_t> first_of;  // dedup key -> the new request
  std::size_t new_count = 0, dedup_count = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const AppendRequest& req = std::get<AppendOp>(requests[i]).req;
    Plan& plan = plans[i];
    if (!valid_append(req)) continue;  // kBad
    std::string key;
    if (!req.client_msg_id.empty()) {
      key = dedup_id(req.from, req.client_msg_id);
      if (auto it = first_of.find(key); it != first_of.end()) {
        plan.kind = Plan::kDuplicateInBatch;
        plan.first = it->second;
        continue;
      }
      if (b.dedup.count(key) != 0) {
        auto created = b.dedup_created.find(key);
        // An entry older than the window counts as absent (and is replaced).
        if (created == b.dedup_created.end() || b.now_ms - created->second < opts_.dedup_window_ms) {
          plan.kind = Plan::kDuplicate;
          continue;
        }
      }
    }
    Room& room = rooms.at(req.mailbox);
    const auto body = static_cast<std::int64_t>(req.body.size());
    if (static_cast<std::uint64_t>(room.count + room.n) + 1 > opts_.max_messages ||
        static_cast<std::uint64_t>(room.bytes + room.new_bytes + body) > opts_.max_bytes)
      return Status::ok();  // near the quota: decided under the row lock
    plan.kind = Plan::kNew;
    plan.off = room.n++;
    room.new_bytes += body;
    ++new_count;
    if (!key.empty()) {
      first_of.emplace(std::move(key), i);
      ++dedup_count;
    }
  }
  declined = false;

  std::vector<WriteOutcome> results(requests.size());
  if (new_count > 0) {
    if (opts_.inject_write_error)
      if (Status s = opts_.inject_write_error(); !s) return b.failed = s;
    std::vector<std::string> per_mailbox;
    std::vector<std::int64_t> per_n, per_bytes;
    for (const auto& [mailbox, room] : rooms) {
      if (room.n == 0) continue;
      per_mailbox.push_back(mailbox);
      per_n.push_back(room.n);
      per_bytes.push_back(room.new_bytes);
    }
    pg_detail::Rows rows;
    std::vector<std::int64_t> offs;
    pg_detail::DedupRows d;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      if (plans[i].kind != Plan::kNew) continue;
      const AppendRequest& req = std::get<AppendOp>(requests[i]).req;
      rows.mailbox.push_back(req.mailbox);
      offs.push_back(plans[i].off);
      rows.add_request(req);
      if (req.client_msg_id.empty()) continue;
      d.from.push_back(req.from);
      d.client_msg_id.push_back(req.client_msg_id);
      d.payload.push_back(req.dedup_payload);
    }
    pg::Params lock, append;
    lock.text_array(per_mailbox);
    append.text_array(per_mailbox).i64_array(per_n).i64_array(per_bytes).i64(static_cast<std::int64_t>(new_count));
    append.text_array(rows.mailbox).i64_array(offs).i16_array(rows.kind).text_array(rows.from)
        .text_array(rows.reason).bytes_array(rows.body).text_array(rows.client_msg_id).bool_array(rows.want_receipt);
    append.i64(b.now_ms).text_array(d.from).text_array(d.client_msg_id).bytes_array(d.payload);
    append.i64(b.now_ms - opts_.dedup_window_ms).i64(static_cast<std::int64_t>(dedup_count));
    append.i64(clamp_i64(opts_.max_messages)).i64(clamp_i64(opts_.max_bytes));
    static const std::string kBegin = "BEGIN";
    static const std::string kCommit = "COMMIT";
    const pg::Params none;
    // The dedup keys' locks after the rows (as the other path's first
    // statement): a batch on the other path that read a key under its lock
    // and writes it at its end must not find this batch's entry there, and
    // two batches never wait on each other's uncommitted entries.
    pg::Params keys;
    keys.text_array(d.from).text_array(d.client_msg_id);
    std::vector<pg::Connection::Step> steps{{&kBegin, &none, false}, {&kLockRows, &lock}};
    if (!d.from.empty()) steps.push_back({&pg_detail::kLockDedup, &keys});
    steps.push_back({&kAppendBatch, &append});
    steps.push_back({&kCommit, &none, false});
    b.open = true;
    auto r = writer_conn_->pipeline(steps);
    b.sqlstate = writer_conn_->sqlstate();
    if (!r) return b.failed = r.status();
    b.open = false;
    b.wrote = true;
    // Per mailbox, its messages by mseq: the k-th is the request at offset k.
    std::map<std::string, std::vector<std::pair<std::int64_t, std::int64_t>>> got;  // mseq, seq
    const pg::Rows& out = (*r)[steps.size() - 2];
    std::size_t n_out = 0;
    for (int i = 0; i < out.size(); ++i) {
      if (out.str(i, 0).empty()) continue;  // the check row
      got[std::string(out.str(i, 0))].emplace_back(out.i64(i, 2), out.i64(i, 1));
      ++n_out;
    }
    // (The statement checks the count itself; it cannot differ.)
    if (n_out != new_count) return b.failed = Status::io_error("postgres: the append statement returned too few rows");
    for (auto& [mailbox, v] : got) std::sort(v.begin(), v.end());
    for (std::size_t i = 0; i < requests.size(); ++i) {
      if (plans[i].kind != Plan::kNew) continue;
      const AppendRequest& req = std::get<AppendOp>(requests[i]).req;
      const auto& [mseq, seq] = got.at(req.mailbox).at(static_cast<std::size_t>(plans[i].off));
      AppendResult& res = results[i].append;
      res.seq = static_cast<std::uint64_t>(seq);
      res.mseq = static_cast<std::uint64_t>(mseq);
      res.sent_at_ms = b.now_ms;
      res.mailbox = req.mailbox;
      b.max_seq = std::max(b.max_seq, res.seq);
      ++b.appended;
      ++b.delta_messages;
      b.delta_bytes += static_cast<std::int64_t>(req.body.size());
    }
  }
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const AppendRequest& req = std::get<AppendOp>(requests[i]).req;
    switch (plans[i].kind) {
      case Plan::kBad:
        results[i].status = Status::invalid_argument("append: bad mailbox, sender, reason or kind");
        break;
      case Plan::kDuplicate:
        ++b.duplicates;
        results[i].append = b.dedup.at(dedup_id(req.from, req.client_msg_id));
        break;
      case Plan::kDuplicateInBatch: {
        ++b.duplicates;
        const std::size_t f = plans[i].first;
        AppendResult dup = results[f].append;
        dup.duplicate = true;
        dup.mseq = 0;
        dup.dedup_payload = std::get<AppendOp>(requests[f]).req.dedup_payload;
        results[i].append = std::move(dup);
        break;
      }
      case Plan::kNew:
        break;
    }
  }
  outcomes = std::move(results);
  return Status::ok();
}

}  // namespace oms::storage
