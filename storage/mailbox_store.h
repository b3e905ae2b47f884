// MailboxStore: the per-mailbox message store, as the server sees it. One
// implementation per back end (rocks_mailbox_store.h today); a Store
// (store.h) hands it out.
//
// Contract, for every back end:
//  - Writes (append, ack, purge, sweep) are group-committed: the requests
//    waiting when the store's writer wakes share one atomic, durable write
//    (synced, unless StoreOptions::sync is false, which only benchmarks and
//    the power-loss control run use). A callback runs only after that write
//    returned, on the store's completion thread (one thread, so the writer
//    goes on with the next batch meanwhile); on error every request of the
//    batch gets the error and nothing of it is visible.
//  - Within a batch, each request sees the effects of the earlier ones (an
//    append then an ack of it, a purge after appends, a repeated dedup id).
//  - Callbacks must be quick and must not call back into the store
//    synchronously in a way that waits for a write (post the work elsewhere
//    instead): while a callback runs, the writer stops after two more
//    batches. Callbacks of one batch run in request order, and batches
//    complete in order, so appends to one mailbox complete in sequence
//    order.
//  - Sequence numbers are global, unique forever (across restarts, and even
//    when a batch fails) and increase in acceptance order; a mailbox reads
//    back in sequence order.
//  - Quotas (count and body bytes per mailbox) and the dedup check are
//    decided on the writer thread, so they are exact under concurrency.
//  - Reads are synchronous, thread-safe and blocking: call them off I/O
//    threads. Expired messages are never returned.
//  - Thread-safe: any thread may call any method. Destroying the store
//    completes every queued request (in order) first.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/protocol.h"
#include "common/status.h"

namespace oms::storage {

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

  MailboxStore() = default;
  virtual ~MailboxStore() = default;
  MailboxStore(const MailboxStore&) = delete;
  MailboxStore& operator=(const MailboxStore&) = delete;

  // ---- writes (asynchronous, group-committed) ----
  // Errors: invalid_argument (bad mailbox, sender, reason or kind),
  // mailbox_full (quota), unavailable (queue full / closing), io_error (the
  // write failed). Nothing is stored on error.
  virtual void append(AppendRequest req, AppendCallback done) = 0;
  // Deletes those of `seqs` that are in `mailbox`; others are ignored.
  // Yields how many were removed.
  virtual void ack(std::string mailbox, std::vector<std::uint64_t> seqs, CountCallback done) = 0;
  // Deletes the whole mailbox. Yields how many were removed.
  virtual void purge(std::string mailbox, CountCallback done) = 0;
  // Deletes expired messages and dedup entries. Yields how many messages.
  virtual void sweep_expired(CountCallback done) = 0;

  // ---- reads (synchronous, blocking) ----
  // The first append's result when `(from, client_msg_id)` was appended
  // within the dedup window (as append() would yield it, duplicate = true);
  // nullopt when not, or when it is only in a batch not yet written. A point
  // lookup, cheap enough for an I/O thread on a refusal path: the server asks
  // it before refusing an idempotent send (protocol 4.4: dedup first).
  virtual Result<std::optional<AppendResult>> find_duplicate(std::string_view from,
                                                             std::string_view client_msg_id) const = 0;
  // Up to `limit` messages with seq > after_seq, oldest first.
  virtual Result<std::vector<StoredMessage>> read(std::string_view mailbox, std::uint64_t after_seq,
                                                  std::size_t limit) const = 0;
  // Summary of messages with seq > after_seq (optionally missed ones only).
  // With `first_page`, the same scan also yields the first `page_limit`
  // counted messages there, as read(mailbox, after_seq, page_limit) would
  // (sign-in: the notification and the first page of delivery in one pass).
  virtual Result<MailboxSummary> summary(std::string_view mailbox, std::uint64_t after_seq = 0,
                                         bool missed_only = false,
                                         std::vector<StoredMessage>* first_page = nullptr,
                                         std::size_t page_limit = 0) const = 0;
  // The mailbox's committed totals (expired messages count until swept).
  virtual MailboxStats stats(std::string_view mailbox) const = 0;
  // Highest sequence number handed out so far.
  virtual std::uint64_t last_seq() const = 0;

  // ---- operations ----
  virtual const StoreCounters& counters() const = 0;
  virtual void set_batch_observer(BatchObserver* observer) = 0;  // set before use; not owned
  // True while writes succeed; false after a failed write until one succeeds.
  virtual bool writable() const = 0;
};

}  // namespace oms::storage
