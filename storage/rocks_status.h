// from_rocks (internal to storage/): a RocksDB status as the store's Status,
// prefixed with what was being done.
#pragma once

#include <string_view>

#include <fmt/format.h>
#include <rocksdb/status.h>

#include "common/status.h"

namespace oms::storage {

inline Status from_rocks(const rocksdb::Status& s, std::string_view what) {
  return Status::io_error(fmt::format("{}: {}", what, s.ToString()));
}

}  // namespace oms::storage
