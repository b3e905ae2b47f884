// RocksDatabase: options, open, column families, the format version check,
// checkpoints; it owns the rocksdb::DB and outlives the two stores it hands
// out (destroyed first: the mailbox store completes its queue, then the
// handles and the database close).
#include "storage/rocks_database.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/write_batch.h>

#include "storage/keys.h"
#include "storage/rocks_mailbox_store.h"
#include "storage/rocks_policy_store.h"
#include "storage/rocks_status.h"
#include "storage/wal_watch.h"

namespace oms::storage {
namespace {

// Bounds the RocksDB info LOG files kept in the data directory.
constexpr std::size_t kMaxInfoLogBytes = 16u << 20;
constexpr std::size_t kInfoLogsKept = 4;
// WAL files are kept until every column family that has data in them is
// flushed; rarely written families (policies) would pin them for ever.
constexpr std::uint64_t kMaxTotalWalBytes = 256u << 20;
// Acked messages leave tombstones at the head of their mailbox's range, which
// every read from the start of the mailbox has to step over: compact an SST
// file of the messages family as soon as any window of this many entries
// holds this many deletions.
constexpr std::size_t kTombstoneWindow = 4096;
constexpr std::size_t kTombstoneTrigger = 1024;
// Share of the write buffer spent on the memtable bloom filters.
constexpr double kMemtableBloomRatio = 0.05;

// The mailbox part of a message key (short-bytes length + mailbox id): keys
// of one mailbox share it and are inserted in increasing seq order.
class MailboxPrefix final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "oms.MailboxPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), 1 + static_cast<unsigned char>(key[0]));
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return !key.empty() && key.size() >= 1u + static_cast<unsigned char>(key[0]);
  }
};

class RocksDatabase final : public Store {
 public:
  RocksDatabase() = default;
  ~RocksDatabase() override;

  Status open(const StoreOptions& opts);

  MailboxStore& mailboxes() override { return *mailboxes_; }
  PolicyStore& policies() override { return *policies_; }
  Status checkpoint(const std::string& dir) const override;

 private:
  Status open_db(const StoreOptions& opts);
  Status check_format_version(const std::string& path);
  Status upgrade(const std::string& path);
  rocksdb::Status keep_memtable_entry();

  std::shared_ptr<WalWatch> wal_watch_ = std::make_shared<WalWatch>();
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* cf_default_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_messages_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_meta_ = nullptr;  // empty since format 3 (upgrade() empties it)
  rocksdb::ColumnFamilyHandle* cf_dedup_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_policies_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_grants_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_im_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_receipts_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_acks_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_devices_ = nullptr;
  std::unique_ptr<MailboxStore> mailboxes_;
  std::unique_ptr<PolicyStore> policies_;
};

Status RocksDatabase::open(const StoreOptions& opts) {
  if (Status s = open_db(opts); !s) return s;
  if (Status s = check_format_version(opts.path); !s) return s;
  auto mailboxes = RocksMailboxStore::open(
      db_, {cf_default_, cf_messages_, cf_dedup_, cf_receipts_, cf_acks_, cf_devices_},
      wal_watch_.get(), opts);
  if (!mailboxes) return mailboxes.status();
  mailboxes_ = std::move(mailboxes).value();

  // (RocksDB has just flushed what it recovered: every memtable is empty.)
  wal_watch_->set_keep_entry([this] { return keep_memtable_entry(); });
  {
    std::lock_guard<std::mutex> lock(wal_watch_->write_mu());
    wal_watch_->prepare_write().PermitUncheckedError();  // (failing, it is tried again at the first write)
  }
  auto policies = open_rocks_policy_store(db_, {cf_policies_, cf_grants_, cf_im_}, wal_watch_.get());
  if (!policies) return policies.status();
  policies_ = std::move(policies).value();
  return Status::ok();
}

Status RocksDatabase::open_db(const StoreOptions& opts) {
  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.max_total_wal_size = kMaxTotalWalBytes;
  db_opts.max_log_file_size = kMaxInfoLogBytes;
  db_opts.keep_log_file_num = kInfoLogsKept;
  // One writer thread: nothing to gain from concurrent memtable inserts.
  db_opts.allow_concurrent_memtable_write = false;
  db_opts.listeners.push_back(wal_watch_);
  // Everything that matters is in the WAL; the memtable entry written
  // without it (keep_memtable_entry) must not make Close() flush, which
  // with a failed WAL would abort (wal_watch.h).
  db_opts.avoid_flush_during_shutdown = true;
  if (opts.env) db_opts.env = opts.env.get();
  // Compactions (RocksDB's LOW pool) yield the CPU to the foreground: the
  // writer and the I/O threads. They catch up whenever the load lets them
  // (and when they lag too far, RocksDB slows writes down); flushes (HIGH
  // pool) keep normal priority, as the writer stalls when they lag. (Their
  // disk I/O keeps its class: the idle class could starve them.)
  db_opts.env->LowerThreadPoolCPUPriority(rocksdb::Env::LOW);

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(opts.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));  // point Gets: ack, dedup
  rocksdb::ColumnFamilyOptions cf_opts;
  cf_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::vector<std::string> names;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(db_opts, opts.path, &names);
  if (!ls.ok()) names.clear();  // a new database
  for (std::string_view want : {keys::kCfDefault, keys::kCfMessages, keys::kCfMailboxMeta,
                                keys::kCfDedup, keys::kCfPolicies, keys::kCfGrants,
                                keys::kCfImConfig, keys::kCfReceipts, keys::kCfAcks, keys::kCfDevices})
    if (std::find(names.begin(), names.end(), want) == names.end()) names.emplace_back(want);
  rocksdb::ColumnFamilyOptions messages_opts = cf_opts;
  messages_opts.table_properties_collector_factories.push_back(
      rocksdb::NewCompactOnDeletionCollectorFactory(kTombstoneWindow, kTombstoneTrigger));
  // Appends arrive in seq order within a mailbox: the memtable keeps an
  // insert hint per mailbox prefix, so an append does not search the whole
  // skip list. Acks' point Gets and dedup misses hit a memtable bloom filter.
  messages_opts.memtable_insert_with_hint_prefix_extractor = std::make_shared<MailboxPrefix>();
  messages_opts.memtable_whole_key_filtering = true;
  messages_opts.memtable_prefix_bloom_size_ratio = kMemtableBloomRatio;
  rocksdb::ColumnFamilyOptions dedup_opts = cf_opts;
  dedup_opts.memtable_whole_key_filtering = true;
  dedup_opts.memtable_prefix_bloom_size_ratio = kMemtableBloomRatio;
  dedup_opts.memtable_insert_with_hint_prefix_extractor = std::make_shared<MailboxPrefix>();
  // Receipts are appended per mailbox like messages and acked like them.
  rocksdb::ColumnFamilyOptions receipts_opts = messages_opts;
  rocksdb::ColumnFamilyOptions acks_opts = cf_opts;
  acks_opts.table_properties_collector_factories.push_back(
      rocksdb::NewCompactOnDeletionCollectorFactory(kTombstoneWindow, kTombstoneTrigger));
  // Kept acks are read by point lookups (most miss): a memtable bloom filter too.
  acks_opts.memtable_whole_key_filtering = true;
  acks_opts.memtable_prefix_bloom_size_ratio = kMemtableBloomRatio;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names)
    descriptors.emplace_back(n, n == keys::kCfMessages      ? messages_opts
                                : n == keys::kCfDedup       ? dedup_opts
                                : n == keys::kCfReceipts    ? receipts_opts
                                : n == keys::kCfAcks        ? acks_opts
                                                            : cf_opts);

  rocksdb::Status s = rocksdb::DB::Open(db_opts, opts.path, descriptors, &handles_, &db_);
  if (!s.ok()) return from_rocks(s, fmt::format("opening store '{}'", opts.path));
  for (auto* h : handles_) {
    const std::string& n = h->GetName();
    if (n == keys::kCfDefault) cf_default_ = h;
    else if (n == keys::kCfMessages) cf_messages_ = h;
    else if (n == keys::kCfMailboxMeta) cf_meta_ = h;
    else if (n == keys::kCfDedup) cf_dedup_ = h;
    else if (n == keys::kCfPolicies) cf_policies_ = h;
    else if (n == keys::kCfGrants) cf_grants_ = h;
    else if (n == keys::kCfImConfig) cf_im_ = h;
    else if (n == keys::kCfReceipts) cf_receipts_ = h;
    else if (n == keys::kCfAcks) cf_acks_ = h;
    else if (n == keys::kCfDevices) cf_devices_ = h;
  }
  assert(cf_default_ && cf_messages_ && cf_meta_ && cf_dedup_ && cf_policies_ && cf_grants_ &&
         cf_im_ && cf_receipts_ && cf_acks_ && cf_devices_);
  return Status::ok();
}

// Writes the format version into a new database; refuses any other version.
Status RocksDatabase::check_format_version(const std::string& path) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_default_, keys::kFormatVersionKey, &value);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db_->Put(wo, cf_default_, keys::kFormatVersionKey,
                 keys::encode_format_version(keys::kFormatVersion));
    if (!s.ok()) return from_rocks(s, "writing the format version");
  } else if (!s.ok()) {
    return from_rocks(s, "reading the format version");
  } else {
    auto v = keys::decode_format_version(value);
    if (v && *v >= keys::kOldestUpgradable && *v < keys::kFormatVersion) return upgrade(path);
    if (!v || *v != keys::kFormatVersion)
      return Status::failed_precondition(fmt::format(
          "store '{}' has on-disk format version {}; this build reads versions {} to {}", path,
          v ? std::to_string(*v) : std::string("<unreadable>"), keys::kOldestUpgradable, keys::kFormatVersion));
  }
  return Status::ok();
}

// Version 1 or 2 → 3: the column families of version 2 exist already
// (open_db created them, empty, for a version-1 store); the mailbox meta
// records are deleted (version 3 counts the totals from the records at
// open: mailbox_totals.h), and the version moves to 3, in one synced batch.
// Message values stay as they are (version-1 values decode: no receipt).
// A crash before the batch leaves the old version, upgraded at next open.
// (An older omsd refuses a version-3 store: it would trust a meta it does
// not find.)
Status RocksDatabase::upgrade(const std::string& path) {
  rocksdb::WriteBatch wb;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_meta_));
    for (it->SeekToFirst(); it->Valid(); it->Next())
      if (rocksdb::Status s = wb.Delete(cf_meta_, it->key()); !s.ok()) return from_rocks(s, "upgrading the store");
    if (!it->status().ok())
      return from_rocks(it->status(), fmt::format("upgrading '{}': reading the mailbox meta", path));
  }
  if (rocksdb::Status s =
          wb.Put(cf_default_, keys::kFormatVersionKey, keys::encode_format_version(keys::kFormatVersion));
      !s.ok())
    return from_rocks(s, "upgrading the store");
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (rocksdb::Status s = db_->Write(wo, &wb); !s.ok()) return from_rocks(s, "upgrading the store");
  return Status::ok();
}

RocksDatabase::~RocksDatabase() {
  mailboxes_.reset();  // completes every queued request first
  policies_.reset();
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  db_->Close().PermitUncheckedError();
  delete db_;
  db_ = nullptr;
}

// Rewrites the format version record, unchanged and without the WAL, so that
// the default family's active memtable is not empty when the next write goes
// to the WAL: should that write fail, RocksDB's recovery has a memtable to
// flush and so moves to a new WAL (see wal_watch.h). A crash or a shutdown
// (which does not flush) before the next flush loses the rewrite, which
// changes nothing.
rocksdb::Status RocksDatabase::keep_memtable_entry() {
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  return db_->Put(wo, cf_default_, keys::kFormatVersionKey,
                  keys::encode_format_version(keys::kFormatVersion));
}

Status RocksDatabase::checkpoint(const std::string& dir) const {
  // Writes go on during a checkpoint: it takes no lock and flushes nothing
  // (log_size_for_flush = max), so no memtable is switched (a switch would
  // need write_mu(): wal_watch.h, and costs tens of milliseconds on a busy
  // disk). The SST files are hard-linked and the live WAL files copied up to
  // the size they had when RocksDB took the file list: consistent (every
  // write goes to the WAL; only keep_memtable_entry() does not, and it
  // changes nothing). Restoring replays that WAL.
  if (wal_watch_->wal_failed())
    return Status::io_error(
        "checkpoint: the write-ahead log failed and RocksDB has not moved to a new one yet");
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(db_, &raw);
  if (!s.ok()) return from_rocks(s, "creating a checkpoint");
  std::unique_ptr<rocksdb::Checkpoint> cp(raw);
  s = cp->CreateCheckpoint(dir, std::numeric_limits<std::uint64_t>::max());
  if (!s.ok()) return from_rocks(s, fmt::format("checkpoint into '{}'", dir));
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<Store>> open_rocks_database(StoreOptions options) {
  if (options.path.empty()) return Status::invalid_argument("store path is empty");
  auto db = std::make_unique<RocksDatabase>();
  if (Status s = db->open(options); !s) return s;  // ~RocksDatabase closes whatever was opened
  return std::unique_ptr<Store>(std::move(db));
}

}  // namespace oms::storage
