// The writer thread's state of the RocksDB MailboxStore (internal to
// storage/, shared by rocks_mailbox_store.cpp and rocks_mailbox_devices.cpp;
// RocksMailboxStore names these types as its own):
// the batch being built, with the overlay through which each request sees
// what the earlier requests of the same batch did, and what the writer keeps
// from batch to batch (devices; the committed mailbox totals are the
// store's MailboxTotals).
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <rocksdb/write_batch.h>

#include "storage/keys.h"
#include "storage/mailbox_store.h"
#include "storage/online_sessions.h"

namespace oms::storage::rocks_detail {

// Per-mailbox totals as the current batch leaves them.
struct StagedMeta {
  keys::MailboxMeta meta;
  bool dirty = false;
};

// What a batch did to one message or receipt, by seq (a seq belongs to one
// mailbox).
struct InBatch {
  static constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
  const StagedMeta* mailbox = nullptr;  // written here, to this mailbox; nullptr: deleted here
  std::uint64_t bytes = 0;              // body bytes, when appended here
  const AppendRequest* append = nullptr;  // a message appended here (the request, alive during commit)
  std::size_t receipt = kNone;            // a receipt written here: index into Batch::receipts
};

// A device as the writer knows it (keys::DeviceValue plus its name).
struct DeviceState {
  std::string name;
  keys::DeviceValue value;
  std::int64_t written_last_seen_ms = 0;  // value.last_seen_ms as last written to disk
};
struct UserDevices {
  std::vector<DeviceState> devices;  // sorted by name
  DeviceState* find(std::string_view name) {
    for (auto& d : devices)
      if (d.name == name) return &d;
    return nullptr;
  }
  bool has(std::string_view name) const {
    for (const auto& d : devices)
      if (d.name == name) return true;
    return false;
  }
};

// A message or receipt found by seq.
struct Record {
  bool receipt = false;
  std::uint64_t seq = 0;
  std::uint64_t bytes = 0;  // a message's body
  bool want_receipt = false;
  std::int64_t at_ms = 0;   // a message's sent_at, a receipt's at
  std::string from;         // a message's sender
  std::string client_msg_id;
};

// The state of one batch on the writer thread. One Batch is reused from
// batch to batch (reset() keeps the containers' memory, up to a bound).
struct Batch {
  rocksdb::WriteBatch wb;
  // The overlay: what this batch did that later requests of the same batch
  // must see before the database does. Messages and receipts by seq; dedup
  // key -> the value written here, empty when deleted here; kept acks by
  // seq -> (device, written (true) or deleted (false)), in order.
  std::unordered_map<std::uint64_t, InBatch> messages;
  std::unordered_set<std::string> odd_deleted;  // message keys that do not decode, deleted here
  std::unordered_map<std::string, std::string> dedup;
  std::unordered_map<std::uint64_t, std::vector<std::pair<std::string, bool>>> acks;
  std::unordered_map<std::string, std::vector<std::uint64_t>> acks_by_mailbox;  // the seqs of `acks`, per mailbox
  std::unordered_map<std::string, StagedMeta> touched;
  // Device tables this batch changed (published on success), and the open
  // session counts it moved (undone on failure): (user, device, +1/-1).
  std::unordered_map<std::string, UserDevices> devices;
  SessionDeltas session_deltas;
  std::deque<NewReceipt> receipts;  // written here (for the listener)
  std::vector<std::size_t> receipt_request;  // the request that wrote each of `receipts`
  // drop_oldest_receipt, per mailbox: where its search of `receipts` goes
  // on (those before are dropped or another mailbox's).
  std::unordered_map<std::string, std::size_t> receipt_drop_from;
  std::size_t request = 0;  // the request being applied (index in the batch)
  // Scratch of acked_by (kept for their memory).
  std::vector<std::string> ack_lookup_names, ack_lookup_keys;
  std::int64_t now_ms = 0;
  bool assigned_seq = false;
  bool refuse_new = false;  // StoreOptions::refuse_new_messages said so for this batch
  // A request other than an unsynced ack, or a receipt written: the write
  // is synced (else it waits for the next synced one: ack_unsynced).
  bool sync_wanted = false;
  Status failed;  // a read failed: the whole batch fails
  std::uint64_t appended = 0, duplicates = 0, acked = 0, purged = 0, expired = 0;
  std::uint64_t receipts_by_state[4] = {0, 0, 0, 0};  // by proto::ReceiptState
  std::uint64_t receipts_dropped = 0, receipts_acked = 0, acks_held = 0, forgotten = 0, released = 0;
  std::int64_t delta_messages = 0, delta_bytes = 0;

  void reset(std::int64_t now);
  // Records in the overlay that `device`'s ack of `seq` ("" = the receipt
  // marker) was written (or deleted) here.
  void note_ack(const std::string& mailbox, std::uint64_t seq, std::string device, bool written) {
    auto& changes = acks[seq];
    if (changes.empty()) acks_by_mailbox[mailbox].push_back(seq);
    changes.emplace_back(std::move(device), written);
  }
  // `devices` (and `marker`) as read from the database, changed by this
  // batch's overlay for `seq`.
  void overlay_acks(std::uint64_t seq, std::vector<std::string>& devices, bool& marker) const;
};

// The writer thread's own state, kept from batch to batch.
struct Writer {
  std::unordered_map<std::string, UserDevices> device_cache;      // committed device tables
  // Per mailbox at its receipt cap: the last receipt dropped; older ones
  // are gone, so the search for the oldest starts after it instead of
  // stepping over the tombstones of every receipt dropped before (cleared
  // when a batch fails).
  std::unordered_map<std::string, std::uint64_t> receipt_floor;
  Batch batch;
  std::uint64_t last_assigned = 0;  // never goes back, even after a failed batch
  bool unsynced = false;  // a batch was written without a sync after the last synced one
};

}  // namespace oms::storage::rocks_detail
