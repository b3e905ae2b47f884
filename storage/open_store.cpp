// open_store (declared in store.h): picks the back end. One today; a second
// one adds its case here (and its StoreOptions fields). A file of its own:
// the back ends include store.h, so nothing of store.h's includes a back end.
#include "storage/store.h"

#include <utility>

#include "storage/rocks_database.h"

namespace oms::storage {

Result<std::unique_ptr<Store>> open_store(StoreOptions options) {
  return open_rocks_database(std::move(options));
}

}  // namespace oms::storage
