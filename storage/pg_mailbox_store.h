// The PostgreSQL MailboxStore (internal to storage/; tables in pg_schema.h).
//
// Writes: a WriteBatcher (write_batcher.h) group-commits them; its writer
// thread runs each batch as ONE transaction on the writer connection
// (pg_mailbox_store.cpp, its locks pg_mailbox_locks.cpp):
//   1. BEGIN; lock the rows of every mailbox the batch appends to, in byte
//      order (an upsert: INSERT ... ON CONFLICT DO UPDATE RETURNING the
//      totals), and fold in their deltas (what acks, purges and the sweep
//      removed: mailbox_deltas); take the advisory locks of the users the
//      batch acks for, purges, signs in or out (sorted); lock the batch's
//      dedup keys (transaction advisory locks, sorted) and read their
//      entries: one statement each;
//   2. only then take the batch's sequence numbers from oms_seq (one
//      nextval statement for all): whoever appends to a mailbox holds its
//      row until COMMIT, so seqs commit in order per mailbox, across nodes;
//   3. decide each request in order in memory against the locked totals
//      (quota, dedup, refusals: exact across nodes) and queue its rows;
//      acks, purges, sweeps, device changes and receipts run their own
//      statements after the queued rows are flushed (so each request sees
//      the earlier ones); a run of acks and appends reads its acks in one
//      round trip and writes them in one; sign-outs only queue their
//      last_seen, written before the batch next reads devices. Acks, purges, the sweep and device changes never
//      lock a mailbox row (so a node acking for a user does not wait for
//      another node's append to the user, which holds the row until its
//      COMMIT has reached the synchronous standby): they hold the user's
//      advisory lock and count what they delete as deltas. Locks found
//      only later (a receipt's sender's row, an expired message's user)
//      are taken NOWAIT: when another transaction holds one, the batch
//      runs again with it locked in step 1. A transaction thus only waits
//      in step 1, in one order, and nodes never deadlock;
//   4. one multi-row INSERT for the messages and receipts, one for the
//      dedup entries, one UPDATE for the totals, one INSERT for the
//      deltas, one UPDATE for the sign-outs still queued, COMMIT.
// A batch of appends only takes another way (postgres.late_locks,
// pg_mailbox_appends.cpp): it reads totals and dedup entries without a
// lock, then locks the rows, writes everything in one statement that
// checks those reads under the locks, and commits, in one round trip; so
// another node waits on its rows for the server's work only. Near a quota,
// for a row to create, or when the check fails, it runs as above.
// Otherwise an append-only batch costs 2 round trips whatever its size (libpq
// pipeline mode): BEGIN + lock mailboxes + lock and read dedup + nextval,
// then insert messages + dedup entries + totals + COMMIT. A request
// refused (quota, bad argument) writes nothing;
// a failed statement or COMMIT fails the whole batch (io_error), nothing of
// it is visible, and the next batch reconnects if need be.
// Other requests (purges, sign-ins, forgets, sweeps, receipts) add a few
// round trips each; a run of acks two; sign-outs none of their own. A busy NOWAIT lock, or a deadlock or serialization failure
// all the same, runs the batch again (at most kMaxAttempts); seqs taken by
// a failed attempt are never reused.
// A COMMIT whose answer is lost with the connection is reported io_error
// though it may have committed (PostgreSQL cannot tell): a resend with the
// same client_msg_id then gets the first result.
// Reads are synchronous statements on a pool of connections
// (pg_mailbox_reads.cpp). Open sessions per device are counted in memory
// per node, as in the RocksDB store (cluster mode: a device with a session
// on another node counts as active through its last_seen, within
// devices.idle_seconds). last_seq(): the highest seq this node committed or
// read (other nodes' seqs arrive with the reads that return them).
// StoreOptions::path, block_cache_bytes and env are RocksDB's: unused here.
//
// Thread-safe, as MailboxStore says.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "storage/mailbox_store.h"
#include "storage/online_sessions.h"
#include "storage/options.h"
#include "storage/pg_connection.h"
#include "storage/write_batcher.h"

namespace oms::storage {

namespace pg_detail {
struct Batch;
struct Record;
struct Device;
}  // namespace pg_detail

class PgMailboxStore final : public MailboxStore {
 public:
  // `writer` is the writer thread's connection; `reads` serves the reads.
  static Result<std::unique_ptr<MailboxStore>> open(std::unique_ptr<pg::Connection> writer,
                                                    std::shared_ptr<pg::ReadPool> reads,
                                                    const StoreOptions& options);
  ~PgMailboxStore() override;  // completes every queued request

  void append(AppendRequest req, AppendCallback done) override;
  void ack(std::string mailbox, std::string device, std::vector<std::uint64_t> seqs,
           CountCallback done) override;
  void purge(std::string mailbox, CountCallback done) override;
  void want_receipt(std::string mailbox, std::uint64_t seq, std::string from, std::string client_msg_id,
                    CountCallback done) override;
  void sweep_expired(CountCallback done) override;
  void device_signed_in(std::string user, std::string device, bool capable, DeviceCallback done) override;
  void device_signed_out(std::string user, std::string device, CountCallback done) override;
  void forget_device(std::string user, std::string device, CountCallback done) override;
  void reconcile_devices(CountCallback done) override;

  Result<std::vector<StoredMessage>> read(std::string_view mailbox, std::string_view device,
                                          std::uint64_t after_seq, std::size_t limit) const override;
  Result<MailboxSummary> summary(std::string_view mailbox, std::string_view device,
                                 std::uint64_t after_seq, bool missed_only,
                                 std::vector<StoredMessage>* first_page,
                                 std::size_t page_limit) const override;
  Result<std::vector<DeviceRecord>> devices(std::string_view user) const override;
  bool device_known(std::string_view user, std::string_view device) const override;
  MailboxStats stats(std::string_view mailbox) const override;
  Result<std::optional<AppendResult>> find_duplicate(std::string_view from,
                                                     std::string_view client_msg_id) const override;
  std::uint64_t last_seq() const override { return last_seq_.load(); }

  const StoreCounters& counters() const override { return counters_; }
  void set_batch_observer(BatchObserver* observer) override { observer_.store(observer); }
  void set_receipt_listener(ReceiptListener listener) override { receipt_listener_ = std::move(listener); }
  void set_after_batch(std::function<void()> hook) override { batcher_.set_after_batch(std::move(hook)); }
  bool writable() const override { return writable_.load(); }

 private:
  using Batch = pg_detail::Batch;
  using Record = pg_detail::Record;
  using Device = pg_detail::Device;

  PgMailboxStore(std::unique_ptr<pg::Connection> writer, std::shared_ptr<pg::ReadPool> reads,
                 const StoreOptions& options);
  Status load();
  static bool valid_mailbox(std::string_view mailbox);
  // Messages sent before this are expired (INT64_MIN: none expire).
  std::int64_t expiry_cutoff(std::int64_t now_ms) const;
  void saw_seq(std::uint64_t seq) const;  // raises last_seq_

  static bool valid_append(const AppendRequest& req);

  // ---- writer thread (pg_mailbox_store.cpp) ----
  WriteBatcher::Followers commit(std::vector<WriteRequest>& requests, std::vector<WriteOutcome>& outcomes);
  // Reconnects a broken writer connection and applies its session settings.
  Status ready_connection();
  // One attempt at the batch's transaction, up to (not including) COMMIT.
  Status run_batch(Batch& b, std::vector<WriteRequest>& requests, std::vector<WriteOutcome>& outcomes);
  Status begin(Batch& b, std::vector<WriteRequest>& requests);
  Status finish(Batch& b);
  Status lock_mailboxes(Batch& b, std::vector<std::string> mailboxes);
  // Locks `mailbox` (unless this batch holds it; NOWAIT, see
  // kTryLockMailboxes) and runs `reads` after it, in one round trip;
  // yields the reads' rows.
  Result<std::vector<pg::Rows>> lock_and_read(Batch& b, const std::string& mailbox,
                                              std::vector<pg::Connection::Step> reads);
  Result<std::vector<pg::Rows>> lock_and_read(Batch& b, const std::vector<std::string>& mailboxes,
                                              std::vector<pg::Connection::Step> reads);
  // The users' advisory locks (acks, devices, purges, the sweep), those
  // this batch does not hold, NOWAIT (pg_try_advisory_xact_lock): one held
  // elsewhere ends the attempt as lock_not_available, and the batch runs
  // again with it in its first statement. The reads run after them.
  Status ack_lock(Batch& b, std::vector<std::string> users);
  Result<std::vector<pg::Rows>> ack_lock_and_read(Batch& b, std::vector<std::string> users,
                                                  std::vector<pg::Connection::Step> reads);
  // Folds the deltas committed since the row was locked (the row is this
  // batch's: acks elsewhere may have committed deltas meanwhile).
  Status refold(Batch& b, const std::string& mailbox);
  Status take_seq(Batch& b, std::uint64_t& seq);
  // Writes the queued rows (and drops receipts over the cap), so that the
  // next statement sees them.
  Status flush(Batch& b);
  Result<pg::Rows> exec(Batch& b, const std::string& sql, const pg::Params& p);
  WriteOutcome apply(Batch& b, AppendOp& op);
  WriteOutcome apply(Batch& b, PurgeOp& op);
  WriteOutcome apply(Batch& b, SweepOp& op);
  // ---- writer thread (pg_mailbox_appends.cpp) ----
  // A batch of appends only, with its mailbox rows locked in its last
  // round trip only (see there). `declined`: the batch is not one this
  // path takes (nothing was written; run_batch takes it).
  Status run_appends(Batch& b, std::vector<WriteRequest>& requests, std::vector<WriteOutcome>& outcomes,
                     bool& declined);
  // ---- writer thread (pg_mailbox_devices.cpp) ----
  WriteOutcome apply(Batch& b, AckOp& op);
  // Acks in a row: read ahead (requests[first..]) and written together.
  Status read_ack_run(Batch& b, std::vector<WriteRequest>& requests, std::size_t first);
  Status write_ack_run(Batch& b);
  // The queued sign-outs' UPDATE, in a round trip of its own (none queued:
  // nothing); finish sends it with the COMMIT instead.
  Status write_sign_outs(Batch& b);
  WriteOutcome apply(Batch& b, DeviceOp& op);
  WriteOutcome apply(Batch& b, ReconcileOp& op);
  WriteOutcome apply(Batch& b, ReceiptWantedOp& op);
  Status devices_of(Batch& b, const std::string& user, std::vector<Device>& out);
  std::vector<std::string> active_devices(Batch& b, const std::string& user, const std::vector<Device>& devs) const;
  std::uint32_t sessions_of(const std::string& user, const std::string& device) const;
  Status emit_receipt(Batch& b, std::string_view sender, ReceiptRecord r);
  // Locks every sender's mailbox (sorted), then writes the receipts.
  Status emit_receipts(Batch& b, std::vector<std::pair<std::string, ReceiptRecord>> receipts);
  Status reconcile_user(Batch& b, const std::string& user, const std::string& forgotten, std::uint64_t& released);
  // Deletes records of `mailbox` (with all their kept acks) and counts them.
  // `deleted` (optional) gets the seqs that were there.
  Status delete_records(Batch& b, const std::string& mailbox, const std::vector<Record>& recs,
                        std::unordered_set<std::uint64_t>* deleted = nullptr);
  // Takes back the batch's session changes (keep_ended: not its sign-outs;
  // online_sessions.h).
  void undo_sessions(Batch& b, bool keep_ended);
  // A batch refused whole (no room on the disk): its sign-outs' sessions
  // end all the same.
  void end_refused_sessions(const std::vector<WriteRequest>& requests);
  WriteBatcher::Followers finish_receipts(Batch& b, bool ok);

  std::unique_ptr<pg::Connection> writer_conn_;
  std::shared_ptr<pg::ReadPool> reads_;
  const StoreOptions opts_;
  const Clock* const clock_;
  const std::int64_t ttl_ms_;  // 0 = never expire

  StoreCounters counters_;
  mutable std::atomic<std::uint64_t> last_seq_{0};
  std::atomic<bool> writable_{true};
  std::atomic<BatchObserver*> observer_{nullptr};
  ReceiptListener receipt_listener_;
  mutable std::mutex online_mu_;
  OnlineSessions online_;
  std::unique_ptr<Batch> batch_;
  bool session_set_ = false;  // the writer session's settings are applied

  // The expiry sweep: chunks through the writer until one comes back short.
  struct Sweep {
    std::mutex mu;
    bool running = false;
    std::uint64_t removed = 0;
    std::vector<CountCallback> waiters;
  };
  void sweep_chunk();
  std::shared_ptr<Sweep> sweep_ = std::make_shared<Sweep>();
  std::atomic<bool> sweep_more_{false};  // the last chunk was full (writer sets, completer reads)

  WriteBatcher batcher_;  // last: stopped (drained) before the rest goes
};

}  // namespace oms::storage
