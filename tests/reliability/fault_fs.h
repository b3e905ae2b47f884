// A fault-injecting rocksdb::FileSystem for the reliability tests: simulated
// power loss and failing writes/syncs (EIO, ENOSPC). Test-only: it is linked
// into the reliability programs, never into omsd.
//
// What is modelled (see tests/reliability/README.md for the whole list):
//  - Per writable file, the bytes appended and the length made durable by the
//    last successful Sync/Fsync (RangeSync is not a durability point).
//  - Per directory, which files were created (NewWritableFile) since its last
//    successful directory Fsync: their directory entries are not durable.
//  - "Power cut" (crash_after_ops / crash_now): from that moment every
//    Append, Sync, Fsync and directory Fsync fails with an IOError and writes
//    nothing, as if the machine were gone; reads keep working so that the
//    database can be closed.
//  - simulate_power_loss() (after the database is closed): every file whose
//    directory entry was never made durable is deleted; every other file
//    touched since the last reset is truncated to its synced length.
//  - Injected faults: the next N appends (writes) or syncs fail with EIO or
//    ENOSPC without reaching the file (a failed sync leaves the synced length
//    where it was).
// Not modelled: renames and deletions are atomic and durable at once (a real
// file system needs the directory fsync that RocksDB issues after them), and
// a rename makes the earlier creates in its directory durable too (metadata
// is journaled in order on ext4/xfs; without this rule the model produces a
// CURRENT naming a MANIFEST whose directory entry vanished); torn
// or reordered writes inside the unsynced tail (the whole tail is dropped,
// the harshest outcome page-granular storage allows); data already on disk
// before tracking started is durable.
//
// Thread-safe: RocksDB calls it from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

namespace oms::reliability {

enum class FaultKind { kEio, kEnospc };

struct PowerLossStats {
  std::uint64_t files_truncated = 0;
  std::uint64_t files_removed = 0;  // created, directory entry never synced
  std::uint64_t bytes_dropped = 0;
};

struct FaultCounters {
  std::uint64_t appends = 0;
  std::uint64_t syncs = 0;
  std::uint64_t dir_syncs = 0;
  std::uint64_t injected_append_faults = 0;
  std::uint64_t injected_sync_faults = 0;
  std::uint64_t refused_after_crash = 0;
};

class FaultFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultFs(std::shared_ptr<rocksdb::FileSystem> base = rocksdb::FileSystem::Default());

  static const char* kClassName() { return "oms.FaultFs"; }
  const char* Name() const override { return kClassName(); }

  // ---- power loss ----
  // The n-th write-side operation from now (Append/Sync/Fsync/dir Fsync;
  // n >= 1) and every later one fail: the power is cut at that moment.
  void crash_after_ops(std::uint64_t n);
  void crash_now();
  bool crashed() const { return crashed_.load(); }
  // REQUIRES: nothing has the files open for writing (the database is
  // closed). Drops everything not durable; see the file comment.
  PowerLossStats simulate_power_loss();
  // Power back on: no crash armed, no faults, tracking starts afresh (what is
  // on disk now is durable).
  void reset();

  // ---- injected faults ----
  // The next `count` appends / syncs (file or directory) fail with `kind`.
  void fail_appends(FaultKind kind, std::uint64_t count);
  void fail_syncs(FaultKind kind, std::uint64_t count);
  void clear_faults();

  FaultCounters counters() const;

  // ---- rocksdb::FileSystem ----
  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& o,
                                 std::unique_ptr<rocksdb::FSDirectory>* r,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& s, const std::string& t,
                               const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override;

  // ---- used by the file wrappers ----
  // Whether a write-side operation may proceed: false once crashed (and
  // counts towards an armed crash). Returns the error to give otherwise.
  rocksdb::IOStatus admit(bool is_sync);
  void on_appended(const std::string& path, std::uint64_t new_size);
  std::uint64_t size_of(const std::string& path);
  void on_synced(const std::string& path, std::uint64_t size);
  void on_dir_synced(const std::string& dir);

 private:
  struct FileState {
    std::uint64_t size = 0;
    std::uint64_t synced = 0;
    bool entry_durable = true;  // false: created and its directory not fsynced since
  };
  static std::string norm(const std::string& p);
  static std::string parent_of(const std::string& p);
  void track_new(const std::string& path, bool existed, std::uint64_t size);

  mutable std::mutex mu_;
  std::map<std::string, FileState> files_;
  std::atomic<bool> crashed_{false};
  std::atomic<std::int64_t> ops_to_crash_{-1};  // < 0: not armed
  FaultKind append_fault_ = FaultKind::kEio;
  FaultKind sync_fault_ = FaultKind::kEio;
  std::uint64_t append_faults_left_ = 0;
  std::uint64_t sync_faults_left_ = 0;
  FaultCounters counters_;
};

// An Env doing its file I/O through `fs` (for StoreOptions::env).
std::shared_ptr<rocksdb::Env> env_for(const std::shared_ptr<FaultFs>& fs);

}  // namespace oms::reliability
