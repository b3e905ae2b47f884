// The mailbox rules of the PostgreSQL MailboxStore: how a batch of
// requests becomes one transaction (the shape: pg_mailbox_store.h). Writer
// thread, except the entry points (which only enqueue). Locks:
// pg_mailbox_locks.cpp; acks, devices and
// receipts: pg_mailbox_devices.cpp; purges and expiry:
// pg_mailbox_sweep.cpp; reads: pg_mailbox_reads.cpp.
#include "storage/pg_mailbox_store.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <unordered_set>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "storage/pg_mailbox_batch.h"

namespace oms::storage {
namespace {

constexpr std::int64_t kMsPerDay = 24LL * 3600 * 1000;
// Same limits as the RocksDB store's keys (keys.h kMaxShortField).
constexpr std::size_t kMaxShortField = 255;
// A batch that meets a deadlock (several nodes locking mailboxes in
// different orders while acking or sweeping) runs again, this many times.
// (Each lock_not_available attempt adds mailboxes to the first statement:
// a batch needs as many more attempts as it has receipt senders and expired
// mailboxes locked elsewhere at once, in the worst case.)
constexpr int kMaxAttempts = 8;

const std::string kInsertRows = R"sql(
INSERT INTO messages (mailbox, seq, mseq, sent_at_ms, kind, from_user, reason, body, client_msg_id,
                      want_receipt, receipt_state, receipt_msg_seq, receipt_to)
SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int2[], $6::text[], $7::text[],
                     $8::bytea[], $9::text[], $10::bool[], $11::int2[], $12::int8[], $13::text[]))sql";
const std::string kInsertDedup = R"sql(
INSERT INTO dedup (from_user, client_msg_id, mailbox, seq, sent_at_ms, created_ms, payload)
SELECT f, c, m, s, t, t, p FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::bytea[])
  AS u(f, c, m, s, t, p)
ON CONFLICT (from_user, client_msg_id) DO UPDATE SET mailbox = EXCLUDED.mailbox, seq = EXCLUDED.seq,
  sent_at_ms = EXCLUDED.sent_at_ms, created_ms = EXCLUDED.created_ms, payload = EXCLUDED.payload)sql";

const std::string kInsertDeltas =
    "INSERT INTO mailbox_deltas (mailbox, count, bytes, receipts) "
    "SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[])";
const std::string kWriteTotals =
    "UPDATE mailboxes m SET next_mseq = t.n, count = t.c, bytes = t.b, receipts = t.r "
    "FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) AS t(m, n, c, b, r) "
    "WHERE m.mailbox = t.m";

pg::Params row_params(const pg_detail::Rows& r) {
  pg::Params p;
  p.text_array(r.mailbox).i64_array(r.seq).i64_array(r.mseq).i64_array(r.sent_at_ms).i16_array(r.kind)
      .text_array(r.from).text_array(r.reason).bytes_array(r.body).text_array(r.client_msg_id)
      .bool_array(r.want_receipt).i16_array(r.receipt_state).i64_array(r.receipt_msg_seq).text_array(r.receipt_to);
  return p;
}

// The deltas of mailboxes this batch does not lock (none: no parameters).
pg::Params delta_params(const pg_detail::Batch& b) {
  std::vector<std::string> names;
  std::vector<std::int64_t> count, bytes, receipts;
  for (const auto& [mailbox, d] : b.deltas) {
    if (d.count == 0 && d.bytes == 0 && d.receipts == 0) continue;
    names.push_back(mailbox);
    count.push_back(d.count);
    bytes.push_back(d.bytes);
    receipts.push_back(d.receipts);
  }
  pg::Params p;
  if (!names.empty()) p.text_array(names).i64_array(count).i64_array(bytes).i64_array(receipts);
  return p;
}

pg::Params dedup_params(const pg_detail::DedupRows& d) {
  pg::Params p;
  p.text_array(d.from).text_array(d.client_msg_id).text_array(d.mailbox).i64_array(d.seq).i64_array(d.sent_at_ms)
      .bytes_array(d.payload);
  return p;
}

// The changed totals (no parameters when none changed).
pg::Params totals_params(const pg_detail::Batch& b) {
  std::vector<std::string> names;
  std::vector<std::int64_t> next, count, bytes, receipts;
  for (const auto& [mailbox, t] : b.locked) {
    if (!t.dirty) continue;
    names.push_back(mailbox);
    next.push_back(t.next_mseq);
    count.push_back(t.count);
    bytes.push_back(t.bytes);
    receipts.push_back(t.receipts);
  }
  pg::Params p;
  if (!names.empty()) p.text_array(names).i64_array(next).i64_array(count).i64_array(bytes).i64_array(receipts);
  return p;
}

}  // namespace

using pg_detail::Batch;
using pg_detail::dedup_id;
using pg_detail::kLockNotAvailable;
using pg_detail::kNextSeqs;
using pg_detail::Totals;

// ---------------------------------------------------------------------------
// open / close

Result<std::unique_ptr<MailboxStore>> PgMailboxStore::open(std::unique_ptr<pg::Connection> writer,
                                                           std::shared_ptr<pg::ReadPool> reads,
                                                           const StoreOptions& options) {
  std::unique_ptr<PgMailboxStore> store(new PgMailboxStore(std::move(writer), std::move(reads), options));
  if (Status s = store->load(); !s) return s;
  store->batcher_.start();
  return std::unique_ptr<MailboxStore>(std::move(store));
}

PgMailboxStore::PgMailboxStore(std::unique_ptr<pg::Connection> writer, std::shared_ptr<pg::ReadPool> reads,
                               const StoreOptions& options)
    : writer_conn_(std::move(writer)),
      reads_(std::move(reads)),
      opts_(options),
      clock_(opts_.clock ? opts_.clock : &SystemClock::instance()),
      ttl_ms_(opts_.ttl_ms_override > 0 ? opts_.ttl_ms_override
                                        : static_cast<std::int64_t>(opts_.ttl_days) * kMsPerDay),
      batch_(std::make_unique<Batch>()),
      batcher_(opts_.max_batch_requests, opts_.max_queued_requests,
               [this](std::vector<WriteRequest>& requests, std::vector<WriteOutcome>& outcomes) {
                 return commit(requests, outcomes);
               }) {}

PgMailboxStore::~PgMailboxStore() { batcher_.stop(); }

Status PgMailboxStore::load() {
  auto seq = writer_conn_->exec("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM oms_seq");
  if (!seq) return seq.status();
  last_seq_.store(static_cast<std::uint64_t>(seq->i64(0, 0)));
  auto totals = writer_conn_->exec(
      "SELECT (SELECT coalesce(sum(count), 0) FROM mailboxes)::int8 + "
      "(SELECT coalesce(sum(count), 0) FROM mailbox_deltas)::int8, "
      "(SELECT coalesce(sum(bytes), 0) FROM mailboxes)::int8 + (SELECT coalesce(sum(bytes), 0) FROM mailbox_deltas)::int8");
  if (!totals) return totals.status();
  counters_.total_messages.store(static_cast<std::uint64_t>(totals->i64(0, 0)));
  counters_.total_bytes.store(static_cast<std::uint64_t>(totals->i64(0, 1)));
  return Status::ok();
}

bool PgMailboxStore::valid_mailbox(std::string_view mailbox) {
  return !mailbox.empty() && mailbox.size() <= kMaxShortField;
}

std::int64_t PgMailboxStore::expiry_cutoff(std::int64_t now_ms) const {
  return ttl_ms_ > 0 ? now_ms - ttl_ms_ : std::numeric_limits<std::int64_t>::min();
}

void PgMailboxStore::saw_seq(std::uint64_t seq) const {
  std::uint64_t cur = last_seq_.load();
  while (seq > cur && !last_seq_.compare_exchange_weak(cur, seq)) {
  }
}

void PgMailboxStore::append(AppendRequest req, AppendCallback done) {
  batcher_.enqueue(AppendOp{std::move(req), std::move(done)});
}
void PgMailboxStore::ack(std::string mailbox, std::string device, std::vector<std::uint64_t> seqs,
                         CountCallback done) {
  if (device.empty()) device = std::string(proto::kLegacyDevice);
  batcher_.enqueue(AckOp{std::move(mailbox), std::move(device), std::move(seqs), std::move(done)});
}
void PgMailboxStore::purge(std::string mailbox, CountCallback done) {
  batcher_.enqueue(PurgeOp{std::move(mailbox), std::move(done)});
}

// ---------------------------------------------------------------------------
// the batch transaction

Result<pg::Rows> PgMailboxStore::exec(Batch& b, const std::string& sql, const pg::Params& p) {
  auto r = writer_conn_->exec(sql, p);
  if (!r) {
    b.sqlstate = writer_conn_->sqlstate();
    if (b.failed.is_ok()) b.failed = r.status();
  }
  return r;
}

WriteBatcher::Followers PgMailboxStore::commit(std::vector<WriteRequest>& requests,
                                              std::vector<WriteOutcome>& outcomes) {
  const std::int64_t now = clock_->now_ms();
  const bool refuse_new = opts_.refuse_new_messages && opts_.refuse_new_messages();
  if (refuse_new && opts_.refuse_all_writes && opts_.refuse_all_writes()) {
    for (std::size_t i = 0; i < requests.size(); ++i)
      outcomes.push_back({Status::store_full("the server's disk has no room left: nothing can be written "
                                             "until space is freed (retry)"),
                          {},
                          0});
    end_refused_sessions(requests);
    return {};
  }
  Batch& b = *batch_;
  Status status;
  std::int64_t micros = 0;
  // A batch of appends only locks its mailbox rows in its last round trip
  // (pg_mailbox_appends.cpp), unless that path declines it or its check
  // fails: then it runs as any other batch.
  bool late_locks = opts_.postgres_late_locks && !refuse_new && !requests.empty() &&
                    std::all_of(requests.begin(), requests.end(),
                                [](const WriteRequest& r) { return std::holds_alternative<AppendOp>(r); });
  // Mailboxes (rows; users' advisory locks) an earlier attempt could not lock later.
  std::vector<std::string> prelock, prelock_ack;
  for (int attempt = 1;; ++attempt) {
    const auto t0 = std::chrono::steady_clock::now();
    auto reset = [&] {
      b = Batch();
      b.now_ms = now;
      b.refuse_new = refuse_new;
      b.prelock = prelock;
      b.prelock_ack = prelock_ack;
      outcomes.clear();
    };
    reset();
    bool declined = true;
    const bool late = late_locks;
    if (late) {
      status = run_appends(b, requests, outcomes, declined);
      if (declined) reset();
      late_locks = false;  // (a later attempt runs as any batch)
    }
    if (declined) {
      status = run_batch(b, requests, outcomes);
      if (status.is_ok()) {
        b.wrote = b.wrote || !b.rows.empty() || !b.dedup_rows.empty() || !b.deltas.empty() ||
                  !b.sign_out_user.empty() ||
                  std::any_of(b.locked.begin(), b.locked.end(), [](const auto& m) { return m.second.dirty; });
        if (b.wrote && opts_.inject_write_error) status = opts_.inject_write_error();
      }
      if (status.is_ok()) status = finish(b);  // the queued rows, the totals and COMMIT
    }
    if (!status.is_ok() && b.open) (void)writer_conn_->command("ROLLBACK");
    micros = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
    // The late-lock path's own check failed (a quota or dedup race): the
    // batch is decided under early locks.
    const bool late_check = late && !declined && b.sqlstate == pg_detail::kLateCheckFailed;
    if (late_check) ++counters_.late_lock_reruns;
    else if (late && !declined && status.is_ok() && b.wrote) ++counters_.late_lock_batches;
    const bool busy = b.sqlstate == kLockNotAvailable || late_check;
    if (status.is_ok() || attempt == kMaxAttempts || !(busy || pg::retryable(b.sqlstate))) break;
    prelock.insert(prelock.end(), b.missed_locks.begin(), b.missed_locks.end());
    prelock_ack.insert(prelock_ack.end(), b.missed_ack_locks.begin(), b.missed_ack_locks.end());
    undo_sessions(b, false);  // (applied again by the next attempt)
  }

  const bool ok = status.is_ok();
  const bool attempted = b.wrote || !ok;
  counters_.refused_full += b.refused_full;
  if (ok) {
    counters_.appended += b.appended;
    counters_.duplicates += b.duplicates;
    counters_.acked += b.acked;
    counters_.purged += b.purged;
    counters_.expired_removed += b.expired;
    counters_.total_messages += static_cast<std::uint64_t>(b.delta_messages);  // wraps on minus
    counters_.total_bytes += static_cast<std::uint64_t>(b.delta_bytes);
    counters_.receipts_delivered += b.receipts_by_state[1];
    counters_.receipts_expired += b.receipts_by_state[2];
    counters_.receipts_purged += b.receipts_by_state[3];
    counters_.receipts_dropped += b.receipts_dropped;
    counters_.receipts_acked += b.receipts_acked;
    counters_.device_acks_held += b.acks_held;
    counters_.devices_forgotten += b.forgotten;
    counters_.devices_released += b.released;
    saw_seq(b.max_seq);
    if (b.wrote) writable_.store(true);
  } else {
    ++counters_.write_errors;
    writable_.store(false);
    undo_sessions(b, true);
  }
  ++counters_.batches;
  counters_.batch_requests += requests.size();
  WriteBatcher::Followers then = finish_receipts(b, ok);
  if (BatchObserver* obs = observer_.load()) obs->on_batch(requests.size(), micros, attempted, status);
  if (!ok) {
    outcomes.resize(requests.size());
    for (auto& o : outcomes) o = WriteOutcome{Status::io_error(status.message()), {}, 0};
  }
  return then;
}

Status PgMailboxStore::ready_connection() {
  if (writer_conn_->ok() && session_set_) return Status::ok();
  session_set_ = false;
  if (!writer_conn_->ok())
    if (Status s = writer_conn_->reset(); !s) return s;
  // Benchmarks only: COMMIT returns before the WAL is flushed.
  if (Status s = writer_conn_->command(opts_.sync ? "SET synchronous_commit = on" : "SET synchronous_commit = off");
      !s)
    return s;
  // A node that hangs mid-batch (SIGSTOP, a stalled VM) holds its
  // mailbox row locks, and every other node's writer waits behind them:
  // the cluster fault test saw writes stop on all nodes for the whole
  // 20 s of a SIGSTOP. The server ends such a transaction after 3 s
  // idle (nothing of it committed; the hung node's batch fails and its
  // clients resend). A live writer is never idle in a transaction for
  // long: it sends the next statement as soon as the previous returned.
  if (Status s = writer_conn_->command("SET idle_in_transaction_session_timeout = '3s'"); !s) return s;
  session_set_ = true;
  return Status::ok();
}

Status PgMailboxStore::run_batch(Batch& b, std::vector<WriteRequest>& requests, std::vector<WriteOutcome>& outcomes) {
  // A connection found broken only now (nothing of the batch committed):
  // reconnect and begin again, once.
  for (int tries = 0;; ++tries) {
    if (Status s = ready_connection(); !s) return s;
    Status s = begin(b, requests);
    b.open = writer_conn_->ok();
    if (s) break;
    if (b.open || tries == 1) return s;
    session_set_ = false;
    b.failed = Status::ok();
  }
  // Acks and appends (a chat batch is half each, interleaved) form one
  // run: its acks' reads in one round trip at the first ack, their deletes
  // and kept acks in one at the run's end (appends queue their rows for
  // finish). Any other request ends the run. Two or three round trips per
  // ack, or four per alternation, made a 200-request chat batch take
  // 200 ms on a loaded machine (cluster-bench, cross-node p99).
  auto in_run = [&](std::size_t i) {
    return i < requests.size() &&
           (std::holds_alternative<AckOp>(requests[i]) || std::holds_alternative<AppendOp>(requests[i]));
  };
  bool reading = false;  // an ack run's reads are done
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (!b.failed.is_ok()) return b.failed;
    if (!reading && std::holds_alternative<AckOp>(requests[i])) {
      if (!read_ack_run(b, requests, i)) return b.failed;
      reading = true;
    }
    b.request = outcomes.size();
    outcomes.push_back(std::visit([&](auto& op) { return apply(b, op); }, requests[i]));
    if (reading && !in_run(i + 1) && b.failed.is_ok()) {
      if (!write_ack_run(b)) return b.failed;
      reading = false;
    }
  }
  return b.failed;
}

// One round trip (a pipeline): the queued rows and dedup entries, the
// totals, COMMIT. (Receipts over a mailbox's cap are dropped first, with
// statements of their own: rare.)
Status PgMailboxStore::finish(Batch& b) {
  static const std::string kCommit = "COMMIT";
  const bool over_cap = std::any_of(b.locked.begin(), b.locked.end(), [&](const auto& m) {
    return m.second.receipts > static_cast<std::int64_t>(opts_.max_receipts_per_mailbox);
  });
  if (over_cap)
    if (Status s = flush(b); !s) return s;
  const pg::Params none;
  pg::Params rows = row_params(b.rows), dedup = dedup_params(b.dedup_rows), totals = totals_params(b),
             deltas = delta_params(b);
  std::vector<pg::Connection::Step> steps;
  if (!b.rows.empty()) steps.push_back({&kInsertRows, &rows});
  if (!b.dedup_rows.empty()) steps.push_back({&kInsertDedup, &dedup});
  if (totals.size() > 0) steps.push_back({&kWriteTotals, &totals});
  if (deltas.size() > 0) steps.push_back({&kInsertDeltas, &deltas});
  pg::Params sign_outs;
  if (!b.sign_out_user.empty()) {
    sign_outs.text_array(b.sign_out_user).text_array(b.sign_out_device).i64(b.now_ms);
    steps.push_back({&pg_detail::kWriteSignOuts, &sign_outs});
  }
  steps.push_back({&kCommit, &none, false});
  auto r = writer_conn_->pipeline(steps);
  b.sqlstate = writer_conn_->sqlstate();
  if (!r) return r.status();
  b.open = false;
  return Status::ok();
}

Status PgMailboxStore::take_seq(Batch& b, std::uint64_t& seq) {
  if (b.pool_next == b.seq_pool.size()) {
    pg::Params p;
    p.i64(static_cast<std::int64_t>(std::max<std::size_t>(1, b.appends_left + b.receipts_to_come)));
    auto r = exec(b, kNextSeqs, p);
    if (!r) return b.failed;
    b.seq_pool.clear();
    b.pool_next = 0;
    for (int i = 0; i < r->size(); ++i) b.seq_pool.push_back(static_cast<std::uint64_t>(r->i64(i, 0)));
    std::sort(b.seq_pool.begin(), b.seq_pool.end());
  }
  seq = b.seq_pool[b.pool_next++];
  b.max_seq = std::max(b.max_seq, seq);
  b.min_assigned = std::min(b.min_assigned, seq);
  return Status::ok();
}

Status PgMailboxStore::flush(Batch& b) {
  if (!b.rows.empty()) {
    if (!exec(b, kInsertRows, row_params(b.rows))) return b.failed;
    b.note_wrote();
    b.rows.clear();
  }
  if (!b.dedup_rows.empty()) {
    if (!exec(b, kInsertDedup, dedup_params(b.dedup_rows))) return b.failed;
    b.dedup_rows.clear();
  }
  // Receipts over the cap: the oldest go, with their kept acks.
  for (auto& [mailbox, t] : b.locked) {
    if (t.receipts <= static_cast<std::int64_t>(opts_.max_receipts_per_mailbox)) continue;
    // (The user's lock too: the user's acks delete receipts without the
    // row; and what they deleted since the fold counts first.)
    if (!ack_lock(b, {mailbox}) || !refold(b, mailbox)) return b.failed;
    if (t.receipts <= static_cast<std::int64_t>(opts_.max_receipts_per_mailbox)) continue;
    pg::Params p;
    p.text(mailbox).i64(t.receipts - static_cast<std::int64_t>(opts_.max_receipts_per_mailbox));
    auto gone = exec(b,
                     "WITH d AS (DELETE FROM messages WHERE mailbox = $1 AND seq IN (SELECT seq FROM messages "
                     "WHERE mailbox = $1 AND receipt_state <> 0 ORDER BY seq LIMIT $2) RETURNING seq), "
                     "a AS (DELETE FROM acks WHERE mailbox = $1 AND seq IN (SELECT seq FROM d) RETURNING 1) "
                     "SELECT seq FROM d",
                     p);
    if (!gone) return b.failed;
    for (int i = 0; i < gone->size(); ++i) b.receipts_gone.insert(static_cast<std::uint64_t>(gone->i64(i, 0)));
    t.receipts -= gone->size();
    t.dirty = true;
    b.receipts_dropped += static_cast<std::uint64_t>(gone->size());
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------
// the requests

bool PgMailboxStore::valid_append(const AppendRequest& req) {
  return valid_mailbox(req.mailbox) && req.from.size() <= kMaxShortField && req.reason.size() <= kMaxShortField &&
         req.client_msg_id.size() <= kMaxShortField && req.body.size() <= UINT32_MAX &&
         req.dedup_payload.size() <= UINT32_MAX && req.kind <= proto::MessageKind::kMissed;
}

WriteOutcome PgMailboxStore::apply(Batch& b, AppendOp& op) {
  const AppendRequest& req = op.req;
  if (!valid_append(req))
    return {Status::invalid_argument("append: bad mailbox, sender, reason or kind"), {}, 0};
  if (b.appends_left > 0) --b.appends_left;

  std::string key;
  if (!req.client_msg_id.empty()) {
    key = dedup_id(req.from, req.client_msg_id);
    if (auto it = b.dedup.find(key); it != b.dedup.end()) {
      auto created = b.dedup_created.find(key);
      // An entry older than the window counts as absent (and is overwritten).
      if (created == b.dedup_created.end() || b.now_ms - created->second < opts_.dedup_window_ms) {
        ++b.duplicates;
        return {Status::ok(), it->second, 0};
      }
    }
  }
  if (b.refuse_new)
    return {Status::store_full("the server's disk is nearly full; new messages are refused for now"), {}, 0};

  Totals& t = b.totals(req.mailbox);
  const auto body = static_cast<std::int64_t>(req.body.size());
  auto over = [&] {
    return static_cast<std::uint64_t>(t.count) + 1 > opts_.max_messages ||
           static_cast<std::uint64_t>(t.bytes + body) > opts_.max_bytes;
  };
  // The acks of this run before it count first (their deletes, written at
  // the run's end, are what frees the room).
  if (over() && !b.ack_del_seq.empty() && !write_ack_run(b)) return {};
  if (over()) {
    ++b.refused_full;
    return {Status::mailbox_full(fmt::format("mailbox of '{}' is full ({} messages, {} bytes)", req.mailbox,
                                             t.count, t.bytes)),
            {},
            0};
  }
  std::uint64_t seq = 0;
  if (Status s = take_seq(b, seq); !s) return {};
  auto& r = b.rows;
  r.mailbox.push_back(req.mailbox);
  r.seq.push_back(static_cast<std::int64_t>(seq));
  const std::int64_t mseq = t.next_mseq++;
  r.mseq.push_back(mseq);
  r.sent_at_ms.push_back(b.now_ms);
  r.add_request(req);
  r.receipt_state.push_back(0);
  r.receipt_msg_seq.push_back(0);
  r.receipt_to.emplace_back();
  t.count += 1;
  t.bytes += body;
  t.dirty = true;
  ++b.appended;
  ++b.delta_messages;
  b.delta_bytes += body;

  AppendResult res;
  res.seq = seq;
  res.mseq = static_cast<std::uint64_t>(mseq);
  res.sent_at_ms = b.now_ms;
  res.mailbox = req.mailbox;
  if (!key.empty()) {
    auto& d = b.dedup_rows;
    d.from.push_back(req.from);
    d.client_msg_id.push_back(req.client_msg_id);
    d.mailbox.push_back(req.mailbox);
    d.seq.push_back(static_cast<std::int64_t>(seq));
    d.sent_at_ms.push_back(b.now_ms);
    d.payload.push_back(req.dedup_payload);
    AppendResult first = res;
    first.duplicate = true;
    first.mseq = 0;
    first.dedup_payload = req.dedup_payload;
    b.dedup.insert_or_assign(key, std::move(first));
    b.dedup_created[key] = b.now_ms;
  }
  return {Status::ok(), std::move(res), 0};
}

}  // namespace oms::storage
