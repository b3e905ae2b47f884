// The expiry sweep of the RocksDB MailboxStore (mailbox.sweep_interval_seconds).
//
// A thread of its own (oms-sweep) scans the messages and then the dedup
// column family for expired entries, at most kSweepChunk keys at a time,
// and hands each chunk to the writer thread as one SweepOp (rocks_mailbox_
// store.cpp checks every key again and deletes it in that batch). It waits
// for the chunk to be written before it scans on, from the key where it
// stopped, with a fresh iterator (nothing pinned between chunks). So the
// writer never does more than one chunk's point reads and deletes at a time,
// and appends and acks queued meanwhile go in the next batch: a sweep of a
// million entries costs the rest of the traffic at most one small batch of
// waiting at a time. Between chunks it rests three times as long as the
// chunk took.
#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <utility>

#include <pthread.h>

#include <rocksdb/db.h>

#include "storage/keys.h"
#include "storage/rocks_mailbox_store.h"
#include "storage/rocks_status.h"

namespace oms::storage {
namespace {

// Deletes per writer batch.
constexpr std::size_t kSweepChunk = 500;

// Positions `it` at the first key after `resume` (at the first key when
// `resume` is empty).
void seek_after(rocksdb::Iterator& it, const std::string& resume) {
  if (resume.empty()) {
    it.SeekToFirst();
    return;
  }
  it.Seek(resume);
  if (it.Valid() && it.key() == rocksdb::Slice(resume)) it.Next();
}

}  // namespace

void RocksMailboxStore::sweep_expired(CountCallback done) {
  std::thread finished;
  std::unique_lock<std::mutex> lock(sweeper_->mu);
  if (sweeper_->stopping) {
    lock.unlock();
    if (done) done(Result<std::uint64_t>(Status::unavailable("the store is closing")));
    return;
  }
  if (done) sweeper_->waiters.push_back(std::move(done));
  if (sweeper_->running) return;  // answered when the running sweep ends
  sweeper_->running = true;
  finished = std::move(sweeper_->thread);  // the last sweep's, ended
  sweeper_->thread = std::thread([this] {
    pthread_setname_np(pthread_self(), "oms-sweep");
    run_sweep();
  });
  lock.unlock();
  if (finished.joinable()) {
    if (finished.get_id() == std::this_thread::get_id()) finished.detach();
    else finished.join();
  }
}

void RocksMailboxStore::stop_sweeper() {
  std::thread t;
  {
    std::lock_guard<std::mutex> lock(sweeper_->mu);
    sweeper_->stopping = true;
    t = std::move(sweeper_->thread);
  }
  sweeper_->cv.notify_all();
  if (t.joinable()) t.join();  // it stops after its current chunk
}

void RocksMailboxStore::run_sweep() {
  std::uint64_t removed = 0;
  Status status;
  // Between chunks the sweep rests three times as long as the last chunk
  // took (scan and write): at most a quarter of a core and of the writer's
  // time go to it (a sweep of a million expired messages and as many dedup
  // entries took 50-85 s on a loaded 2-core machine).
  auto rest = [&](std::chrono::steady_clock::duration took) {
    std::unique_lock<std::mutex> lock(sweeper_->mu);
    sweeper_->cv.wait_for(lock, std::min<std::chrono::steady_clock::duration>(3 * took, std::chrono::seconds(1)),
                          [&] { return sweeper_->stopping; });
    return sweeper_->stopping;
  };
  // Phases: expired messages, expired receipts (both only with a ttl), old
  // dedup entries.
  for (int phase = ttl_ms_ > 0 ? 0 : 2; phase < 3 && status.is_ok(); ++phase) {
    std::string resume;
    bool done = false;
    while (!done && status.is_ok()) {
      const auto t0 = std::chrono::steady_clock::now();
      SweepOp op;
      status = phase == 0   ? scan_messages(resume, done, op.message_keys)
               : phase == 1 ? scan_receipts(resume, done, op.receipt_keys)
                            : scan_dedup(resume, done, op.dedup_keys);
      if (!status.is_ok() || (op.message_keys.empty() && op.dedup_keys.empty() && op.receipt_keys.empty()))
        continue;
      auto r = submit_chunk(std::move(op));
      if (r) removed += *r;
      else status = r.status();
      if (status.is_ok() && rest(std::chrono::steady_clock::now() - t0))
        status = Status::unavailable("the store is closing");
    }
  }
  std::vector<CountCallback> waiters;
  {
    std::lock_guard<std::mutex> lock(sweeper_->mu);
    waiters.swap(sweeper_->waiters);
    sweeper_->running = false;
  }
  for (auto& w : waiters)
    w(status.is_ok() ? Result<std::uint64_t>(removed) : Result<std::uint64_t>(status));
}

Result<std::uint64_t> RocksMailboxStore::submit_chunk(SweepOp op) {
  std::promise<Result<std::uint64_t>> p;
  auto f = p.get_future();
  op.done = [&p](Result<std::uint64_t> r) { p.set_value(std::move(r)); };
  batcher_.enqueue(std::move(op));
  return f.get();
}

// Messages of a mailbox are in seq order, which is arrival order, so the
// expired ones are its head: scan each mailbox until the first live message,
// then seek to the next mailbox. (Should the clock step back, a message stuck
// behind a younger one is removed by a later sweep; reads never return it
// meanwhile.)
Status RocksMailboxStore::scan_messages(std::string& resume, bool& done,
                                        std::vector<std::string>& out) const {
  const std::int64_t now = clock_->now_ms();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_.messages));
  seek_after(*it, resume);
  while (it->Valid() && out.size() < kSweepChunk) {
    auto key = keys::decode_message_key(it->key().ToStringView());
    if (!key) {  // not ours
      it->Next();
      continue;
    }
    auto m = keys::decode_message_value(it->value().ToStringView());
    if (m && !expired(m->sent_at_ms, now)) {
      const std::string next = keys::mailbox_range_end(key->mailbox);
      seek_after(*it, next);
      continue;
    }
    out.push_back(it->key().ToString());  // expired (or unreadable: nothing could deliver it)
    it->Next();
  }
  if (!it->status().ok()) return from_rocks(it->status(), "scanning for expired messages");
  done = !it->Valid();
  if (!out.empty()) resume = out.back();
  return Status::ok();
}

// Receipts of a mailbox are in seq order, which is the order of their `at`.
Status RocksMailboxStore::scan_receipts(std::string& resume, bool& done, std::vector<std::string>& out) const {
  const std::int64_t now = clock_->now_ms();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_.receipts));
  seek_after(*it, resume);
  while (it->Valid() && out.size() < kSweepChunk) {
    auto key = keys::decode_message_key(it->key().ToStringView());
    if (!key) {
      it->Next();
      continue;
    }
    auto r = keys::decode_receipt_value(it->value().ToStringView());
    if (r && !expired(r->at_ms, now)) {
      seek_after(*it, keys::mailbox_range_end(key->mailbox));
      continue;
    }
    out.push_back(it->key().ToString());
    it->Next();
  }
  if (!it->status().ok()) return from_rocks(it->status(), "scanning for expired receipts");
  done = !it->Valid();
  if (!out.empty()) resume = out.back();
  return Status::ok();
}

Status RocksMailboxStore::scan_dedup(std::string& resume, bool& done,
                                     std::vector<std::string>& out) const {
  const std::int64_t now = clock_->now_ms();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_.dedup));
  seek_after(*it, resume);
  for (; it->Valid() && out.size() < kSweepChunk; it->Next()) {
    auto d = keys::decode_dedup_value(it->value().ToStringView());
    if (!d || now - d->created_ms >= opts_.dedup_window_ms) out.push_back(it->key().ToString());
  }
  if (!it->status().ok()) return from_rocks(it->status(), "scanning dedup entries");
  done = !it->Valid();
  if (!out.empty()) resume = out.back();
  return Status::ok();
}

// The users with kept acks, found by skipping from user to user through the
// acks family, then one ReconcileOp per chunk of them.
void RocksMailboxStore::reconcile_devices(CountCallback done) {
  constexpr std::size_t kUsersPerOp = 256;
  std::vector<std::string> users;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_.acks));
    for (it->SeekToFirst(); it->Valid();) {
      auto key = keys::decode_ack_key(it->key().ToStringView());
      if (!key) {
        it->Next();
        continue;
      }
      users.emplace_back(key->mailbox);
      it->Seek(keys::mailbox_range_end(key->mailbox));
    }
    if (!it->status().ok()) {
      if (done) done(Result<std::uint64_t>(from_rocks(it->status(), "scanning kept acks")));
      return;
    }
  }
  if (users.empty()) {
    if (done) done(Result<std::uint64_t>(std::uint64_t{0}));
    return;
  }
  // One callback when every chunk is done: the sum, or the first error.
  struct Join {
    std::mutex mu;
    std::size_t left = 0;
    std::uint64_t released = 0;
    Status error;
    CountCallback done;
  };
  auto join = std::make_shared<Join>();
  join->left = (users.size() + kUsersPerOp - 1) / kUsersPerOp;
  join->done = std::move(done);
  for (std::size_t i = 0; i < users.size(); i += kUsersPerOp) {
    ReconcileOp op;
    op.users.assign(std::make_move_iterator(users.begin() + static_cast<std::ptrdiff_t>(i)),
                    std::make_move_iterator(users.begin() +
                                            static_cast<std::ptrdiff_t>(std::min(users.size(), i + kUsersPerOp))));
    op.done = [join](Result<std::uint64_t> r) {
      std::unique_lock<std::mutex> lock(join->mu);
      if (r) join->released += *r;
      else if (join->error.is_ok()) join->error = r.status();
      if (--join->left != 0) return;
      lock.unlock();
      if (!join->done) return;
      if (join->error.is_ok()) join->done(Result<std::uint64_t>(join->released));
      else join->done(Result<std::uint64_t>(join->error));
    };
    batcher_.enqueue(std::move(op));
  }
}

}  // namespace oms::storage
