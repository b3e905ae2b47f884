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
//  - Devices (contract 4.1): acks are per device. A message (or receipt)
//    leaves the mailbox once every *active* device of the user has acked it
//    (with no active device, once any device has), or at expiry. Active: a
//    device whose last sign-in was capable and that has an open session, or
//    whose last session ended less than StoreOptions::device_idle_ms ago.
//    The set is taken on the writer thread when an ack is applied; a
//    periodic reconcile (reconcile_devices) deletes what waits for nobody
//    once a device went idle or was forgotten. Reads and summaries take a
//    device and leave out what that device acked ("" = no device: the
//    mailbox as stored).
//  - Receipts (contract 4.2): a message appended with want_receipt makes
//    exactly one receipt (delivered at its first ack by any device, expired
//    at expiry, purged at a purge) in the sender's mailbox, written in the
//    same batch as the change that caused it. Receipts share the sequence
//    numbers, stream with the messages in read()/summary(), are acked per
//    device like messages, are outside the quota, at most
//    StoreOptions::max_receipts_per_mailbox per mailbox (oldest dropped).
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

// A receipt (contract 4.2) as stored in the sender's mailbox.
struct ReceiptRecord {
  std::uint64_t msg_seq = 0;   // the message it is about
  std::string client_msg_id;   // the message's, may be empty
  std::string to;              // the message's recipient
  proto::ReceiptState state = proto::ReceiptState::kDelivered;
  std::int64_t at_ms = 0;
};

// A message, or (receipt set) a receipt; both come out of read() in
// sequence order.
struct StoredMessage {
  std::uint64_t seq = 0;
  std::string from;
  std::int64_t sent_at_ms = 0;
  proto::MessageKind kind = proto::MessageKind::kOffline;
  std::string reason;  // "dnd" | "presenting" for missed messages, else empty
  std::string body;
  std::optional<ReceiptRecord> receipt;  // set: a receipt (the fields above are empty)
  // Its place in the mailbox, gapless (1, 2, 3, ... as appended, receipts
  // too); 0 where the back end keeps none (RocksDB: there one node's seqs
  // are already in commit order). In cluster mode a session pushes a hinted
  // message without reading when its mseq follows the last one it has.
  std::uint64_t mseq = 0;
};

// A receipt a batch wrote, for the live push to the sender's sessions.
struct NewReceipt {
  std::string mailbox;  // the sender's
  std::uint64_t seq = 0;
  ReceiptRecord receipt;
  std::uint64_t mseq = 0;  // as StoredMessage::mseq
};

// A device of a user (contract 4.1, 4.5).
struct DeviceRecord {
  std::string device;  // proto::kLegacyDevice for sessions without a name
  std::int64_t first_seen_ms = 0;
  std::int64_t last_seen_ms = 0;  // the last sign-in or sign-out
  bool capable = false;           // its last sign-in listed offline-messages
  std::uint32_t sessions = 0;     // open sessions now
  bool active = false;            // holds messages back (see above)
};

struct AppendRequest {
  std::string mailbox;  // recipient, normalised
  std::string from;     // sender, normalised
  std::string body;
  proto::MessageKind kind = proto::MessageKind::kOffline;
  std::string reason;
  std::string client_msg_id;  // empty = not idempotent
  // The message makes a receipt for its sender (4.2): its `sent` said stored
  // or missed, and the recipient's policy has enable_delivery_receipts.
  bool want_receipt = false;
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
  std::uint64_t mseq = 0;       // as StoredMessage::mseq (0 when duplicate)
};

struct MailboxSummary {
  std::uint64_t count = 0;
  std::uint64_t missed = 0;
  std::uint64_t bytes = 0;
  std::optional<std::int64_t> oldest_ms;
  std::vector<std::pair<std::string, std::uint64_t>> from;  // by count desc, then user
  std::uint64_t last_seq = 0;                               // highest seq counted
  std::uint64_t receipts = 0;  // receipts waiting (not in count; not with missed_only)
};

struct MailboxStats {
  std::uint64_t count = 0;
  std::uint64_t bytes = 0;
  std::uint64_t receipts = 0;
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
  std::atomic<std::uint64_t> receipts_delivered{0};  // receipts written, by state
  std::atomic<std::uint64_t> receipts_expired{0};
  std::atomic<std::uint64_t> receipts_purged{0};
  std::atomic<std::uint64_t> receipts_dropped{0};    // over max_receipts_per_mailbox
  std::atomic<std::uint64_t> receipts_acked{0};      // receipts deleted after their acks
  std::atomic<std::uint64_t> device_acks_held{0};    // acks kept per device (not the last one)
  std::atomic<std::uint64_t> devices_forgotten{0};
  std::atomic<std::uint64_t> devices_released{0};    // messages deleted by a reconcile
  // PostgreSQL: batches of appends written with their mailbox rows locked
  // in the last round trip only, and those that had to run again under
  // the first round trip's locks (a quota or dedup race; pg_mailbox_appends.cpp).
  std::atomic<std::uint64_t> late_lock_batches{0};
  std::atomic<std::uint64_t> late_lock_reruns{0};
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
  // A device sign-in: true when the device was seen for the first time.
  using DeviceCallback = std::function<void(Result<bool>)>;
  // Called on the store's completion thread with the receipts a request
  // wrote, right after that request's callback (only once the write returned
  // OK; so in seq order with the messages appended around them). Must be
  // quick (post, don't wait).
  using ReceiptListener = std::function<void(const std::vector<NewReceipt>&)>;

  MailboxStore() = default;
  virtual ~MailboxStore() = default;
  MailboxStore(const MailboxStore&) = delete;
  MailboxStore& operator=(const MailboxStore&) = delete;

  // ---- writes (asynchronous, group-committed) ----
  // Errors: invalid_argument (bad mailbox, sender, reason or kind),
  // mailbox_full (quota), unavailable (queue full / closing), io_error (the
  // write failed). Nothing is stored on error.
  virtual void append(AppendRequest req, AppendCallback done) = 0;
  // `device` of `mailbox`'s user acks those of `seqs` (messages or
  // receipts) that are in `mailbox`; others are ignored. Each is deleted
  // when every active device has acked it, else kept with this device's ack
  // (never read back for this device again). Yields how many this device
  // acked (deleted or kept). `device` empty = kLegacyDevice.
  virtual void ack(std::string mailbox, std::string device, std::vector<std::uint64_t> seqs,
                   CountCallback done) = 0;
  // As ack(), for an ack whose outcome nobody is promised (a client's ack
  // without a rid: contract 4.1 promises durability only with `ok`). It is
  // applied at once (read back as acked, and kept across a crash of the
  // process), but reaches the disk with the next synced write instead of a
  // sync of its own; after a power loss it may come back, and the message
  // is delivered again with the same id (at least once). Any synced write
  // after it makes it durable first, so an answer given later never rests
  // on it. A back end without the distinction syncs it (this default).
  virtual void ack_unsynced(std::string mailbox, std::string device, std::vector<std::uint64_t> seqs,
                            CountCallback done) {
    ack(std::move(mailbox), std::move(device), std::move(seqs), std::move(done));
  }
  // A session of `device` signed in (`capable`: with offline-messages):
  // the device is recorded (first_seen, last_seen = now) and counts one more
  // open session. too_many_devices when it is a new or inactive named device
  // and the user has max_devices_per_user active named devices already.
  virtual void device_signed_in(std::string user, std::string device, bool capable,
                                DeviceCallback done) = 0;
  // A session of `device` ended (last_seen = now, one open session fewer).
  // `done` may be empty.
  virtual void device_signed_out(std::string user, std::string device, CountCallback done) = 0;
  // Forgets `device` (not_found when unknown): its record and acks go, and
  // what then waits for no active device is deleted. Yields how many
  // messages and receipts that deleted.
  virtual void forget_device(std::string user, std::string device, CountCallback done) = 0;
  // Deletes, for every user with acks kept per device, what every active
  // device has acked (devices that went idle stop holding messages back).
  // Yields how many were deleted. omsd runs it every
  // devices.reconcile_seconds.
  virtual void reconcile_devices(CountCallback done) = 0;
  // Deletes the whole mailbox. Yields how many were removed.
  virtual void purge(std::string mailbox, CountCallback done) = 0;
  // Message `seq` of `mailbox`, from `from`, was stored without a receipt,
  // but its `sent` is to say stored after all (the recipient left between
  // the send's decision and the durable write): it gets one (4.2). Written
  // at once (delivered) when a device acked it meanwhile or it is gone
  // already; else the message is marked. REQUIRES: `seq` was appended to
  // `mailbox` (a seq not there counts as gone). Yields 1 when a receipt
  // was arranged, 0 when none was (a receipt's seq, an unreadable value).
  virtual void want_receipt(std::string mailbox, std::uint64_t seq, std::string from, std::string client_msg_id,
                            CountCallback done) = 0;
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
  // Up to `limit` messages and receipts with seq > after_seq that `device`
  // has not acked ("" = any), oldest first.
  virtual Result<std::vector<StoredMessage>> read(std::string_view mailbox, std::string_view device,
                                                  std::uint64_t after_seq, std::size_t limit) const = 0;
  // Summary of messages with seq > after_seq that `device` has not acked
  // (optionally missed ones only), and of the receipts waiting for it.
  // With `first_page`, the same scan also yields the first `page_limit`
  // messages and receipts there, as read(mailbox, device, after_seq,
  // page_limit) would (sign-in: the notification and the first page of
  // delivery in one pass).
  virtual Result<MailboxSummary> summary(std::string_view mailbox, std::string_view device,
                                         std::uint64_t after_seq = 0, bool missed_only = false,
                                         std::vector<StoredMessage>* first_page = nullptr,
                                         std::size_t page_limit = 0) const = 0;
  // The user's devices (sorted by name), with open sessions and whether
  // each is active now.
  virtual Result<std::vector<DeviceRecord>> devices(std::string_view user) const = 0;
  // Whether `device` of `user` is recorded (one point read; true when the
  // read fails, so that a failing disk does not look like a removal).
  virtual bool device_known(std::string_view user, std::string_view device) const = 0;
  // The mailbox's committed totals (expired messages count until swept).
  virtual MailboxStats stats(std::string_view mailbox) const = 0;
  // Highest sequence number handed out so far.
  virtual std::uint64_t last_seq() const = 0;

  // ---- operations ----
  virtual const StoreCounters& counters() const = 0;
  virtual void set_batch_observer(BatchObserver* observer) = 0;  // set before use; not owned
  virtual void set_receipt_listener(ReceiptListener listener) = 0;  // set before use
  // Runs `hook` on the completion thread after the callbacks of each
  // committed batch (WriteBatcher::set_after_batch). Any time.
  virtual void set_after_batch(std::function<void()> hook) = 0;
  // True while writes succeed; false after a failed write until one succeeds.
  virtual bool writable() const = 0;
};

}  // namespace oms::storage
