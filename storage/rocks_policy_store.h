// The RocksDB-backed PolicyStore (internal to storage/): built by the
// database (rocks_database.h) on its policies, grants and im_config column
// families.
#pragma once

#include <memory>

#include "common/status.h"
#include "storage/policy_store.h"
#include "storage/rocks_column_families.h"

namespace rocksdb {
class DB;
}

namespace oms::storage {

class WalWatch;

// Loads policies, grants and the IM configuration into memory and creates the
// Global policy (enable_im_auto_archiving = true) when it does not exist yet.
// Writes go under wal->write_mu() after wal->prepare_write() (see wal_watch.h;
// nullptr: no such care).
// `db`, the handles and `wal` are not owned and must outlive the returned store.
Result<std::unique_ptr<PolicyStore>> open_rocks_policy_store(rocksdb::DB* db,
                                                             PolicyColumnFamilies cfs,
                                                             WalWatch* wal);

}  // namespace oms::storage
