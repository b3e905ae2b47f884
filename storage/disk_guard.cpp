#include "storage/disk_guard.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

namespace oms::storage {
namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

DiskGuard::DiskGuard(DiskGuardOptions opts, Transition on_transition)
    : opts_(std::move(opts)), on_transition_(std::move(on_transition)) {}

DiskGuard::~DiskGuard() { stop(); }

std::string DiskGuard::ballast_path() const { return opts_.dir + "/ballast"; }

bool DiskGuard::ballast_on_disk() const {
  struct stat st {};
  if (::stat(ballast_path().c_str(), &st) != 0) return false;
  return static_cast<std::uint64_t>(st.st_blocks) * 512 >= state_.ballast_bytes;
}

void DiskGuard::start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_.ballast_present = false;
  }
  check();
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "oms-disk");
    run();
  });
}

void DiskGuard::stop() {
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    stopping_ = true;
  }
  run_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DiskGuard::run() {
  std::unique_lock<std::mutex> lock(run_mu_);
  while (!stopping_) {
    run_cv_.wait_for(lock, opts_.interval, [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    check();
    lock.lock();
  }
}

DiskState DiskGuard::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

bool DiskGuard::refresh_if_older(std::chrono::milliseconds max_age) {
  const auto age = std::chrono::nanoseconds(now_ns() - last_check_ns_.load(std::memory_order_relaxed));
  // The writer waits for a reading under way rather than act on a stale
  // verdict (a disk filled by someone else between two readings would meet
  // RocksDB as ENOSPC); it never creates the ballast itself.
  if (age >= max_age) read(/*may_wait=*/true, /*may_create_ballast=*/false);
  return full();
}

void DiskGuard::check() { read(/*may_wait=*/true, /*may_create_ballast=*/true); }

// (mu_ held) Whether a ballast of the configured size went onto the disk.
bool DiskGuard::create_ballast() {
  const std::string path = ballast_path();
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  // posix_fallocate falls back to writing zeros where fallocate is missing.
  const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(state_.ballast_bytes));
  const bool ok = rc == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

void DiskGuard::read(bool may_wait, bool may_create_ballast) {
  std::vector<const char*> events;
  DiskState after;
  {
    // The writer does not wait for a reading under way (it may be creating
    // the ballast) and leaves the ballast's creation to the watching thread.
    std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
    if (may_wait) lock.lock();
    else if (!lock.try_lock()) return;
    last_check_ns_.store(now_ns(), std::memory_order_relaxed);
    struct statvfs vfs {};
    if (::statvfs(opts_.dir.c_str(), &vfs) != 0) {
      state_.statvfs_ok = false;  // keep the last verdict
      return;
    }
    DiskState& s = state_;
    const bool first = s.total == 0;
    s.statvfs_ok = true;
    s.total = static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    s.available = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    s.low_mark = std::max<std::uint64_t>(opts_.min_free_bytes, s.total / 100 * opts_.min_free_percent);
    s.high_mark = std::max(s.low_mark, opts_.resume_free_bytes ? opts_.resume_free_bytes
                                                               : s.low_mark + s.low_mark / 4);
    s.critical_mark = opts_.critical_free_bytes ? std::min(opts_.critical_free_bytes, s.low_mark)
                                                : s.low_mark / 2;
    s.ballast_bytes = std::min<std::uint64_t>(opts_.ballast_bytes, s.total / 20);
    if (first) s.ballast_present = s.ballast_bytes > 0 && ballast_on_disk();

    if (s.ballast_present && s.available < s.critical_mark) {
      ::unlink(ballast_path().c_str());
      s.ballast_present = false;
      struct statvfs again {};
      if (::statvfs(opts_.dir.c_str(), &again) == 0)
        s.available = static_cast<std::uint64_t>(again.f_bavail) * again.f_frsize;
      events.push_back("ballast released");
    }
    auto usable_now = [&] {
      const std::uint64_t missing = s.ballast_present ? 0 : s.ballast_bytes;
      return s.available > missing ? s.available - missing : 0;
    };
    s.usable = usable_now();
    if (!s.full && s.usable < s.low_mark) {
      s.full = true;
      events.push_back("full");
    } else if (s.full && s.usable >= s.high_mark) {
      s.full = false;
      events.push_back("resumed");
    }
    if (may_create_ballast && !s.full && !s.ballast_present && s.ballast_bytes > 0 && s.usable >= s.high_mark &&
        now_ns() >= next_ballast_try_ns_) {
      if (create_ballast()) {
        s.ballast_present = true;
        events.push_back("ballast recreated");
      } else {
        // (Not every reading: posix_fallocate may be writing zeros.)
        next_ballast_try_ns_ = now_ns() + std::chrono::nanoseconds(std::chrono::minutes(1)).count();
        events.push_back("ballast failed");
      }
      struct statvfs again {};
      if (::statvfs(opts_.dir.c_str(), &again) == 0)
        s.available = static_cast<std::uint64_t>(again.f_bavail) * again.f_frsize;
      s.usable = usable_now();
    }
    full_.store(s.full, std::memory_order_relaxed);
    const bool exhausted = s.available < opts_.write_floor_bytes;
    if (exhausted != exhausted_.load(std::memory_order_relaxed))
      events.push_back(exhausted ? "exhausted" : "writable");
    exhausted_.store(exhausted, std::memory_order_relaxed);
    after = s;
  }
  if (on_transition_)
    for (const char* e : events) on_transition_(after, e);
}

}  // namespace oms::storage
