// The reads of the PostgreSQL MailboxStore: one statement each on a pooled
// connection (caller's thread, blocking), each an index scan of one
// mailbox (primary key (mailbox, seq)) or a point lookup. Expired records
// are left out by the statement (sent_at_ms against the ttl now), so they
// are never returned even before the sweep.
#include <algorithm>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "storage/pg_mailbox_store.h"

namespace oms::storage {
namespace {

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

// Columns 0..4 and 6..9 of kRecordColumns, with `body` (column 5) as given
// and `mseq` in column mseq_col.
StoredMessage stored(const pg::Rows& r, int i, bool with_body, int mseq_col) {
  StoredMessage m;
  m.seq = static_cast<std::uint64_t>(r.i64(i, 0));
  m.mseq = static_cast<std::uint64_t>(r.i64(i, mseq_col));
  const auto state = r.i16(i, 6);
  if (state != 0) {
    m.receipt = ReceiptRecord{static_cast<std::uint64_t>(r.i64(i, 7)), std::string(r.str(i, 8)),
                              std::string(r.str(i, 9)), static_cast<proto::ReceiptState>(state), r.i64(i, 2)};
    return m;
  }
  m.from = std::string(r.str(i, 1));
  m.sent_at_ms = r.i64(i, 2);
  m.kind = static_cast<proto::MessageKind>(r.i16(i, 3));
  m.reason = std::string(r.str(i, 4));
  if (with_body && !r.null(i, 5)) m.body = std::string(r.str(i, 5));
  return m;
}

// $1 mailbox, $2 after_seq, $3 expiry cutoff, $4 device ('' = any).
const char* const kVisible =
    "m.mailbox = $1 AND m.seq > $2 AND m.sent_at_ms >= $3 AND ($4 = '' OR NOT EXISTS "
    "(SELECT 1 FROM acks a WHERE a.mailbox = m.mailbox AND a.seq = m.seq AND a.device = $4))";

}  // namespace

Result<std::vector<StoredMessage>> PgMailboxStore::read(std::string_view mailbox, std::string_view device,
                                                        std::uint64_t after_seq, std::size_t limit) const {
  std::vector<StoredMessage> out;
  if (!valid_mailbox(mailbox)) return Status::invalid_argument("read: invalid mailbox");
  if (limit == 0 || after_seq >= static_cast<std::uint64_t>(kInt64Max)) return out;
  static const std::string sql = fmt::format(
      "SELECT m.seq, m.from_user, m.sent_at_ms, m.kind, m.reason, m.body, m.receipt_state, m.receipt_msg_seq, "
      "m.client_msg_id, m.receipt_to, m.mseq FROM messages m WHERE {} ORDER BY m.seq LIMIT $5",
      kVisible);
  pg::Params p;
  p.text(mailbox).i64(static_cast<std::int64_t>(after_seq)).i64(expiry_cutoff(clock_->now_ms())).text(device)
      .i64(static_cast<std::int64_t>(std::min<std::size_t>(limit, static_cast<std::size_t>(kInt64Max))));
  auto lease = reads_->get();
  auto r = lease->read(sql, p);
  if (!r) return r.status();
  out.reserve(static_cast<std::size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) out.push_back(stored(*r, i, true, 10));
  if (!out.empty()) saw_seq(out.back().seq);
  return out;
}

Result<MailboxSummary> PgMailboxStore::summary(std::string_view mailbox, std::string_view device,
                                               std::uint64_t after_seq, bool missed_only,
                                               std::vector<StoredMessage>* first_page,
                                               std::size_t page_limit) const {
  MailboxSummary sum;
  if (first_page) first_page->clear();
  if (!valid_mailbox(mailbox)) return Status::invalid_argument("summary: invalid mailbox");
  if (after_seq >= static_cast<std::uint64_t>(kInt64Max)) return sum;
  // One scan; bodies only for the first page (sizes for the rest).
  static const std::string sql = fmt::format(
      "SELECT m.seq, m.from_user, m.sent_at_ms, m.kind, m.reason, "
      "CASE WHEN row_number() OVER (ORDER BY m.seq) <= $5 THEN m.body END, m.receipt_state, m.receipt_msg_seq, "
      "m.client_msg_id, m.receipt_to, octet_length(m.body)::int8, m.mseq "
      "FROM messages m WHERE {} AND (NOT $6 OR (m.receipt_state = 0 AND m.kind = 2)) ORDER BY m.seq",
      kVisible);
  const std::size_t page = first_page ? page_limit : 0;
  pg::Params p;
  p.text(mailbox).i64(static_cast<std::int64_t>(after_seq)).i64(expiry_cutoff(clock_->now_ms())).text(device)
      .i64(static_cast<std::int64_t>(std::min<std::size_t>(page, static_cast<std::size_t>(kInt64Max))))
      .boolean(missed_only);
  auto lease = reads_->get();
  auto r = lease->read(sql, p);
  if (!r) return r.status();
  std::map<std::string, std::uint64_t, std::less<>> senders;
  for (int i = 0; i < r->size(); ++i) {
    const auto seq = static_cast<std::uint64_t>(r->i64(i, 0));
    sum.last_seq = std::max(sum.last_seq, seq);
    const bool in_page = first_page && first_page->size() < page_limit;
    if (r->i16(i, 6) != 0) {
      ++sum.receipts;
      if (in_page) first_page->push_back(stored(*r, i, true, 11));
      continue;
    }
    const bool missed = r->i16(i, 3) == static_cast<std::int16_t>(proto::MessageKind::kMissed);
    ++sum.count;
    if (missed) ++sum.missed;
    sum.bytes += static_cast<std::uint64_t>(r->i64(i, 10));
    const std::int64_t sent = r->i64(i, 2);
    if (!sum.oldest_ms || sent < *sum.oldest_ms) sum.oldest_ms = sent;
    const std::string_view from = r->str(i, 1);
    if (auto s = senders.find(from); s == senders.end()) senders.emplace(std::string(from), 1);
    else ++s->second;
    if (in_page) first_page->push_back(stored(*r, i, true, 11));
  }
  saw_seq(sum.last_seq);
  sum.from.assign(senders.begin(), senders.end());
  std::stable_sort(sum.from.begin(), sum.from.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return sum;
}

MailboxStats PgMailboxStore::stats(std::string_view mailbox) const {
  MailboxStats st;
  if (!valid_mailbox(mailbox)) return st;
  pg::Params p;
  p.text(mailbox);
  auto lease = reads_->get();
  // The row's totals and the deltas not folded in yet (pg_schema.h).
  auto r = lease->read(
      "SELECT coalesce(sum(c), 0)::int8, coalesce(sum(b), 0)::int8, coalesce(sum(r), 0)::int8 FROM ("
      "SELECT count AS c, bytes AS b, receipts AS r FROM mailboxes WHERE mailbox = $1 "
      "UNION ALL SELECT count, bytes, receipts FROM mailbox_deltas WHERE mailbox = $1) t",
      p);
  if (!r || r->size() == 0) return st;
  st.count = static_cast<std::uint64_t>(r->i64(0, 0));
  st.bytes = static_cast<std::uint64_t>(r->i64(0, 1));
  st.receipts = static_cast<std::uint64_t>(r->i64(0, 2));
  return st;
}

Result<std::optional<AppendResult>> PgMailboxStore::find_duplicate(std::string_view from,
                                                                   std::string_view client_msg_id) const {
  if (client_msg_id.empty()) return std::optional<AppendResult>();
  pg::Params p;
  p.text(from).text(client_msg_id).i64(clock_->now_ms() - opts_.dedup_window_ms);
  auto lease = reads_->get();
  auto r = lease->read(
      "SELECT mailbox, seq, sent_at_ms, payload FROM dedup WHERE from_user = $1 AND client_msg_id = $2 "
      "AND created_ms > $3",
      p);
  if (!r) return r.status();
  if (r->size() == 0) return std::optional<AppendResult>();
  AppendResult a;
  a.mailbox = std::string(r->str(0, 0));
  a.seq = static_cast<std::uint64_t>(r->i64(0, 1));
  a.sent_at_ms = r->i64(0, 2);
  a.dedup_payload = std::string(r->str(0, 3));
  a.duplicate = true;
  return std::optional<AppendResult>(std::move(a));
}

bool PgMailboxStore::device_known(std::string_view user, std::string_view device) const {
  if (!valid_mailbox(user) || device.empty() || device.size() > proto::kMaxDeviceBytes) return false;
  pg::Params p;
  p.text(user).text(device);
  auto lease = reads_->get();
  auto r = lease->read("SELECT 1 FROM devices WHERE user_id = $1 AND device = $2", p);
  return !r || r->size() > 0;  // a failed read is not a removal
}

Result<std::vector<DeviceRecord>> PgMailboxStore::devices(std::string_view user) const {
  std::vector<DeviceRecord> out;
  if (!valid_mailbox(user)) return out;
  pg::Params p;
  p.text(user);
  auto lease = reads_->get();
  auto r = lease->read(
      "SELECT device, first_seen_ms, last_seen_ms, capable FROM devices WHERE user_id = $1 ORDER BY device", p);
  if (!r) return r.status();
  const std::int64_t now = clock_->now_ms();
  std::lock_guard lock(online_mu_);
  const auto online = online_.find(std::string(user));
  for (int i = 0; i < r->size(); ++i) {
    DeviceRecord d;
    d.device = std::string(r->str(i, 0));
    d.first_seen_ms = r->i64(i, 1);
    d.last_seen_ms = r->i64(i, 2);
    d.capable = r->boolean(i, 3);
    if (online != online_.end())
      if (auto n = online->second.find(d.device); n != online->second.end()) d.sessions = n->second;
    d.active = d.capable && (d.sessions > 0 || now - d.last_seen_ms < opts_.device_idle_ms);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace oms::storage
