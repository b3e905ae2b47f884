#include "storage/pg_database.h"

namespace oms::storage {

Result<std::unique_ptr<Store>> open_pg_database(StoreOptions options) {
  (void)options;
  return Status::unavailable("the postgres back end is not built yet");
}

}  // namespace oms::storage
