// WriteBatcher: the group commit of a MailboxStore (any back end).
//
//   1. enqueue() puts a request on a bounded queue (max_queued_requests;
//      beyond it, or once stopping, the request is answered unavailable at
//      once, on the caller's thread);
//   2. the writer thread (oms-writer) takes everything queued when it wakes,
//      up to max_batch_requests and about 16 MiB of bodies, and calls the
//      back end's Commit with the batch: it decides and writes all of it at
//      once and fills one outcome per request;
//   3. the completion thread (oms-complete) runs the callbacks in request
//      order, each followed by what Commit said follows it (news for
//      others that must not overtake what earlier callbacks sent, such as
//      the receipts an ack wrote), batch after batch, while the writer goes
//      on (at most two batches wait there; then the writer waits).
//
// Thread-safe: enqueue() from any thread. Commit runs on the writer thread
// only, one batch at a time.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "common/status.h"
#include "storage/mailbox_store.h"
#include "storage/online_sessions.h"

namespace oms::storage {

// The write requests of a MailboxStore, as queued.
struct AppendOp {
  AppendRequest req;
  MailboxStore::AppendCallback done;
};
struct AckOp {
  std::string mailbox;
  std::string device;  // never empty (kLegacyDevice)
  std::vector<std::uint64_t> seqs;
  MailboxStore::CountCallback done;
  bool synced = true;  // false: MailboxStore::ack_unsynced
};
// A device signing in or out, or forgotten (contract 4.1).
struct DeviceOp {
  enum class Kind : std::uint8_t { kSignIn, kSignOut, kForget };
  Kind kind = Kind::kSignIn;
  std::string user;
  std::string device;
  bool capable = false;                      // kSignIn
  MailboxStore::DeviceCallback signed_in;    // kSignIn
  MailboxStore::CountCallback done;          // kSignOut (may be empty), kForget
};
// Deletes what the active devices of these users have all acked.
struct ReconcileOp {
  std::vector<std::string> users;
  MailboxStore::CountCallback done;
};
struct PurgeOp {
  std::string mailbox;
  MailboxStore::CountCallback done;
};
// MailboxStore::want_receipt.
struct ReceiptWantedOp {
  std::string mailbox;
  std::uint64_t seq = 0;
  std::string from;
  std::string client_msg_id;
  MailboxStore::CountCallback done;
  AppendRequest rewritten;  // the back end's: the message as rewritten, while the batch lasts
};
// One chunk of an expiry sweep: keys a scan found expired (the back end
// checks each again before deleting it).
struct SweepOp {
  std::vector<std::string> message_keys;
  std::vector<std::string> dedup_keys;
  std::vector<std::string> receipt_keys;
  MailboxStore::CountCallback done;
};
using WriteRequest = std::variant<AppendOp, AckOp, PurgeOp, SweepOp, DeviceOp, ReconcileOp, ReceiptWantedOp>;

// A batch refused whole (no room on the disk): its sign-outs' sessions end
// all the same (online_sessions.h). Caller holds the lock of `online`.
inline void end_refused_sign_outs(OnlineSessions& online, const std::vector<WriteRequest>& requests) {
  for (const auto& r : requests)
    if (const auto* d = std::get_if<DeviceOp>(&r); d && d->kind == DeviceOp::Kind::kSignOut)
      end_session(online, d->user, d->device);
}

// What one request of a batch comes to.
struct WriteOutcome {
  Status status;
  AppendResult append;      // AppendOp
  std::uint64_t count = 0;  // the others (DeviceOp kSignIn: 1 = first seen)
};

class WriteBatcher {
 public:
  // Decides and writes one batch: appends one outcome per request, in
  // order, to `outcomes` (empty, with room for all); returns once the batch
  // is durable, or failed (then every outcome is an error). Returns what
  // runs on the completion thread after the callback of a request (by
  // request index, ascending; usually nothing).
  using Followers = std::vector<std::pair<std::size_t, std::function<void()>>>;
  using Commit =
      std::function<Followers(std::vector<WriteRequest>& requests, std::vector<WriteOutcome>& outcomes)>;

  WriteBatcher(std::size_t max_batch_requests, std::size_t max_queued_requests, Commit commit);
  ~WriteBatcher();  // stop()
  WriteBatcher(const WriteBatcher&) = delete;
  WriteBatcher& operator=(const WriteBatcher&) = delete;

  void start();  // starts the two threads
  void enqueue(WriteRequest r);
  // Refuses new requests, commits every queued one, runs every callback,
  // then joins the threads. Idempotent.
  void stop();
  // Runs `hook` on the completion thread after the callbacks (and
  // followers) of every batch: where what those callbacks queued for the
  // outside world goes out at once, in one write per batch (the cluster's
  // hints). Any thread, any time; empty removes it.
  void set_after_batch(std::function<void()> hook);

 private:
  void run_writer();
  void run_completer();
  // Hands a committed batch's callbacks to the completer thread; waits while
  // kMaxBatchesToComplete are queued there already.
  void hand_off(std::vector<WriteRequest> requests, std::vector<WriteOutcome> outcomes, Followers then);

  const std::size_t max_batch_requests_;
  const std::size_t max_queued_requests_;
  const Commit commit_;

  // The request queue (bounded by max_queued_requests_).
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WriteRequest> queue_;
  bool stopping_ = false;
  std::thread writer_;

  // Callbacks of committed batches, run on their own thread in batch order
  // while the writer goes on with the next batch.
  struct Committed {
    std::vector<WriteRequest> requests;
    std::vector<WriteOutcome> outcomes;
    Followers then;
  };
  std::mutex done_mu_;
  std::condition_variable done_cv_;  // a batch was queued, or one was taken
  std::deque<Committed> done_;
  bool done_stopping_ = false;
  std::function<void()> after_batch_;
  std::thread completer_;
};

}  // namespace oms::storage
