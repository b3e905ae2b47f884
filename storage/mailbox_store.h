// The per-mailbox message store on RocksDB.
//
// Contract:
//  - Every write (append, ack, purge, sweep) goes through one writer thread
//    that group-commits: all requests waiting when it wakes share one
//    WriteBatch, written with sync=true (unless StoreOptions::sync is false,
//    which only benchmarks and the power-loss control run use). A callback
//    runs only after that write returned, on the store's completion thread
//    (one thread, so the writer goes on with the next batch meanwhile); on
//    error every request of the batch gets the error and nothing of it is
//    visible.
//  - Callbacks must be quick and must not call back into the store
//    synchronously in a way that waits for a write (post the work elsewhere
//    instead): while a callback runs, the writer stops after two more
//    batches. Callbacks of one batch run in request order, and batches
//    complete in order, so appends to one mailbox complete in sequence
//    order.
//  - Sequence numbers are global, unique forever (across restarts) and
//    increase in acceptance order; a mailbox is one ordered key range.
//  - Quotas (count and body bytes per mailbox) and the dedup check are
//    decided on the writer thread, so they are exact under concurrency.
//  - Reads are synchronous, thread-safe and blocking: call them off I/O
//    threads. Expired messages are never returned.
//  - Thread-safe: any thread may call any method.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/protocol.h"
#include "common/status.h"

namespace rocksdb {
class Env;
}

namespace oms::storage {

class PolicyStore;

struct StoreOptions {
  std::string path;                        // the RocksDB directory
  std::uint64_t max_messages = 10000;      // mailbox.max_messages
  std::uint64_t max_bytes = 52428800;      // mailbox.max_bytes (sum of bodies)
  std::uint32_t ttl_days = 30;             // mailbox.ttl_days (0 = never expire)
  std::int64_t dedup_window_ms = 24LL * 3600 * 1000;
  bool sync = true;                        // false only in benchmarks / control runs
  std::size_t max_batch_requests = 8192;   // group-commit cap per WriteBatch
  std::size_t max_queued_requests = 200000;  // beyond it: Status::unavailable at once
  std::size_t block_cache_bytes = 64u << 20;
  const Clock* clock = nullptr;            // nullptr = SystemClock
  // When > 0, messages expire after this many milliseconds instead of
  // ttl_days (finer control than days, e.g. for tests).
  std::int64_t ttl_ms_override = 0;
  // Tests only: when set, called on the writer thread before each batch
  // write; a non-OK Status fails that write exactly as if RocksDB had
  // returned it (nothing of the batch is written).
  std::function<Status()> inject_write_error;
  // Tests only: the rocksdb::Env (and through it the FileSystem) the
  // database does all its file I/O with; nullptr = rocksdb::Env::Default().
  // The reliability tests pass a fault-injecting FileSystem here (simulated
  // power loss, failing syncs). Shared so that it outlives the database.
  std::shared_ptr<rocksdb::Env> env;
};

struct StoredMessage {
  std::uint64_t seq = 0;
  std::string from;
  std::int64_t sent_at_ms = 0;
  proto::MessageKind kind = proto::MessageKind::kOffline;
  std::string reason;  // "dnd" | "presenting" for missed messages, else empty
  std::string body;
};

struct AppendRequest {
  std::string mailbox;  // recipient, normalised
  std::string from;     // sender, normalised
  std::string body;
  proto::MessageKind kind = proto::MessageKind::kOffline;
  std::string reason;
  std::string client_msg_id;  // empty = not idempotent
  // Opaque bytes kept with the dedup entry and returned to a duplicate
  // (the server keeps the first reply's status and recipient state here).
  std::string dedup_payload;
};

struct AppendResult {
  std::uint64_t seq = 0;
  std::int64_t sent_at_ms = 0;
  bool duplicate = false;       // nothing new stored; seq/sent_at are the first one's
  std::string dedup_payload;    // the first append's payload when duplicate
  std::string mailbox;          // the first append's mailbox when duplicate
};

struct MailboxSummary {
  std::uint64_t count = 0;
  std::uint64_t missed = 0;
  std::uint64_t bytes = 0;
  std::optional<std::int64_t> oldest_ms;
  std::vector<std::pair<std::string, std::uint64_t>> from;  // by count desc, then user
  std::uint64_t last_seq = 0;                               // highest seq counted
};

struct MailboxStats {
  std::uint64_t count = 0;
  std::uint64_t bytes = 0;
};

struct StoreCounters {
  std::atomic<std::uint64_t> appended{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> refused_full{0};
  std::atomic<std::uint64_t> acked{0};
  std::atomic<std::uint64_t> purged{0};
  std::atomic<std::uint64_t> expired_removed{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> batch_requests{0};  // sum over batches (mean = /batches)
  std::atomic<std::uint64_t> write_errors{0};
  std::atomic<std::uint64_t> total_messages{0};  // messages in all mailboxes now
  std::atomic<std::uint64_t> total_bytes{0};
};

// Hook for metrics: called on the writer thread after each batch. `wrote`:
// the batch had something to write and tried; `result`: the batch's outcome
// (every request of a failed batch gets io_error with its message).
struct BatchObserver {
  virtual ~BatchObserver() = default;
  virtual void on_batch(std::size_t requests, std::int64_t write_micros, bool wrote,
                        const Status& result) = 0;
};

class MailboxStore {
 public:
  using AppendCallback = std::function<void(Result<AppendResult>)>;
  using CountCallback = std::function<void(Result<std::uint64_t>)>;

  static Result<std::unique_ptr<MailboxStore>> open(StoreOptions options);
  // Completes every queued request (in order) and closes the database.
  ~MailboxStore();

  MailboxStore(const MailboxStore&) = delete;
  MailboxStore& operator=(const MailboxStore&) = delete;

  // ---- writes (asynchronous, group-committed) ----
  // Errors: mailbox_full (quota), unavailable (queue full / closing),
  // io_error (the write failed). Nothing is stored on error.
  void append(AppendRequest req, AppendCallback done);
  // Deletes those of `seqs` that are in `mailbox`; others are ignored.
  // Yields how many were removed.
  void ack(std::string mailbox, std::vector<std::uint64_t> seqs, CountCallback done);
  // Deletes the whole mailbox. Yields how many were removed.
  void purge(std::string mailbox, CountCallback done);
  // Deletes expired messages and dedup entries. Yields how many messages.
  void sweep_expired(CountCallback done);

  // ---- reads (synchronous, blocking) ----
  // Up to `limit` messages with seq > after_seq, oldest first.
  Result<std::vector<StoredMessage>> read(std::string_view mailbox, std::uint64_t after_seq,
                                          std::size_t limit) const;
  // Summary of messages with seq > after_seq (optionally missed ones only).
  // With `first_page`, the same scan also yields the first `page_limit`
  // counted messages there, as read(mailbox, after_seq, page_limit) would
  // (sign-in: the notification and the first page of delivery in one pass).
  Result<MailboxSummary> summary(std::string_view mailbox, std::uint64_t after_seq = 0,
                                 bool missed_only = false,
                                 std::vector<StoredMessage>* first_page = nullptr,
                                 std::size_t page_limit = 0) const;
  MailboxStats stats(std::string_view mailbox) const;
  // Highest sequence number handed out so far.
  std::uint64_t last_seq() const;

  // ---- operations ----
  PolicyStore& policies();
  const StoreCounters& counters() const;
  void set_batch_observer(BatchObserver* observer);  // set before use; not owned
  // True while writes succeed; false after a failed write until one succeeds.
  bool writable() const;
  // A consistent on-disk copy (RocksDB checkpoint) into `dir` (must not exist).
  Status checkpoint(const std::string& dir) const;
  const StoreOptions& options() const;

  class Impl;

 private:
  explicit MailboxStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace oms::storage
