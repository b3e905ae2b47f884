// The RocksDB back end of Store (internal to storage/; reached through
// open_store in store.h).
//
// One database in StoreOptions::path, one column family per kind of data
// (names and layouts in keys.h). The database owns the rocksdb::DB and the
// WAL watch (wal_watch.h), checks the on-disk format version at open, and
// hands out the mailbox store (rocks_mailbox_store.h) and the policy store
// (rocks_policy_store.h), which write through it.
#pragma once

#include <memory>

#include "common/status.h"
#include "storage/options.h"
#include "storage/store.h"

namespace oms::storage {

Result<std::unique_ptr<Store>> open_rocks_database(StoreOptions options);

}  // namespace oms::storage
