// The receiving half of Connection: stored and live messages, receipts and
// mailbox.drained, checked against the device's own history (every message
// once per device, in order per sender; a message or receipt seen again after
// its ack was answered `ok` is a duplicate), and the acks, batched. Acks of a
// named device carry a rid; the `ok` marks their ids as acked for good.
#include <fmt/format.h>

#include "common/ids.h"
#include "common/json_encode.h"
#include "load-tests/driver/body.h"
#include "load-tests/driver/clock.h"
#include "load-tests/driver/connection.h"
#include "load-tests/driver/run_state.h"
#include "load-tests/driver/user.h"
#include "load-tests/driver/worker.h"

namespace oms::load {

void Connection::on_message(proto::Message& m) {
  const std::int64_t now = now_ns();
  auto id = parse_message_id(m.id);
  if (!id) {
    w_.count_error("bad_message_id");
    return;
  }
  queue_ack(*id);
  if (!session_ids_.insert(*id) || dev_.acked.contains(*id)) {
    ++w_.stats.duplicates;
    return;
  }
  if (!dev_.seen.insert(*id)) {
    ++w_.stats.redelivered;
    return;
  }
  auto h = parse_body(m.body);
  if (!h || h->sender >= run_.user_count() || m.from != run_.user_id(h->sender)) {
    ++w_.stats.corrupt;
  } else {
    auto& last = dev_.last_seq[h->sender];
    if (h->seq <= last) ++w_.stats.reordered;
    else last = h->seq;
    if (m.kind == proto::MessageKind::kLive) {
      w_.stats.end_to_end.record(now - h->t_ns);
      if (run_.opt.pairs_mixed)
        (run_.target_of(h->sender) == run_.target_of(u_.index) ? w_.stats.end_to_end_same : w_.stats.end_to_end_cross)
            .record(now - h->t_ns);
      if (run_.timeline_end_to_end)
        if (auto* sl = w_.slot(now)) sl->latency.record(now - h->t_ns);
    } else if (m.kind == proto::MessageKind::kMissed && welcomed_ && dev_.welcome_ns < h->t_ns) {
      w_.stats.missed_e2e.record(now - h->t_ns);
    }
  }
  w_.stats.received.push_back({*id, u_.index, static_cast<std::uint16_t>(dev_.index), m.kind});
  if (w_.stats.first_recv_ns == 0) w_.stats.first_recv_ns = now;
  w_.stats.last_recv_ns = now;
  if (auto* sl = w_.slot(now)) ++sl->received;
  w_.live.received.fetch_add(1, std::memory_order_relaxed);
}

void Connection::on_receipt(proto::Receipt& r) {
  auto id = parse_message_id(r.id);
  auto msg = parse_message_id(r.msg);
  if (!id || !msg) {
    w_.count_error("bad_receipt_id");
    return;
  }
  queue_ack(*id);
  if (!session_ids_.insert(*id) || dev_.acked.contains(*id)) {
    ++w_.stats.receipt_duplicates;
    return;
  }
  if (!dev_.receipts.insert(*id)) {
    ++w_.stats.receipts_redelivered;
    return;
  }
  ReceiptRecord rec;
  rec.id = *id;
  rec.msg = *msg;
  rec.sender = u_.index;
  rec.to = run_.user_index(r.to).value_or(UINT32_MAX);
  rec.device = static_cast<std::uint16_t>(dev_.index);
  rec.state = r.state;
  w_.stats.receipts.push_back(rec);
  w_.live.receipts.fetch_add(1, std::memory_order_relaxed);
}

void Connection::on_drained() {
  if (drained_) {
    w_.count_error("drained_twice");
    return;
  }
  drained_ = true;
  const std::int64_t now = now_ns();
  dev_.drained_ns = now;
  w_.stats.to_drained.record(now - dev_.signin_started_ns);
  w_.live.drained.fetch_add(1, std::memory_order_relaxed);
  if (run_.hooks) run_.hooks->on_drained(u_, dev_);
}

void Connection::on_ok(proto::Ok& ok) {
  const std::int64_t* rid = std::get_if<std::int64_t>(&ok.rid);
  if (!rid) return;
  if (auto a = ack_reqs_.find(*rid); a != ack_reqs_.end()) {
    for (std::uint64_t id : a->second) dev_.acked.insert(id);
    ++w_.stats.acks_ok;
    ack_reqs_.erase(a);
    return;
  }
  auto it = presence_reqs_.find(*rid);
  if (it == presence_reqs_.end()) return;
  const std::int64_t now = now_ns();
  if (it->second < u_.history.size()) {
    u_.history[it->second].confirmed_ns = now;
    u_.state = u_.history[it->second].state;
  }
  presence_reqs_.erase(it);
  w_.live.presence_ok.fetch_add(1, std::memory_order_relaxed);
}

void Connection::queue_ack(std::uint64_t id) {
  unacked_.push_back(id);
  if (unacked_.size() >= run_.opt.ack_batch) {
    flush_acks();
  } else if (!ack_armed_) {
    ack_armed_ = true;
    ack_timer_.expires_after(std::chrono::nanoseconds(static_cast<std::int64_t>(run_.opt.ack_delay_ms * 1e6)));
    ack_timer_.async_wait([self = shared_from_this()](const beast::error_code& ec) {
      self->ack_armed_ = false;
      if (!ec) self->flush_acks();
    });
  }
}

void Connection::flush_acks() {
  if (unacked_.empty()) return;
  if (phase_ != Phase::kOpen && !(phase_ == Phase::kClosing && !close_sent_)) {
    unacked_.clear();
    return;
  }
  proto::Ack ack;
  ack.ids = std::move(unacked_);
  unacked_.clear();
  if (run_.opt.named_devices()) {
    // The `ok` says these ids are acked for good on this device.
    const std::int64_t rid = next_rid_++;
    ack.rid = rid;
    ack_reqs_.emplace(rid, ack.ids);
  }
  ++w_.stats.acks_sent;
  w_.stats.acked_ids += ack.ids.size();
  write(proto::encode(proto::ClientFrame{std::move(ack)}));
}

}  // namespace oms::load
