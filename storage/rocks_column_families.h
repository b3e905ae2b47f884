// The column family handles the RocksDB database (rocks_database.cpp) hands
// to each store it builds (internal to storage/). Names and layouts: keys.h.
#pragma once

namespace rocksdb {
class ColumnFamilyHandle;
}

namespace oms::storage {

struct MailboxColumnFamilies {
  rocksdb::ColumnFamilyHandle* defaults = nullptr;  // "default": last_seq
  rocksdb::ColumnFamilyHandle* messages = nullptr;
  rocksdb::ColumnFamilyHandle* dedup = nullptr;
  rocksdb::ColumnFamilyHandle* receipts = nullptr;
  rocksdb::ColumnFamilyHandle* acks = nullptr;
  rocksdb::ColumnFamilyHandle* devices = nullptr;
};

struct PolicyColumnFamilies {
  rocksdb::ColumnFamilyHandle* policies = nullptr;
  rocksdb::ColumnFamilyHandle* grants = nullptr;
  rocksdb::ColumnFamilyHandle* im_config = nullptr;
};

}  // namespace oms::storage
