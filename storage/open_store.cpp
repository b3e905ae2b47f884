// open_store (declared in store.h): picks the back end StoreOptions::backend
// names. A file of its own: the back ends include store.h, so nothing of
// store.h's includes a back end.
#include "storage/store.h"

#include <utility>

#include "storage/pg_database.h"
#include "storage/rocks_database.h"

namespace oms::storage {

Result<std::unique_ptr<Store>> open_store(StoreOptions options) {
  switch (options.backend) {
    case Backend::kPostgres: return open_pg_database(std::move(options));
    case Backend::kRocksDb: break;
  }
  return open_rocks_database(std::move(options));
}

}  // namespace oms::storage
