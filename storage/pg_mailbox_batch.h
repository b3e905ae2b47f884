// The writer thread's state of one batch transaction of the PostgreSQL
// MailboxStore (internal to storage/, shared by pg_mailbox_store.cpp and
// pg_mailbox_devices.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "storage/mailbox_store.h"
#include "storage/online_sessions.h"
#include "storage/pg_connection.h"

namespace oms::storage::pg_detail {

// lock_not_available: a NOWAIT lock met another transaction's.
inline constexpr std::string_view kLockNotAvailable = "55P03";
// division_by_zero: the late-lock append statement's own check failed
// (pg_mailbox_appends.cpp), raised on purpose.
inline constexpr std::string_view kLateCheckFailed = "22012";
// The sign-outs a batch queued (Batch::sign_out_*): $3 = the batch's time.
inline const std::string kWriteSignOuts =
    "UPDATE devices d SET last_seen_ms = $3 FROM unnest($1::text[], $2::text[]) AS s(u, dv) "
    "WHERE d.user_id = s.u AND d.device = s.dv";
inline const std::string kNextSeqs = "SELECT nextval('oms_seq') FROM generate_series(1, $1::int8)";

// A mailbox row locked by this transaction, as the batch leaves it.
struct Totals {
  std::int64_t next_mseq = 1;
  std::int64_t count = 0, bytes = 0, receipts = 0;
  bool dirty = false;
};

// What a batch removed from a mailbox whose row it does not lock (acks,
// purges, the sweep): written to mailbox_deltas at its end.
struct Delta {
  std::int64_t count = 0, bytes = 0, receipts = 0;
};

// Rows queued for the next flush (one multi-row INSERT each).
struct Rows {
  std::vector<std::string> mailbox, from, reason, body, client_msg_id, receipt_to;
  std::vector<std::int64_t> seq, mseq, sent_at_ms, receipt_msg_seq;
  std::vector<std::int16_t> kind, receipt_state;
  std::vector<bool> want_receipt;
  bool empty() const { return seq.empty(); }
  void clear() { *this = Rows(); }
  // The fields a message takes from its request.
  void add_request(const AppendRequest& req) {
    kind.push_back(static_cast<std::int16_t>(req.kind));
    from.push_back(req.from);
    reason.push_back(req.reason);
    body.push_back(req.body);
    client_msg_id.push_back(req.client_msg_id);
    want_receipt.push_back(req.want_receipt);
  }
};
struct DedupRows {
  std::vector<std::string> from, client_msg_id, mailbox, payload;
  std::vector<std::int64_t> seq, sent_at_ms;
  bool empty() const { return seq.empty(); }
  void clear() { *this = DedupRows(); }
};

// A message or receipt as an ack, purge or sweep finds it.
struct Record {
  std::uint64_t seq = 0;
  bool receipt = false;
  std::int64_t bytes = 0;
  bool want_receipt = false;
  std::string from, client_msg_id;
};

struct Device {
  std::string name;
  std::int64_t first_seen_ms = 0, last_seen_ms = 0;
  bool capable = false;
};

struct Batch {
  std::int64_t now_ms = 0;
  bool refuse_new = false;
  bool open = false;   // BEGIN was sent
  bool wrote = false;  // a statement that writes ran
  Status failed;       // a statement failed: the whole batch fails
  std::string sqlstate;
  std::map<std::string, Totals> locked;  // mailbox rows (appends)
  std::unordered_set<std::string> ack_locked;  // users' advisory locks (acks, devices, purges, sweep)
  std::map<std::string, Delta> deltas;  // removed from mailboxes not in `locked`
  // Locked in the first statement besides the appends' (an earlier attempt
  // found them locked elsewhere when it came to them: missed_locks), and
  // the same for the advisory locks.
  std::vector<std::string> prelock, missed_locks, prelock_ack, missed_ack_locks;
  std::vector<std::uint64_t> seq_pool;  // taken after the last lock, ascending
  std::size_t pool_next = 0;
  std::size_t appends_left = 0;  // valid appends not yet applied (the pool's size)
  std::size_t receipts_to_come = 0;  // receipts an op is writing (added to it)
  std::uint64_t max_seq = 0;
  // The lowest seq this batch gave a record: an ack naming one at or above
  // it may name a record of this batch, which its read-ahead (taken before
  // the record was written) cannot have seen.
  std::uint64_t min_assigned = UINT64_MAX;
  Rows rows;
  DedupRows dedup_rows;
  // (from '\0' client_msg_id) -> the first append's result: read from the
  // table at the start, or appended in this batch.
  std::unordered_map<std::string, AppendResult> dedup;
  std::unordered_map<std::string, std::int64_t> dedup_created;  // for the window
  std::vector<NewReceipt> receipts;          // written here (for the listener)
  std::vector<std::size_t> receipt_request;  // the request that wrote each
  std::unordered_set<std::uint64_t> receipts_gone;  // written here, then dropped or acked
  std::size_t request = 0;
  SessionDeltas session_deltas;
  std::uint64_t appended = 0, duplicates = 0, refused_full = 0, acked = 0, purged = 0, expired = 0;
  std::uint64_t receipts_by_state[4] = {0, 0, 0, 0};
  std::uint64_t receipts_dropped = 0, receipts_acked = 0, acks_held = 0, forgotten = 0, released = 0;
  std::int64_t delta_messages = 0, delta_bytes = 0;

  // A run of consecutive acks (pg_mailbox_devices.cpp, read_ack_run): each
  // ack's devices, records and kept acks read ahead in one round trip (by
  // request index; only the first ack of a mailbox in the run), and their
  // deletes and kept acks written in one round trip at the run's end.
  std::unordered_map<std::size_t, std::vector<pg::Rows>> ack_reads;
  std::vector<std::string> ack_del_mailbox, ack_keep_mailbox, ack_keep_device;
  std::vector<std::int64_t> ack_del_seq, ack_keep_seq;
  // Sign-outs' last_seen_ms, written in one statement before the batch next
  // reads devices (write_sign_outs) or with its COMMIT: a batch that ends
  // 200 sessions paid 400 round trips (a read and an UPDATE each).
  std::vector<std::string> sign_out_user, sign_out_device;

  Totals& totals(const std::string& mailbox) { return locked.at(mailbox); }
  // A record that was there is gone (counted from what a DELETE returned,
  // so a record two transactions delete counts once).
  void removed(const std::string& mailbox, std::uint64_t seq, bool receipt, std::int64_t bytes) {
    if (receipt) receipts_gone.insert(seq);
    else {
      delta_messages -= 1;
      delta_bytes -= bytes;
    }
    if (auto it = locked.find(mailbox); it != locked.end()) {
      Totals& t = it->second;
      if (receipt) t.receipts -= 1;
      else {
        t.count -= 1;
        t.bytes -= bytes;
      }
      t.dirty = true;
      return;
    }
    Delta& d = deltas[mailbox];
    if (receipt) d.receipts -= 1;
    else {
      d.count -= 1;
      d.bytes -= bytes;
    }
  }
  void note_wrote() { wrote = true; }
};

inline std::string dedup_id(std::string_view from, std::string_view client_msg_id) {
  std::string k(from);
  k.push_back('\0');
  k.append(client_msg_id);
  return k;
}

// The dedup keys' transaction advisory locks ($1 from, $2 client_msg_id),
// sorted, taken after a batch's row locks: whoever writes a dedup entry
// holds its key's lock (both batch paths), so a batch that read a key
// under its lock finds it unchanged when it writes.
inline const std::string kLockDedup =
    "SELECT pg_advisory_xact_lock(7302515, h) FROM (SELECT DISTINCT hashtext(f || '/' || c) AS h "
    "FROM unnest($1::text[], $2::text[]) AS k(f, c) ORDER BY 1) s";

// The dedup entries of keys ($1 from, $2 client_msg_id), committed ones.
// One primary-key probe per key, whatever the planner thinks of the
// table's size (the LIMIT keeps the subquery from being flattened into
// a join): as a plain join, a batch of 100 keys against a dedup table of
// 10-30 k rows was planned as a hash join over a sequential scan (4,513
// scans reading 76 M rows in a few minutes of cluster-bench).
inline const std::string kReadDedup =
    "SELECT d.from_user, d.client_msg_id, d.mailbox, d.seq, d.sent_at_ms, d.created_ms, d.payload "
    "FROM unnest($1::text[], $2::text[]) AS k(f, c) CROSS JOIN LATERAL (SELECT * FROM dedup x "
    "WHERE x.from_user = k.f AND x.client_msg_id = k.c LIMIT 1) d";

// Takes kReadDedup's rows into the batch (each the first append's result).
inline void found_dedup(Batch& b, const pg::Rows& found) {
  for (int i = 0; i < found.size(); ++i) {
    AppendResult d;
    d.mailbox = std::string(found.str(i, 2));
    d.seq = static_cast<std::uint64_t>(found.i64(i, 3));
    d.sent_at_ms = found.i64(i, 4);
    d.duplicate = true;
    d.dedup_payload = std::string(found.str(i, 6));
    const std::string key = dedup_id(found.str(i, 0), found.str(i, 1));
    b.dedup_created[key] = found.i64(i, 5);
    b.dedup.insert_or_assign(key, std::move(d));
  }
}

}  // namespace oms::storage::pg_detail
