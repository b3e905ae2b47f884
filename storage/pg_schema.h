// The PostgreSQL schema of the store, and its migrations (internal to
// storage/). This comment is the layout; a change to it is a new migration
// (never an edit of an applied one) and a bump of kPgSchemaVersion.
//
//   oms_schema_version(version)      one row: the last migration applied
//   oms_seq                          the global sequence numbers (message
//                                    ids, contract: unique forever)
//   mailboxes(mailbox pk, next_mseq, count, bytes, receipts)
//       one row per mailbox ever written, and the lock of its appends:
//       every append (a message or a receipt) locks the row first
//       (pg_mailbox_store.h), so quotas hold across nodes and seqs commit
//       in order per mailbox. next_mseq: the per-mailbox sequence without
//       gaps (messages.mseq). The totals are exact once the mailbox's
//       deltas are added (the append that locks the row folds them in).
//   mailbox_deltas(id pk, mailbox, count, bytes, receipts) (migration 2)
//       what acks, purges and the expiry sweep removed, one row per
//       mailbox per batch: they never lock the mailbox row (a node acking
//       a user's messages does not wait for another node appending to the
//       user, nor that node for it); acks, device changes, purges and the
//       sweep of one user take a transaction-level advisory lock instead
//       (key 7302516, hashtext(user)), so they stay serialised among
//       themselves across nodes.
//   messages(mailbox, seq, mseq, sent_at_ms, kind, from_user, reason, body,
//            client_msg_id, want_receipt, receipt_state, receipt_msg_seq,
//            receipt_to), pk (mailbox, seq)
//       messages and receipts of a mailbox in one table, so that a mailbox
//       reads back in one ordered index scan: receipt_state 0 = a message,
//       1..3 = a receipt (proto::ReceiptState; then sent_at_ms is its time,
//       receipt_msg_seq / receipt_to / client_msg_id the message's, and the
//       message fields are empty). Expiry is sent_at_ms against the ttl in
//       force (index on sent_at_ms for the sweep), as in the RocksDB store.
//   acks(mailbox, seq, device), pk: acks kept per device while other
//       active devices have not acked (device '' = the receipt marker).
//   dedup(from_user, client_msg_id) pk -> mailbox, seq, sent_at_ms,
//       created_ms, payload; index on created_ms for the sweep.
//   devices(user_id, device) pk -> first_seen_ms, last_seen_ms, capable.
//   policies(policy_key pk, identity, auto_archiving, delivery_receipts),
//   grants(user_id pk, policy_key -> policies ON DELETE CASCADE),
//   im_configuration(id = 1, enable_offline_im),
//   token_revocations(user_id pk, revoked_at_s).
// Every text column is COLLATE "C" (byte order, as the RocksDB keys).
// Migration 3: the tables that churn (messages, acks, dedup,
// mailbox_deltas, devices, token_revocations) have vacuum_truncate off, so
// autovacuum never takes the ACCESS EXCLUSIVE lock that stalled every
// append until deadlock_timeout (1 s) cancelled it.
#pragma once

#include "common/status.h"
#include "storage/pg_connection.h"

namespace oms::storage::pg {

inline constexpr int kPgSchemaVersion = 3;

// Applies the migrations the database lacks, each in one transaction under
// a transaction-level advisory lock (several nodes may open at once).
// failed_precondition when the database's schema is newer than this omsd.
Status migrate(Connection& c);

}  // namespace oms::storage::pg
