#include "server/router.h"

#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/ids.h"
#include "common/json_encode.h"
#include "common/utf8.h"
#include "server/cluster.h"
#include "server/context.h"
#include "server/delivery_rules.h"
#include "server/log.h"
#include "server/session_inbox.h"
#include "storage/policy_store.h"

namespace oms::server {

using proto::MessageKind;
using proto::PresenceState;

namespace {

std::shared_ptr<const std::string> share(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

std::string_view store_error_code(const Status& s) {
  switch (s.code()) {
    case Code::kMailboxFull: return "mailbox_full";
    case Code::kUnavailable: return "unavailable";
    case Code::kStoreFull: return "store_full";
    case Code::kIoError: return "store_error";
    case Code::kInvalidArgument: return "bad_request";
    case Code::kTooLarge: return "too_large";
    default: return "internal";
  }
}

// The first reply of an idempotent send, kept with its dedup entry.
std::string dedup_payload(std::string_view status, PresenceState recipient) {
  return fmt::format("{}/{}", status, proto::presence_name(recipient));
}

void parse_dedup_payload(std::string_view payload, std::string& status, PresenceState& recipient) {
  auto slash = payload.find('/');
  status = std::string(payload.substr(0, slash));
  recipient = PresenceState::kOffline;
  if (slash != std::string_view::npos)
    recipient = proto::parse_presence(payload.substr(slash + 1)).value_or(PresenceState::kOffline);
}

// The reply to a resend: the first append's id, status and recipient state.
proto::Sent duplicate_reply(const proto::Rid& rid, const storage::AppendResult& first) {
  proto::Sent sent;
  sent.rid = rid;
  sent.id = format_message_id(first.seq);
  parse_dedup_payload(first.dedup_payload, sent.status, sent.recipient);
  sent.duplicate = true;
  return sent;
}

}  // namespace

void Router::refuse_send(const std::shared_ptr<SessionInbox>& sender, const std::string& from,
                         const proto::Send& req, bool took_token, std::string_view code,
                         std::string_view message) {
  if (!req.client_msg_id.empty()) {
    auto first = ctx_.store->find_duplicate(from, req.client_msg_id);
    if (first && first.value()) {
      if (took_token) ctx_.send_rate.refund(from, ctx_.config.send_burst);
      ctx_.metrics.sent_duplicate.fetch_add(1, std::memory_order_relaxed);
      sender->post_frame(share(proto::encode_sent(duplicate_reply(req.rid, *first.value()))));
      return;
    }
    // A failed lookup: the refusal stands (it stores nothing either way).
  }
  refuse(sender, req.rid, code, message);
}

void Router::refuse(const std::shared_ptr<SessionInbox>& sender, const proto::Rid& rid,
                    std::string_view code, std::string_view message) {
  ctx_.metrics.count_send_error(code);
  sender->post_frame(share(proto::encode_error(rid, code, message)));
}

void Router::send(const std::shared_ptr<SessionInbox>& sender, const std::string& from,
                  bool sender_capable, proto::Send&& req) {
  const Config& cfg = ctx_.config;
  if (req.body.size() > cfg.max_body_bytes) {
    return refuse_send(sender, from, req, /*took_token=*/false, "too_large",
                  fmt::format("body is {} bytes; the limit is {}", req.body.size(), cfg.max_body_bytes));
  }
  if (ctx_.disk_guard && ctx_.disk_guard->full()) {  // protocol 4.4: a full disk refuses new messages
    ctx_.disk_guard->count_refused();
    return refuse_send(sender, from, req, /*took_token=*/false, "store_full",
                       "the server's disk is nearly full; new messages are refused for now");
  }
  if (!ctx_.send_rate.take(from, ctx_.clock->now_ms(), cfg.send_rate_per_second, cfg.send_burst)) {
    return refuse_send(sender, from, req, /*took_token=*/false, "rate_limited",
                  fmt::format("send rate above {}/s; slow down and retry", cfg.send_rate_per_second));
  }

  SendFacts facts;
  // In cluster mode the recipient may be signed in on another node.
  facts.recipient = ctx_.cluster ? ctx_.cluster->state_of(req.to) : ctx_.registry.state_of(req.to);
  facts.sender_capable = sender_capable;
  storage::EffectivePolicy eff;
  if (needs_policy(facts.recipient)) {
    const auto& policies = ctx_.database->policies();
    facts.organisation_allows_offline = policies.im_configuration().enable_offline_im;
    if (facts.organisation_allows_offline) {
      eff = policies.effective_policy_for(from);
      facts.policy_allows_offline = eff.policy.enable_im_auto_archiving;
    }
  }
  const Verdict verdict = decide(facts);
  if (is_refusal(verdict))
    return refuse_send(sender, from, req, /*took_token=*/true, refusal_code(verdict),
                       refusal_message(verdict, eff.policy.identity));
  const PresenceState state = facts.recipient;
  const MessageKind kind = message_kind(verdict);
  std::string reason;
  if (verdict == Verdict::kMissed) reason = std::string(proto::presence_name(state));

  // The body is kept for the fan-out frame only when someone may be online.
  std::shared_ptr<std::string> body_copy;
  if (kind != MessageKind::kOffline) body_copy = std::make_shared<std::string>(req.body);

  storage::AppendRequest append;
  append.mailbox = req.to;
  append.from = from;
  append.body = std::move(req.body);
  append.kind = kind;
  append.reason = reason;
  // (kept for a receipt arranged late: see the stored-after-all case below)
  std::string client_msg_id = verdict == Verdict::kDelivered ? req.client_msg_id : std::string();
  append.client_msg_id = std::move(req.client_msg_id);
  // Receipts (4.2): for what `sent` will call stored or missed, when the
  // recipient's effective policy asks for them, read now.
  if (verdict == Verdict::kStored || verdict == Verdict::kMissed)
    append.want_receipt = ctx_.database->policies().delivery_receipts_for(req.to);
  append.dedup_payload = dedup_payload(sent_status(verdict), PresenceRegistry::visible(state));

  const auto started = std::chrono::steady_clock::now();
  ctx_.store->append(
      std::move(append),
      [this, sender, rid = std::move(req.rid), to = std::move(req.to), from, verdict, state,
       reason = std::move(reason), body_copy, started,
       client_msg_id = std::move(client_msg_id)](Result<storage::AppendResult> r) mutable {
        // The store's completion thread: post only.
        if (!r) {
          std::string_view code = store_error_code(r.status());
          if (r.status().code() == Code::kStoreFull && ctx_.disk_guard) ctx_.disk_guard->count_refused();
          ctx_.metrics.count_send_error(code);
          sender->post_frame(share(proto::encode_error(
              rid, code, r.status().message().empty() ? std::string(code) : r.status().message())));
          return;
        }
        const storage::AppendResult& res = r.value();
        if (res.duplicate) {
          ctx_.metrics.sent_duplicate.fetch_add(1, std::memory_order_relaxed);
          sender->post_frame(share(proto::encode_sent(duplicate_reply(rid, res))));
          return;
        }
        proto::Sent sent;
        sent.rid = rid;
        sent.id = format_message_id(res.seq);
        ctx_.metrics.store_append_seconds.observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());

        // Fan out to whoever is signed in now (not only who was at decision time).
        const MessageKind kind = message_kind(verdict);
        auto sessions = ctx_.registry.sessions_of(to);
        Cluster* cluster = ctx_.cluster.get();
        if (!sessions.empty() || cluster) {
          auto d = std::make_shared<Delivery>();
          d->seq = res.seq;
          d->mseq = res.mseq;
          d->kind = kind;
          if (body_copy) {
            proto::Message m;
            m.id = sent.id;
            m.from = from;
            m.sent_at_ms = res.sent_at_ms;
            m.body = *body_copy;
            m.kind = kind;
            d->message_frame = share(proto::encode_message(m));
            if (kind == MessageKind::kMissed) {
              proto::Missed notice;
              notice.id = sent.id;
              notice.from = from;
              notice.sent_at_ms = res.sent_at_ms;
              notice.reason = reason;
              constexpr std::size_t kPreviewBytes = 100;
              notice.preview = std::string(utf8_prefix(*body_copy, kPreviewBytes));
              d->missed_notice = share(proto::encode(proto::ServerFrame{std::move(notice)}));
            }
          }
          // Other nodes commit to the same mailbox: the sessions read it.
          if (cluster) d->ordered = false;
          std::shared_ptr<const Delivery> shared = std::move(d);
          for (const auto& s : sessions) s->post_stored(shared);
          // The nodes holding the recipient's sessions push it (or read it).
          if (cluster) cluster->publish_delivery(to, *shared);
        }

        sent.status = sent_status(verdict);
        // appear-offline is reported as offline: the sender must not learn it.
        sent.recipient = PresenceRegistry::visible(state);
        // The recipient was online when the send was decided but left before
        // the message became durable: no session took it, it waits in the
        // mailbox. Say so (issue 15 item 9) instead of `delivered`, and, as
        // for any stored message, arrange its receipt (4.2) before `sent`.
        Verdict reported = verdict;
        if (verdict == Verdict::kDelivered && sessions.empty() && !(cluster && cluster->remote_state(to))) {
          reported = Verdict::kStored;
          sent.status = sent_status(Verdict::kStored);
          sent.recipient = PresenceState::kOffline;
        }
        switch (reported) {
          case Verdict::kDelivered: ctx_.metrics.sent_delivered.fetch_add(1, std::memory_order_relaxed); break;
          case Verdict::kStored: ctx_.metrics.sent_stored.fetch_add(1, std::memory_order_relaxed); break;
          default: ctx_.metrics.sent_missed.fetch_add(1, std::memory_order_relaxed); break;
        }
        auto frame = share(proto::encode_sent(sent));
        if (reported != verdict &&
            ctx_.database->policies().delivery_receipts_for(to)) {
          ctx_.store->want_receipt(
              to, res.seq, from, std::move(client_msg_id),
              [sender, frame, to, seq = res.seq](Result<std::uint64_t> marked) {
                // The message is stored whatever this says: `sent` goes out.
                if (!marked)
                  logger_for(LogComponent::kStore)
                      .warn("no receipt for message {} to {}: {}", seq, to, marked.status().to_string());
                sender->post_frame(frame);
              });
          return;
        }
        sender->post_frame(std::move(frame));
      });
}

void Router::receipts_written(const std::vector<storage::NewReceipt>& receipts) {
  Cluster* cluster = ctx_.cluster.get();
  for (const auto& r : receipts) {
    auto sessions = ctx_.registry.sessions_of(r.mailbox);
    if (sessions.empty() && !cluster) continue;
    proto::Receipt frame;
    frame.id = format_message_id(r.seq);
    frame.msg = format_message_id(r.receipt.msg_seq);
    frame.client_msg_id = r.receipt.client_msg_id;
    frame.to = r.receipt.to;
    frame.state = r.receipt.state;
    frame.at_ms = r.receipt.at_ms;
    auto d = std::make_shared<Delivery>();
    d->seq = r.seq;
    d->mseq = r.mseq;
    d->receipt = true;
    d->message_frame = share(proto::encode_receipt(frame));
    if (cluster) d->ordered = false;
    std::shared_ptr<const Delivery> shared = std::move(d);
    for (const auto& s : sessions) s->post_stored(shared);
    if (cluster) cluster->publish_delivery(r.mailbox, *shared);
  }
}

void Router::notify_watchers(const std::string& user, PresenceState before, PresenceState after) {
  before = PresenceRegistry::visible(before);
  after = PresenceRegistry::visible(after);
  if (before == after) return;
  auto watchers = ctx_.registry.watchers_of(user);
  if (watchers.empty()) return;
  auto frame = share(proto::encode(proto::ServerFrame{proto::PresenceEvent{user, after}}));
  for (const auto& w : watchers) w->post_frame(frame);
}

void Router::presence_changed(const std::string& user, const PresenceRegistry::StateChange& change) {
  PresenceState before = change.before, after = change.after;
  if (ctx_.cluster) {
    // Offline here is not offline: the user may be signed in elsewhere.
    auto remote = ctx_.cluster->remote_state(user);
    if (before == PresenceState::kOffline) before = remote.value_or(PresenceState::kOffline);
    if (after == PresenceState::kOffline) after = remote.value_or(PresenceState::kOffline);
  }
  notify_watchers(user, before, after);
  const bool left_suppression = proto::suppresses_interruptions(change.before) &&
                                !proto::suppresses_interruptions(change.after) &&
                                change.after != PresenceState::kOffline;
  if (!left_suppression) return;
  // The digest of missed messages that arrived meanwhile and are still unacked.
  const bool queued = ctx_.run_for_user(user, [this, user, since = change.suppressed_since_seq] {
    auto summary = ctx_.store->summary(user, "", since, /*missed_only=*/true);
    if (!summary) {
      logger_for(LogComponent::kSession)
          .warn("missed.summary for {} failed: {}", user, summary.status().to_string());
      return;
    }
    proto::MissedSummary digest;
    digest.count = summary->count;
    for (auto& [from, n] : summary->from) digest.from.push_back({from, n});
    auto frame = share(proto::encode(proto::ServerFrame{std::move(digest)}));
    for (const auto& s : ctx_.registry.sessions_of(user)) s->post_frame(frame);
  });
  if (!queued)
    logger_for(LogComponent::kSession).warn("missed.summary for {} skipped: its mailbox scans are queued full", user);
}

}  // namespace oms::server
