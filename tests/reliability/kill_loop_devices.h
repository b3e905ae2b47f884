// Devices and receipts in the kill loop (contract 4.1, 4.2): the naming
// scheme of the synthetic traffic, what each recipient device was delivered
// and acked, the receipts the senders got, and the checks over them
// (kill_loop.cpp drives the run). Shared with the cluster fault checker
// (tests/cluster/cluster_faults.cpp, library oms_delivery_check): it keeps its
// devices online (DeviceStream) and names its users under a prefix per run.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/ws_client.h"

namespace oms::reliability {

using Clock = std::chrono::steady_clock;

// Every recipient signs in as these two named devices; every sender as one.
inline const std::vector<std::string> kRecipientDevices = {"d1", "d2"};
inline constexpr const char* kSenderDevice = "phone";

// hello with client.device = `device` and offline-messages (contract 4.1)
// → the welcome frame; throws on anything else.
test::Json hello_as(test::WsClient& c, std::string_view token, std::string_view device);

// Every user name below starts with this prefix ("" by default): runs that
// share one store (a cluster) use a fresh one each, so that neither the
// dedup index nor a mailbox sees an earlier run. Set it before any thread starts.
void set_user_prefix(std::string prefix);

std::string sender_user(std::size_t i);
std::string recipient_user(std::size_t j);
std::size_t recipient_of(std::size_t i, std::uint64_t k, std::size_t recipients);
// Sender i's k-th message (to recipient j) and its client_msg_id "s<i>-<k>".
std::string body_of(std::size_t i, std::uint64_t k, std::size_t j);
std::string cmid_of(std::size_t i, std::uint64_t k);
bool parse_body(const std::string& body, std::size_t& i, std::uint64_t& k, std::size_t& j);
bool parse_cmid(const std::string& cmid, std::size_t& i, std::uint64_t& k);

struct Delivered {
  std::string id, from, body;
  Clock::time_point at{};  // when the frame was taken from the socket
};

struct ReceiptSeen {
  std::string id, msg, client_msg_id, to, state;
};
ReceiptSeen receipt_of(const test::Json& frame);

// What a sender's `sent` said for its k-th message, and when the server
// decided it: between `decided_from` (the try that got the `sent`, or for a
// dedup answer the first try of k) and `confirmed` (the `sent` came).
struct SendRecord {
  std::string id, status;
  Clock::time_point decided_from, confirmed;
  bool duplicate = false;  // answered from the dedup index (a resend whose first try was stored)
};

struct SenderLog {
  std::map<std::uint64_t, SendRecord> acked;  // k -> the confirming `sent`
  std::uint64_t attempted_max = 0;            // highest k ever sent
  std::uint64_t resends = 0, dedup_answers = 0, reconnects = 0;
  std::map<std::string, std::uint64_t> errors;  // error code -> count
  std::vector<ReceiptSeen> receipts;            // every receipt frame, repeats included
};

// One recipient device across the whole run (all its sessions).
struct DeviceLog {
  std::size_t recipient = 0;
  std::string device;
  std::vector<Delivered> first;    // the first delivery of each id, in order
  std::set<std::string> seen;      // ids delivered at least once
  std::set<std::string> ack_sent;  // ids of an ack that went out (answered or not)
  std::set<std::string> ok;        // ids whose ack was answered `ok`
  std::uint64_t sessions = 0, deliveries = 0, redelivered = 0, dup_after_ok = 0,
                session_reordered = 0, acks = 0, oks = 0, ack_errors = 0;
  // The same id twice in one session (not an order violation: the client
  // drops it by id; counted apart, and the kill loop requires 0).
  std::uint64_t session_repeats = 0;
  std::vector<std::string> examples;
};

struct DrainOutcome {
  bool drained = false;  // mailbox.drained came and every ack was answered
  std::uint64_t oks = 0;
};

// One signed-in session of a device (or of a sender, for its receipts):
// records message frames into `log` (may be null) and receipt frames into
// `receipts` (may be null), acks each batch that arrived with a rid, and
// matches the ok/error replies. Per session: a sender's messages must come
// in k order (a repeat of an id of this session is counted apart).
class DeviceStream {
 public:
  DeviceStream(test::WsClient& c, DeviceLog* log, std::vector<ReceiptSeen>* receipts);
  enum class Pumped {
    kFrames,  // frames came (and were processed)
    kQuiet,   // nothing within the wait
    kGone,    // the connection ended (or an ack could not be written)
  };
  // Waits up to `wait` for one frame, then takes whatever else already
  // arrived, processes it all and sends one ack for it.
  Pumped pump(std::chrono::milliseconds wait);
  // mailbox.drained came and every ack was answered.
  bool drained() const { return drained_ && pending_.empty(); }
  std::uint64_t oks() const { return oks_; }
  std::size_t acks_unanswered() const { return pending_.size(); }
  // When the last frame (of any type) came; the stream's start before one.
  Clock::time_point last_frame() const { return last_frame_; }

 private:
  test::WsClient& c_;
  DeviceLog* log_;
  std::vector<ReceiptSeen>* receipts_;
  std::map<std::int64_t, std::vector<std::string>> pending_;  // rid -> ids of an unanswered ack
  std::map<std::size_t, std::uint64_t> session_last_k_;        // sender -> last new k this session
  std::set<std::string> session_ids_;                          // ids delivered in this session
  bool drained_ = false;
  std::uint64_t oks_ = 0;
  Clock::time_point last_frame_;
};

// Receives on a signed-in session and acks (a DeviceStream), each ack with a rid, whatever
// arrives: message frames into `log` (may be null), receipt frames into
// `receipts` (may be null). Returns once mailbox.drained came and every ack
// was answered, after `stop_after_oks` ok replies (acks may then still be in
// flight), when nothing arrives for 10 s or the connection ends, or at `limit`.
DrainOutcome drain(test::WsClient& c, DeviceLog* log, std::vector<ReceiptSeen>* receipts,
                   std::uint64_t stop_after_oks, Clock::duration limit);

// Per-device delivery checks over the whole run (Jepsen terms, per device).
struct DeliveryFigures {
  std::uint64_t delivered = 0;      // distinct ids, summed over devices
  std::uint64_t session_repeats = 0;  // the same id twice in one session
  std::uint64_t redelivered = 0;    // the same id to the same device again (not acked with ok)
  std::uint64_t dup_after_ok = 0;   // delivered to a device again after its ack got ok
  std::uint64_t lost = 0;           // confirmed, never delivered to some device (per device)
  std::uint64_t unexpected = 0, duplicated = 0, reordered = 0, indeterminate = 0;
  std::uint64_t acks = 0, oks = 0, ack_errors = 0, sessions = 0;
  std::vector<std::string> examples;
};
DeliveryFigures check_deliveries(const std::vector<SenderLog>& senders,
                                 const std::vector<DeviceLog>& devices, std::size_t recipients);

// Receipt checks: exactly one receipt (state delivered) per confirmed
// message whose `sent` said stored or missed. A message sent while one of its
// recipient's sessions was closing (`closes`, within `margin`) may lack one:
// server/PROTOCOL.md's known gap (`sent` says stored for a message the
// server decided to deliver live); those are counted apart, not failed.
struct ReceiptFigures {
  std::uint64_t frames = 0;         // receipt frames received, repeats included
  std::uint64_t distinct = 0;       // distinct receipt ids
  std::uint64_t repeated = 0;       // the same receipt id again (not acked before a kill)
  std::uint64_t expected = 0;       // confirmed stored/missed messages
  std::uint64_t missing = 0;        // expected, no receipt
  std::uint64_t excused = 0;        // stored while a recipient session was closing, no receipt
  Clock::duration excused_lead{0};  // among those, the longest from a close to the try after it
  std::uint64_t duplicate = 0;      // two different receipt ids for one message
  std::uint64_t wrong = 0;          // not `delivered`, other to/client_msg_id, unknown message
  std::uint64_t for_live = 0;       // a receipt for a message whose `sent` said delivered
  std::uint64_t indeterminate = 0;  // for a message never confirmed (any)
  std::vector<std::string> examples;
};
ReceiptFigures check_receipts(const std::vector<SenderLog>& senders, std::size_t recipients,
                              const std::vector<std::vector<Clock::time_point>>& closes,
                              Clock::duration margin);

}  // namespace oms::reliability
