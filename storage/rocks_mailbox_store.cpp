// The mailbox rules of the RocksDB MailboxStore: how a batch of requests
// becomes one WriteBatch. Runs on the WriteBatcher's writer thread (the only
// thread that writes messages, dedup entries and last_seq), one batch
// at a time:
//   1. applies the requests in order to one WriteBatch; each request sees
//      the effects of the earlier ones of the same batch through the batch's
//      overlay (the message and dedup keys it wrote or deleted, and the
//      staged mailbox meta, by seq and key), read before the database:
//      quotas, dedup, acks and purges are exact;
//   2. writes the batch once (sync per StoreOptions::sync), never while the
//      WAL has a failed write RocksDB has not moved past (wal_watch.h);
//   3. on success publishes the staged mailbox totals (in memory only:
//      mailbox_totals.h), counters and last_seq; on failure drops what it
//      staged (the totals stay as committed) and every request gets
//      io_error.
// Sequence numbers are taken from a writer-owned counter that never goes
// back, even when a batch fails, so a number is never handed out twice.
#include "storage/rocks_mailbox_store.h"

#include <algorithm>
#include <chrono>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "storage/keys.h"
#include "storage/rocks_mailbox_batch.h"
#include "storage/rocks_status.h"
#include "storage/wal_watch.h"

namespace oms::storage {
namespace {

constexpr std::int64_t kMsPerDay = 24LL * 3600 * 1000;

}  // namespace

// ---------------------------------------------------------------------------
// open / close

Result<std::unique_ptr<MailboxStore>> RocksMailboxStore::open(rocksdb::DB* db,
                                                              MailboxColumnFamilies cfs,
                                                              WalWatch* wal,
                                                              const StoreOptions& options) {
  std::unique_ptr<RocksMailboxStore> store(new RocksMailboxStore(db, cfs, wal, options));
  if (Status s = store->load(); !s) return s;
  store->batcher_.start();
  return std::unique_ptr<MailboxStore>(std::move(store));
}

RocksMailboxStore::RocksMailboxStore(rocksdb::DB* db, MailboxColumnFamilies cfs, WalWatch* wal,
                                     const StoreOptions& options)
    : db_(db),
      cfs_(cfs),
      wal_(wal),
      opts_(options),
      clock_(opts_.clock ? opts_.clock : &SystemClock::instance()),
      ttl_ms_(opts_.ttl_ms_override > 0 ? opts_.ttl_ms_override
                                        : static_cast<std::int64_t>(opts_.ttl_days) * kMsPerDay),
      writer_(std::make_unique<Writer>()),
      batcher_(opts_.max_batch_requests, opts_.max_queued_requests,
               [this](std::vector<WriteRequest>& requests, std::vector<WriteOutcome>& outcomes) {
                 return commit(requests, outcomes);
               }) {}

RocksMailboxStore::~RocksMailboxStore() {
  stop_sweeper();  // its last chunk goes through the batcher
  batcher_.stop();
}

Status RocksMailboxStore::load() {
  rocksdb::ReadOptions ro;
  std::string value;
  rocksdb::Status s = db_->Get(ro, cfs_.defaults, keys::kLastSeqKey, &value);
  if (s.ok()) {
    auto seq = keys::decode_last_seq(value);
    if (!seq) return Status::io_error("corrupt last_seq record");
    writer_->last_assigned = *seq;
  } else if (!s.IsNotFound()) {
    return from_rocks(s, "reading last_seq");
  }
  last_seq_.store(writer_->last_assigned);

  // The totals, counted from the records (format version 3 keeps none).
  // Every record is read once (with 1,000,000 stored, omsd was ready 2.6 to
  // 4.7 s after a kill -9, the WAL replay included).
  std::uint64_t total_messages = 0, total_bytes = 0;
  ro.fill_cache = false;
  ro.readahead_size = 2u << 20;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_.messages));
    std::string last;  // the mailbox of the previous key, and its totals
    keys::MailboxMeta* meta = nullptr;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto key = keys::decode_message_key(it->key().ToStringView());
      if (!key) continue;  // not a message key: the purge deletes it, nothing counts it
      if (!meta || key->mailbox != last) {
        last.assign(key->mailbox);
        meta = &totals_.at_load(last);
      }
      auto m = keys::decode_message_value(it->value().ToStringView());
      const std::uint64_t body = m ? m->body.size() : 0;
      meta->count += 1;
      meta->bytes += body;
      total_messages += 1;
      total_bytes += body;
    }
    if (!it->status().ok()) return from_rocks(it->status(), "counting the stored messages");
  }
  for (bool receipts : {true, false}) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, receipts ? cfs_.receipts : cfs_.acks));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view mailbox;
      if (receipts) {
        auto key = keys::decode_message_key(it->key().ToStringView());
        if (!key) continue;
        mailbox = key->mailbox;
      } else {
        auto key = keys::decode_ack_key(it->key().ToStringView());
        if (!key) continue;
        mailbox = key->mailbox;
      }
      auto& meta = totals_.at_load(mailbox);
      (receipts ? meta.receipts : meta.held) += 1;
    }
    if (!it->status().ok()) return from_rocks(it->status(), "counting the stored receipts and acks");
  }
  counters_.total_messages.store(total_messages);
  counters_.total_bytes.store(total_bytes);
  return Status::ok();
}

bool RocksMailboxStore::valid_mailbox(std::string_view mailbox) {
  return !mailbox.empty() && mailbox.size() <= keys::kMaxShortField;
}

void RocksMailboxStore::append(AppendRequest req, AppendCallback done) {
  batcher_.enqueue(AppendOp{std::move(req), std::move(done)});
}
void RocksMailboxStore::ack(std::string mailbox, std::string device, std::vector<std::uint64_t> seqs,
                            CountCallback done) {
  enqueue_ack(std::move(mailbox), std::move(device), std::move(seqs), std::move(done), true);
}
void RocksMailboxStore::ack_unsynced(std::string mailbox, std::string device, std::vector<std::uint64_t> seqs,
                                     CountCallback done) {
  enqueue_ack(std::move(mailbox), std::move(device), std::move(seqs), std::move(done), false);
}
void RocksMailboxStore::enqueue_ack(std::string mailbox, std::string device, std::vector<std::uint64_t> seqs,
                                    CountCallback done, bool synced) {
  if (device.empty()) device = std::string(proto::kLegacyDevice);
  batcher_.enqueue(AckOp{std::move(mailbox), std::move(device), std::move(seqs), std::move(done), synced});
}
void RocksMailboxStore::purge(std::string mailbox, CountCallback done) {
  batcher_.enqueue(PurgeOp{std::move(mailbox), std::move(done)});
}

// ---------------------------------------------------------------------------
// the writer thread

void rocks_detail::Batch::reset(std::int64_t now) {
  // A batch of many small requests leaves large tables and a large write
  // batch behind: keep those of ordinary batches, give back the others.
  constexpr std::size_t kKeepBuckets = 1u << 14;
  constexpr std::size_t kKeepBatchBytes = 4u << 20;
  auto clear = [](auto& map) {
    if (map.bucket_count() > kKeepBuckets) std::remove_reference_t<decltype(map)>().swap(map);
    else map.clear();
  };
  if (wb.GetDataSize() > kKeepBatchBytes) wb = rocksdb::WriteBatch();
  else wb.Clear();
  clear(messages);
  odd_deleted.clear();
  clear(dedup);
  clear(touched);
  clear(acks);
  clear(acks_by_mailbox);
  devices.clear();
  session_deltas.clear();
  receipts.clear();
  receipt_request.clear();
  clear(receipt_drop_from);
  now_ms = now;
  assigned_seq = false;
  refuse_new = false;
  sync_wanted = false;
  failed = Status::ok();
  appended = duplicates = acked = purged = expired = 0;
  for (auto& n : receipts_by_state) n = 0;
  receipts_dropped = receipts_acked = acks_held = forgotten = released = 0;
  delta_messages = delta_bytes = 0;
}

WriteBatcher::Followers RocksMailboxStore::commit(std::vector<WriteRequest>& requests,
                                                 std::vector<WriteOutcome>& outcomes) {
  Batch& b = writer_->batch;
  b.reset(clock_->now_ms());
  b.refuse_new = opts_.refuse_new_messages && opts_.refuse_new_messages();
  if (b.refuse_new && opts_.refuse_all_writes && opts_.refuse_all_writes()) {
    // The disk has no room left even for acks (storage/disk_guard.h,
    // write_floor_bytes): nothing is written, every request is answered.
    for (std::size_t i = 0; i < requests.size(); ++i)
      outcomes.push_back({Status::store_full("the server's disk has no room left: nothing can be written "
                                             "until space is freed (retry)"),
                          {},
                          0});
    std::lock_guard<std::mutex> lock(online_mu_);
    end_refused_sign_outs(online_, requests);
    return {};
  }
  for (auto& r : requests) {
    if (!b.failed.is_ok()) {
      outcomes.push_back({});
      continue;
    }
    b.request = outcomes.size();
    if (const auto* a = std::get_if<AckOp>(&r); a == nullptr || a->synced) b.sync_wanted = true;
    outcomes.push_back(std::visit([&](auto& op) { return apply(b, op); }, r));
  }
  // A receipt is news for its sender, published once: it must not vanish
  // in a power loss and come back under another id.
  if (!b.receipts.empty()) b.sync_wanted = true;
  const bool sync = opts_.sync && b.sync_wanted;

  // last_seq rides in the same batch as the messages (the mailbox totals
  // are not written: mailbox_totals.h). A synced batch that writes nothing
  // while an unsynced one is not on disk yet writes last_seq (unchanged)
  // all the same: its answers may rest on what that one did (an ack
  // answered `ok` for a message an unsynced ack deleted), and this sync
  // makes it durable.
  rocksdb::Status s;
  if (b.assigned_seq || (sync && writer_->unsynced && b.wb.Count() == 0 && b.failed.is_ok()))
    s = b.wb.Put(cfs_.defaults, keys::kLastSeqKey, keys::encode_last_seq(writer_->last_assigned));
  if (!s.ok() && b.failed.is_ok()) b.failed = from_rocks(s, "building the batch");

  Status write_status = b.failed;
  std::int64_t micros = 0;
  const bool attempted = write_status.is_ok() && b.wb.Count() > 0;
  if (attempted) {
    if (!writable_.load()) db_->Resume().PermitUncheckedError();  // clear a background error
    const auto t0 = std::chrono::steady_clock::now();
    if (opts_.inject_write_error) write_status = opts_.inject_write_error();
    if (write_status.is_ok()) {
      // Not to a failed WAL (it would abort), and with an entry in an active
      // memtable (see wal_watch.h). Should that entry not go in, the
      // database is stopped: the batch is not written either.
      rocksdb::WriteOptions wo;
      wo.sync = sync;
      rocksdb::Status ws = wal_->write(db_, wo, &b.wb);
      if (!ws.ok()) write_status = from_rocks(ws, "writing a batch");
      else writer_->unsynced = !sync;  // (a sync covers every earlier write to the WAL)
    }
    micros = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::steady_clock::now() - t0)
                 .count();
  }

  const bool ok = write_status.is_ok();
  if (ok) {
    for (auto& [mailbox, staged] : b.touched)
      if (staged.dirty) totals_.set(mailbox, staged.meta);
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
    if (b.assigned_seq) last_seq_.store(writer_->last_assigned);
    if (attempted) writable_.store(true);
  } else {
    // Whatever the batch staged is void: the totals stay as committed.
    // (Should the failed write reach the disk after all, the records come
    // back at the next open, which counts them.)
    ++counters_.write_errors;
    if (attempted) writable_.store(false);
  }
  ++counters_.batches;
  counters_.batch_requests += requests.size();
  finish_devices(b, ok);
  WriteBatcher::Followers then = finish_receipts(b, ok);
  if (BatchObserver* obs = observer_.load())
    obs->on_batch(requests.size(), micros, attempted, write_status);

  if (!ok)
    for (auto& o : outcomes) o = WriteOutcome{Status::io_error(write_status.message()), {}, 0};
  return then;
}

RocksMailboxStore::StagedMeta& RocksMailboxStore::staged_meta(Batch& b, const std::string& mailbox) {
  auto it = b.touched.find(mailbox);
  if (it != b.touched.end()) return it->second;
  return b.touched.emplace(mailbox, StagedMeta{totals_.get(mailbox), false}).first->second;
}

WriteOutcome RocksMailboxStore::apply(Batch& b, AppendOp& op) {
  const AppendRequest& req = op.req;
  if (!valid_mailbox(req.mailbox) || req.from.size() > keys::kMaxShortField ||
      req.reason.size() > keys::kMaxShortField || req.client_msg_id.size() > keys::kMaxShortField ||
      req.body.size() > UINT32_MAX ||
      req.dedup_payload.size() > UINT32_MAX || req.kind > proto::MessageKind::kMissed)
    return {Status::invalid_argument("append: bad mailbox, sender, reason or kind"), {}, 0};

  std::string dedup_key;
  if (!req.client_msg_id.empty()) {
    dedup_key = keys::dedup_key(req.from, req.client_msg_id);
    rocksdb::PinnableSlice found;
    rocksdb::Status s;
    if (auto in_batch = b.dedup.find(dedup_key); in_batch != b.dedup.end()) {
      if (in_batch->second.empty()) s = rocksdb::Status::NotFound();
      else found.PinSelf(in_batch->second);
    } else {
      s = db_->Get(rocksdb::ReadOptions(), cfs_.dedup, dedup_key, &found);
    }
    if (s.ok()) {
      // A corrupt or expired entry is treated as absent (and overwritten below).
      if (auto first = first_result(found.ToStringView(), b.now_ms, opts_.dedup_window_ms)) {
        ++b.duplicates;
        return {Status::ok(), std::move(*first), 0};
      }
    } else if (!s.IsNotFound()) {
      b.failed = from_rocks(s, "reading a dedup entry");
      return {};
    }
  }

  // (After the dedup check: a resend still gets its first result.)
  if (b.refuse_new)
    return {Status::store_full("the server's disk is nearly full; new messages are refused for now"),
            {},
            0};

  StagedMeta* staged = &staged_meta(b, req.mailbox);
  const std::uint64_t body = req.body.size();
  if (staged->meta.count + 1 > opts_.max_messages || staged->meta.bytes + body > opts_.max_bytes) {
    ++counters_.refused_full;  // refused whatever the batch write does
    return {Status::mailbox_full(fmt::format("mailbox of '{}' is full ({} messages, {} bytes)",
                                             req.mailbox, staged->meta.count, staged->meta.bytes)),
            {},
            0};
  }

  const std::uint64_t seq = ++writer_->last_assigned;
  b.assigned_seq = true;
  std::string key = keys::message_key(req.mailbox, seq);
  rocksdb::Status s = b.wb.Put(
      cfs_.messages, key,
      keys::encode_message_value(
          {req.kind, b.now_ms, req.from, req.reason, req.body, req.want_receipt, req.client_msg_id}));
  if (s.ok() && !dedup_key.empty()) {
    std::string value =
        keys::encode_dedup_value({seq, b.now_ms, req.mailbox, b.now_ms, req.dedup_payload});
    s = b.wb.Put(cfs_.dedup, dedup_key, value);
    b.dedup.insert_or_assign(std::move(dedup_key), std::move(value));
  }
  if (!s.ok()) {
    b.failed = from_rocks(s, "building the batch");
    return {};
  }
  b.messages.insert_or_assign(seq, InBatch{staged, body, &req, InBatch::kNone});
  staged->meta.count += 1;
  staged->meta.bytes += body;
  staged->dirty = true;
  ++b.appended;
  ++b.delta_messages;
  b.delta_bytes += static_cast<std::int64_t>(body);

  AppendResult r;
  r.seq = seq;
  r.sent_at_ms = b.now_ms;
  r.mailbox = req.mailbox;
  return {Status::ok(), std::move(r), 0};
}

// A purge deletes every message of the mailbox (not its receipts: those are
// about what the user sent) with the acks kept for them; each message that
// wanted a receipt and was never acked makes a `purged` one.
WriteOutcome RocksMailboxStore::apply(Batch& b, PurgeOp& op) {
  if (!valid_mailbox(op.mailbox)) return {Status::ok(), {}, 0};
  StagedMeta* staged = &staged_meta(b, op.mailbox);
  const std::string begin = keys::mailbox_range_begin(op.mailbox);
  const std::string end = keys::mailbox_range_end(op.mailbox);
  const rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::vector<Record> doomed;
  std::vector<std::string> odd;  // keys that do not decode
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_.messages));
    for (it->Seek(begin); it->Valid() && it->key().compare(upper) < 0; it->Next()) {
      auto key = keys::decode_message_key(it->key().ToStringView());
      if (!key) {
        if (b.odd_deleted.count(it->key().ToString()) == 0) odd.push_back(it->key().ToString());
        continue;
      }
      if (b.messages.count(key->seq) != 0) continue;  // deleted in this batch
      Record rec;
      rec.seq = key->seq;
      if (auto m = keys::decode_message_value(it->value().ToStringView())) {
        rec.bytes = m->body.size();
        rec.want_receipt = m->want_receipt;
        rec.at_ms = m->sent_at_ms;
        rec.from = std::string(m->from);
        rec.client_msg_id = std::string(m->client_msg_id);
      }
      doomed.push_back(std::move(rec));
    }
    if (!it->status().ok()) {
      b.failed = from_rocks(it->status(), "scanning a mailbox to purge");
      return {};
    }
  }
  // Appended earlier in this batch (not in the database yet).
  for (const auto& [seq, in_batch] : b.messages) {
    if (in_batch.mailbox != staged || !in_batch.append) continue;
    Record rec;
    rec.seq = seq;
    rec.bytes = in_batch.bytes;
    rec.want_receipt = in_batch.append->want_receipt;
    rec.at_ms = b.now_ms;
    rec.from = in_batch.append->from;
    rec.client_msg_id = in_batch.append->client_msg_id;
    doomed.push_back(std::move(rec));
  }
  for (const auto& key : odd) {
    if (rocksdb::Status s = b.wb.Delete(cfs_.messages, key); !s.ok()) {
      b.failed = from_rocks(s, "building the batch");
      return {};
    }
    b.odd_deleted.insert(key);
  }
  std::vector<std::string> acked;
  for (const Record& rec : doomed) {
    bool marker = false;
    if (!acked_by(b, op.mailbox, rec.seq, *staged, acked, marker)) return {};
    if (rec.want_receipt && acked.empty() && !marker &&
        !emit_receipt(b, rec.from, {rec.seq, rec.client_msg_id, op.mailbox, proto::ReceiptState::kPurged, b.now_ms}))
      return {};
    if (!delete_record(b, op.mailbox, *staged, rec, acked, marker)) return {};
  }
  b.purged += doomed.size() + odd.size();
  return {Status::ok(), {}, doomed.size() + odd.size()};
}

// A chunk of the expiry sweep (rocks_mailbox_sweep.cpp): keys its scan found
// expired, off this thread. Each is checked again here (an ack, a purge or
// a new dedup entry may have come since) and deleted only if it is still
// there and still expired.
WriteOutcome RocksMailboxStore::apply(Batch& b, SweepOp& op) {
  std::uint64_t removed = 0;
  std::string value;
  std::vector<std::string> acked;
  for (const auto& key_bytes : op.message_keys) {
    auto key = keys::decode_message_key(key_bytes);
    if (!key || b.messages.count(key->seq) != 0) continue;  // appended or deleted in this batch
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_.messages, key_bytes, &value);
    if (s.IsNotFound()) continue;
    if (!s.ok()) {
      b.failed = from_rocks(s, "reading an expired message");
      return {};
    }
    auto m = keys::decode_message_value(value);
    if (m && !expired(m->sent_at_ms, b.now_ms)) continue;
    const std::string mailbox(key->mailbox);
    StagedMeta* staged = &staged_meta(b, mailbox);
    Record rec;
    rec.seq = key->seq;
    if (m) {
      rec.bytes = m->body.size();
      rec.want_receipt = m->want_receipt;
      rec.from = std::string(m->from);
      rec.client_msg_id = std::string(m->client_msg_id);
    }
    bool marker = false;
    if (!acked_by(b, mailbox, rec.seq, *staged, acked, marker)) return {};
    // Never acked: its sender learns it expired (once acked, the delivered
    // receipt went out already).
    if (rec.want_receipt && acked.empty() && !marker &&
        !emit_receipt(b, rec.from, {rec.seq, rec.client_msg_id, mailbox, proto::ReceiptState::kExpired, b.now_ms}))
      return {};
    if (!delete_record(b, mailbox, *staged, rec, acked, marker)) return {};
    ++removed;
  }
  // Receipts expire like messages, without a further receipt.
  for (const auto& key_bytes : op.receipt_keys) {
    auto key = keys::decode_message_key(key_bytes);
    if (!key || b.messages.count(key->seq) != 0) continue;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_.receipts, key_bytes, &value);
    if (s.IsNotFound()) continue;
    if (!s.ok()) {
      b.failed = from_rocks(s, "reading an expired receipt");
      return {};
    }
    auto r = keys::decode_receipt_value(value);
    if (r && !expired(r->at_ms, b.now_ms)) continue;
    const std::string mailbox(key->mailbox);
    StagedMeta* staged = &staged_meta(b, mailbox);
    Record rec;
    rec.receipt = true;
    rec.seq = key->seq;
    bool marker = false;
    if (!acked_by(b, mailbox, rec.seq, *staged, acked, marker)) return {};
    if (!delete_record(b, mailbox, *staged, rec, acked, marker)) return {};
  }
  for (const auto& key : op.dedup_keys) {
    if (b.dedup.count(key) != 0) continue;  // written or deleted in this batch
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_.dedup, key, &value);
    if (s.IsNotFound()) continue;
    if (!s.ok()) {
      b.failed = from_rocks(s, "reading a dedup entry");
      return {};
    }
    auto d = keys::decode_dedup_value(value);
    if (d && b.now_ms - d->created_ms < opts_.dedup_window_ms) continue;
    if (s = b.wb.Delete(cfs_.dedup, key); !s.ok()) {
      b.failed = from_rocks(s, "building the batch");
      return {};
    }
    b.dedup.insert_or_assign(key, std::string());
  }
  b.expired += removed;
  return {Status::ok(), {}, removed};
}

}  // namespace oms::storage
