// The reads of the RocksDB MailboxStore: plain RocksDB reads on the caller's
// thread, each a range scan of one mailbox bounded by iterate_upper_bound
// (or one Get of its meta). Expired messages are skipped, never returned.
#include <algorithm>
#include <functional>
#include <map>

#include <fmt/format.h>
#include <rocksdb/db.h>

#include "storage/keys.h"
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

}  // namespace

Result<std::vector<StoredMessage>> RocksMailboxStore::read(std::string_view mailbox,
                                                            std::uint64_t after_seq,
                                                            std::size_t limit) const {
  std::vector<StoredMessage> out;
  if (!valid_mailbox(mailbox)) return Status::invalid_argument("read: invalid mailbox");
  if (limit == 0 || after_seq == UINT64_MAX) return out;
  const std::int64_t now = clock_->now_ms();
  const std::string end = keys::mailbox_range_end(mailbox);
  const rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_.messages));
  for (it->Seek(keys::message_key(mailbox, after_seq + 1)); it->Valid() && out.size() < limit;
       it->Next()) {
    auto key = keys::decode_message_key(it->key().ToStringView());
    auto m = keys::decode_message_value(it->value().ToStringView());
    if (!key || !m)
      return Status::io_error(fmt::format("corrupt message record in mailbox '{}'", mailbox));
    if (expired(m->sent_at_ms, now)) continue;
    out.push_back(stored_message(key->seq, *m));
  }
  if (!it->status().ok()) return from_rocks(it->status(), "reading a mailbox");
  return out;
}

Result<MailboxSummary> RocksMailboxStore::summary(std::string_view mailbox,
                                                   std::uint64_t after_seq, bool missed_only,
                                                   std::vector<StoredMessage>* first_page,
                                                   std::size_t page_limit) const {
  MailboxSummary sum;
  if (first_page) first_page->clear();
  if (!valid_mailbox(mailbox)) return Status::invalid_argument("summary: invalid mailbox");
  if (after_seq == UINT64_MAX) return sum;
  const std::int64_t now = clock_->now_ms();
  const std::string end = keys::mailbox_range_end(mailbox);
  const rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::map<std::string, std::uint64_t, std::less<>> senders;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_.messages));
  for (it->Seek(keys::message_key(mailbox, after_seq + 1)); it->Valid(); it->Next()) {
    auto key = keys::decode_message_key(it->key().ToStringView());
    auto m = keys::decode_message_value(it->value().ToStringView());
    if (!key || !m)
      return Status::io_error(fmt::format("corrupt message record in mailbox '{}'", mailbox));
    if (expired(m->sent_at_ms, now)) continue;
    const bool missed = m->kind == proto::MessageKind::kMissed;
    if (missed_only && !missed) continue;
    ++sum.count;
    if (missed) ++sum.missed;
    sum.bytes += m->body.size();
    if (!sum.oldest_ms || m->sent_at_ms < *sum.oldest_ms) sum.oldest_ms = m->sent_at_ms;
    sum.last_seq = std::max(sum.last_seq, key->seq);
    if (first_page && first_page->size() < page_limit)
      first_page->push_back(stored_message(key->seq, *m));
    auto s = senders.find(m->from);
    if (s == senders.end())
      senders.emplace(std::string(m->from), 1);
    else
      ++s->second;
  }
  if (!it->status().ok()) return from_rocks(it->status(), "reading a mailbox");
  sum.from.assign(senders.begin(), senders.end());
  std::stable_sort(sum.from.begin(), sum.from.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return sum;
}

MailboxStats RocksMailboxStore::stats(std::string_view mailbox) const {
  MailboxStats st;
  if (!valid_mailbox(mailbox)) return st;
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cfs_.mailbox_meta, keys::mailbox_meta_key(mailbox), &value);
  if (!s.ok()) return st;
  if (auto meta = keys::decode_mailbox_meta(value)) {
    st.count = meta->count;
    st.bytes = meta->bytes;
  }
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

}  // namespace oms::storage
