// Store: one open storage back end, the seam between the server and the
// database. It owns the database and hands out its two parts, the mailbox
// store (mailbox_store.h) and the policy store (policy_store.h); both live
// as long as the Store. open_store() opens the back end StoreOptions names
// (RocksDB today: rocks_database.h).
//
// A back end implements MailboxStore, PolicyStore and this class; nothing
// above storage/ names a back end.
//
// Thread-safe: any thread may call any method.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "storage/mailbox_store.h"
#include "storage/options.h"
#include "storage/policy_store.h"

namespace oms::storage {

class Store {
 public:
  Store() = default;
  // Completes every queued write (mailboxes()' destructor), then closes.
  virtual ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  virtual MailboxStore& mailboxes() = 0;
  virtual PolicyStore& policies() = 0;
  // A consistent copy of everything (mailboxes and policies) into `dir`,
  // which must not exist; open_store() opens it like the original.
  // Appends and acks go on meanwhile (nothing waits for it).
  virtual Status checkpoint(const std::string& dir) const = 0;
};

// Opens (creating when absent) the store `options` describe.
Result<std::unique_ptr<Store>> open_store(StoreOptions options);

}  // namespace oms::storage
