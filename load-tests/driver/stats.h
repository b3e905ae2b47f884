// What the workers record while a run goes on: the live counters the
// orchestrating thread polls (atomics), and the per-worker statistics and
// records (plain; merged after the workers have stopped).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "common/protocol.h"
#include "load-tests/driver/histogram.h"

namespace oms::load {

enum class SendStatus : std::uint8_t { kDelivered = 0, kStored, kMissed, kOther };

// One `sent` reply, as the sender saw it.
struct SentRecord {
  std::uint64_t id = 0;
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  std::int64_t intended_ns = 0;  // when the send was due (open loop) or made
  std::int64_t send_ns = 0;      // when the frame was queued on the socket
  std::int64_t sent_ns = 0;      // when `sent` arrived
  SendStatus status = SendStatus::kOther;
  proto::PresenceState recipient = proto::PresenceState::kOffline;
  bool duplicate = false;
};

// One message received for the first time by one device of its recipient.
struct RecvRecord {
  std::uint64_t id = 0;
  std::uint32_t to = 0;
  std::uint16_t device = 0;
  proto::MessageKind kind = proto::MessageKind::kLive;
};

// One receipt received for the first time by one device of the sender.
struct ReceiptRecord {
  std::uint64_t id = 0;   // the receipt's own id
  std::uint64_t msg = 0;  // the message it is about
  std::uint32_t sender = 0;
  std::uint32_t to = 0;   // the recipient it names (UINT32_MAX: not a user of the run)
  std::uint16_t device = 0;
  proto::ReceiptState state = proto::ReceiptState::kDelivered;
};

// The run's counters, declared once for both of their forms: LiveCounters
// (atomics a worker updates while the orchestrating thread polls them) and
// Totals (a plain snapshot summed over the workers).
template <template <class> class Field>
struct Counters {
  Field<std::uint64_t> connects_started{};
  Field<std::uint64_t> signed_in{};
  Field<std::uint64_t> signin_failed{};  // gave up (after retries)
  Field<std::int64_t> open{};            // welcomed and not yet closed
  Field<std::uint64_t> closed{};
  Field<std::uint64_t> dropped{};        // closed by the server or the network
  Field<std::uint64_t> sends{};
  Field<std::uint64_t> replies{};        // sent + error replies to sends
  Field<std::uint64_t> sent_ok{};
  Field<std::uint64_t> send_errors{};
  Field<std::uint64_t> received{};       // first time per device
  Field<std::uint64_t> deliveries_due{};  // sent_ok x the recipient's devices
  Field<std::uint64_t> receipts{};       // first time per device
  Field<std::uint64_t> receipts_due{};   // with --receipts on: stored/missed x the sender's devices
  Field<std::uint64_t> frames_in{};
  Field<std::uint64_t> drained{};
  Field<std::uint64_t> presence_ok{};
};

// Every field of a Counters, as a tuple of references (for field-wise sums).
template <class C>
auto counter_fields(C& c) {
  return std::tie(c.connects_started, c.signed_in, c.signin_failed, c.open, c.closed, c.dropped, c.sends,
                  c.replies, c.sent_ok, c.send_errors, c.received, c.deliveries_due, c.receipts, c.receipts_due,
                  c.frames_in, c.drained, c.presence_ok);
}

template <class T>
using AtomicField = std::atomic<T>;
template <class T>
using PlainField = T;

// Updated by one worker (relaxed), read by the orchestrating thread.
struct alignas(64) LiveCounters : Counters<AtomicField> {};

// Sums of the workers' live counters.
struct Totals : Counters<PlainField> {
  // Adds a relaxed snapshot of `live` (its worker may still be running).
  void add(const LiveCounters& live);
};

struct TimelineSlot {
  std::uint32_t sent_ok = 0;
  std::uint32_t received = 0;
  std::uint32_t errors = 0;
  std::uint32_t signins = 0;
  SlotHistogram latency;  // the scenario's headline latency
};

// What a worker records; merged after the run. Not thread-safe.
struct WorkerStats {
  LatencyHistogram send_to_sent;   // intended send time -> `sent`
  LatencyHistogram end_to_end;     // intended send time -> recipient's live `message`
  // --pairs-mixed: the two above for the pairs on one node / across nodes.
  LatencyHistogram send_to_sent_same, send_to_sent_cross, end_to_end_same, end_to_end_cross;
  LatencyHistogram missed_e2e;     // ... for kind missed delivered at once
  LatencyHistogram connect;        // TCP connect + WebSocket upgrade
  LatencyHistogram hello_welcome;  // hello sent -> welcome
  LatencyHistogram signin_total;   // sign-in requested -> welcome (includes connect queueing)
  LatencyHistogram to_drained;     // sign-in requested -> mailbox.drained
  std::map<std::string, std::uint64_t, std::less<>> errors;  // by code (send errors, closes, ...)
  std::map<std::string, std::uint64_t, std::less<>> statuses;
  std::uint64_t duplicates = 0;   // same id twice in one session, or again after its ack's `ok`
  std::uint64_t reordered = 0;    // per sender->recipient sequence went backwards
  std::uint64_t redelivered = 0;  // id seen again in a later session (at-least-once)
  std::uint64_t corrupt = 0;      // body or sender not as sent
  std::uint64_t notices = 0;
  std::uint64_t summaries = 0;
  std::uint64_t unanswered = 0;   // sends without a reply when the session ended
  std::uint64_t welcome_mismatch = 0;
  std::uint64_t connect_retries = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t acks_sent = 0;
  std::uint64_t acked_ids = 0;
  std::uint64_t acks_ok = 0;      // acks with a rid answered `ok`
  std::uint64_t receipt_duplicates = 0;  // same receipt twice in one session, or after its ack's `ok`
  std::uint64_t receipts_redelivered = 0;
  std::uint64_t presence_sets = 0;
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;
  std::int64_t first_sent_ns = 0, last_sent_ns = 0;
  std::int64_t first_recv_ns = 0, last_recv_ns = 0;
  std::vector<SentRecord> sent;
  std::vector<RecvRecord> received;
  std::vector<ReceiptRecord> receipts;
  std::vector<TimelineSlot> timeline;

  void merge(WorkerStats&& o);
};

}  // namespace oms::load
