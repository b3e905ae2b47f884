#include "load-tests/driver/verify.h"

#include <algorithm>

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
  std::sort(recv.begin(), recv.end(), [](const RecvRecord& a, const RecvRecord& b) { return a.id < b.id; });
  v.sent_ok = sent.size();
  v.received = recv.size();

  std::size_t j = 0;
  for (const SentRecord& s : sent) {
    while (j < recv.size() && recv[j].id < s.id) {
      ++v.unconfirmed;
      ++j;
    }
    const bool got = j < recv.size() && recv[j].id == s.id;
    const std::string who = fmt::format("message {} ({} -> {}, status {}, recipient {}, sent at {:.3f}s)",
                                        format_message_id(s.id), run.user_id(s.from), run.user_id(s.to),
                                        status_name(s.status), proto::presence_name(s.recipient),
                                        static_cast<double>(s.send_ns - run.t0) / 1e9);
    if (!got && opts.incomplete) {
      ++v.undelivered;
    } else if (!got) {
      ++v.lost;
      example(v, "lost: " + who);
    } else {
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
      ++j;
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
    if (opts.strict_notices && s.status == SendStatus::kMissed && !run.user(s.to).notices.contains(s.id)) {
      ++v.missed_without_notice;
      example(v, "no missed notice: " + who);
    }
  }
  v.unconfirmed += recv.size() - std::min(recv.size(), j);
  return v;
}

}  // namespace oms::load
