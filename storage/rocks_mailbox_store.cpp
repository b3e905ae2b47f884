// MailboxStore on RocksDB: one database, one column family per kind of data
// (names and layouts in keys.h), one writer thread that group-commits.
//
// Writer thread (the only thread that writes messages, meta, dedup entries
// and last_seq):
//   1. waits for requests, takes everything queued (up to the batch caps);
//   2. applies them in order to one WriteBatch; each request sees the effects
//      of the earlier ones of the same batch through the batch's overlay (the
//      message and dedup keys it wrote or deleted, and the staged mailbox
//      meta, by seq and key), read before the database: quotas, dedup, acks
//      and purges are exact;
//   3. writes the batch once (sync per StoreOptions::sync), never while the
//      WAL has a failed write RocksDB has not moved past (wal_watch.h);
//   4. on success publishes the staged mailbox meta, counters and last_seq;
//      on failure drops the staged meta (touched mailboxes reload from disk)
//      and every request gets io_error;
//   5. hands the callbacks to the completion thread (oms-complete), which
//      runs them in request order, batch after batch, while the writer goes
//      on (at most two batches wait there; then the writer waits).
// Sequence numbers are taken from a writer-owned counter that never goes
// back, even when a batch fails, so a number is never handed out twice.
#include <pthread.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <variant>

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
#include "storage/mailbox_store.h"
#include "storage/policy_store.h"
#include "storage/rocks_policy_store.h"
#include "storage/wal_watch.h"

namespace oms::storage {
namespace {

// A batch also stops growing once its bodies reach this size, so that one
// batch's memory stays bounded whatever max_batch_requests is.
constexpr std::size_t kMaxBatchBodyBytes = 16u << 20;
constexpr std::int64_t kMsPerDay = 24LL * 3600 * 1000;
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

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

Status from_rocks(const rocksdb::Status& s, std::string_view what) {
  return Status::io_error(fmt::format("{}: {}", what, s.ToString()));
}

struct AppendOp {
  AppendRequest req;
  MailboxStore::AppendCallback done;
};
struct AckOp {
  std::string mailbox;
  std::vector<std::uint64_t> seqs;
  MailboxStore::CountCallback done;
};
struct PurgeOp {
  std::string mailbox;
  MailboxStore::CountCallback done;
};
struct SweepOp {
  MailboxStore::CountCallback done;
};
using Request = std::variant<AppendOp, AckOp, PurgeOp, SweepOp>;

// What one request of a batch comes to (before the batch write decides).
struct Outcome {
  Status status;
  AppendResult append;      // AppendOp
  std::uint64_t count = 0;  // the others
};

void complete(Request& r, const Outcome& o) {
  std::visit(
      [&](auto& op) {
        using Op = std::decay_t<decltype(op)>;
        if (!op.done) return;
        if constexpr (std::is_same_v<Op, AppendOp>) {
          if (o.status.is_ok())
            op.done(Result<AppendResult>(o.append));
          else
            op.done(Result<AppendResult>(o.status));
        } else {
          if (o.status.is_ok())
            op.done(Result<std::uint64_t>(o.count));
          else
            op.done(Result<std::uint64_t>(o.status));
        }
      },
      r);
}

std::size_t body_bytes(const Request& r) {
  if (const auto* a = std::get_if<AppendOp>(&r)) return a->req.body.size();
  return 0;
}

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

bool valid_mailbox(std::string_view mailbox) {
  return !mailbox.empty() && mailbox.size() <= keys::kMaxShortField;
}

}  // namespace

class MailboxStore::Impl {
 public:
  explicit Impl(StoreOptions options) : opts_(std::move(options)) {
    clock_ = opts_.clock ? opts_.clock : &SystemClock::instance();
    ttl_ms_ = opts_.ttl_ms_override > 0 ? opts_.ttl_ms_override
                                        : static_cast<std::int64_t>(opts_.ttl_days) * kMsPerDay;
  }
  ~Impl();

  Status open();
  void start_writer() {
    completer_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "oms-complete");
      run_completer();
    });
    writer_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "oms-writer");  // visible in top -H, perf
      run_writer();
    });
  }
  void enqueue(Request r);

  Result<std::vector<StoredMessage>> read(std::string_view mailbox, std::uint64_t after_seq,
                                          std::size_t limit) const;
  Result<MailboxSummary> summary(std::string_view mailbox, std::uint64_t after_seq,
                                 bool missed_only, std::vector<StoredMessage>* first_page,
                                 std::size_t page_limit) const;
  MailboxStats stats(std::string_view mailbox) const;
  Status checkpoint(const std::string& dir) const;

  StoreOptions opts_;
  const Clock* clock_ = nullptr;
  std::int64_t ttl_ms_ = 0;  // 0 = never expire
  StoreCounters counters_;
  std::atomic<std::uint64_t> last_seq_{0};  // highest committed seq
  std::atomic<bool> writable_{true};
  std::atomic<BatchObserver*> observer_{nullptr};
  std::shared_ptr<WalWatch> wal_watch_ = std::make_shared<WalWatch>();
  std::unique_ptr<PolicyStore> policies_;

 private:
  // Per-mailbox totals as the current batch leaves them.
  struct StagedMeta {
    keys::MailboxMeta meta;
    bool dirty = false;
  };
  // What a batch did to one message, by seq (a seq belongs to one mailbox).
  struct InBatch {
    const StagedMeta* mailbox = nullptr;  // appended here, to this mailbox; nullptr: deleted here
    std::uint64_t bytes = 0;              // body bytes, when appended here
  };
  // The state of one batch on the writer thread. One Batch is reused from
  // batch to batch (reset() keeps the containers' memory, up to a bound).
  struct Batch {
    rocksdb::WriteBatch wb;
    // The overlay: what this batch did that later requests of the same batch
    // must see before the database does. Messages by seq; dedup key -> the
    // value written here, empty when deleted here.
    std::unordered_map<std::uint64_t, InBatch> messages;
    std::unordered_set<std::string> odd_deleted;  // message keys that do not decode, deleted here
    std::unordered_map<std::string, std::string> dedup;
    std::unordered_map<std::string, StagedMeta> touched;
    std::int64_t now_ms = 0;
    bool assigned_seq = false;
    Status failed;  // a read failed: the whole batch fails
    std::uint64_t appended = 0, duplicates = 0, acked = 0, purged = 0, expired = 0;
    std::int64_t delta_messages = 0, delta_bytes = 0;

    void reset(std::int64_t now);
  };

  bool expired(std::int64_t sent_at_ms, std::int64_t now_ms) const {
    return ttl_ms_ > 0 && sent_at_ms < now_ms - ttl_ms_;
  }

  void close_db();
  void run_writer();
  void run_completer();
  // Hands a written batch's callbacks to the completer thread; waits while
  // kMaxBatchesToComplete are queued there already.
  void hand_off(std::vector<Request> requests, std::vector<Outcome> outcomes);
  void process(std::vector<Request>& requests);
  rocksdb::Status keep_memtable_entry();
  Outcome apply(Batch& b, AppendOp& op);
  Outcome apply(Batch& b, AckOp& op);
  Outcome apply(Batch& b, PurgeOp& op);
  Outcome apply(Batch& b, SweepOp& op);
  // The mailbox's meta as staged in `b` (loaded on first touch); nullptr
  // when it could not be read (then b.failed is set).
  StagedMeta* staged_meta(Batch& b, const std::string& mailbox);
  void sweep_dedup(Batch& b);

  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* cf_default_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_messages_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_meta_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_dedup_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_policies_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_grants_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_im_ = nullptr;

  // The request queue (bounded by opts_.max_queued_requests).
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> queue_;
  bool stopping_ = false;
  std::thread writer_;

  // Callbacks of written batches, run on their own thread in batch order
  // while the writer goes on with the next batch.
  struct Written {
    std::vector<Request> requests;
    std::vector<Outcome> outcomes;
  };
  std::mutex done_mu_;
  std::condition_variable done_cv_;  // a batch was queued, or one was taken
  std::deque<Written> done_;
  bool done_stopping_ = false;
  std::thread completer_;

  // Writer thread only.
  std::unordered_map<std::string, keys::MailboxMeta> meta_cache_;  // committed totals
  Batch batch_;
  std::uint64_t last_assigned_ = 0;  // never goes back, even after a failed batch
};

// ---------------------------------------------------------------------------
// open / close

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

Status MailboxStore::Impl::open() {
  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.max_total_wal_size = kMaxTotalWalBytes;
  db_opts.max_log_file_size = kMaxInfoLogBytes;
  db_opts.keep_log_file_num = kInfoLogsKept;
  // One writer thread: nothing to gain from concurrent memtable inserts, and
  // in-place updates (mailbox meta, below) need them off.
  db_opts.allow_concurrent_memtable_write = false;
  db_opts.listeners.push_back(wal_watch_);
  // Everything that matters is in the WAL; the memtable entry written
  // without it (keep_memtable_entry) must not make Close() flush, which
  // with a failed WAL would abort (wal_watch.h).
  db_opts.avoid_flush_during_shutdown = true;
  if (opts_.env) db_opts.env = opts_.env.get();
  // Compactions (RocksDB's LOW pool) yield the CPU to the foreground: the
  // writer and the I/O threads. They catch up whenever the load lets them
  // (and when they lag too far, RocksDB slows writes down); flushes (HIGH
  // pool) keep normal priority, as the writer stalls when they lag. (Their
  // disk I/O keeps its class: the idle class could starve them.)
  db_opts.env->LowerThreadPoolCPUPriority(rocksdb::Env::LOW);

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(opts_.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));  // point Gets: ack, dedup
  rocksdb::ColumnFamilyOptions cf_opts;
  cf_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::vector<std::string> names;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(db_opts, opts_.path, &names);
  if (!ls.ok()) names.clear();  // a new database
  for (std::string_view want : {keys::kCfDefault, keys::kCfMessages, keys::kCfMailboxMeta,
                                keys::kCfDedup, keys::kCfPolicies, keys::kCfGrants,
                                keys::kCfImConfig})
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
  // Mailbox meta: a few fixed-size records rewritten by every batch that
  // touches their mailbox; updated in place in the memtable, it stays as
  // small as the set of busy mailboxes instead of growing by one entry per
  // batch and mailbox.
  // (With it, RocksDB offers no snapshots for the whole database: nothing
  // here uses them; checkpoints copy files.)
  rocksdb::ColumnFamilyOptions meta_opts = cf_opts;
  meta_opts.inplace_update_support = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names)
    descriptors.emplace_back(n, n == keys::kCfMessages      ? messages_opts
                                : n == keys::kCfDedup       ? dedup_opts
                                : n == keys::kCfMailboxMeta ? meta_opts
                                                            : cf_opts);

  rocksdb::Status s = rocksdb::DB::Open(db_opts, opts_.path, descriptors, &handles_, &db_);
  if (!s.ok()) return from_rocks(s, fmt::format("opening store '{}'", opts_.path));
  for (auto* h : handles_) {
    const std::string& n = h->GetName();
    if (n == keys::kCfDefault) cf_default_ = h;
    else if (n == keys::kCfMessages) cf_messages_ = h;
    else if (n == keys::kCfMailboxMeta) cf_meta_ = h;
    else if (n == keys::kCfDedup) cf_dedup_ = h;
    else if (n == keys::kCfPolicies) cf_policies_ = h;
    else if (n == keys::kCfGrants) cf_grants_ = h;
    else if (n == keys::kCfImConfig) cf_im_ = h;
  }
  assert(cf_default_ && cf_messages_ && cf_meta_ && cf_dedup_ && cf_policies_ && cf_grants_ &&
         cf_im_);

  rocksdb::ReadOptions ro;
  std::string value;
  s = db_->Get(ro, cf_default_, slice(keys::kFormatVersionKey), &value);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db_->Put(wo, cf_default_, slice(keys::kFormatVersionKey),
                 keys::encode_format_version(keys::kFormatVersion));
    if (!s.ok()) return from_rocks(s, "writing the format version");
  } else if (!s.ok()) {
    return from_rocks(s, "reading the format version");
  } else {
    auto v = keys::decode_format_version(value);
    if (!v || *v != keys::kFormatVersion)
      return Status::failed_precondition(fmt::format(
          "store '{}' has on-disk format version {}; this build reads version {}", opts_.path,
          v ? std::to_string(*v) : std::string("<unreadable>"), keys::kFormatVersion));
  }

  s = db_->Get(ro, cf_default_, slice(keys::kLastSeqKey), &value);
  if (s.ok()) {
    auto seq = keys::decode_last_seq(value);
    if (!seq) return Status::io_error("corrupt last_seq record");
    last_assigned_ = *seq;
  } else if (!s.IsNotFound()) {
    return from_rocks(s, "reading last_seq");
  }
  last_seq_.store(last_assigned_);

  std::uint64_t total_messages = 0, total_bytes = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_meta_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto meta = keys::decode_mailbox_meta(it->value().ToStringView());
      if (!meta) return Status::io_error("corrupt mailbox meta record");
      total_messages += meta->count;
      total_bytes += meta->bytes;
    }
    if (!it->status().ok()) return from_rocks(it->status(), "reading mailbox meta");
  }
  counters_.total_messages.store(total_messages);
  counters_.total_bytes.store(total_bytes);

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

void MailboxStore::Impl::close_db() {
  policies_.reset();
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  db_->Close().PermitUncheckedError();
  delete db_;
  db_ = nullptr;
}

MailboxStore::Impl::~Impl() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();  // drains the queue first
  {
    std::lock_guard<std::mutex> lock(done_mu_);
    done_stopping_ = true;
  }
  done_cv_.notify_all();
  if (completer_.joinable()) completer_.join();  // runs every callback handed to it
  close_db();
}

// ---------------------------------------------------------------------------
// the writer

void MailboxStore::Impl::enqueue(Request r) {
  Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_)
      refused = Status::unavailable("the store is closing");
    else if (queue_.size() >= opts_.max_queued_requests)
      refused = Status::unavailable("the store's write queue is full");
    else
      queue_.push_back(std::move(r));
  }
  if (!refused.is_ok()) {
    complete(r, Outcome{std::move(refused), {}, 0});
    return;
  }
  cv_.notify_one();
}

void MailboxStore::Impl::run_writer() {
  std::vector<Request> requests;
  const std::size_t max_requests = std::max<std::size_t>(1, opts_.max_batch_requests);
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      std::size_t bytes = 0;
      while (!queue_.empty() && requests.size() < max_requests &&
             (requests.empty() || bytes + body_bytes(queue_.front()) <= kMaxBatchBodyBytes)) {
        bytes += body_bytes(queue_.front());
        requests.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    process(requests);
    requests.clear();
  }
}

void MailboxStore::Impl::hand_off(std::vector<Request> requests, std::vector<Outcome> outcomes) {
  constexpr std::size_t kMaxBatchesToComplete = 2;
  {
    std::unique_lock<std::mutex> lock(done_mu_);
    done_cv_.wait(lock, [&] { return done_.size() < kMaxBatchesToComplete; });
    done_.push_back({std::move(requests), std::move(outcomes)});
  }
  done_cv_.notify_all();
}

void MailboxStore::Impl::run_completer() {
  for (;;) {
    Written w;
    {
      std::unique_lock<std::mutex> lock(done_mu_);
      done_cv_.wait(lock, [&] { return done_stopping_ || !done_.empty(); });
      if (done_.empty()) return;  // stopping and drained
      w = std::move(done_.front());
      done_.pop_front();
    }
    done_cv_.notify_all();  // room for the writer
    for (std::size_t i = 0; i < w.requests.size(); ++i) complete(w.requests[i], w.outcomes[i]);
  }
}

void MailboxStore::Impl::Batch::reset(std::int64_t now) {
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
  now_ms = now;
  assigned_seq = false;
  failed = Status::ok();
  appended = duplicates = acked = purged = expired = 0;
  delta_messages = delta_bytes = 0;
}

void MailboxStore::Impl::process(std::vector<Request>& requests) {
  Batch& b = batch_;
  b.reset(clock_->now_ms());
  std::vector<Outcome> outcomes;
  outcomes.reserve(requests.size());
  for (auto& r : requests) {
    if (!b.failed.is_ok()) {
      outcomes.push_back({});
      continue;
    }
    outcomes.push_back(std::visit([&](auto& op) { return apply(b, op); }, r));
  }

  // Mailbox meta and last_seq ride in the same batch as the messages.
  rocksdb::Status s;
  for (auto& [mailbox, staged] : b.touched) {
    if (!staged.dirty || !s.ok()) continue;
    const std::string key = keys::mailbox_meta_key(mailbox);
    s = staged.meta.count == 0 ? b.wb.Delete(cf_meta_, key)
                               : b.wb.Put(cf_meta_, key, keys::encode_mailbox_meta(staged.meta));
  }
  if (s.ok() && b.assigned_seq)
    s = b.wb.Put(cf_default_, slice(keys::kLastSeqKey), keys::encode_last_seq(last_assigned_));
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
      wo.sync = opts_.sync;
      rocksdb::Status ws = wal_watch_->write(db_, wo, &b.wb);
      if (!ws.ok()) write_status = from_rocks(ws, "writing a batch");
    }
    micros = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::steady_clock::now() - t0)
                 .count();
  }

  const bool ok = write_status.is_ok();
  if (ok) {
    for (auto& [mailbox, staged] : b.touched) {
      if (staged.meta.count == 0)
        meta_cache_.erase(mailbox);  // empty mailboxes are not worth a cache entry
      else if (staged.dirty)
        meta_cache_[mailbox] = staged.meta;
    }
    counters_.appended += b.appended;
    counters_.duplicates += b.duplicates;
    counters_.acked += b.acked;
    counters_.purged += b.purged;
    counters_.expired_removed += b.expired;
    counters_.total_messages += static_cast<std::uint64_t>(b.delta_messages);  // wraps on minus
    counters_.total_bytes += static_cast<std::uint64_t>(b.delta_bytes);
    if (b.assigned_seq) last_seq_.store(last_assigned_);
    if (attempted) writable_.store(true);
  } else {
    // Whatever the batch staged is void. The committed meta of the touched
    // mailboxes is reloaded from disk on next touch, which is right even if
    // the failed write did reach the database.
    for (auto& [mailbox, staged] : b.touched) meta_cache_.erase(mailbox);
    ++counters_.write_errors;
    if (attempted) writable_.store(false);
  }
  ++counters_.batches;
  counters_.batch_requests += requests.size();
  if (BatchObserver* obs = observer_.load())
    obs->on_batch(requests.size(), micros, attempted, write_status);

  if (!ok)
    for (auto& o : outcomes) o = Outcome{Status::io_error(write_status.message()), {}, 0};
  // The callbacks need neither the bodies nor the dedup payloads: give them
  // back now rather than after the completion thread's turn.
  for (auto& r : requests)
    if (auto* a = std::get_if<AppendOp>(&r)) {
      std::string().swap(a->req.body);
      std::string().swap(a->req.dedup_payload);
    }
  hand_off(std::move(requests), std::move(outcomes));
}

// Rewrites the format version record, unchanged and without the WAL, so that
// the default family's active memtable is not empty when the next write goes
// to the WAL: should that write fail, RocksDB's recovery has a memtable to
// flush and so moves to a new WAL (see wal_watch.h). A crash or a shutdown
// (which does not flush) before the next flush loses the rewrite, which
// changes nothing.
rocksdb::Status MailboxStore::Impl::keep_memtable_entry() {
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  return db_->Put(wo, cf_default_, slice(keys::kFormatVersionKey),
                  keys::encode_format_version(keys::kFormatVersion));
}

MailboxStore::Impl::StagedMeta* MailboxStore::Impl::staged_meta(Batch& b,
                                                                const std::string& mailbox) {
  auto it = b.touched.find(mailbox);
  if (it != b.touched.end()) return &it->second;
  keys::MailboxMeta meta;
  auto cached = meta_cache_.find(mailbox);
  if (cached != meta_cache_.end()) {
    meta = cached->second;
  } else {
    std::string value;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), cf_meta_, keys::mailbox_meta_key(mailbox), &value);
    if (s.ok()) {
      auto decoded = keys::decode_mailbox_meta(value);
      if (!decoded) {
        b.failed = Status::io_error(fmt::format("corrupt meta of mailbox '{}'", mailbox));
        return nullptr;
      }
      meta = *decoded;
    } else if (!s.IsNotFound()) {
      b.failed = from_rocks(s, "reading mailbox meta");
      return nullptr;
    }
    meta_cache_.emplace(mailbox, meta);
  }
  return &b.touched.emplace(mailbox, StagedMeta{meta, false}).first->second;
}

Outcome MailboxStore::Impl::apply(Batch& b, AppendOp& op) {
  const AppendRequest& req = op.req;
  if (!valid_mailbox(req.mailbox) || req.from.size() > keys::kMaxShortField ||
      req.reason.size() > keys::kMaxShortField || req.body.size() > UINT32_MAX ||
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
      s = db_->Get(rocksdb::ReadOptions(), cf_dedup_, dedup_key, &found);
    }
    if (s.ok()) {
      auto first = keys::decode_dedup_value(found.ToStringView());
      // A corrupt entry is treated as absent (and overwritten below).
      if (first && b.now_ms - first->created_ms < opts_.dedup_window_ms) {
        ++b.duplicates;
        AppendResult r;
        r.seq = first->seq;
        r.sent_at_ms = first->sent_at_ms;
        r.duplicate = true;
        r.dedup_payload = std::string(first->payload);
        r.mailbox = std::string(first->mailbox);
        return {Status::ok(), std::move(r), 0};
      }
    } else if (!s.IsNotFound()) {
      b.failed = from_rocks(s, "reading a dedup entry");
      return {};
    }
  }

  StagedMeta* staged = staged_meta(b, req.mailbox);
  if (!staged) return {};
  const std::uint64_t body = req.body.size();
  if (staged->meta.count + 1 > opts_.max_messages || staged->meta.bytes + body > opts_.max_bytes) {
    ++counters_.refused_full;  // refused whatever the batch write does
    return {Status::mailbox_full(fmt::format("mailbox of '{}' is full ({} messages, {} bytes)",
                                             req.mailbox, staged->meta.count, staged->meta.bytes)),
            {},
            0};
  }

  const std::uint64_t seq = ++last_assigned_;
  b.assigned_seq = true;
  std::string key = keys::message_key(req.mailbox, seq);
  rocksdb::Status s = b.wb.Put(
      cf_messages_, key,
      keys::encode_message_value({req.kind, b.now_ms, req.from, req.reason, req.body}));
  if (s.ok() && !dedup_key.empty()) {
    std::string value =
        keys::encode_dedup_value({seq, b.now_ms, req.mailbox, b.now_ms, req.dedup_payload});
    s = b.wb.Put(cf_dedup_, dedup_key, value);
    b.dedup.insert_or_assign(std::move(dedup_key), std::move(value));
  }
  if (!s.ok()) {
    b.failed = from_rocks(s, "building the batch");
    return {};
  }
  b.messages.insert_or_assign(seq, InBatch{staged, body});
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

Outcome MailboxStore::Impl::apply(Batch& b, AckOp& op) {
  if (!valid_mailbox(op.mailbox) || op.seqs.empty()) return {Status::ok(), {}, 0};
  // The acked messages this batch has not touched are looked up in one
  // sorted MultiGet (keys of one mailbox sort by seq): their body sizes keep
  // the mailbox's byte count exact, and a missing one is not counted.
  std::vector<std::uint64_t> lookup;
  lookup.reserve(op.seqs.size());
  for (std::uint64_t seq : op.seqs)
    if (b.messages.find(seq) == b.messages.end()) lookup.push_back(seq);
  std::sort(lookup.begin(), lookup.end());
  lookup.erase(std::unique(lookup.begin(), lookup.end()), lookup.end());
  std::vector<std::string> keys;
  std::vector<rocksdb::Slice> slices;
  keys.reserve(lookup.size());
  slices.reserve(lookup.size());
  for (std::uint64_t seq : lookup) {
    keys.push_back(keys::message_key(op.mailbox, seq));
    slices.emplace_back(keys.back());
  }
  std::vector<rocksdb::PinnableSlice> values(lookup.size());
  std::vector<rocksdb::Status> found(lookup.size());
  if (!lookup.empty())
    db_->MultiGet(rocksdb::ReadOptions(), cf_messages_, lookup.size(), slices.data(), values.data(),
                  found.data(), /*sorted_input=*/true);

  // This mailbox's staged meta, if the batch touched it (messages appended
  // here carry it).
  const StagedMeta* here = nullptr;
  if (auto t = b.touched.find(op.mailbox); t != b.touched.end()) here = &t->second;
  std::uint64_t removed = 0, removed_bytes = 0;
  for (std::uint64_t seq : op.seqs) {
    std::uint64_t size = 0;
    std::string key;
    if (auto in_batch = b.messages.find(seq); in_batch != b.messages.end()) {
      // Deleted earlier in this batch, or appended here to another mailbox.
      if (!in_batch->second.mailbox || in_batch->second.mailbox != here) continue;
      size = in_batch->second.bytes;
      key = keys::message_key(op.mailbox, seq);
    } else {
      const std::size_t i = static_cast<std::size_t>(
          std::lower_bound(lookup.begin(), lookup.end(), seq) - lookup.begin());
      if (found[i].IsNotFound()) continue;  // another mailbox's id, or already gone
      if (!found[i].ok()) {
        b.failed = from_rocks(found[i], "reading a message to ack");
        return {};
      }
      auto m = keys::decode_message_value(values[i].ToStringView());
      size = m ? m->body.size() : 0;
      key = std::move(keys[i]);
    }
    rocksdb::Status s = b.wb.Delete(cf_messages_, key);
    if (!s.ok()) {
      b.failed = from_rocks(s, "building the batch");
      return {};
    }
    b.messages.insert_or_assign(seq, InBatch{});
    ++removed;
    removed_bytes += size;
  }
  if (removed > 0) {
    StagedMeta* staged = staged_meta(b, op.mailbox);
    if (!staged) return {};
    staged->meta.count -= std::min(staged->meta.count, removed);
    staged->meta.bytes -= std::min(staged->meta.bytes, removed_bytes);
    staged->dirty = true;
  }
  b.acked += removed;
  b.delta_messages -= static_cast<std::int64_t>(removed);
  b.delta_bytes -= static_cast<std::int64_t>(removed_bytes);
  return {Status::ok(), {}, removed};
}

Outcome MailboxStore::Impl::apply(Batch& b, PurgeOp& op) {
  if (!valid_mailbox(op.mailbox)) return {Status::ok(), {}, 0};
  StagedMeta* staged = staged_meta(b, op.mailbox);
  if (!staged) return {};
  const std::string begin = keys::mailbox_range_begin(op.mailbox);
  const std::string end = keys::mailbox_range_end(op.mailbox);
  const rocksdb::Slice upper(end);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::vector<std::pair<std::string, std::uint64_t>> doomed;  // key, seq
  std::uint64_t removed_bytes = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_messages_));
    for (it->Seek(begin); it->Valid() && it->key().compare(upper) < 0; it->Next()) {
      // (A key that does not decode goes too: seq 0, as seqs start at 1.)
      auto key = keys::decode_message_key(it->key().ToStringView());
      if (key ? b.messages.count(key->seq) != 0 : b.odd_deleted.count(it->key().ToString()) != 0)
        continue;  // deleted in this batch
      auto m = keys::decode_message_value(it->value().ToStringView());
      removed_bytes += m ? m->body.size() : 0;
      doomed.emplace_back(it->key().ToString(), key ? key->seq : 0);
    }
    if (!it->status().ok()) {
      b.failed = from_rocks(it->status(), "scanning a mailbox to purge");
      return {};
    }
  }
  // Appended earlier in this batch (not in the database yet).
  for (const auto& [seq, in_batch] : b.messages) {
    if (in_batch.mailbox == staged) {
      doomed.emplace_back(keys::message_key(op.mailbox, seq), seq);
      removed_bytes += in_batch.bytes;
    }
  }
  for (const auto& [key, seq] : doomed) {
    rocksdb::Status s = b.wb.Delete(cf_messages_, key);
    if (!s.ok()) {
      b.failed = from_rocks(s, "building the batch");
      return {};
    }
    if (seq != 0) b.messages.insert_or_assign(seq, InBatch{});
    else b.odd_deleted.insert(key);
  }
  if (staged->meta.count != 0 || staged->meta.bytes != 0 || !doomed.empty()) {
    staged->meta = {};
    staged->dirty = true;
  }
  b.purged += doomed.size();
  b.delta_messages -= static_cast<std::int64_t>(doomed.size());
  b.delta_bytes -= static_cast<std::int64_t>(removed_bytes);
  return {Status::ok(), {}, doomed.size()};
}

Outcome MailboxStore::Impl::apply(Batch& b, SweepOp&) {
  // Messages of a mailbox are in seq order, which is arrival order, so the
  // expired ones are its head: scan each mailbox until the first live
  // message, then seek to the next mailbox. (Should the clock step back, a
  // message stuck behind a younger one is removed by a later sweep; reads
  // never return it meanwhile.)
  std::uint64_t removed = 0;
  if (ttl_ms_ > 0) {
    struct Doomed {
      std::string mailbox;
      std::vector<std::pair<std::string, std::uint64_t>> keys;  // key, seq
      std::uint64_t bytes = 0;
    };
    std::vector<Doomed> doomed;
    rocksdb::ReadOptions ro;
    {
      // Messages appended in this batch are new (never expired); those
      // deleted in it are gone.
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_messages_));
      it->SeekToFirst();
      while (it->Valid()) {
        auto key = keys::decode_message_key(it->key().ToStringView());
        if (!key || b.messages.count(key->seq) != 0) {  // not ours, or deleted here
          it->Next();
          continue;
        }
        auto m = keys::decode_message_value(it->value().ToStringView());
        if (m && !expired(m->sent_at_ms, b.now_ms)) {
          const std::string next = keys::mailbox_range_end(key->mailbox);
          it->Seek(next);
          if (it->Valid() && it->key() == rocksdb::Slice(next)) it->Next();  // never loop
          continue;
        }
        // Expired (or unreadable: nothing could ever deliver it).
        if (doomed.empty() || doomed.back().mailbox != key->mailbox)
          doomed.push_back({std::string(key->mailbox), {}, 0});
        doomed.back().keys.emplace_back(it->key().ToString(), key->seq);
        doomed.back().bytes += m ? m->body.size() : 0;
        it->Next();
      }
      if (!it->status().ok()) {
        b.failed = from_rocks(it->status(), "scanning for expired messages");
        return {};
      }
    }
    for (auto& d : doomed) {
      for (const auto& [key, seq] : d.keys) {
        rocksdb::Status s = b.wb.Delete(cf_messages_, key);
        if (!s.ok()) {
          b.failed = from_rocks(s, "building the batch");
          return {};
        }
        b.messages.insert_or_assign(seq, InBatch{});
      }
      StagedMeta* staged = staged_meta(b, d.mailbox);
      if (!staged) return {};
      staged->meta.count -= std::min<std::uint64_t>(staged->meta.count, d.keys.size());
      staged->meta.bytes -= std::min(staged->meta.bytes, d.bytes);
      staged->dirty = true;
      removed += d.keys.size();
      b.delta_messages -= static_cast<std::int64_t>(d.keys.size());
      b.delta_bytes -= static_cast<std::int64_t>(d.bytes);
    }
  }
  sweep_dedup(b);
  b.expired += removed;
  return {Status::ok(), {}, removed};
}

void MailboxStore::Impl::sweep_dedup(Batch& b) {
  std::vector<std::string> doomed;
  rocksdb::ReadOptions ro;
  {
    // Entries written (or deleted) in this batch are not expired.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_dedup_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (b.dedup.count(it->key().ToString()) != 0) continue;
      auto d = keys::decode_dedup_value(it->value().ToStringView());
      if (!d || b.now_ms - d->created_ms >= opts_.dedup_window_ms)
        doomed.push_back(it->key().ToString());
    }
    if (!it->status().ok()) {
      b.failed = from_rocks(it->status(), "scanning dedup entries");
      return;
    }
  }
  for (const auto& key : doomed) {
    rocksdb::Status s = b.wb.Delete(cf_dedup_, key);
    if (!s.ok()) {
      b.failed = from_rocks(s, "building the batch");
      return;
    }
    b.dedup.insert_or_assign(key, std::string());
  }
}

// ---------------------------------------------------------------------------
// reads

Result<std::vector<StoredMessage>> MailboxStore::Impl::read(std::string_view mailbox,
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
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_messages_));
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

Result<MailboxSummary> MailboxStore::Impl::summary(std::string_view mailbox,
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
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_messages_));
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

MailboxStats MailboxStore::Impl::stats(std::string_view mailbox) const {
  MailboxStats st;
  if (!valid_mailbox(mailbox)) return st;
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf_meta_, keys::mailbox_meta_key(mailbox), &value);
  if (!s.ok()) return st;
  if (auto meta = keys::decode_mailbox_meta(value)) {
    st.count = meta->count;
    st.bytes = meta->bytes;
  }
  return st;
}

Status MailboxStore::Impl::checkpoint(const std::string& dir) const {
  // A checkpoint flushes (switches memtables), which with a failed WAL would
  // abort (wal_watch.h); writes wait meanwhile.
  std::lock_guard<std::mutex> lock(wal_watch_->write_mu());
  if (wal_watch_->wal_failed())
    return Status::io_error(
        "checkpoint: the write-ahead log failed and RocksDB has not moved to a new one yet");
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(db_, &raw);
  if (!s.ok()) return from_rocks(s, "creating a checkpoint");
  std::unique_ptr<rocksdb::Checkpoint> cp(raw);
  s = cp->CreateCheckpoint(dir);
  if (!s.ok()) return from_rocks(s, fmt::format("checkpoint into '{}'", dir));
  return Status::ok();
}

// ---------------------------------------------------------------------------
// MailboxStore

Result<std::unique_ptr<MailboxStore>> MailboxStore::open(StoreOptions options) {
  if (options.path.empty()) return Status::invalid_argument("store path is empty");
  auto impl = std::make_unique<Impl>(std::move(options));
  Status st = impl->open();
  if (!st) return st;  // ~Impl closes whatever was opened
  impl->start_writer();
  return std::unique_ptr<MailboxStore>(new MailboxStore(std::move(impl)));
}

MailboxStore::MailboxStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MailboxStore::~MailboxStore() = default;

void MailboxStore::append(AppendRequest req, AppendCallback done) {
  impl_->enqueue(AppendOp{std::move(req), std::move(done)});
}
void MailboxStore::ack(std::string mailbox, std::vector<std::uint64_t> seqs, CountCallback done) {
  impl_->enqueue(AckOp{std::move(mailbox), std::move(seqs), std::move(done)});
}
void MailboxStore::purge(std::string mailbox, CountCallback done) {
  impl_->enqueue(PurgeOp{std::move(mailbox), std::move(done)});
}
void MailboxStore::sweep_expired(CountCallback done) { impl_->enqueue(SweepOp{std::move(done)}); }

Result<std::vector<StoredMessage>> MailboxStore::read(std::string_view mailbox,
                                                      std::uint64_t after_seq,
                                                      std::size_t limit) const {
  return impl_->read(mailbox, after_seq, limit);
}
Result<MailboxSummary> MailboxStore::summary(std::string_view mailbox, std::uint64_t after_seq,
                                             bool missed_only,
                                             std::vector<StoredMessage>* first_page,
                                             std::size_t page_limit) const {
  return impl_->summary(mailbox, after_seq, missed_only, first_page, page_limit);
}
MailboxStats MailboxStore::stats(std::string_view mailbox) const { return impl_->stats(mailbox); }
std::uint64_t MailboxStore::last_seq() const { return impl_->last_seq_.load(); }
PolicyStore& MailboxStore::policies() { return *impl_->policies_; }
const StoreCounters& MailboxStore::counters() const { return impl_->counters_; }
void MailboxStore::set_batch_observer(BatchObserver* observer) { impl_->observer_.store(observer); }
bool MailboxStore::writable() const { return impl_->writable_.load(); }
Status MailboxStore::checkpoint(const std::string& dir) const { return impl_->checkpoint(dir); }
const StoreOptions& MailboxStore::options() const { return impl_->opts_; }

}  // namespace oms::storage
