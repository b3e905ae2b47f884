// The reads of the RocksDB MailboxStore: plain RocksDB reads on the caller's
// thread, each a range scan of one mailbox bounded by iterate_upper_bound
// (its totals come from memory: mailbox_totals.h). Expired messages are
// skipped, never returned. At the end, the writer thread's walk over an
// ack's messages.
#include <algorithm>
#include <functional>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <rocksdb/db.h>

#include "storage/keys.h"
#include "storage/rocks_mailbox_batch.h"
#include "storage/rocks_mailbox_store.h"
#include "storage/rocks_status.h"

namespace oms::storage {
namespace {

StoredMessage stored_message(std::uint64_t seq, const keys::MessageView& m) {
  StoredMessage sm;
  sm.seq = seq;
  sm.from = std::string(m.from);
  sm.sent_at_ms = m.sent_at_ms;
  sm.kind = m.kind;
  sm.reason = std::string(m.reason);
  sm.body = std::string(m.body);
  return sm;
}

StoredMessage stored_receipt(std::uint64_t seq, const keys::ReceiptView& r) {
  StoredMessage sm;
  sm.seq = seq;
  sm.receipt = ReceiptRecord{r.msg_seq, std::string(r.client_msg_id), std::string(r.to), r.state, r.at_ms};
  return sm;
}

}  // namespace

// One pass over a mailbox from after_seq on: its messages and receipts
// merged in seq order, without what `device` acked and what expired. The
// acks kept for the device are read first (they are few: only while other
// devices have not acked). The mailbox's meta says first whether it holds
// any receipts or kept acks at all: with one device and no receipts (the
// common case) a read is one iterator, as in format version 1. (A receipt
// or ack committed after that look is announced to the sessions after it
// is durable, which makes them read again.)
class RocksMailboxStore::MailboxCursor {
 public:
  MailboxCursor(const RocksMailboxStore& store, std::string_view mailbox, std::string_view device,
                std::uint64_t after_seq)
      : store_(store), mailbox_(mailbox), end_(keys::mailbox_range_end(mailbox)), upper_(end_),
        now_(store.clock_->now_ms()) {
    ro_.iterate_upper_bound = &upper_;
    const std::string begin = keys::message_key(mailbox, after_seq + 1);
    const keys::MailboxMeta meta = store.totals_.get(mailbox);
    const bool any_receipts = meta.receipts > 0, any_acks = meta.held > 0;
    if (!device.empty() && any_acks) {
      std::unique_ptr<rocksdb::Iterator> acks(store.db_->NewIterator(ro_, store.cfs_.acks));
      for (acks->Seek(begin); acks->Valid(); acks->Next()) {
        auto key = keys::decode_ack_key(acks->key().ToStringView());
        if (key && key->mailbox == mailbox && key->device == device) acked_.push_back(key->seq);
      }
      status_ = acks->status();
    }
    messages_.reset(store.db_->NewIterator(ro_, store.cfs_.messages));
    messages_->Seek(begin);
    if (any_receipts) {
      receipts_.reset(store.db_->NewIterator(ro_, store.cfs_.receipts));
      receipts_->Seek(begin);
    }
  }

  // The next record, or nullopt at the end (or on an error: status()).
  std::optional<StoredMessage> next() {
    while (status_.ok()) {
      constexpr std::uint64_t kEnd = UINT64_MAX;  // (no seq is)
      const std::uint64_t m = peek(*messages_).value_or(kEnd);
      const std::uint64_t r = receipts_ ? peek(*receipts_).value_or(kEnd) : kEnd;
      if (!status_.ok() || (m == kEnd && r == kEnd)) return std::nullopt;
      const bool take_message = m < r;
      rocksdb::Iterator& it = take_message ? *messages_ : *receipts_;
      const std::uint64_t seq = take_message ? m : r;
      std::optional<StoredMessage> out;
      if (!std::binary_search(acked_.begin(), acked_.end(), seq)) {
        if (take_message) {
          auto v = keys::decode_message_value(it.value().ToStringView());
          if (!v) return corrupt();
          if (!store_.expired(v->sent_at_ms, now_)) out = stored_message(seq, *v);
        } else {
          auto v = keys::decode_receipt_value(it.value().ToStringView());
          if (!v) return corrupt();
          if (!store_.expired(v->at_ms, now_)) out = stored_receipt(seq, *v);
        }
      }
      it.Next();
      if (out) return out;
    }
    return std::nullopt;
  }

  Status status() const {
    if (corrupt_) return Status::io_error(fmt::format("corrupt record in mailbox '{}'", mailbox_));
    return status_.ok() ? Status::ok() : from_rocks(status_, "reading a mailbox");
  }

 private:
  std::optional<std::uint64_t> peek(rocksdb::Iterator& it) {
    if (!it.Valid()) {
      if (!it.status().ok()) status_ = it.status();
      return std::nullopt;
    }
    auto key = keys::decode_message_key(it.key().ToStringView());
    if (!key) {
      corrupt();
      return std::nullopt;
    }
    return key->seq;
  }
  std::optional<StoredMessage> corrupt() {
    corrupt_ = true;
    status_ = rocksdb::Status::Corruption();
    return std::nullopt;
  }

  const RocksMailboxStore& store_;
  std::string mailbox_;
  std::string end_;
  rocksdb::Slice upper_;
  rocksdb::ReadOptions ro_;
  std::int64_t now_;
  std::vector<std::uint64_t> acked_;  // by this device, sorted (keys are in seq order)
  std::unique_ptr<rocksdb::Iterator> messages_, receipts_;
  rocksdb::Status status_;
  bool corrupt_ = false;
};

Result<std::vector<StoredMessage>> RocksMailboxStore::read(std::string_view mailbox, std::string_view device,
                                                            std::uint64_t after_seq, std::size_t limit) const {
  std::vector<StoredMessage> out;
  if (!valid_mailbox(mailbox)) return Status::invalid_argument("read: invalid mailbox");
  if (limit == 0 || after_seq == UINT64_MAX) return out;
  MailboxCursor cursor(*this, mailbox, device, after_seq);
  while (out.size() < limit) {
    auto m = cursor.next();
    if (!m) break;
    out.push_back(std::move(*m));
  }
  if (Status s = cursor.status(); !s) return s;
  return out;
}

Result<MailboxSummary> RocksMailboxStore::summary(std::string_view mailbox, std::string_view device,
                                                   std::uint64_t after_seq, bool missed_only,
                                                   std::vector<StoredMessage>* first_page,
                                                   std::size_t page_limit) const {
  MailboxSummary sum;
  if (first_page) first_page->clear();
  if (!valid_mailbox(mailbox)) return Status::invalid_argument("summary: invalid mailbox");
  if (after_seq == UINT64_MAX) return sum;
  std::map<std::string, std::uint64_t, std::less<>> senders;
  MailboxCursor cursor(*this, mailbox, device, after_seq);
  while (auto m = cursor.next()) {
    if (m->receipt) {
      if (missed_only) continue;
      ++sum.receipts;
      sum.last_seq = std::max(sum.last_seq, m->seq);
      if (first_page && first_page->size() < page_limit) first_page->push_back(std::move(*m));
      continue;
    }
    const bool missed = m->kind == proto::MessageKind::kMissed;
    if (missed_only && !missed) continue;
    ++sum.count;
    if (missed) ++sum.missed;
    sum.bytes += m->body.size();
    if (!sum.oldest_ms || m->sent_at_ms < *sum.oldest_ms) sum.oldest_ms = m->sent_at_ms;
    sum.last_seq = std::max(sum.last_seq, m->seq);
    auto s = senders.find(m->from);
    if (s == senders.end())
      senders.emplace(m->from, 1);
    else
      ++s->second;
    if (first_page && first_page->size() < page_limit) first_page->push_back(std::move(*m));
  }
  if (Status s = cursor.status(); !s) return s;
  sum.from.assign(senders.begin(), senders.end());
  std::stable_sort(sum.from.begin(), sum.from.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return sum;
}

MailboxStats RocksMailboxStore::stats(std::string_view mailbox) const {
  MailboxStats st;
  if (!valid_mailbox(mailbox)) return st;
  const keys::MailboxMeta meta = totals_.get(mailbox);
  st.count = meta.count;
  st.bytes = meta.bytes;
  st.receipts = meta.receipts;
  return st;
}
Result<std::optional<AppendResult>> RocksMailboxStore::find_duplicate(std::string_view from,
                                                                      std::string_view client_msg_id) const {
  if (client_msg_id.empty()) return std::optional<AppendResult>();
  rocksdb::PinnableSlice found;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cfs_.dedup, keys::dedup_key(from, client_msg_id), &found);
  if (s.IsNotFound()) return std::optional<AppendResult>();
  if (!s.ok()) return from_rocks(s, "reading a dedup entry");
  return first_result(found.ToStringView(), clock_->now_ms(), opts_.dedup_window_ms);
}

std::optional<AppendResult> RocksMailboxStore::first_result(std::string_view dedup_value, std::int64_t now_ms,
                                                            std::int64_t window_ms) {
  auto first = keys::decode_dedup_value(dedup_value);
  if (!first || now_ms - first->created_ms >= window_ms) return std::nullopt;
  AppendResult r;
  r.seq = first->seq;
  r.sent_at_ms = first->sent_at_ms;
  r.duplicate = true;
  r.dedup_payload = std::string(first->payload);
  r.mailbox = std::string(first->mailbox);
  return r;
}

// The user's devices (contract 4.5), with open sessions from memory.
bool RocksMailboxStore::device_known(std::string_view user, std::string_view device) const {
  if (!valid_mailbox(user) || device.empty() || device.size() > proto::kMaxDeviceBytes) return false;
  rocksdb::PinnableSlice value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_.devices, keys::device_key(user, device), &value);
  return !s.IsNotFound();
}

Result<std::vector<DeviceRecord>> RocksMailboxStore::devices(std::string_view user) const {
  std::vector<DeviceRecord> out;
  if (!valid_mailbox(user)) return out;
  const std::string end = keys::mailbox_range_end(user);
  const rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_.devices));
  const std::int64_t now = clock_->now_ms();
  std::lock_guard<std::mutex> lock(online_mu_);
  const auto online = online_.find(std::string(user));
  for (it->Seek(keys::devices_prefix(user)); it->Valid(); it->Next()) {
    auto key = keys::decode_device_key(it->key().ToStringView());
    auto value = keys::decode_device_value(it->value().ToStringView());
    if (!key || !value || key->user != user) continue;
    DeviceRecord d;
    d.device = std::string(key->device);
    d.first_seen_ms = value->first_seen_ms;
    d.last_seen_ms = value->last_seen_ms;
    d.capable = value->capable;
    if (online != online_.end())
      if (auto n = online->second.find(d.device); n != online->second.end()) d.sessions = n->second;
    d.active = d.capable && (d.sessions > 0 || now - d.last_seen_ms < opts_.device_idle_ms);
    out.push_back(std::move(d));
  }
  if (!it->status().ok()) return from_rocks(it->status(), "reading a user's devices");
  return out;
}

// The writer thread's read of an ack's messages (rocks_mailbox_devices.cpp).
bool RocksMailboxStore::prefetch_messages(Batch& b, const std::string& mailbox, Prefetch& pre) {
  // Beyond this many steps to the next id, seek instead.
  constexpr int kMaxSteps = 16;
  pre.values.resize(pre.seqs.size());
  pre.found.assign(pre.seqs.size(), rocksdb::Status::NotFound());
  const std::string end = keys::mailbox_range_end(mailbox);
  const rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_.messages));
  std::string want;
  for (std::size_t i = 0; i < pre.seqs.size(); ++i) {
    want = keys::message_key(mailbox, pre.seqs[i]);
    if (i == 0) {
      it->Seek(want);
    } else {
      for (int steps = 0; it->Valid() && it->key().compare(want) < 0; ++steps) {
        if (steps == kMaxSteps) {
          it->Seek(want);
          break;
        }
        it->Next();
      }
    }
    if (!it->Valid()) break;  // past the mailbox: none of the rest is there
    if (it->key() == rocksdb::Slice(want)) {
      pre.values[i].PinSelf(it->value());
      pre.found[i] = rocksdb::Status::OK();
    }
  }
  if (!it->status().ok()) {
    b.failed = from_rocks(it->status(), "reading acked messages");
    return false;
  }
  return true;
}

}  // namespace oms::storage
