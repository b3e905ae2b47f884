// End-of-run checks over everything the workers recorded: loss, duplicates
// and order per device, receipts (at most one per message and sender device,
// exactly one with expect_receipts), and (for presence scenarios) that every
// `sent` status matches the recipient's presence at send time.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "load-tests/driver/stats.h"

namespace oms::load {

class Run;

struct VerifyOptions {
  // sent.recipient must be a state the recipient was in (as its own client
  // saw it) at some moment between the send and the `sent` reply.
  bool check_presence = false;
  // delivered => the recipient got kind "live" (no sign-outs in the scenario;
  // otherwise "offline" is accepted for a live message redelivered later).
  bool strict_live_kind = false;
  // missed => the recipient got the `missed` notice for that id.
  bool strict_notices = false;
  // Every stored or missed message must have brought exactly one receipt to
  // each device of its sender (--receipts on, where the senders stay signed
  // in until they came).
  bool expect_receipts = false;
  // The run ended early (a phase stalled or hit the deadline): messages still
  // on their way are not counted as lost, only reported as undelivered.
  bool incomplete = false;
};

struct Verdict {
  std::uint64_t sent_ok = 0;        // sends answered with `sent`
  std::uint64_t received = 0;       // distinct messages received, per device of their recipients
  std::uint64_t lost = 0;           // got `sent`, never received (per recipient device)
  std::uint64_t undelivered = 0;    // incomplete run: got `sent`, not received yet (per device)
  std::uint64_t duplicates = 0;     // same id twice in one session, or again after its ack's `ok`
  std::uint64_t reordered = 0;      // per sender->recipient order broken (per device)
  std::uint64_t redelivered = 0;    // same id in a later session of the device (allowed: at least once)
  std::uint64_t corrupt = 0;        // body/sender not as sent
  std::uint64_t unconfirmed = 0;    // received, but its send had no `sent` reply
  std::uint64_t unanswered = 0;     // sends without any reply
  std::uint64_t kind_mismatch = 0;  // message kind does not fit the sent status
  std::uint64_t status_inconsistent = 0;  // status does not fit sent.recipient
  std::uint64_t presence_violation = 0;   // sent.recipient not a state the recipient was in
  std::uint64_t missed_without_notice = 0;
  std::uint64_t welcome_mismatch = 0;     // welcome mailbox.count != messages stored for the user
  // Receipts (per sender device).
  std::uint64_t receipts = 0;             // distinct receipts received
  std::map<std::string, std::uint64_t> receipts_by_state;
  std::uint64_t receipts_due = 0;         // stored/missed x sender devices, when expected
  std::uint64_t receipts_missing = 0;     // expected, never came
  std::uint64_t receipts_undelivered = 0; // incomplete run: expected, not come yet
  std::uint64_t receipts_extra = 0;       // a second receipt for one message, or one for no stored/missed message
  std::uint64_t receipt_duplicates = 0;   // same receipt twice in one session, or again after its ack's `ok`
  std::uint64_t receipts_redelivered = 0; // same receipt in a later session (allowed)
  bool receipts_expected = false;
  bool presence_checked = false;
  std::vector<std::string> examples;      // the first few problems, for a reproduction

  // lost, duplicates and reordered are what the exit status is about; the
  // others fail the run too because each hides or is one of them.
  bool ok() const {
    return lost == 0 && duplicates == 0 && reordered == 0 && corrupt == 0 && unanswered == 0 &&
           kind_mismatch == 0 && status_inconsistent == 0 && presence_violation == 0 &&
           missed_without_notice == 0 && welcome_mismatch == 0 && receipts_missing == 0 &&
           receipts_extra == 0 && receipt_duplicates == 0;
  }
};

// REQUIRES: after run.stop(); `stats` is run.merged_stats().
Verdict verify(Run& run, WorkerStats& stats, const VerifyOptions& opts);

}  // namespace oms::load
