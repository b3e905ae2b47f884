// open_pg_database (pg_database.h): connects, migrates the schema, and
// builds the PostgreSQL Store.
#include "storage/pg_database.h"

#include <utility>

#include "storage/pg_connection.h"
#include "storage/pg_mailbox_store.h"
#include "storage/pg_policy_store.h"
#include "storage/pg_schema.h"

namespace oms::storage {
namespace {

class PgDatabase final : public Store {
 public:
  PgDatabase(std::unique_ptr<MailboxStore> mailboxes, std::unique_ptr<PolicyStore> policies)
      : mailboxes_(std::move(mailboxes)), policies_(std::move(policies)) {}
  ~PgDatabase() override { mailboxes_.reset(); }  // completes every queued write first

  MailboxStore& mailboxes() override { return *mailboxes_; }
  PolicyStore& policies() override { return *policies_; }
  // Backups of a PostgreSQL database are the server's business
  // (pg_basebackup, or the standbys of a replicated cluster): omsd does not
  // copy a shared database into a local directory.
  Status checkpoint(const std::string& dir) const override {
    (void)dir;
    return Status::failed_precondition(
        "checkpoints are for the rocksdb back end; back up the postgres back end with pg_basebackup "
        "(or rely on its standbys)");
  }

 private:
  std::unique_ptr<MailboxStore> mailboxes_;
  std::unique_ptr<PolicyStore> policies_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_pg_database(StoreOptions options) {
  auto writer = pg::Connection::open(options.postgres_dsn);
  if (!writer) return writer.status();
  if (Status s = pg::migrate(**writer); !s) return s;
  auto reads = pg::ReadPool::open(options.postgres_dsn, options.postgres_read_connections);
  if (!reads) return reads.status();
  auto policies = open_pg_policy_store(options.postgres_dsn);
  if (!policies) return policies.status();
  auto mailboxes = PgMailboxStore::open(std::move(writer).value(),
                                        std::shared_ptr<pg::ReadPool>(std::move(reads).value()), options);
  if (!mailboxes) return mailboxes.status();
  return std::unique_ptr<Store>(new PgDatabase(std::move(mailboxes).value(), std::move(policies).value()));
}

}  // namespace oms::storage
