#include "storage/pg_schema.h"

#include <fmt/format.h>

namespace oms::storage::pg {
namespace {

// pg_advisory_xact_lock key of the migrations ("oms" + 1).
constexpr const char* kLockSql = "SELECT pg_advisory_xact_lock(7302515, 1)";

// Migration N is kMigrations[N - 1]; applied ones never change.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE SEQUENCE oms_seq AS bigint;
CREATE TABLE mailboxes (
  mailbox text COLLATE "C" PRIMARY KEY,
  next_mseq bigint NOT NULL DEFAULT 1,
  count bigint NOT NULL DEFAULT 0,
  bytes bigint NOT NULL DEFAULT 0,
  receipts bigint NOT NULL DEFAULT 0);
CREATE TABLE messages (
  mailbox text COLLATE "C" NOT NULL,
  seq bigint NOT NULL,
  mseq bigint NOT NULL,
  sent_at_ms bigint NOT NULL,
  kind smallint NOT NULL,
  from_user text COLLATE "C" NOT NULL,
  reason text COLLATE "C" NOT NULL,
  body bytea NOT NULL,
  client_msg_id text COLLATE "C" NOT NULL,
  want_receipt boolean NOT NULL,
  receipt_state smallint NOT NULL,
  receipt_msg_seq bigint NOT NULL,
  receipt_to text COLLATE "C" NOT NULL,
  PRIMARY KEY (mailbox, seq));
CREATE INDEX messages_sent_at ON messages (sent_at_ms);
CREATE TABLE acks (
  mailbox text COLLATE "C" NOT NULL,
  seq bigint NOT NULL,
  device text COLLATE "C" NOT NULL,
  PRIMARY KEY (mailbox, seq, device));
CREATE TABLE dedup (
  from_user text COLLATE "C" NOT NULL,
  client_msg_id text COLLATE "C" NOT NULL,
  mailbox text COLLATE "C" NOT NULL,
  seq bigint NOT NULL,
  sent_at_ms bigint NOT NULL,
  created_ms bigint NOT NULL,
  payload bytea NOT NULL,
  PRIMARY KEY (from_user, client_msg_id));
CREATE INDEX dedup_created ON dedup (created_ms);
CREATE TABLE devices (
  user_id text COLLATE "C" NOT NULL,
  device text COLLATE "C" NOT NULL,
  first_seen_ms bigint NOT NULL,
  last_seen_ms bigint NOT NULL,
  capable boolean NOT NULL,
  PRIMARY KEY (user_id, device));
CREATE TABLE policies (
  policy_key text COLLATE "C" PRIMARY KEY,
  identity text COLLATE "C" NOT NULL,
  auto_archiving boolean NOT NULL,
  delivery_receipts boolean NOT NULL);
CREATE TABLE grants (
  user_id text COLLATE "C" PRIMARY KEY,
  policy_key text COLLATE "C" NOT NULL REFERENCES policies ON DELETE CASCADE);
CREATE TABLE im_configuration (
  id int PRIMARY KEY CHECK (id = 1),
  enable_offline_im boolean NOT NULL);
CREATE TABLE token_revocations (
  user_id text COLLATE "C" PRIMARY KEY,
  revoked_at_s bigint NOT NULL);
INSERT INTO policies VALUES ('global', 'Global', true, true);
)sql",
    // 2: what acks, purges and the sweep remove from a mailbox, as deltas
    // (they no longer lock the mailbox row: only appends do, for the
    // order); an append folds its mailboxes' deltas into their rows.
    R"sql(
CREATE TABLE mailbox_deltas (
  id bigserial PRIMARY KEY,
  mailbox text COLLATE "C" NOT NULL,
  count bigint NOT NULL,
  bytes bigint NOT NULL,
  receipts bigint NOT NULL);
CREATE INDEX mailbox_deltas_mailbox ON mailbox_deltas (mailbox);
)sql",
    // 3: autovacuum never truncates the tables that churn. Truncating
    // takes an ACCESS EXCLUSIVE lock that every append and ack then waits
    // behind until deadlock_timeout cancels the vacuum (1 s by default):
    // a stall of every node's sends. The freed pages are reused instead.
    R"sql(
ALTER TABLE messages SET (vacuum_truncate = false, toast.vacuum_truncate = false);
ALTER TABLE acks SET (vacuum_truncate = false);
ALTER TABLE dedup SET (vacuum_truncate = false, toast.vacuum_truncate = false);
ALTER TABLE mailbox_deltas SET (vacuum_truncate = false);
ALTER TABLE devices SET (vacuum_truncate = false);
ALTER TABLE token_revocations SET (vacuum_truncate = false);
)sql",
};
static_assert(std::size(kMigrations) == kPgSchemaVersion);

}  // namespace

Status migrate(Connection& c) {
  if (Status s = c.command("BEGIN"); !s) return s;
  auto fail = [&](Status s) {
    (void)c.command("ROLLBACK");
    return s;
  };
  if (Status s = c.command(kLockSql); !s) return fail(s);
  if (Status s = c.command("CREATE TABLE IF NOT EXISTS oms_schema_version (version int NOT NULL)"); !s)
    return fail(s);
  auto v = c.exec("SELECT version::bigint FROM oms_schema_version");
  if (!v) return fail(v.status());
  const std::int64_t have = v->size() == 0 ? 0 : v->i64(0, 0);
  if (have > kPgSchemaVersion)
    return fail(Status::failed_precondition(fmt::format(
        "postgres: the database's schema is version {}, newer than this omsd knows ({}): upgrade omsd", have,
        kPgSchemaVersion)));
  for (std::int64_t n = have + 1; n <= kPgSchemaVersion; ++n)
    if (Status s = c.command(kMigrations[n - 1]); !s) return fail(s);
  if (have < kPgSchemaVersion) {
    Params p;
    p.i64(kPgSchemaVersion);
    auto r = have == 0 ? c.exec("INSERT INTO oms_schema_version VALUES ($1::bigint)", p)
                       : c.exec("UPDATE oms_schema_version SET version = $1::bigint", p);
    if (!r) return fail(r.status());
  }
  return c.command("COMMIT");
}

}  // namespace oms::storage::pg
