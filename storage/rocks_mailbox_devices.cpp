// Devices, acks kept per device, and receipts in the RocksDB MailboxStore
// (contract 4.1, 4.2; the rules: mailbox_store.h). Writer thread, except
// the public entry points (which only enqueue) and devices() (a read).
//
// An ack by device D of record s (a message or a receipt):
//   - the devices that acked s before are its kept acks ("acks" family,
//     read only when the mailbox's meta says it holds any: with one device
//     there never are any, so that case costs what v1 cost);
//   - if every active device of the user is D or has acked s, s is deleted
//     with its kept acks; otherwise D's ack is kept;
//   - the first ack of a message that wants a receipt writes the
//     `delivered` receipt into the sender's mailbox, in the same batch; when
//     the message stays, a marker ack (device "") records that the receipt
//     went out, so that forgetting the device that acked cannot make a
//     second one.
// Device tables are cached per user; open sessions are counted in memory.
// (The periodic reconcile's scan: rocks_mailbox_sweep.cpp; devices():
// rocks_mailbox_reads.cpp.)
#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <rocksdb/db.h>

#include "storage/keys.h"
#include "storage/rocks_mailbox_batch.h"
#include "storage/rocks_mailbox_store.h"
#include "storage/rocks_status.h"

namespace oms::storage {
namespace {

using rocks_detail::DeviceState;

std::string device_or_legacy(std::string device) {
  return device.empty() ? std::string(proto::kLegacyDevice) : std::move(device);
}

// A sign-in or sign-out writes the device's last_seen only when the one on
// disk is older than this (or something else changed): a client that
// reconnects in a loop costs no synced writes. After a restart last_seen
// may be this much older than it was (against devices.idle_seconds).
constexpr std::int64_t kLastSeenWriteMs = 60'000;

// Device tables kept in the writer's cache; beyond it, the tables of users
// without open sessions are dropped (and read again when needed).
constexpr std::size_t kMaxCachedDeviceTables = 65536;

}  // namespace

// ---------------------------------------------------------------------------
// entry points

void RocksMailboxStore::device_signed_in(std::string user, std::string device, bool capable,
                                         DeviceCallback done) {
  batcher_.enqueue(DeviceOp{DeviceOp::Kind::kSignIn, std::move(user), device_or_legacy(std::move(device)), capable,
                            std::move(done), {}});
}

void RocksMailboxStore::device_signed_out(std::string user, std::string device, CountCallback done) {
  batcher_.enqueue(DeviceOp{DeviceOp::Kind::kSignOut, std::move(user), device_or_legacy(std::move(device)), false,
                            {}, std::move(done)});
}

void RocksMailboxStore::forget_device(std::string user, std::string device, CountCallback done) {
  batcher_.enqueue(DeviceOp{DeviceOp::Kind::kForget, std::move(user), std::move(device), false, {}, std::move(done)});
}

// ---------------------------------------------------------------------------
// device tables

const RocksMailboxStore::UserDevices* RocksMailboxStore::devices_of(Batch& b, const std::string& user) {
  if (auto it = b.devices.find(user); it != b.devices.end()) return &it->second;
  if (auto it = writer_->device_cache.find(user); it != writer_->device_cache.end()) return &it->second;
  UserDevices loaded;
  const std::string prefix = keys::devices_prefix(user);
  const std::string end = keys::mailbox_range_end(user);
  const rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_.devices));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto key = keys::decode_device_key(it->key().ToStringView());
    auto value = keys::decode_device_value(it->value().ToStringView());
    if (!key || !value || key->user != user) continue;  // not ours (a longer user id's range)
    loaded.devices.push_back({std::string(key->device), *value, value->last_seen_ms});
  }
  if (!it->status().ok()) {
    b.failed = from_rocks(it->status(), "reading a user's devices");
    return nullptr;
  }
  return &writer_->device_cache.emplace(user, std::move(loaded)).first->second;
}

RocksMailboxStore::UserDevices* RocksMailboxStore::devices_to_change(Batch& b, const std::string& user) {
  if (auto it = b.devices.find(user); it != b.devices.end()) return &it->second;
  const UserDevices* committed = devices_of(b, user);
  if (!committed) return nullptr;
  return &b.devices.emplace(user, *committed).first->second;
}

std::uint32_t RocksMailboxStore::sessions_of(Batch&, const std::string& user, const std::string& device) const {
  std::lock_guard<std::mutex> lock(online_mu_);  // (the writer is the only writer: uncontended)
  auto u = online_.find(user);
  if (u == online_.end()) return 0;
  auto d = u->second.find(device);
  return d == u->second.end() ? 0 : d->second;
}

std::vector<std::string> RocksMailboxStore::active_devices(Batch& b, const std::string& user,
                                                           const UserDevices& devs) const {
  std::vector<std::string> out;
  for (const auto& d : devs.devices) {
    if (!d.value.capable) continue;
    if (sessions_of(b, user, d.name) > 0 || b.now_ms - d.value.last_seen_ms < opts_.device_idle_ms)
      out.push_back(d.name);
  }
  return out;
}

// ---------------------------------------------------------------------------
// records and kept acks

bool RocksMailboxStore::acked_by(Batch& b, const std::string& mailbox, std::uint64_t seq, const StagedMeta& meta,
                                 std::vector<std::string>& devices, bool& marker) {
  devices.clear();
  marker = false;
  const auto overlay = b.acks.find(seq);
  if (meta.meta.held == 0 && overlay == b.acks.end()) return true;
  if (meta.meta.held > 0) {
    // Point lookups of the marker and of every device in the table (a
    // device that acks is in it: apply(AckOp)), not a scan: a scan's cost
    // grows with the tombstones and files the acks family collects in a
    // long multi-device drain; a lookup's does not (bloom filters).
    const UserDevices* devs = devices_of(b, mailbox);
    if (!devs) return false;
    auto& names = b.ack_lookup_names;
    names.clear();
    names.emplace_back();  // the marker
    for (const auto& d : devs->devices) names.push_back(d.name);
    auto& keys = b.ack_lookup_keys;
    keys.resize(names.size());
    std::vector<rocksdb::Slice> slices(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
      keys[i] = keys::ack_key(mailbox, seq, names[i]);
      slices[i] = keys[i];
    }
    std::vector<rocksdb::PinnableSlice> values(names.size());
    std::vector<rocksdb::Status> found(names.size());
    db_->MultiGet(rocksdb::ReadOptions(), cfs_.acks, names.size(), slices.data(), values.data(), found.data(),
                  /*sorted_input=*/false);
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (found[i].IsNotFound()) continue;
      if (!found[i].ok()) {
        b.failed = from_rocks(found[i], "reading kept acks");
        return false;
      }
      if (i == 0) marker = true;
      else devices.push_back(names[i]);
    }
  }
  if (overlay != b.acks.end()) b.overlay_acks(seq, devices, marker);
  return true;
}

void rocks_detail::Batch::overlay_acks(std::uint64_t seq, std::vector<std::string>& devices, bool& marker) const {
  auto overlay = acks.find(seq);
  if (overlay == acks.end()) return;
  for (const auto& [device, written] : overlay->second) {
    if (device.empty()) {
      marker = written;
      continue;
    }
    auto at = std::find(devices.begin(), devices.end(), device);
    if (written && at == devices.end()) devices.push_back(device);
    if (!written && at != devices.end()) devices.erase(at);
  }
}

std::size_t RocksMailboxStore::Prefetch::index(std::uint64_t seq) const {
  auto at = std::lower_bound(seqs.begin(), seqs.end(), seq);
  return at != seqs.end() && *at == seq ? static_cast<std::size_t>(at - seqs.begin()) : kNone;
}

bool RocksMailboxStore::find_record(Batch& b, const std::string& mailbox, std::uint64_t seq, Record& out,
                                    const Prefetch* pre) {
  out = Record{};
  out.seq = seq;
  if (auto in = b.messages.find(seq); in != b.messages.end()) {
    const InBatch& ib = in->second;
    if (!ib.mailbox) return false;  // deleted in this batch
    auto here = b.touched.find(mailbox);
    if (here == b.touched.end() || &here->second != ib.mailbox) return false;  // another mailbox's
    if (ib.append) {
      out.bytes = ib.bytes;
      out.want_receipt = ib.append->want_receipt;
      out.at_ms = b.now_ms;
      out.from = ib.append->from;
      out.client_msg_id = ib.append->client_msg_id;
    } else {
      out.receipt = true;
      out.at_ms = b.now_ms;
    }
    return true;
  }
  std::string value;
  rocksdb::Status s;
  std::string_view found;
  if (const std::size_t i = pre ? pre->index(seq) : Prefetch::kNone; i != Prefetch::kNone) {
    s = pre->found[i];
    if (s.ok()) found = pre->values[i].ToStringView();
  } else {
    s = db_->Get(rocksdb::ReadOptions(), cfs_.messages, keys::message_key(mailbox, seq), &value);
    found = value;
  }
  if (s.ok()) {
    if (auto m = keys::decode_message_value(found)) {
      out.bytes = m->body.size();
      out.at_ms = m->sent_at_ms;
      if (m->want_receipt) {  // (the strings only when a receipt needs them)
        out.want_receipt = true;
        out.from = std::string(m->from);
        out.client_msg_id = std::string(m->client_msg_id);
      }
    }
    return true;
  }
  if (!s.IsNotFound()) {
    b.failed = from_rocks(s, "reading a message to ack");
    return false;
  }
  s = db_->Get(rocksdb::ReadOptions(), cfs_.receipts, keys::receipt_key(mailbox, seq), &value);
  if (s.ok()) {
    out.receipt = true;
    if (auto r = keys::decode_receipt_value(value)) out.at_ms = r->at_ms;
    return true;
  }
  if (!s.IsNotFound()) b.failed = from_rocks(s, "reading a receipt to ack");
  return false;
}

bool RocksMailboxStore::delete_record(Batch& b, const std::string& mailbox, StagedMeta& meta, const Record& rec,
                                      const std::vector<std::string>& acked, bool marker) {
  const std::string key = keys::message_key(mailbox, rec.seq);
  rocksdb::Status s = b.wb.Delete(rec.receipt ? cfs_.receipts : cfs_.messages, key);
  for (const auto& d : acked) {
    if (!s.ok()) break;
    s = b.wb.Delete(cfs_.acks, keys::ack_key(mailbox, rec.seq, d));
    b.note_ack(mailbox, rec.seq, d, false);
  }
  if (s.ok() && marker) {
    s = b.wb.Delete(cfs_.acks, keys::ack_key(mailbox, rec.seq, ""));
    b.note_ack(mailbox, rec.seq, std::string(), false);
  }
  if (!s.ok()) {
    b.failed = from_rocks(s, "building the batch");
    return false;
  }
  b.messages.insert_or_assign(rec.seq, InBatch{});
  const std::uint64_t dropped_acks = acked.size() + (marker ? 1 : 0);
  meta.meta.held -= std::min(meta.meta.held, dropped_acks);
  if (rec.receipt) {
    meta.meta.receipts -= std::min<std::uint64_t>(meta.meta.receipts, 1);
  } else {
    meta.meta.count -= std::min<std::uint64_t>(meta.meta.count, 1);
    meta.meta.bytes -= std::min(meta.meta.bytes, rec.bytes);
    b.delta_messages -= 1;
    b.delta_bytes -= static_cast<std::int64_t>(rec.bytes);
  }
  meta.dirty = true;
  return true;
}

bool RocksMailboxStore::keep_ack(Batch& b, const std::string& mailbox, std::uint64_t seq, const std::string& device,
                                 StagedMeta& meta) {
  if (rocksdb::Status s = b.wb.Put(cfs_.acks, keys::ack_key(mailbox, seq, device), rocksdb::Slice()); !s.ok()) {
    b.failed = from_rocks(s, "building the batch");
    return false;
  }
  b.note_ack(mailbox, seq, device, true);
  meta.meta.held += 1;
  meta.dirty = true;
  return true;
}

// ---------------------------------------------------------------------------
// the writer's requests

WriteOutcome RocksMailboxStore::apply(Batch& b, AckOp& op) {
  if (!valid_mailbox(op.mailbox) || op.seqs.empty() || op.device.size() > proto::kMaxDeviceBytes)
    return {Status::ok(), {}, 0};
  const UserDevices* devs = devices_of(b, op.mailbox);
  if (!devs) return {};
  if (!devs->has(op.device)) {
    // Its sign-in found the disk too full to record it: recorded now, not
    // capable (so it holds nothing back, as then), so that its kept acks
    // are found (acked_by looks up the table's names).
    if (!add_device(b, op.mailbox, op.device, /*capable=*/false)) return {};
    devs = devices_of(b, op.mailbox);
    if (!devs) return {};
  }
  const std::vector<std::string> active = active_devices(b, op.mailbox, *devs);
  StagedMeta* meta = &staged_meta(b, op.mailbox);
  std::sort(op.seqs.begin(), op.seqs.end());
  op.seqs.erase(std::unique(op.seqs.begin(), op.seqs.end()), op.seqs.end());
  // The acked messages this batch has not touched, read in one walk of the
  // mailbox's range: keys of one mailbox sort by seq, and an ack's ids are
  // mostly consecutive, so one Seek and a few Next()s find them all (a
  // point lookup per id costs a whole skip-list search each).
  Prefetch pre;
  for (std::uint64_t seq : op.seqs)
    if (b.messages.find(seq) == b.messages.end()) pre.seqs.push_back(seq);
  // One id (a live chat's ack): find_record's own point lookup, usually
  // answered by the memtable, where the walk's iterator would also position
  // itself in every SST level and L0 file (after a burst and its drain, the
  // writer's CPU at half-load chat fell 8 %: load-tests/PERFORMANCE.md).
  if (pre.seqs.size() == 1) pre.seqs.clear();
  if (!pre.seqs.empty() && !prefetch_messages(b, op.mailbox, pre)) return {};
  std::uint64_t acked_here = 0;
  Record rec;
  std::vector<std::string> acked;
  for (std::uint64_t seq : op.seqs) {
    if (!find_record(b, op.mailbox, seq, rec, &pre)) {
      if (!b.failed.is_ok()) return {};
      continue;  // another mailbox's id, or gone already
    }
    bool marker = false;
    if (!acked_by(b, op.mailbox, seq, *meta, acked, marker)) return {};
    ++acked_here;
    if (std::find(acked.begin(), acked.end(), op.device) != acked.end()) continue;  // acked before
    const bool first = acked.empty() && !marker;
    const bool last = std::all_of(active.begin(), active.end(), [&](const std::string& d) {
      return d == op.device || std::find(acked.begin(), acked.end(), d) != acked.end();
    });
    if (first && !rec.receipt && rec.want_receipt &&
        !emit_receipt(b, rec.from, {seq, rec.client_msg_id, op.mailbox, proto::ReceiptState::kDelivered, b.now_ms}))
      return {};
    if (last) {
      if (!delete_record(b, op.mailbox, *meta, rec, acked, marker)) return {};
      if (rec.receipt) ++b.receipts_acked;
      else ++b.acked;
      continue;
    }
    // Kept: this device's ack, and the marker for a receipt written now.
    if (!keep_ack(b, op.mailbox, seq, op.device, *meta)) return {};
    if (first && !rec.receipt && rec.want_receipt && !keep_ack(b, op.mailbox, seq, "", *meta)) return {};
    ++b.acks_held;
  }
  return {Status::ok(), {}, acked_here};
}

WriteOutcome RocksMailboxStore::apply(Batch& b, DeviceOp& op) {
  if (!valid_mailbox(op.user) || op.device.size() > proto::kMaxDeviceBytes ||
      (op.kind != DeviceOp::Kind::kForget && op.device.empty()))
    return {Status::invalid_argument("device: bad user or device name"), {}, 0};
  UserDevices* devs = devices_to_change(b, op.user);
  if (!devs) return {};
  DeviceState* dev = devs->find(op.device);
  const std::string key = keys::device_key(op.user, op.device);
  rocksdb::Status s;
  switch (op.kind) {
    case DeviceOp::Kind::kSignIn: {
      const bool named = op.device != proto::kLegacyDevice;
      const std::vector<std::string> active = active_devices(b, op.user, *devs);
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
      const bool first = dev == nullptr;
      if (first) {
        DeviceState fresh{op.device, {b.now_ms, b.now_ms, op.capable}, 0};
        auto at = std::lower_bound(devs->devices.begin(), devs->devices.end(), op.device,
                                   [](const DeviceState& d, const std::string& n) { return d.name < n; });
        dev = &*devs->devices.insert(at, std::move(fresh));
      }
      const bool changed = first || dev->value.capable != op.capable ||
                           b.now_ms - dev->written_last_seen_ms >= kLastSeenWriteMs;
      dev->value.last_seen_ms = b.now_ms;
      dev->value.capable = op.capable;
      if (changed) {
        s = b.wb.Put(cfs_.devices, key, keys::encode_device_value(dev->value));
        dev->written_last_seen_ms = b.now_ms;
      }
      if (s.ok()) {
        std::lock_guard<std::mutex> lock(online_mu_);
        ++online_[op.user][op.device];
        b.session_deltas.emplace_back(op.user, op.device, +1);
      }
      if (!s.ok()) break;
      return {Status::ok(), {}, first ? 1u : 0u};
    }
    case DeviceOp::Kind::kSignOut: {
      {
        std::lock_guard<std::mutex> lock(online_mu_);
        if (end_session(online_, op.user, op.device)) b.session_deltas.emplace_back(op.user, op.device, -1);
      }
      if (!dev) return {Status::ok(), {}, 0};  // forgotten meanwhile
      dev->value.last_seen_ms = b.now_ms;
      if (b.now_ms - dev->written_last_seen_ms >= kLastSeenWriteMs) {
        s = b.wb.Put(cfs_.devices, key, keys::encode_device_value(dev->value));
        dev->written_last_seen_ms = b.now_ms;
      }
      if (!s.ok()) break;
      return {Status::ok(), {}, 0};
    }
    case DeviceOp::Kind::kForget: {
      if (!dev) return {Status::not_found(fmt::format("{} has no device '{}'", op.user, op.device)), {}, 0};
      devs->devices.erase(devs->devices.begin() + (dev - devs->devices.data()));
      s = b.wb.Delete(cfs_.devices, key);
      if (!s.ok()) break;
      ++b.forgotten;
      std::uint64_t released = 0;
      if (!reconcile_user(b, op.user, op.device, released)) return {};
      return {Status::ok(), {}, released};
    }
  }
  b.failed = from_rocks(s, "building the batch");
  return {};
}

bool RocksMailboxStore::add_device(Batch& b, const std::string& user, const std::string& device, bool capable) {
  UserDevices* devs = devices_to_change(b, user);
  if (!devs) return false;
  DeviceState fresh{device, {b.now_ms, b.now_ms, capable}, b.now_ms};
  if (rocksdb::Status s = b.wb.Put(cfs_.devices, keys::device_key(user, device), keys::encode_device_value(fresh.value));
      !s.ok()) {
    b.failed = from_rocks(s, "building the batch");
    return false;
  }
  auto at = std::lower_bound(devs->devices.begin(), devs->devices.end(), device,
                             [](const DeviceState& d, const std::string& n) { return d.name < n; });
  devs->devices.insert(at, std::move(fresh));
  return true;
}

WriteOutcome RocksMailboxStore::apply(Batch& b, ReconcileOp& op) {
  std::uint64_t released = 0;
  for (const auto& user : op.users)
    if (valid_mailbox(user) && !reconcile_user(b, user, std::string(), released)) return {};
  return {Status::ok(), {}, released};
}

bool RocksMailboxStore::reconcile_user(Batch& b, const std::string& user, const std::string& forgotten,
                                       std::uint64_t& released) {
  const UserDevices* devs = devices_of(b, user);
  if (!devs) return false;
  const std::vector<std::string> active = active_devices(b, user, *devs);
  StagedMeta* meta = &staged_meta(b, user);
  // The kept acks by seq: read in one scan of the user's range, then as
  // this batch changed them (not a lookup per seq: a user can hold many).
  struct Held {
    std::uint64_t seq = 0;
    std::vector<std::string> devices;
    bool marker = false;
  };
  std::vector<Held> held;
  if (meta->meta.held > 0) {
    const std::string end = keys::mailbox_range_end(user);
    const rocksdb::Slice upper(end);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_.acks));
    for (it->Seek(keys::mailbox_range_begin(user)); it->Valid(); it->Next()) {
      auto key = keys::decode_ack_key(it->key().ToStringView());
      if (!key || key->mailbox != user) continue;
      if (held.empty() || held.back().seq != key->seq) held.push_back({key->seq, {}, false});
      if (key->device.empty()) held.back().marker = true;
      else held.back().devices.emplace_back(key->device);
    }
    if (!it->status().ok()) {
      b.failed = from_rocks(it->status(), "scanning kept acks");
      return false;
    }
  }
  if (auto here = b.acks_by_mailbox.find(user); here != b.acks_by_mailbox.end()) {
    const std::size_t scanned = held.size();
    for (std::uint64_t seq : here->second) {
      auto at = std::lower_bound(held.begin(), held.begin() + static_cast<std::ptrdiff_t>(scanned), seq,
                                 [](const Held& h, std::uint64_t s) { return h.seq < s; });
      if (at == held.begin() + static_cast<std::ptrdiff_t>(scanned) || at->seq != seq) held.push_back({seq, {}, false});
    }
    std::sort(held.begin(), held.end(), [](const Held& x, const Held& y) { return x.seq < y.seq; });
    for (auto& h : held) b.overlay_acks(h.seq, h.devices, h.marker);
  }

  Record rec;
  std::uint64_t deleted = 0;
  for (auto& h : held) {
    const std::uint64_t seq = h.seq;
    std::vector<std::string>& acked = h.devices;
    const bool marker = h.marker;
    if (!forgotten.empty()) {
      if (auto at = std::find(acked.begin(), acked.end(), forgotten); at != acked.end()) {
        if (rocksdb::Status s = b.wb.Delete(cfs_.acks, keys::ack_key(user, seq, forgotten)); !s.ok()) {
          b.failed = from_rocks(s, "building the batch");
          return false;
        }
        b.note_ack(user, seq, forgotten, false);
        meta->meta.held -= std::min<std::uint64_t>(meta->meta.held, 1);
        meta->dirty = true;
        acked.erase(at);
      }
    }
    if (acked.empty()) continue;  // nobody acked it: it waits for the active devices
    const bool all = std::all_of(active.begin(), active.end(), [&](const std::string& d) {
      return std::find(acked.begin(), acked.end(), d) != acked.end();
    });
    if (!all) continue;
    if (!find_record(b, user, seq, rec)) {
      if (!b.failed.is_ok()) return false;
      // Kept acks of a record that is gone already (expired meanwhile):
      // they go too.
      for (const auto& d : acked) {
        if (rocksdb::Status s = b.wb.Delete(cfs_.acks, keys::ack_key(user, seq, d)); !s.ok()) {
          b.failed = from_rocks(s, "building the batch");
          return false;
        }
        b.note_ack(user, seq, d, false);
      }
      meta->meta.held -= std::min<std::uint64_t>(meta->meta.held, acked.size());
      meta->dirty = true;
      continue;
    }
    if (!delete_record(b, user, *meta, rec, acked, marker)) return false;
    ++deleted;
  }
  released += deleted;
  b.released += deleted;
  return true;
}

void RocksMailboxStore::finish_devices(Batch& b, bool ok) {
  if (ok) {
    for (auto& [user, devs] : b.devices) writer_->device_cache.insert_or_assign(user, std::move(devs));
  } else {
    for (const auto& [user, devs] : b.devices) writer_->device_cache.erase(user);
    std::lock_guard<std::mutex> lock(online_mu_);
    undo_sessions(online_, b.session_deltas, true);  // (sign-outs stay: online_sessions.h)
  }
  if (writer_->device_cache.size() > kMaxCachedDeviceTables) {
    std::lock_guard<std::mutex> lock(online_mu_);
    for (auto it = writer_->device_cache.begin(); it != writer_->device_cache.end();)
      it = online_.count(it->first) ? std::next(it) : writer_->device_cache.erase(it);
  }
}

}  // namespace oms::storage
