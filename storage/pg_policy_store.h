// PolicyStore on PostgreSQL (internal to storage/; tables in pg_schema.h).
//
// Like the RocksDB one, reads are served from an in-memory copy; a write is
// one committed statement (or transaction), after which the copy is
// updated. Other nodes' writes reach the copy within kPolicyRefreshMs: a
// thread of its own reloads the four small tables that often (cluster
// mode: the admin endpoint of any node changes the whole cluster).
//
// Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "storage/policy_store.h"

namespace oms::storage {

inline constexpr int kPolicyRefreshMs = 1000;

Result<std::unique_ptr<PolicyStore>> open_pg_policy_store(const std::string& dsn);

}  // namespace oms::storage
