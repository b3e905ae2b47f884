// WalWatch (internal to storage/): a RocksDB event listener that tells the
// store's writers whether the current WAL had a failed write that no memtable
// switch has left behind since, and the lock every write goes under.
//
// Why: RocksDB 7.8 (Debian 12's librocksdb) recovers from a failed WAL write
// (its own automatic recovery from ENOSPC, or DB::Resume()) by flushing the
// memtables, and the first memtable switch moves writing to a new WAL. With
// every memtable empty there is nothing to switch: the recovery "succeeds"
// but the failed WAL stays current, and the next write appends to a writer
// that has seen an error. Debian builds librocksdb with assertions, which
// abort the process there (WritableFileWriter::
// AssertFalseAndGetStatusForPrevError, `sync_without_flush_called_`);
// without them every write fails and the next memtable switch makes the
// error fatal. (facebook/rocksdb#11643, #12998; fixed upstream in 9.x by
// #12873.)
// Hence every write to the database (the mailbox writer, policy writes)
// goes under write_mu(), after prepare_write() (checkpoints flush nothing,
// switch no memtable and take no lock: rocks_database.cpp):
//  - no write while wal_failed() (it would abort);
//  - after each memtable switch (and once at first), an entry goes into an
//    active memtable first (the keep-entry function), so that a recovery
//    always has one to flush.
// Left: a write whose own memtable switch (full memtable, WAL size) leaves
// every active memtable empty and whose WAL append then fails: writes stay
// refused (not aborted) until omsd restarts.
//
// Thread-safe: RocksDB calls the listener from its own threads.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <utility>

#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/write_batch.h>

namespace oms::storage {

class WalWatch final : public rocksdb::EventListener {
 public:
  const char* Name() const override { return "oms.WalWatch"; }

  // A write's WAL append or sync failed (called before any recovery starts,
  // on the thread of that write, which holds write_mu()).
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status*) override {
    if (reason == rocksdb::BackgroundErrorReason::kWriteCallback) wal_failed_.store(true);
  }
  // A memtable switch succeeded; after a failed write it always starts a new
  // WAL (and it may leave every active memtable empty).
  void OnMemTableSealed(const rocksdb::MemTableInfo&) override {
    wal_failed_.store(false);
    switched_.store(true);
  }

  // Writes an entry that needs no WAL into an active memtable; set once,
  // before the first write.
  void set_keep_entry(std::function<rocksdb::Status()> f) { keep_entry_ = std::move(f); }

  std::mutex& write_mu() { return write_mu_; }
  bool wal_failed() const { return wal_failed_.load(); }

  // Writes `batch` under write_mu(), after prepare_write(): how every write
  // to the database goes.
  rocksdb::Status write(rocksdb::DB* db, const rocksdb::WriteOptions& wo, rocksdb::WriteBatch* batch) {
    std::lock_guard<std::mutex> lock(write_mu_);
    rocksdb::Status s = prepare_write();
    return s.ok() ? db->Write(wo, batch) : s;
  }

  // REQUIRES: write_mu() held. OK when a write may go to the database now.
  rocksdb::Status prepare_write() {
    if (wal_failed_.load())
      return rocksdb::Status::IOError(
          "the write-ahead log failed and RocksDB has not moved to a new one yet (if this lasts, "
          "restart omsd)");
    while (switched_.exchange(false)) {  // (the entry itself may fill a memtable)
      rocksdb::Status s = keep_entry_ ? keep_entry_() : rocksdb::Status::OK();
      if (!s.ok()) {
        switched_.store(true);  // (the database is stopped) again next time
        return s;
      }
    }
    return rocksdb::Status::OK();
  }

 private:
  std::mutex write_mu_;
  std::function<rocksdb::Status()> keep_entry_;
  std::atomic<bool> wal_failed_{false};
  std::atomic<bool> switched_{true};
};

}  // namespace oms::storage
