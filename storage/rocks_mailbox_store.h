// The RocksDB MailboxStore (internal to storage/): built by the database
// (rocks_database.h) on its "default" (last_seq), messages, mailbox_meta and
// dedup column families (layouts in keys.h).
//
// Writes: a WriteBatcher (write_batcher.h) group-commits them; its writer
// thread calls commit(), which applies the batch's requests in order to one
// rocksdb::WriteBatch, the mailbox rules (rocks_mailbox_store.cpp), and
// writes it once. Reads (rocks_mailbox_reads.cpp) are plain RocksDB reads on
// the caller's thread. The expiry sweep scans on a thread of its own and
// deletes through the writer in small chunks (rocks_mailbox_sweep.cpp).
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
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "storage/mailbox_store.h"
#include "storage/options.h"
#include "storage/rocks_column_families.h"
#include "storage/write_batcher.h"

namespace rocksdb {
class DB;
}

namespace oms::storage {

class WalWatch;

class RocksMailboxStore final : public MailboxStore {
 public:
  // Reads last_seq and the totals of every mailbox, then starts the writer.
  // Batches go to the database through wal->write() (see wal_watch.h).
  // `db`, the handles and `wal` are not owned and must outlive the store.
  static Result<std::unique_ptr<MailboxStore>> open(rocksdb::DB* db, MailboxColumnFamilies cfs,
                                                    WalWatch* wal, const StoreOptions& options);
  ~RocksMailboxStore() override;  // completes every queued request

  void append(AppendRequest req, AppendCallback done) override;
  void ack(std::string mailbox, std::vector<std::uint64_t> seqs, CountCallback done) override;
  void purge(std::string mailbox, CountCallback done) override;
  void sweep_expired(CountCallback done) override;

  Result<std::vector<StoredMessage>> read(std::string_view mailbox, std::uint64_t after_seq,
                                          std::size_t limit) const override;
  Result<MailboxSummary> summary(std::string_view mailbox, std::uint64_t after_seq,
                                 bool missed_only, std::vector<StoredMessage>* first_page,
                                 std::size_t page_limit) const override;
  MailboxStats stats(std::string_view mailbox) const override;
  Result<std::optional<AppendResult>> find_duplicate(std::string_view from,
                                                     std::string_view client_msg_id) const override;
  std::uint64_t last_seq() const override { return last_seq_.load(); }

  const StoreCounters& counters() const override { return counters_; }
  void set_batch_observer(BatchObserver* observer) override { observer_.store(observer); }
  bool writable() const override { return writable_.load(); }

 private:
  // The writer thread's state: the batch being built and the committed
  // mailbox totals (rocks_mailbox_store.cpp).
  struct StagedMeta;
  struct InBatch;
  struct Batch;
  struct Writer;

  RocksMailboxStore(rocksdb::DB* db, MailboxColumnFamilies cfs, WalWatch* wal,
                    const StoreOptions& options);
  Status load();  // last_seq and the totals

  static bool valid_mailbox(std::string_view mailbox);
  bool expired(std::int64_t sent_at_ms, std::int64_t now_ms) const {
    return ttl_ms_ > 0 && sent_at_ms < now_ms - ttl_ms_;
  }

  // Writer thread only.
  void commit(std::vector<WriteRequest>& requests, std::vector<WriteOutcome>& outcomes);
  WriteOutcome apply(Batch& b, AppendOp& op);
  WriteOutcome apply(Batch& b, AckOp& op);
  WriteOutcome apply(Batch& b, PurgeOp& op);
  WriteOutcome apply(Batch& b, SweepOp& op);
  // The mailbox's meta as staged in `b` (loaded on first touch); nullptr
  // when it could not be read (then b.failed is set).
  StagedMeta* staged_meta(Batch& b, const std::string& mailbox);

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
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<Sweeper> sweeper_ = std::make_unique<Sweeper>();
  WriteBatcher batcher_;  // last: stopped (drained) before the rest goes
};

}  // namespace oms::storage
