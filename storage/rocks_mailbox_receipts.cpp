// Receipts in the RocksDB MailboxStore (contract 4.2; the rules:
// mailbox_store.h). Writer thread, except want_receipt() (which only
// enqueues).
//
// A receipt is written into the sender's mailbox ("receipts" family) in the
// same batch as what caused it: the first ack of a message that wants one
// (rocks_mailbox_devices.cpp), its expiry (rocks_mailbox_sweep.cpp), a purge,
// or a late want_receipt(). Beyond max_receipts_per_mailbox the oldest goes
// without a further receipt. Once the batch is durable, the receipts of
// each request are handed to the listener right after that request's
// callback, on the completion thread: in seq order with the messages of
// the same mailbox.
#include <algorithm>
#include <memory>
#include <utility>

#include <rocksdb/db.h>

#include "storage/keys.h"
#include "storage/rocks_mailbox_batch.h"
#include "storage/rocks_mailbox_store.h"
#include "storage/rocks_status.h"

namespace oms::storage {
namespace {

// Past this many mailboxes at their cap, the floor hints are dropped.
constexpr std::size_t kMaxReceiptFloors = 65536;

}  // namespace

using rocks_detail::InBatch;

void RocksMailboxStore::want_receipt(std::string mailbox, std::uint64_t seq, std::string from,
                                     std::string client_msg_id, CountCallback done) {
  batcher_.enqueue(ReceiptWantedOp{std::move(mailbox), seq, std::move(from), std::move(client_msg_id),
                                   std::move(done), {}});
}

bool RocksMailboxStore::emit_receipt(Batch& b, std::string_view sender, ReceiptRecord r) {
  if (!valid_mailbox(sender) || r.to.size() > keys::kMaxShortField || r.client_msg_id.size() > keys::kMaxShortField)
    return true;  // (cannot happen: the message was stored with them)
  const std::string mailbox(sender);
  StagedMeta* meta = &staged_meta(b, mailbox);
  const std::uint64_t seq = ++writer_->last_assigned;
  b.assigned_seq = true;
  rocksdb::Status s = b.wb.Put(cfs_.receipts, keys::receipt_key(mailbox, seq),
                               keys::encode_receipt_value({r.state, r.msg_seq, r.at_ms, r.to, r.client_msg_id}));
  if (!s.ok()) {
    b.failed = from_rocks(s, "building the batch");
    return false;
  }
  ++b.receipts_by_state[static_cast<std::size_t>(r.state) & 3];
  b.messages.insert_or_assign(seq, InBatch{meta, 0, nullptr, b.receipts.size()});
  b.receipts.push_back({mailbox, seq, std::move(r)});
  b.receipt_request.push_back(b.request);
  meta->meta.receipts += 1;
  meta->dirty = true;
  if (meta->meta.receipts > opts_.max_receipts_per_mailbox) return drop_oldest_receipt(b, mailbox, *meta);
  return true;
}

// The oldest receipt still there: the first in the database not deleted in
// this batch, else the first written in this batch.
bool RocksMailboxStore::drop_oldest_receipt(Batch& b, const std::string& mailbox, StagedMeta& meta) {
  std::uint64_t oldest = 0;
  {
    const std::string end = keys::mailbox_range_end(mailbox);
    const rocksdb::Slice upper(end);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_.receipts));
    auto floor = writer_->receipt_floor.find(mailbox);
    const std::uint64_t from = floor == writer_->receipt_floor.end() ? 0 : floor->second + 1;
    for (it->Seek(keys::receipt_key(mailbox, from)); it->Valid() && oldest == 0; it->Next()) {
      auto key = keys::decode_message_key(it->key().ToStringView());
      if (key && b.messages.count(key->seq) == 0) oldest = key->seq;
    }
    if (!it->status().ok()) {
      b.failed = from_rocks(it->status(), "finding the oldest receipt");
      return false;
    }
  }
  if (oldest == 0) {
    std::size_t& from = b.receipt_drop_from[mailbox];
    for (; from < b.receipts.size(); ++from) {
      const NewReceipt& nr = b.receipts[from];
      auto in = b.messages.find(nr.seq);
      if (nr.mailbox == mailbox && in != b.messages.end() && in->second.mailbox) {
        oldest = nr.seq;
        break;
      }
    }
  }
  if (oldest == 0) return true;
  writer_->receipt_floor[mailbox] = oldest;
  Record rec;
  rec.receipt = true;
  rec.seq = oldest;
  std::vector<std::string> acked;
  bool marker = false;
  if (!acked_by(b, mailbox, oldest, meta, acked, marker)) return false;
  ++b.receipts_dropped;
  return delete_record(b, mailbox, meta, rec, acked, marker);
}

// A message whose `sent` says stored after all (mailbox_store.h).
WriteOutcome RocksMailboxStore::apply(Batch& b, ReceiptWantedOp& op) {
  if (!valid_mailbox(op.mailbox)) return {Status::ok(), {}, 0};
  StagedMeta* meta = &staged_meta(b, op.mailbox);
  const ReceiptRecord delivered{op.seq, op.client_msg_id, op.mailbox, proto::ReceiptState::kDelivered, b.now_ms};
  Record rec;
  if (!find_record(b, op.mailbox, op.seq, rec)) {
    if (!b.failed.is_ok()) return {};
    // Gone already: every active device acked it first (a purge in that
    // instant would be reported as delivered too).
    if (!emit_receipt(b, op.from, delivered)) return {};
    return {Status::ok(), {}, 1};
  }
  if (rec.receipt) return {Status::ok(), {}, 0};
  if (rec.want_receipt) return {Status::ok(), {}, 1};  // asked already
  std::vector<std::string> acked;
  bool marker = false;
  if (!acked_by(b, op.mailbox, op.seq, *meta, acked, marker)) return {};
  if (marker) return {Status::ok(), {}, 1};
  if (!acked.empty()) {
    // A device acked it already (it read the message from the mailbox): the
    // receipt now, with its marker, as the first ack would have written them.
    if (!emit_receipt(b, op.from, delivered) || !keep_ack(b, op.mailbox, op.seq, "", *meta)) return {};
    return {Status::ok(), {}, 1};
  }
  // Not acked yet: the message is rewritten with the flag (and seen so by
  // the rest of this batch through the overlay, as if appended here).
  const std::string key = keys::message_key(op.mailbox, op.seq);
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_.messages, key, &value);
  auto m = s.ok() ? keys::decode_message_value(value) : std::nullopt;
  if (!s.ok() || !m) {
    if (!s.ok() && !s.IsNotFound()) b.failed = from_rocks(s, "reading a message to mark");
    return b.failed.is_ok() ? WriteOutcome{Status::ok(), {}, 0} : WriteOutcome{};
  }
  m->want_receipt = true;
  m->client_msg_id = op.client_msg_id;
  op.rewritten = AppendRequest{op.mailbox, std::string(m->from), std::string(m->body), m->kind,
                               std::string(m->reason), op.client_msg_id, true, {}};
  if (s = b.wb.Put(cfs_.messages, key, keys::encode_message_value(*m)); !s.ok()) {
    b.failed = from_rocks(s, "building the batch");
    return {};
  }
  b.messages.insert_or_assign(op.seq, InBatch{meta, rec.bytes, &op.rewritten, InBatch::kNone});
  return {Status::ok(), {}, 1};
}

WriteBatcher::Followers RocksMailboxStore::finish_receipts(Batch& b, bool ok) {
  WriteBatcher::Followers then;
  if (!ok) writer_->receipt_floor.clear();
  if (writer_->receipt_floor.size() > kMaxReceiptFloors) writer_->receipt_floor.clear();
  if (!ok || !receipt_listener_) return then;
  for (std::size_t i = 0; i < b.receipts.size();) {
    const std::size_t request = b.receipt_request[i];
    std::vector<NewReceipt> fresh;
    for (; i < b.receipts.size() && b.receipt_request[i] == request; ++i) {
      auto in = b.messages.find(b.receipts[i].seq);
      if (in != b.messages.end() && in->second.mailbox) fresh.push_back(std::move(b.receipts[i]));  // not dropped again
    }
    if (!fresh.empty()) then.emplace_back(request, [this, fresh = std::move(fresh)] { receipt_listener_(fresh); });
  }
  return then;
}

}  // namespace oms::storage
