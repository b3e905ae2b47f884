// The PostgreSQL back end of Store (internal to storage/; reached through
// open_store in store.h), for cluster mode (protocol contract 5).
//
// StoreOptions::postgres_dsn names the database; the schema and its
// migrations are described in pg_schema.h. The database owns the writer
// connection (group commit, pg_mailbox_store.h), a pool of read
// connections, and hands out the mailbox store and the policy store.
#pragma once

#include <memory>

#include "common/status.h"
#include "storage/options.h"
#include "storage/store.h"

namespace oms::storage {

// Errors: invalid_argument (empty or malformed DSN), io_error (server
// unreachable, a migration failed), failed_precondition (the schema is newer
// than this omsd knows).
Result<std::unique_ptr<Store>> open_pg_database(StoreOptions options);

}  // namespace oms::storage
