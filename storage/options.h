// StoreOptions: how open_store (store.h) opens a store. The mailbox rules
// (quotas, expiry, dedup window) and group commit apply to every back end;
// the fields marked "RocksDB" only to that one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace rocksdb {
class Env;
}

namespace oms::storage {

enum class Backend { kRocksDb, kPostgres };

struct StoreOptions {
  Backend backend = Backend::kRocksDb;
  std::string path;                        // RocksDB: the database directory
  // PostgreSQL (cluster mode, contract 5): a libpq connection string or URI,
  // and how many pooled connections serve reads (the writer has its own).
  std::string postgres_dsn;
  std::size_t postgres_read_connections = 4;
  // postgres.late_locks: a batch of appends only locks its mailbox rows in
  // its last round trip (pg_mailbox_appends.cpp); false: as any batch, in
  // its first (for comparison).
  bool postgres_late_locks = true;
  std::uint64_t max_messages = 10000;      // mailbox.max_messages
  std::uint64_t max_bytes = 52428800;      // mailbox.max_bytes (sum of bodies)
  std::uint32_t ttl_days = 30;             // mailbox.ttl_days (0 = never expire)
  std::int64_t dedup_window_ms = 24LL * 3600 * 1000;
  bool sync = true;                        // false only in benchmarks / control runs
  std::size_t max_batch_requests = 8192;   // group-commit cap per batch
  std::size_t max_queued_requests = 200000;  // beyond it: Status::unavailable at once
  std::size_t block_cache_bytes = 64u << 20;  // RocksDB
  // devices.idle_seconds: a device whose last session ended longer ago
  // than this stops holding messages back (contract 4.1).
  std::int64_t device_idle_ms = 1'209'600'000;
  std::size_t max_devices_per_user = 10;         // devices.max_per_user (named, active)
  std::uint64_t max_receipts_per_mailbox = 10000;  // receipts.max_per_mailbox
  const Clock* clock = nullptr;            // nullptr = SystemClock
  // When > 0, messages expire after this many milliseconds instead of
  // ttl_days (finer control than days, e.g. for tests).
  std::int64_t ttl_ms_override = 0;
  // When set, called on the writer thread once per batch: true refuses the
  // batch's new messages with store_full (resends still get their first
  // result; acks, purges and sweeps go on). omsd passes its DiskGuard.
  std::function<bool()> refuse_new_messages;
  // Called once per batch after refuse_new_messages: true refuses every
  // request of the batch (acks, purges too) with store_full, nothing written.
  std::function<bool()> refuse_all_writes;
  // Tests only: when set, called on the writer thread before each batch
  // write; a non-OK Status fails that write exactly as if the back end's
  // write had failed (nothing of the batch is written).
  std::function<Status()> inject_write_error;
  // Tests only, RocksDB: the rocksdb::Env (and through it the FileSystem)
  // the database does all its file I/O with; nullptr = rocksdb::Env::Default().
  // The reliability tests pass a fault-injecting FileSystem here (simulated
  // power loss, failing syncs). Shared so that it outlives the database.
  std::shared_ptr<rocksdb::Env> env;
};

}  // namespace oms::storage
