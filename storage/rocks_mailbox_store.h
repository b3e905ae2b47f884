// The RocksDB MailboxStore (internal to storage/): built by the database
// (rocks_database.h) on its "default" (last_seq), messages, dedup,
// receipts, acks and devices column families (layouts in keys.h; the
// mailbox_meta family is empty since format version 3: the totals are in
// memory, mailbox_totals.h).
//
// Writes: a WriteBatcher (write_batcher.h) group-commits them; its writer
// thread calls commit(), which applies the batch's requests in order to one
// rocksdb::WriteBatch, the mailbox rules (rocks_mailbox_store.cpp), and
// writes it once. Reads (rocks_mailbox_reads.cpp) are plain RocksDB reads on
// the caller's thread. The expiry sweep scans on a thread of its own and
// deletes through the writer in small chunks (rocks_mailbox_sweep.cpp).
// Devices, per-device acks and receipts: rocks_mailbox_devices.cpp; the
// writer's per-batch state they share: rocks_mailbox_batch.h.
//
// Thread-safe, as MailboxStore says.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <rocksdb/slice.h>
#include <rocksdb/status.h>

#include "common/clock.h"
#include "common/status.h"
#include "storage/mailbox_store.h"
#include "storage/mailbox_totals.h"
#include "storage/online_sessions.h"
#include "storage/options.h"
#include "storage/rocks_column_families.h"
#include "storage/write_batcher.h"

namespace rocksdb {
class DB;
}

namespace oms::storage {

class WalWatch;
namespace rocks_detail {  // rocks_mailbox_batch.h
struct StagedMeta;
struct InBatch;
struct Batch;
struct Writer;
struct UserDevices;
struct Record;
}  // namespace rocks_detail

class RocksMailboxStore final : public MailboxStore {
 public:
  // Reads last_seq and the totals of every mailbox, then starts the writer.
  // Batches go to the database through wal->write() (see wal_watch.h).
  // `db`, the handles and `wal` are not owned and must outlive the store.
  static Result<std::unique_ptr<MailboxStore>> open(rocksdb::DB* db, MailboxColumnFamilies cfs,
                                                    WalWatch* wal, const StoreOptions& options);
  ~RocksMailboxStore() override;  // completes every queued request

  void append(AppendRequest req, AppendCallback done) override;
  void ack(std::string mailbox, std::string device, std::vector<std::uint64_t> seqs,
           CountCallback done) override;
  void ack_unsynced(std::string mailbox, std::string device, std::vector<std::uint64_t> seqs,
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
  void enqueue_ack(std::string mailbox, std::string device, std::vector<std::uint64_t> seqs, CountCallback done,
                   bool synced);
  // The writer thread's state: the batch being built and the committed
  // mailbox totals (rocks_mailbox_store.cpp).
  using StagedMeta = rocks_detail::StagedMeta;
  using InBatch = rocks_detail::InBatch;
  using Batch = rocks_detail::Batch;
  using Writer = rocks_detail::Writer;
  using UserDevices = rocks_detail::UserDevices;
  // A message or receipt record as an ack, purge, sweep or reconcile finds
  // it (rocks_mailbox_devices.cpp).
  using Record = rocks_detail::Record;
  class MailboxCursor;  // the merged, per-device read (rocks_mailbox_reads.cpp)

  RocksMailboxStore(rocksdb::DB* db, MailboxColumnFamilies cfs, WalWatch* wal,
                    const StoreOptions& options);
  // last_seq, and the totals of every mailbox counted from its records
  // (format version 3 keeps none on disk: mailbox_totals.h).
  Status load();

  static bool valid_mailbox(std::string_view mailbox);
  bool expired(std::int64_t sent_at_ms, std::int64_t now_ms) const {
    return ttl_ms_ > 0 && sent_at_ms < now_ms - ttl_ms_;
  }

  // Writer thread only.
  WriteBatcher::Followers commit(std::vector<WriteRequest>& requests, std::vector<WriteOutcome>& outcomes);
  WriteOutcome apply(Batch& b, AppendOp& op);
  WriteOutcome apply(Batch& b, AckOp& op);
  WriteOutcome apply(Batch& b, PurgeOp& op);
  WriteOutcome apply(Batch& b, ReceiptWantedOp& op);
  WriteOutcome apply(Batch& b, SweepOp& op);
  WriteOutcome apply(Batch& b, DeviceOp& op);
  WriteOutcome apply(Batch& b, ReconcileOp& op);

  // Devices, acks kept per device and receipts (rocks_mailbox_devices.cpp).
  // The user's devices as the batch leaves them (loaded on first touch);
  // nullptr when they could not be read (then b.failed is set).
  const UserDevices* devices_of(Batch& b, const std::string& user);
  UserDevices* devices_to_change(Batch& b, const std::string& user);
  // Names of the user's active devices now.
  std::vector<std::string> active_devices(Batch& b, const std::string& user, const UserDevices& devs) const;
  std::uint32_t sessions_of(Batch& b, const std::string& user, const std::string& device) const;
  // The devices that acked `seq` of `mailbox` (and whether the receipt
  // marker is there), as the batch leaves them. False when a read failed.
  bool acked_by(Batch& b, const std::string& mailbox, std::uint64_t seq, const StagedMeta& meta,
                std::vector<std::string>& devices, bool& marker);
  // Adds `device` to `user`'s table (first and last seen now).
  bool add_device(Batch& b, const std::string& user, const std::string& device, bool capable);
  // Messages read ahead in one walk (an ack's ids).
  struct Prefetch {
    static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
    std::vector<std::uint64_t> seqs;  // sorted
    std::vector<rocksdb::PinnableSlice> values;
    std::vector<rocksdb::Status> found;
    std::size_t index(std::uint64_t seq) const;
  };
  // Reads pre.seqs (sorted, of `mailbox`) from messages into `pre`. False
  // when the read failed (then b.failed is set).
  bool prefetch_messages(Batch& b, const std::string& mailbox, Prefetch& pre);
  // Looks `seq` up in the batch, then in messages (`pre` first, when given),
  // then in receipts.
  bool find_record(Batch& b, const std::string& mailbox, std::uint64_t seq, Record& out,
                   const Prefetch* pre = nullptr);
  // Deletes a message or receipt with its kept acks; updates the meta.
  bool delete_record(Batch& b, const std::string& mailbox, StagedMeta& meta, const Record& rec,
                     const std::vector<std::string>& acked, bool marker);
  // Keeps `device`'s ack of `seq` ("" = the receipt marker).
  bool keep_ack(Batch& b, const std::string& mailbox, std::uint64_t seq, const std::string& device,
                StagedMeta& meta);
  // Writes a receipt into `sender`'s mailbox (and drops its oldest receipt
  // beyond max_receipts_per_mailbox). rocks_mailbox_receipts.cpp.
  bool emit_receipt(Batch& b, std::string_view sender, ReceiptRecord r);
  bool drop_oldest_receipt(Batch& b, const std::string& mailbox, StagedMeta& meta);
  // Deletes what every active device of `user` has acked; `forgotten`
  // (non-empty) loses its kept acks first. Yields how many were deleted.
  bool reconcile_user(Batch& b, const std::string& user, const std::string& forgotten, std::uint64_t& released);
  // Writer thread, after each batch: publishes or drops the batch's device
  // state.
  void finish_devices(Batch& b, bool ok);
  // Writer thread, after each batch (rocks_mailbox_receipts.cpp): the
  // hand-over of its new receipts to the listener, each to follow the
  // callback of the request that wrote it, so that the completion thread
  // publishes receipts and messages in seq order.
  WriteBatcher::Followers finish_receipts(Batch& b, bool ok);
  // The mailbox's meta as staged in `b` (the committed totals on first
  // touch; no read can fail).
  StagedMeta& staged_meta(Batch& b, const std::string& mailbox);

  // The expiry sweep (rocks_mailbox_sweep.cpp): a thread of its own scans
  // for expired messages and dedup entries, kSweepChunk keys at a time, and
  // hands each chunk to the writer as one SweepOp, waiting for it before
  // scanning on from where it stopped; appends and acks never wait behind
  // more than one chunk.
  struct Sweeper {
    std::mutex mu;
    std::condition_variable cv;  // stopping (ends the pause between chunks)
    bool running = false;
    bool stopping = false;
    std::vector<CountCallback> waiters;  // answered when the running sweep ends
    std::thread thread;
  };
  void run_sweep();
  // The next chunk of expired keys from `resume` on (empty: from the start);
  // sets `resume` to where the next chunk starts, `done` at the end.
  Status scan_messages(std::string& resume, bool& done, std::vector<std::string>& out) const;
  Status scan_dedup(std::string& resume, bool& done, std::vector<std::string>& out) const;
  Status scan_receipts(std::string& resume, bool& done, std::vector<std::string>& out) const;
  Result<std::uint64_t> submit_chunk(SweepOp op);
  void stop_sweeper();

  rocksdb::DB* const db_;
  const MailboxColumnFamilies cfs_;
  WalWatch* const wal_;
  // The first append's result kept in a dedup entry; nullopt when the entry
  // is corrupt or older than the window (then it counts as absent).
  static std::optional<AppendResult> first_result(std::string_view dedup_value, std::int64_t now_ms,
                                                  std::int64_t window_ms);

  const StoreOptions opts_;
  const Clock* const clock_;
  const std::int64_t ttl_ms_;  // 0 = never expire

  StoreCounters counters_;
  std::atomic<std::uint64_t> last_seq_{0};  // highest committed seq
  std::atomic<bool> writable_{true};
  std::atomic<BatchObserver*> observer_{nullptr};
  // Committed per-mailbox totals (set by the writer after each write).
  MailboxTotals totals_;
  ReceiptListener receipt_listener_;
  // Open sessions per user and device (in memory only: none after a
  // restart). Written by the writer thread, read by devices().
  mutable std::mutex online_mu_;
  OnlineSessions online_;
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<Sweeper> sweeper_ = std::make_unique<Sweeper>();
  WriteBatcher batcher_;  // last: stopped (drained) before the rest goes
};

}  // namespace oms::storage
