// WalWatch (internal to storage/): a RocksDB event listener that tells the
// store's writers whether the current WAL had a failed write that no memtable
// switch has left behind since.
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
// Hence:
//  - no write goes to the database while wal_failed() (it would abort);
//  - the mailbox writer keeps an entry in an active memtable before it
//    writes (take_switched()), so that a recovery always has one to flush.
//
// Thread-safe: RocksDB calls it from its own threads.
#pragma once

#include <atomic>

#include <rocksdb/listener.h>

namespace oms::storage {

class WalWatch final : public rocksdb::EventListener {
 public:
  const char* Name() const override { return "oms.WalWatch"; }

  // A write's WAL append or sync failed (called before any recovery starts).
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status*) override {
    if (reason == rocksdb::BackgroundErrorReason::kWriteCallback) wal_failed_.store(true);
  }
  // A memtable switch succeeded; after a failed write it always starts a new
  // WAL (and it may leave every active memtable empty).
  void OnMemTableSealed(const rocksdb::MemTableInfo&) override {
    wal_failed_.store(false);
    switched_.store(true);
  }

  bool wal_failed() const { return wal_failed_.load(); }
  // True once after each memtable switch (and once at first): the active
  // memtables may all be empty now. rearm(): ask again next time.
  bool take_switched() { return switched_.exchange(false); }
  void rearm() { switched_.store(true); }

 private:
  std::atomic<bool> wal_failed_{false};
  std::atomic<bool> switched_{true};
};

}  // namespace oms::storage
