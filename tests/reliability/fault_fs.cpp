#include "tests/reliability/fault_fs.h"

#include <cerrno>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>

namespace oms::reliability {
namespace {

using rocksdb::IOStatus;

IOStatus fault_status(FaultKind kind, const char* what) {
  if (kind == FaultKind::kEnospc)
    return IOStatus::NoSpace(what, "injected ENOSPC (No space left on device)");
  return IOStatus::IOError(what, "injected EIO (Input/output error)");
}

// Tracks appends and syncs of one writable file.
class TrackedFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedFile(FaultFs* fs, std::string path, std::unique_ptr<rocksdb::FSWritableFile> f)
      : FSWritableFileOwnerWrapper(std::move(f)), fs_(fs), path_(std::move(path)) {}

  IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                  rocksdb::IODebugContext* dbg) override {
    if (IOStatus s = fs_->admit(false); !s.ok()) return s;
    IOStatus s = target()->Append(data, o, dbg);
    if (s.ok()) fs_->on_appended(path_, fs_->size_of(path_) + data.size());
    return s;
  }
  IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                  const rocksdb::DataVerificationInfo& v, rocksdb::IODebugContext* dbg) override {
    if (IOStatus s = fs_->admit(false); !s.ok()) return s;
    IOStatus s = target()->Append(data, o, v, dbg);
    if (s.ok()) fs_->on_appended(path_, fs_->size_of(path_) + data.size());
    return s;
  }
  IOStatus PositionedAppend(const rocksdb::Slice& data, std::uint64_t offset,
                            const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (IOStatus s = fs_->admit(false); !s.ok()) return s;
    IOStatus s = target()->PositionedAppend(data, offset, o, dbg);
    if (s.ok()) fs_->on_appended(path_, std::max(fs_->size_of(path_), offset + data.size()));
    return s;
  }
  IOStatus PositionedAppend(const rocksdb::Slice& data, std::uint64_t offset,
                            const rocksdb::IOOptions& o, const rocksdb::DataVerificationInfo& v,
                            rocksdb::IODebugContext* dbg) override {
    if (IOStatus s = fs_->admit(false); !s.ok()) return s;
    IOStatus s = target()->PositionedAppend(data, offset, o, v, dbg);
    if (s.ok()) fs_->on_appended(path_, std::max(fs_->size_of(path_), offset + data.size()));
    return s;
  }
  IOStatus Truncate(std::uint64_t size, const rocksdb::IOOptions& o,
                    rocksdb::IODebugContext* dbg) override {
    if (IOStatus s = fs_->admit(false); !s.ok()) return s;
    IOStatus s = target()->Truncate(size, o, dbg);
    if (s.ok()) fs_->on_appended(path_, size);
    return s;
  }
  IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    return sync([&] { return target()->Sync(o, dbg); });
  }
  IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    return sync([&] { return target()->Fsync(o, dbg); });
  }
  // sync_file_range starts writeback but promises nothing: not a durability
  // point, and skipped once the power is cut.
  IOStatus RangeSync(std::uint64_t offset, std::uint64_t n, const rocksdb::IOOptions& o,
                     rocksdb::IODebugContext* dbg) override {
    if (fs_->crashed()) return IOStatus::IOError("simulated power loss");
    return target()->RangeSync(offset, n, o, dbg);
  }

 private:
  template <class F>
  IOStatus sync(F&& do_sync) {
    if (IOStatus s = fs_->admit(true); !s.ok()) return s;
    // Only what was appended before the sync started is known to be covered.
    const std::uint64_t covered = fs_->size_of(path_);
    IOStatus s = do_sync();
    if (s.ok()) fs_->on_synced(path_, covered);
    return s;
  }

  FaultFs* fs_;
  std::string path_;
};

class TrackedDirectory final : public rocksdb::FSDirectoryWrapper {
 public:
  TrackedDirectory(FaultFs* fs, std::string path, std::unique_ptr<rocksdb::FSDirectory> d)
      : FSDirectoryWrapper(std::move(d)), fs_(fs), path_(std::move(path)) {}

  IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (IOStatus s = fs_->admit(true); !s.ok()) return s;
    IOStatus s = FSDirectoryWrapper::Fsync(o, dbg);
    if (s.ok()) fs_->on_dir_synced(path_);
    return s;
  }
  IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg,
                               const rocksdb::DirFsyncOptions& d) override {
    if (IOStatus s = fs_->admit(true); !s.ok()) return s;
    IOStatus s = FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, d);
    if (s.ok()) fs_->on_dir_synced(path_);
    return s;
  }

 private:
  FaultFs* fs_;
  std::string path_;
};

}  // namespace

FaultFs::FaultFs(std::shared_ptr<rocksdb::FileSystem> base) : FileSystemWrapper(std::move(base)) {}

std::string FaultFs::norm(const std::string& p) {
  std::string s = std::filesystem::path(p).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string FaultFs::parent_of(const std::string& p) {
  return norm(std::filesystem::path(norm(p)).parent_path().string());
}

void FaultFs::crash_after_ops(std::uint64_t n) {
  ops_to_crash_.store(static_cast<std::int64_t>(n == 0 ? 1 : n));
}

void FaultFs::crash_now() { crashed_.store(true); }

IOStatus FaultFs::admit(bool is_sync) {
  if (!crashed_.load()) {
    // The op that brings the countdown to zero is the first to fail.
    std::int64_t left = ops_to_crash_.load();
    while (left > 0 && !ops_to_crash_.compare_exchange_weak(left, left - 1)) {
    }
    if (left == 1) crashed_.store(true);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (crashed_.load()) {
    ++counters_.refused_after_crash;
    return IOStatus::IOError("simulated power loss");
  }
  if (is_sync) {
    ++counters_.syncs;
    if (sync_faults_left_ > 0) {
      --sync_faults_left_;
      ++counters_.injected_sync_faults;
      return fault_status(sync_fault_, "sync");
    }
  } else {
    ++counters_.appends;
    if (append_faults_left_ > 0) {
      --append_faults_left_;
      ++counters_.injected_append_faults;
      return fault_status(append_fault_, "append");
    }
  }
  return IOStatus::OK();
}

void FaultFs::track_new(const std::string& path, bool existed, std::uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  FileState& st = files_[path];
  st.size = size;
  st.synced = std::min(st.synced, size);
  if (!existed) {
    st.synced = 0;
    st.entry_durable = false;
  }
}

void FaultFs::on_appended(const std::string& path, std::uint64_t new_size) {
  std::lock_guard<std::mutex> lock(mu_);
  FileState& st = files_[path];
  st.size = new_size;
  st.synced = std::min(st.synced, new_size);
}

std::uint64_t FaultFs::size_of(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(path);
  return it == files_.end() ? 0 : it->second.size;
}

void FaultFs::on_synced(const std::string& path, std::uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  FileState& st = files_[path];
  st.synced = std::max(st.synced, std::min(size, st.size));
}

void FaultFs::on_dir_synced(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  ++counters_.dir_syncs;
  for (auto& [path, st] : files_)
    if (parent_of(path) == dir) st.entry_durable = true;
}

IOStatus FaultFs::NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                  std::unique_ptr<rocksdb::FSWritableFile>* r,
                                  rocksdb::IODebugContext* dbg) {
  if (crashed_.load()) return IOStatus::IOError("simulated power loss");
  const std::string path = norm(f);
  std::error_code ec;
  const bool existed = std::filesystem::exists(path, ec);
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = target()->NewWritableFile(f, o, &file, dbg);
  if (!s.ok()) return s;
  track_new(path, existed, 0);  // NewWritableFile truncates
  *r = std::make_unique<TrackedFile>(this, path, std::move(file));
  return s;
}

IOStatus FaultFs::ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                     std::unique_ptr<rocksdb::FSWritableFile>* r,
                                     rocksdb::IODebugContext* dbg) {
  if (crashed_.load()) return IOStatus::IOError("simulated power loss");
  const std::string path = norm(f);
  std::error_code ec;
  const bool existed = std::filesystem::exists(path, ec);
  const std::uint64_t size = existed ? std::filesystem::file_size(path, ec) : 0;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = target()->ReopenWritableFile(f, o, &file, dbg);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(path);
    if (it == files_.end()) {
      // Untracked content already on disk counts as durable.
      files_[path] = FileState{size, existed ? size : 0, existed};
    } else {
      it->second.size = size;
    }
  }
  *r = std::make_unique<TrackedFile>(this, path, std::move(file));
  return s;
}

IOStatus FaultFs::ReuseWritableFile(const std::string& f, const std::string& old,
                                    const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) {
  if (crashed_.load()) return IOStatus::IOError("simulated power loss");
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = target()->ReuseWritableFile(f, old, o, &file, dbg);
  if (!s.ok()) return s;
  const std::string path = norm(f);
  {
    std::lock_guard<std::mutex> lock(mu_);
    files_.erase(norm(old));
  }
  track_new(path, false, 0);
  *r = std::make_unique<TrackedFile>(this, path, std::move(file));
  return s;
}

IOStatus FaultFs::NewDirectory(const std::string& name, const rocksdb::IOOptions& o,
                               std::unique_ptr<rocksdb::FSDirectory>* r,
                               rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> dir;
  IOStatus s = target()->NewDirectory(name, o, &dir, dbg);
  if (!s.ok()) return s;
  *r = std::make_unique<TrackedDirectory>(this, norm(name), std::move(dir));
  return s;
}

IOStatus FaultFs::RenameFile(const std::string& s, const std::string& t,
                             const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) {
  if (crashed_.load()) return IOStatus::IOError("simulated power loss");
  IOStatus st = target()->RenameFile(s, t, o, dbg);
  if (!st.ok()) return st;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(norm(s));
  std::optional<FileState> moved;
  if (it != files_.end()) {
    moved = it->second;
    files_.erase(it);
  }
  files_.erase(norm(t));
  // A rename is modelled as atomic and durable at once, and as a journaling
  // file system orders metadata, every earlier create in that directory is
  // durable with it (CURRENT never names a MANIFEST whose entry is lost).
  const std::string dir = parent_of(t);
  for (auto& [path, fst] : files_)
    if (parent_of(path) == dir) fst.entry_durable = true;
  if (moved) {
    moved->entry_durable = true;
    files_[norm(t)] = *moved;
  }
  return st;
}

IOStatus FaultFs::DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) {
  if (crashed_.load()) return IOStatus::IOError("simulated power loss");
  IOStatus s = target()->DeleteFile(f, o, dbg);
  if (s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    files_.erase(norm(f));
  }
  return s;
}

PowerLossStats FaultFs::simulate_power_loss() {
  crashed_.store(true);
  PowerLossStats stats;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [path, st] : files_) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;
    const std::uint64_t on_disk = std::filesystem::file_size(path, ec);
    if (ec) continue;
    if (!st.entry_durable) {
      std::filesystem::remove(path, ec);
      ++stats.files_removed;
      stats.bytes_dropped += on_disk;
    } else if (on_disk > st.synced) {
      std::filesystem::resize_file(path, st.synced, ec);
      ++stats.files_truncated;
      stats.bytes_dropped += on_disk - st.synced;
    }
  }
  files_.clear();
  return stats;
}

void FaultFs::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  files_.clear();
  append_faults_left_ = sync_faults_left_ = 0;
  ops_to_crash_.store(-1);
  crashed_.store(false);
}

void FaultFs::fail_appends(FaultKind kind, std::uint64_t count) {
  std::lock_guard<std::mutex> lock(mu_);
  append_fault_ = kind;
  append_faults_left_ = count;
}

void FaultFs::fail_syncs(FaultKind kind, std::uint64_t count) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_fault_ = kind;
  sync_faults_left_ = count;
}

void FaultFs::clear_faults() {
  std::lock_guard<std::mutex> lock(mu_);
  append_faults_left_ = sync_faults_left_ = 0;
}

FaultCounters FaultFs::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

std::shared_ptr<rocksdb::Env> env_for(const std::shared_ptr<FaultFs>& fs) {
  return std::shared_ptr<rocksdb::Env>(rocksdb::NewCompositeEnv(fs).release());
}

}  // namespace oms::reliability
