// Devices, acks kept per device, and receipts in the PostgreSQL
// MailboxStore (contract 4.1, 4.2; the rules: mailbox_store.h, the same
// decisions as the RocksDB store's rocks_mailbox_devices.cpp). Writer
// thread, except the entry points (which only enqueue).
//
// Every request about a user takes the user's advisory lock first (not the
// mailbox row, which only appends lock: pg_schema.h), so one user's acks,
// sign-ins and reconciles are serialised across nodes. What they remove
// from the mailbox is counted from the DELETEs' rows (Batch::removed).
// Receipts are queued rows of the messages table (receipt_state > 0),
// written with the batch's next flush; their senders' rows are locked (all
// at once, sorted) before their seqs are taken.
#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "storage/pg_mailbox_batch.h"
#include "storage/pg_mailbox_store.h"

namespace oms::storage {
namespace {

std::string device_or_legacy(std::string device) {
  return device.empty() ? std::string(proto::kLegacyDevice) : std::move(device);
}

const std::string kDevicesOf =
    "SELECT device, first_seen_ms, last_seen_ms, capable FROM devices WHERE user_id = $1 ORDER BY device";

// An ack's reads: the records it names and the acks kept for them.
const std::string kAckRecords =
    "SELECT seq, octet_length(body)::int8, want_receipt, from_user, client_msg_id, receipt_state "
    "FROM messages WHERE mailbox = $1 AND seq = ANY($2::int8[]) ORDER BY seq";
const std::string kAckKept = "SELECT seq, device FROM acks WHERE mailbox = $1 AND seq = ANY($2::int8[])";

void parse_devices(const pg::Rows& r, std::vector<pg_detail::Device>& out) {
  out.clear();
  for (int i = 0; i < r.size(); ++i)
    out.push_back({std::string(r.str(i, 0)), r.i64(i, 1), r.i64(i, 2), r.boolean(i, 3)});
}

}  // namespace

using pg_detail::Batch;
using pg_detail::Device;
using pg_detail::Record;
using pg_detail::Totals;

void PgMailboxStore::device_signed_in(std::string user, std::string device, bool capable, DeviceCallback done) {
  batcher_.enqueue(DeviceOp{DeviceOp::Kind::kSignIn, std::move(user), device_or_legacy(std::move(device)), capable,
                            std::move(done), {}});
}
void PgMailboxStore::device_signed_out(std::string user, std::string device, CountCallback done) {
  batcher_.enqueue(DeviceOp{DeviceOp::Kind::kSignOut, std::move(user), device_or_legacy(std::move(device)), false,
                            {}, std::move(done)});
}
void PgMailboxStore::forget_device(std::string user, std::string device, CountCallback done) {
  batcher_.enqueue(DeviceOp{DeviceOp::Kind::kForget, std::move(user), std::move(device), false, {}, std::move(done)});
}
void PgMailboxStore::reconcile_devices(CountCallback done) {
  batcher_.enqueue(ReconcileOp{{}, std::move(done)});  // no users: every user with kept acks
}
void PgMailboxStore::want_receipt(std::string mailbox, std::uint64_t seq, std::string from,
                                  std::string client_msg_id, CountCallback done) {
  batcher_.enqueue(ReceiptWantedOp{std::move(mailbox), seq, std::move(from), std::move(client_msg_id),
                                   std::move(done), {}});
}

// ---------------------------------------------------------------------------
// devices

Status PgMailboxStore::write_sign_outs(Batch& b) {
  if (b.sign_out_user.empty()) return Status::ok();
  pg::Params p;
  p.text_array(b.sign_out_user).text_array(b.sign_out_device).i64(b.now_ms);
  if (!exec(b, pg_detail::kWriteSignOuts, p)) return b.failed;
  b.note_wrote();
  b.sign_out_user.clear();
  b.sign_out_device.clear();
  return Status::ok();
}

Status PgMailboxStore::devices_of(Batch& b, const std::string& user, std::vector<Device>& out) {
  if (!write_sign_outs(b)) return b.failed;
  pg::Params p;
  p.text(user);
  auto r = exec(b, kDevicesOf, p);
  if (!r) return b.failed;
  parse_devices(*r, out);
  return Status::ok();
}

std::uint32_t PgMailboxStore::sessions_of(const std::string& user, const std::string& device) const {
  std::lock_guard lock(online_mu_);
  auto u = online_.find(user);
  if (u == online_.end()) return 0;
  auto d = u->second.find(device);
  return d == u->second.end() ? 0 : d->second;
}

std::vector<std::string> PgMailboxStore::active_devices(Batch& b, const std::string& user,
                                                        const std::vector<Device>& devs) const {
  std::vector<std::string> out;
  for (const auto& d : devs)
    if (d.capable && (sessions_of(user, d.name) > 0 || b.now_ms - d.last_seen_ms < opts_.device_idle_ms))
      out.push_back(d.name);
  return out;
}

void PgMailboxStore::end_refused_sessions(const std::vector<WriteRequest>& requests) {
  std::lock_guard lock(online_mu_);
  end_refused_sign_outs(online_, requests);
}

void PgMailboxStore::undo_sessions(Batch& b, bool keep_ended) {
  std::lock_guard lock(online_mu_);
  storage::undo_sessions(online_, b.session_deltas, keep_ended);
}

WriteOutcome PgMailboxStore::apply(Batch& b, DeviceOp& op) {
  if (!valid_mailbox(op.user) || op.device.size() > proto::kMaxDeviceBytes ||
      (op.kind != DeviceOp::Kind::kForget && op.device.empty()))
    return {Status::invalid_argument("device: bad user or device name"), {}, 0};
  if (op.kind == DeviceOp::Kind::kSignOut) {
    // No read and no statement of its own: its last_seen_ms is queued (the
    // user's lock was taken at the batch's start) and written before the
    // batch next reads devices, or with the COMMIT. A device forgotten
    // meanwhile has no row to update (the batch still counts as a write: it
    // cannot tell without the read this saves).
    {
      std::lock_guard lock(online_mu_);
      if (end_session(online_, op.user, op.device)) b.session_deltas.emplace_back(op.user, op.device, -1);
    }
    b.sign_out_user.push_back(op.user);
    b.sign_out_device.push_back(op.device);
    return {Status::ok(), {}, 0};
  }
  if (!flush(b) || !write_sign_outs(b)) return {};
  std::vector<Device> devs;
  {
    pg::Params user;
    user.text(op.user);
    auto r = ack_lock_and_read(b, {op.user}, {{&kDevicesOf, &user}});
    if (!r) return {};
    parse_devices(r->front(), devs);
  }
  auto dev = std::find_if(devs.begin(), devs.end(), [&](const Device& d) { return d.name == op.device; });
  const bool known = dev != devs.end();
  pg::Params p;
  p.text(op.user).text(op.device).i64(b.now_ms).boolean(op.capable);
  switch (op.kind) {
    case DeviceOp::Kind::kSignIn: {
      const bool named = op.device != proto::kLegacyDevice;
      const std::vector<std::string> active = active_devices(b, op.user, devs);
      const bool joins = std::find(active.begin(), active.end(), op.device) == active.end();
      if (named && op.capable && joins) {
        const auto named_active = static_cast<std::size_t>(std::count_if(
            active.begin(), active.end(), [](const std::string& d) { return d != proto::kLegacyDevice; }));
        if (named_active >= opts_.max_devices_per_user)
          return {Status::too_many_devices(fmt::format(
                      "{} has {} active devices, the most allowed; an operator can remove one", op.user,
                      named_active)),
                  {},
                  0};
      }
      if (!exec(b,
                "INSERT INTO devices VALUES ($1, $2, $3, $3, $4) ON CONFLICT (user_id, device) DO UPDATE "
                "SET last_seen_ms = EXCLUDED.last_seen_ms, capable = EXCLUDED.capable",
                p))
        return {};
      b.note_wrote();
      {
        std::lock_guard lock(online_mu_);
        ++online_[op.user][op.device];
      }
      b.session_deltas.emplace_back(op.user, op.device, +1);
      return {Status::ok(), {}, known ? 0u : 1u};
    }
    case DeviceOp::Kind::kSignOut:
      break;  // (above)
    case DeviceOp::Kind::kForget: {
      if (!known) return {Status::not_found(fmt::format("{} has no device '{}'", op.user, op.device)), {}, 0};
      if (!exec(b, "DELETE FROM devices WHERE user_id = $1 AND device = $2 AND $3::int8 IS NOT NULL AND $4 IS NOT NULL",
                p))
        return {};
      b.note_wrote();
      ++b.forgotten;
      std::uint64_t released = 0;
      if (!reconcile_user(b, op.user, op.device, released)) return {};
      return {Status::ok(), {}, released};
    }
  }
  return {};
}

// ---------------------------------------------------------------------------
// acks

WriteOutcome PgMailboxStore::apply(Batch& b, AckOp& op) {
  if (!valid_mailbox(op.mailbox) || op.seqs.empty() || op.device.size() > proto::kMaxDeviceBytes)
    return {Status::ok(), {}, 0};
  std::sort(op.seqs.begin(), op.seqs.end());
  op.seqs.erase(std::unique(op.seqs.begin(), op.seqs.end()), op.seqs.end());
  // Read ahead with the acks around it (read_ack_run), or now: the lock,
  // the devices, the records and their kept acks in one round trip.
  std::vector<pg::Rows> read;
  auto ahead = b.ack_reads.find(b.request);
  // (A client names only seqs it received, committed before this batch
  // began; any other is read in order, after the batch's own writes.)
  if (ahead != b.ack_reads.end() && op.seqs.back() >= b.min_assigned) {
    b.ack_reads.erase(ahead);
    ahead = b.ack_reads.end();
  }
  const bool deferred = ahead != b.ack_reads.end();
  if (deferred) {
    read = std::move(ahead->second);
    b.ack_reads.erase(ahead);
  } else {
    // (What the acks before it in its run deleted and kept is written first.)
    if (!write_ack_run(b) || !flush(b)) return {};
    std::vector<std::int64_t> seqs(op.seqs.begin(), op.seqs.end());
    pg::Params user, p;
    user.text(op.mailbox);
    p.text(op.mailbox).i64_array(seqs);
    auto r = ack_lock_and_read(b, {op.mailbox}, {{&kDevicesOf, &user}, {&kAckRecords, &p}, {&kAckKept, &p}});
    if (!r) return {};
    read = std::move(*r);
  }
  std::vector<Device> devs;
  parse_devices(read[0], devs);
  const pg::Rows* recs = &read[1];
  const pg::Rows* kept = &read[2];
  if (std::none_of(devs.begin(), devs.end(), [&](const Device& d) { return d.name == op.device; })) {
    // Its sign-in found the disk too full to record it: recorded now, not
    // capable (so it holds nothing back).
    pg::Params d;
    d.text(op.mailbox).text(op.device).i64(b.now_ms);
    if (!exec(b, "INSERT INTO devices VALUES ($1, $2, $3, $3, false) ON CONFLICT DO NOTHING", d)) return {};
    devs.push_back({op.device, b.now_ms, b.now_ms, false});
  }
  const std::vector<std::string> active = active_devices(b, op.mailbox, devs);
  std::map<std::uint64_t, std::vector<std::string>> acked_by;  // "" = the marker
  for (int i = 0; i < kept->size(); ++i)
    acked_by[static_cast<std::uint64_t>(kept->i64(i, 0))].emplace_back(kept->str(i, 1));

  std::uint64_t acked_here = 0;
  std::vector<Record> doomed;
  std::vector<std::int64_t> keep_seq;
  std::vector<std::string> keep_device;
  std::vector<std::pair<std::string, ReceiptRecord>> receipts;
  for (int i = 0; i < recs->size(); ++i) {
    Record rec;
    rec.seq = static_cast<std::uint64_t>(recs->i64(i, 0));
    rec.bytes = recs->i64(i, 1);
    rec.want_receipt = recs->boolean(i, 2);
    rec.receipt = recs->i16(i, 5) != 0;
    std::vector<std::string> acked = acked_by[rec.seq];
    const bool marker = std::erase(acked, std::string()) > 0;
    ++acked_here;
    if (std::find(acked.begin(), acked.end(), op.device) != acked.end()) continue;  // acked before
    const bool first = acked.empty() && !marker;
    const bool last = std::all_of(active.begin(), active.end(), [&](const std::string& d) {
      return d == op.device || std::find(acked.begin(), acked.end(), d) != acked.end();
    });
    const bool receipt_now = first && !rec.receipt && rec.want_receipt;
    if (receipt_now)
      receipts.push_back({std::string(recs->str(i, 3)),
                          {rec.seq, std::string(recs->str(i, 4)), op.mailbox, proto::ReceiptState::kDelivered, b.now_ms}});
    if (last) {
      if (rec.receipt) ++b.receipts_acked;
      else ++b.acked;
      doomed.push_back(std::move(rec));
      continue;
    }
    keep_seq.push_back(static_cast<std::int64_t>(rec.seq));
    keep_device.push_back(op.device);
    if (receipt_now) {
      keep_seq.push_back(static_cast<std::int64_t>(rec.seq));
      keep_device.emplace_back();
    }
    ++b.acks_held;
  }
  if (deferred) {
    // Written (and counted) at the run's end.
    for (const Record& r : doomed) {
      b.ack_del_mailbox.push_back(op.mailbox);
      b.ack_del_seq.push_back(static_cast<std::int64_t>(r.seq));
    }
    for (std::size_t i = 0; i < keep_seq.size(); ++i) {
      b.ack_keep_mailbox.push_back(op.mailbox);
      b.ack_keep_seq.push_back(keep_seq[i]);
      b.ack_keep_device.push_back(keep_device[i]);
    }
    if (!doomed.empty() || !keep_seq.empty()) b.note_wrote();
  } else {
    if (!delete_records(b, op.mailbox, doomed)) return {};
    if (!keep_seq.empty()) {
      pg::Params k;
      k.text(op.mailbox).i64_array(keep_seq).text_array(keep_device);
      if (!exec(b,
                "INSERT INTO acks SELECT $1, s, d FROM unnest($2::int8[], $3::text[]) AS t(s, d) ON CONFLICT DO NOTHING",
                k))
        return {};
      b.note_wrote();
    }
  }
  if (!emit_receipts(b, std::move(receipts))) return {};
  return {Status::ok(), {}, acked_here};
}

Status PgMailboxStore::read_ack_run(Batch& b, std::vector<WriteRequest>& requests, std::size_t first) {
  // The first ack of each mailbox in the run (acks and appends, up to any
  // other request), whose user this batch locked at its start (later ones
  // of the same mailbox read after the earlier ones' writes: the path
  // without read-ahead). The run's appends before an ack are not visible
  // to these reads (their rows are queued for finish): an ack can name
  // only a seq its client received, so committed before this batch.
  std::vector<std::size_t> which;
  std::unordered_set<std::string> seen;
  std::vector<pg::Params> params;
  for (std::size_t i = first; i < requests.size(); ++i) {
    if (std::holds_alternative<AppendOp>(requests[i])) continue;
    auto* op = std::get_if<AckOp>(&requests[i]);
    if (!op) break;
    if (!valid_mailbox(op->mailbox) || op->seqs.empty() || op->device.size() > proto::kMaxDeviceBytes ||
        b.ack_locked.count(op->mailbox) == 0 || !seen.insert(op->mailbox).second)
      continue;
    which.push_back(i);
  }
  if (which.empty()) return Status::ok();
  if (!write_sign_outs(b)) return b.failed;  // (the reads below see them)
  params.reserve(2 * which.size());
  std::vector<pg::Connection::Step> steps;
  steps.reserve(3 * which.size());
  for (std::size_t i : which) {
    auto& op = std::get<AckOp>(requests[i]);
    std::vector<std::int64_t> seqs(op.seqs.begin(), op.seqs.end());
    params.emplace_back().text(op.mailbox);
    steps.push_back({&kDevicesOf, &params.back()});
    params.emplace_back().text(op.mailbox).i64_array(seqs);
    steps.push_back({&kAckRecords, &params.back()});
    steps.push_back({&kAckKept, &params.back()});
  }
  auto r = writer_conn_->pipeline(steps);
  if (!r) {
    b.sqlstate = writer_conn_->sqlstate();
    if (b.failed.is_ok()) b.failed = r.status();
    return b.failed;
  }
  for (std::size_t k = 0; k < which.size(); ++k) {
    std::vector<pg::Rows> rows;
    for (std::size_t j = 0; j < 3; ++j) rows.push_back(std::move((*r)[3 * k + j]));
    b.ack_reads[which[k]] = std::move(rows);
  }
  return Status::ok();
}

Status PgMailboxStore::write_ack_run(Batch& b) {
  b.ack_reads.clear();
  if (b.ack_del_seq.empty() && b.ack_keep_seq.empty()) return Status::ok();
  static const std::string kDelete =
      "WITH k AS (SELECT * FROM unnest($1::text[], $2::int8[]) AS k(m, s)), "
      "d AS (DELETE FROM messages USING k WHERE mailbox = k.m AND seq = k.s "
      "RETURNING mailbox, seq, octet_length(body)::int8, receipt_state), "
      "a AS (DELETE FROM acks USING k WHERE mailbox = k.m AND seq = k.s RETURNING 1) "
      "SELECT * FROM d";
  static const std::string kKeep =
      "INSERT INTO acks SELECT * FROM unnest($1::text[], $2::int8[], $3::text[]) ON CONFLICT DO NOTHING";
  pg::Params del, keep;
  del.text_array(b.ack_del_mailbox).i64_array(b.ack_del_seq);
  keep.text_array(b.ack_keep_mailbox).i64_array(b.ack_keep_seq).text_array(b.ack_keep_device);
  std::vector<pg::Connection::Step> steps;
  if (!b.ack_del_seq.empty()) steps.push_back({&kDelete, &del});
  if (!b.ack_keep_seq.empty()) steps.push_back({&kKeep, &keep});
  auto r = writer_conn_->pipeline(steps);
  b.ack_del_mailbox.clear();
  b.ack_del_seq.clear();
  b.ack_keep_mailbox.clear();
  b.ack_keep_seq.clear();
  b.ack_keep_device.clear();
  if (!r) {
    b.sqlstate = writer_conn_->sqlstate();
    if (b.failed.is_ok()) b.failed = r.status();
    return b.failed;
  }
  if (!steps.empty() && steps.front().sql == &kDelete) {
    const pg::Rows& gone = r->front();
    for (int i = 0; i < gone.size(); ++i)
      b.removed(std::string(gone.str(i, 0)), static_cast<std::uint64_t>(gone.i64(i, 1)), gone.i16(i, 3) != 0,
                gone.i64(i, 2));
  }
  return Status::ok();
}

WriteOutcome PgMailboxStore::apply(Batch& b, ReconcileOp& op) {
  std::uint64_t released = 0;
  std::vector<std::string> users = op.users;
  if (users.empty()) {
    if (!flush(b)) return {};
    auto r = exec(b, "SELECT DISTINCT mailbox FROM acks WHERE device <> ''", pg::Params());
    if (!r) return {};
    for (int i = 0; i < r->size(); ++i) users.emplace_back(r->str(i, 0));
  }
  for (const auto& user : users)
    if (valid_mailbox(user) && !reconcile_user(b, user, std::string(), released)) return {};
  return {Status::ok(), {}, released};
}

Status PgMailboxStore::reconcile_user(Batch& b, const std::string& user, const std::string& forgotten,
                                      std::uint64_t& released) {
  if (!flush(b) || !ack_lock(b, {user})) return b.failed;
  std::vector<Device> devs;
  if (!devices_of(b, user, devs)) return b.failed;
  const std::vector<std::string> active = active_devices(b, user, devs);
  pg::Params p;
  p.text(user).text(forgotten);
  if (!forgotten.empty()) {
    if (!exec(b, "DELETE FROM acks WHERE mailbox = $1 AND device = $2", p)) return b.failed;
    b.note_wrote();
  }
  auto kept = exec(b, "SELECT seq, device FROM acks WHERE mailbox = $1 AND device <> '' AND $2 IS NOT NULL ORDER BY seq",
                   p);
  if (!kept) return b.failed;
  std::map<std::uint64_t, std::vector<std::string>> acked_by;
  for (int i = 0; i < kept->size(); ++i)
    acked_by[static_cast<std::uint64_t>(kept->i64(i, 0))].emplace_back(kept->str(i, 1));
  std::vector<Record> doomed;
  for (const auto& entry : acked_by) {
    // (Not a structured binding: clang 14, the fuzz build's compiler, cannot
    // capture one in a lambda.)
    const std::vector<std::string>& acked = entry.second;
    const bool all = std::all_of(active.begin(), active.end(), [&](const std::string& d) {
      return std::find(acked.begin(), acked.end(), d) != acked.end();
    });
    if (!all) continue;
    Record rec;
    rec.seq = entry.first;
    doomed.push_back(rec);
  }
  // (Kept acks of a record gone already go too: delete_records deletes
  // the acks of every seq it is given.)
  std::unordered_set<std::uint64_t> deleted;
  if (!delete_records(b, user, doomed, &deleted)) return b.failed;
  released += deleted.size();
  b.released += deleted.size();
  return Status::ok();
}

// ---------------------------------------------------------------------------
// receipts

Status PgMailboxStore::emit_receipts(Batch& b, std::vector<std::pair<std::string, ReceiptRecord>> receipts) {
  if (receipts.empty()) return Status::ok();
  std::vector<std::string> senders;
  for (const auto& [sender, r] : receipts)
    if (valid_mailbox(sender)) senders.push_back(sender);
  if (!lock_mailboxes(b, std::move(senders))) return b.failed;
  b.receipts_to_come = receipts.size();
  for (auto& [sender, r] : receipts) {
    if (!emit_receipt(b, sender, std::move(r))) return b.failed;
    if (b.receipts_to_come > 0) --b.receipts_to_come;
  }
  b.receipts_to_come = 0;
  return Status::ok();
}

Status PgMailboxStore::emit_receipt(Batch& b, std::string_view sender, ReceiptRecord r) {
  constexpr std::size_t kMaxShortField = 255;
  if (!valid_mailbox(sender) || r.to.size() > kMaxShortField || r.client_msg_id.size() > kMaxShortField)
    return Status::ok();  // (cannot happen: the message was stored with them)
  const std::string mailbox(sender);
  if (!lock_mailboxes(b, {mailbox})) return b.failed;
  std::uint64_t seq = 0;
  if (!take_seq(b, seq)) return b.failed;
  Totals& t = b.totals(mailbox);
  auto& rows = b.rows;
  rows.mailbox.push_back(mailbox);
  rows.seq.push_back(static_cast<std::int64_t>(seq));
  const std::int64_t mseq = t.next_mseq++;
  rows.mseq.push_back(mseq);
  rows.sent_at_ms.push_back(r.at_ms);
  rows.kind.push_back(0);
  rows.from.emplace_back();
  rows.reason.emplace_back();
  rows.body.emplace_back();
  rows.client_msg_id.push_back(r.client_msg_id);
  rows.want_receipt.push_back(false);
  rows.receipt_state.push_back(static_cast<std::int16_t>(r.state));
  rows.receipt_msg_seq.push_back(static_cast<std::int64_t>(r.msg_seq));
  rows.receipt_to.push_back(r.to);
  t.receipts += 1;
  t.dirty = true;
  ++b.receipts_by_state[static_cast<std::size_t>(r.state) & 3];
  b.receipts.push_back({mailbox, seq, std::move(r), static_cast<std::uint64_t>(mseq)});
  b.receipt_request.push_back(b.request);
  return Status::ok();
}

// A message whose `sent` says stored after all (mailbox_store.h).
WriteOutcome PgMailboxStore::apply(Batch& b, ReceiptWantedOp& op) {
  if (!valid_mailbox(op.mailbox)) return {Status::ok(), {}, 0};
  if (!flush(b) || !ack_lock(b, {op.mailbox})) return {};
  const ReceiptRecord delivered{op.seq, op.client_msg_id, op.mailbox, proto::ReceiptState::kDelivered, b.now_ms};
  pg::Params p;
  p.text(op.mailbox).i64(static_cast<std::int64_t>(op.seq));
  auto rec = exec(b,
                  "SELECT m.want_receipt, m.receipt_state, "
                  "ARRAY(SELECT a.device FROM acks a WHERE a.mailbox = m.mailbox AND a.seq = m.seq) "
                  "FROM messages m WHERE m.mailbox = $1 AND m.seq = $2",
                  p);
  if (!rec) return {};
  if (rec->size() == 0) {
    // Gone already: every active device acked it first.
    if (!emit_receipt(b, op.from, delivered)) return {};
    return {Status::ok(), {}, 1};
  }
  if (rec->i16(0, 1) != 0) return {Status::ok(), {}, 0};
  if (rec->boolean(0, 0)) return {Status::ok(), {}, 1};  // asked already
  // The kept acks' devices, as a binary text[] (array_send): header, then
  // (length, bytes) per element; only whether any and whether the marker.
  const std::string_view arr = rec->str(0, 2);
  bool any = false, marker = false;
  if (arr.size() >= 20) {
    std::size_t at = 20;
    while (at + 4 <= arr.size()) {
      const auto len = (static_cast<std::uint32_t>(static_cast<unsigned char>(arr[at])) << 24) |
                       (static_cast<std::uint32_t>(static_cast<unsigned char>(arr[at + 1])) << 16) |
                       (static_cast<std::uint32_t>(static_cast<unsigned char>(arr[at + 2])) << 8) |
                       static_cast<std::uint32_t>(static_cast<unsigned char>(arr[at + 3]));
      if (len == 0) marker = true;
      else any = true;
      at += 4 + len;
    }
  }
  if (marker) return {Status::ok(), {}, 1};
  if (any) {
    // A device acked it already: the receipt now, with its marker.
    if (!emit_receipt(b, op.from, delivered)) return {};
    if (!exec(b, "INSERT INTO acks VALUES ($1, $2, '') ON CONFLICT DO NOTHING", p)) return {};
    return {Status::ok(), {}, 1};
  }
  p.text(op.client_msg_id);
  if (!exec(b, "UPDATE messages SET want_receipt = true, client_msg_id = $3 WHERE mailbox = $1 AND seq = $2", p))
    return {};
  b.note_wrote();
  return {Status::ok(), {}, 1};
}

WriteBatcher::Followers PgMailboxStore::finish_receipts(Batch& b, bool ok) {
  WriteBatcher::Followers then;
  if (!ok || !receipt_listener_) return then;
  for (std::size_t i = 0; i < b.receipts.size();) {
    const std::size_t request = b.receipt_request[i];
    std::vector<NewReceipt> fresh;
    for (; i < b.receipts.size() && b.receipt_request[i] == request; ++i)
      if (b.receipts_gone.count(b.receipts[i].seq) == 0) fresh.push_back(std::move(b.receipts[i]));
    if (!fresh.empty()) then.emplace_back(request, [this, fresh = std::move(fresh)] { receipt_listener_(fresh); });
  }
  return then;
}

}  // namespace oms::storage
