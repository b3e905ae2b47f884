// DiskGuard: omsd sees the disk filling up before RocksDB does (issue 15
// item 8, protocol 4.4).
//
// It watches the free space of the data directory's filesystem (statvfs:
// blocks available to an unprivileged writer) on its own thread, every
// `interval`, and on demand (refresh_if_older(), once per write batch):
//
//  - usable = available - (the ballast's size when the ballast is not on
//    disk): the reserve counts as spent whether or not it is there, so that
//    releasing or recreating it never flips the state by itself.
//  - usable < low mark: full() turns true (new messages are refused with
//    store_full; acks, purges, deletes, sign-ins go on); it turns false again
//    only once usable >= the high mark (hysteresis).
//  - available < critical mark and the ballast is on disk: the ballast file
//    is deleted, handing its space to RocksDB so that the WAL appends of
//    acks and deletes, memtable flushes and compactions can finish.
//  - usable >= high mark (and not full) and the ballast is not on disk: it
//    is created again (fallocate; a failure leaves no file behind).
//
// start() takes the first reading and acts on it before the store opens: on
// a full disk the ballast goes first, so that RocksDB finds room to open.
// Each change of full() is reported to the transition callback (the server
// logs it). Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace oms::storage {

struct DiskGuardOptions {
  std::string dir;                         // the data directory (statvfs, ballast)
  std::uint64_t min_free_bytes = 256u << 20;  // low mark floor
  unsigned min_free_percent = 0;           // low mark = max(min_free_bytes, this % of the filesystem)
  std::uint64_t resume_free_bytes = 0;     // high mark; 0 = low + low/4; never below low
  std::uint64_t critical_free_bytes = 0;   // ballast released below; 0 = low/2
  std::uint64_t ballast_bytes = 64u << 20; // 0 = no ballast; capped at 5 % of the filesystem
  // Below this many bytes really free (the ballast already released and
  // eaten by something else), nothing is written at all, acks and purges
  // included: they are answered store_full and change nothing, rather than
  // meeting ENOSPC inside RocksDB (which Debian's asserting build turns into
  // an abort). 0 = no floor.
  std::uint64_t write_floor_bytes = 4u << 20;
  std::chrono::milliseconds interval{250};
};

struct DiskState {
  bool full = false;              // new messages are refused
  std::uint64_t available = 0;    // bytes free on the filesystem (statvfs f_bavail)
  std::uint64_t usable = 0;       // available minus the reserve not on disk
  std::uint64_t total = 0;        // filesystem size
  std::uint64_t low_mark = 0;     // refuse below (usable)
  std::uint64_t high_mark = 0;    // accept again at or above (usable)
  std::uint64_t critical_mark = 0;  // release the ballast below (available)
  std::uint64_t ballast_bytes = 0;  // the reserve's size (after the cap)
  bool ballast_present = false;
  bool statvfs_ok = true;         // false: the last reading failed (state kept)
};

class DiskGuard {
 public:
  // Called on a change of full() and on ballast release/recreation, with
  // the state after it and what happened ("full", "resumed",
  // "ballast released", "ballast recreated", "ballast failed").
  using Transition = std::function<void(const DiskState&, const char* what)>;

  DiskGuard(DiskGuardOptions opts, Transition on_transition);
  ~DiskGuard();  // stop()
  DiskGuard(const DiskGuard&) = delete;
  DiskGuard& operator=(const DiskGuard&) = delete;

  // The first reading (ballast released or created as needed), then the
  // watching thread.
  void start();
  void stop();  // idempotent

  bool full() const { return full_.load(std::memory_order_relaxed); }
  // Fewer than write_floor_bytes really free: no write at all (see the option).
  bool exhausted() const { return exhausted_.load(std::memory_order_relaxed); }
  DiskState state() const;
  // Reads again when the last reading is older than `max_age` (the writer
  // thread, once per batch: a statvfs at most that often); returns full().
  bool refresh_if_older(std::chrono::milliseconds max_age);
  void check();  // one reading now (and the ballast created if due)

  // New messages refused because of the disk (both the router's check and
  // the writer's).
  void count_refused() { refused_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

  std::string ballast_path() const;

 private:
  void run();
  // One reading; may_wait = false (the writer): skipped when one is under
  // way, and the ballast is not created.
  void read(bool may_wait, bool may_create_ballast);
  bool create_ballast();  // REQUIRES mu_
  bool ballast_on_disk() const;

  const DiskGuardOptions opts_;
  const Transition on_transition_;
  mutable std::mutex mu_;  // the reading and its actions
  DiskState state_;
  std::int64_t next_ballast_try_ns_ = 0;  // after a failed creation
  std::atomic<bool> full_{false};
  std::atomic<bool> exhausted_{false};
  std::atomic<std::int64_t> last_check_ns_{0};
  std::atomic<std::uint64_t> refused_{0};

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace oms::storage
