#include "load-tests/driver/verify.h"

#include <algorithm>
#include <tuple>

#include <fmt/format.h>

#include "common/ids.h"
#include "load-tests/driver/run.h"

namespace oms::load {

using proto::MessageKind;
using proto::PresenceState;

namespace {

constexpr std::size_t kMaxExamples = 8;
// The server unregisters a session when its side of the close completes,
// which may be a little after the client saw the close handshake finish.
constexpr std::int64_t kCloseSlackNs = 1'000'000'000;

SendStatus status_for(PresenceState s) {
  switch (s) {
    case PresenceState::kOffline:
    case PresenceState::kAppearOffline: return SendStatus::kStored;
    case PresenceState::kDnd:
    case PresenceState::kPresenting: return SendStatus::kMissed;
    default: return SendStatus::kDelivered;
  }
}

std::string_view status_name(SendStatus s) {
  switch (s) {
    case SendStatus::kDelivered: return "delivered";
    case SendStatus::kStored: return "stored";
    case SendStatus::kMissed: return "missed";
    default: return "other";
  }
}

// Could the recipient have been in `state` at some moment of [a, b]?
// Span i may be in force from its request until the confirmation of the next
// change (plus a slack when that change is a sign-out).
bool possible_state(const std::vector<PresenceSpan>& h, PresenceState state, std::int64_t a, std::int64_t b) {
  // Before the first span the user is offline.
  const std::int64_t first_end = h.empty() ? INT64_MAX : h.front().confirmed_ns;
  if (state == PresenceState::kOffline && a <= first_end) return true;
  for (std::size_t i = 0; i < h.size(); ++i) {
    std::int64_t end = INT64_MAX;
    if (i + 1 < h.size()) {
      end = h[i + 1].confirmed_ns;
      if (h[i + 1].state == PresenceState::kOffline && end != INT64_MAX) end += kCloseSlackNs;
    }
    if (h[i].state == state && h[i].requested_ns <= b && end >= a) return true;
  }
  return false;
}

void example(Verdict& v, std::string s) {
  if (v.examples.size() < kMaxExamples) v.examples.push_back(std::move(s));
}

std::string device_name(const Run& run, std::uint32_t user, std::uint32_t device) {
  if (run.devices_of(user) == 1 && !run.opt.named_devices()) return "its session";
  return fmt::format("device d{}", device + 1);
}

// Receipts: for every stored or missed message, at most one (exactly one when
// expected) per device of its sender, naming its recipient; none for anything
// else. `sent` is sorted by id.
void verify_receipts(Run& run, WorkerStats& stats, const std::vector<SentRecord>& sent, const VerifyOptions& opts,
                     Verdict& v) {
  auto& rec = stats.receipts;
  std::sort(rec.begin(), rec.end(), [](const ReceiptRecord& a, const ReceiptRecord& b) {
    return std::tie(a.msg, a.device, a.id) < std::tie(b.msg, b.device, b.id);
  });
  v.receipts = rec.size();
  v.receipts_expected = opts.expect_receipts;
  v.receipt_duplicates = stats.receipt_duplicates;
  v.receipts_redelivered = stats.receipts_redelivered;
  for (const ReceiptRecord& r : rec) ++v.receipts_by_state[std::string(proto::receipt_state_name(r.state))];
  std::size_t j = 0;
  std::vector<std::uint32_t> per_device;
  for (const SentRecord& s : sent) {
    for (; j < rec.size() && rec[j].msg < s.id; ++j) {
      ++v.receipts_extra;
      example(v, fmt::format("receipt {} for message {}, which no `sent` said stored or missed",
                             format_message_id(rec[j].id), format_message_id(rec[j].msg)));
    }
    const bool wants = s.status == SendStatus::kStored || s.status == SendStatus::kMissed;
    per_device.assign(run.devices_of(s.from), 0);
    for (; j < rec.size() && rec[j].msg == s.id; ++j) {
      const ReceiptRecord& r = rec[j];
      if (!wants || r.device >= per_device.size() || ++per_device[r.device] > 1 || r.to != s.to) {
        ++v.receipts_extra;
        example(v, fmt::format("receipt {} ({}) for message {} ({} -> {}, status {}) on {}: {}",
                               format_message_id(r.id), proto::receipt_state_name(r.state),
                               format_message_id(s.id), run.user_id(s.from), run.user_id(s.to),
                               status_name(s.status), device_name(run, s.from, r.device),
                               !wants ? "not stored or missed" : r.to != s.to ? "names another recipient"
                                                                              : "a second receipt"));
      }
    }
    if (!wants || !opts.expect_receipts) continue;
    v.receipts_due += per_device.size();
    for (std::uint32_t d = 0; d < per_device.size(); ++d) {
      if (per_device[d] > 0) continue;
      if (opts.incomplete) {
        ++v.receipts_undelivered;
      } else {
        ++v.receipts_missing;
        example(v, fmt::format("no receipt on {} of {} for message {} to {}", device_name(run, s.from, d),
                               run.user_id(s.from), format_message_id(s.id), run.user_id(s.to)));
      }
    }
  }
  for (; j < rec.size(); ++j) {
    ++v.receipts_extra;
    example(v, fmt::format("receipt {} for message {}, which no `sent` said stored or missed",
                           format_message_id(rec[j].id), format_message_id(rec[j].msg)));
  }
}

}  // namespace

Verdict verify(Run& run, WorkerStats& stats, const VerifyOptions& opts) {
  Verdict v;
  v.duplicates = stats.duplicates;
  v.reordered = stats.reordered;
  v.redelivered = stats.redelivered;
  v.corrupt = stats.corrupt;
  v.unanswered = stats.unanswered;
  v.welcome_mismatch = stats.welcome_mismatch;
  v.presence_checked = opts.check_presence;

  auto& sent = stats.sent;
  auto& recv = stats.received;
  std::sort(sent.begin(), sent.end(), [](const SentRecord& a, const SentRecord& b) { return a.id < b.id; });
  std::sort(recv.begin(), recv.end(),
            [](const RecvRecord& a, const RecvRecord& b) { return std::tie(a.id, a.device) < std::tie(b.id, b.device); });
  v.sent_ok = sent.size();
  v.received = recv.size();

  std::size_t j = 0;
  std::vector<bool> got_on;  // per device of the recipient
  for (const SentRecord& s : sent) {
    while (j < recv.size() && recv[j].id < s.id) {
      ++v.unconfirmed;
      ++j;
    }
    const std::string who = fmt::format("message {} ({} -> {}, status {}, recipient {}, sent at {:.3f}s)",
                                        format_message_id(s.id), run.user_id(s.from), run.user_id(s.to),
                                        status_name(s.status), proto::presence_name(s.recipient),
                                        static_cast<double>(s.send_ns - run.t0) / 1e9);
    // Every device of the recipient gets it once (repeats are counted by the
    // sessions: duplicates and redelivered).
    got_on.assign(run.devices_of(s.to), false);
    for (; j < recv.size() && recv[j].id == s.id; ++j) {
      if (recv[j].device < got_on.size()) got_on[recv[j].device] = true;
      const MessageKind k = recv[j].kind;
      bool kind_ok = true;
      switch (s.status) {
        case SendStatus::kStored: kind_ok = k == MessageKind::kOffline; break;
        case SendStatus::kMissed: kind_ok = k == MessageKind::kMissed; break;
        case SendStatus::kDelivered:
          kind_ok = k == MessageKind::kLive || (!opts.strict_live_kind && k == MessageKind::kOffline);
          break;
        case SendStatus::kOther: kind_ok = false; break;
      }
      if (!kind_ok) {
        ++v.kind_mismatch;
        example(v, fmt::format("kind {} for {}", proto::message_kind_name(k), who));
      }
      if (recv[j].to != s.to) {
        ++v.corrupt;
        example(v, fmt::format("delivered to {} instead: {}", run.user_id(recv[j].to), who));
      }
    }
    for (std::uint32_t d = 0; d < got_on.size(); ++d) {
      if (got_on[d]) continue;
      if (opts.incomplete) {
        ++v.undelivered;
        example(v, fmt::format("not delivered yet on {}: {}", device_name(run, s.to, d), who));
      } else {
        ++v.lost;
        example(v, fmt::format("lost on {}: {}", device_name(run, s.to, d), who));
      }
    }
    if (status_for(s.recipient) != s.status) {
      ++v.status_inconsistent;
      example(v, "status does not fit the recipient state: " + who);
    }
    if (opts.check_presence) {
      const User& r = run.user(s.to);
      if (!possible_state(r.history, s.recipient, s.send_ns, s.sent_ns)) {
        ++v.presence_violation;
        example(v, "recipient was not in that state between send and sent: " + who);
      }
    }
    if (opts.strict_notices && s.status == SendStatus::kMissed) {
      for (const Device& d : run.user(s.to).devices) {
        if (d.notices.contains(s.id)) continue;
        ++v.missed_without_notice;
        example(v, fmt::format("no missed notice on {}: {}", device_name(run, s.to, d.index), who));
      }
    }
  }
  v.unconfirmed += recv.size() - std::min(recv.size(), j);
  verify_receipts(run, stats, sent, opts, v);
  return v;
}

}  // namespace oms::load
