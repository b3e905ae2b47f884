// Summing live counters over workers and merging worker statistics (see stats.h).
#include "load-tests/driver/stats.h"

#include <algorithm>
#include <utility>

namespace oms::load {

void Totals::add(const LiveCounters& live) {
  std::apply(
      [&](auto&... sum) {
        std::apply([&](const auto&... part) { ((sum += part.load(std::memory_order_relaxed)), ...); },
                   counter_fields(live));
      },
      counter_fields(*this));
}

void WorkerStats::merge(WorkerStats&& o) {
  send_to_sent.merge(o.send_to_sent);
  end_to_end.merge(o.end_to_end);
  send_to_sent_same.merge(o.send_to_sent_same);
  send_to_sent_cross.merge(o.send_to_sent_cross);
  end_to_end_same.merge(o.end_to_end_same);
  end_to_end_cross.merge(o.end_to_end_cross);
  missed_e2e.merge(o.missed_e2e);
  connect.merge(o.connect);
  hello_welcome.merge(o.hello_welcome);
  signin_total.merge(o.signin_total);
  to_drained.merge(o.to_drained);
  for (auto& [k, v] : o.errors) errors[k] += v;
  for (auto& [k, v] : o.statuses) statuses[k] += v;
  duplicates += o.duplicates;
  reordered += o.reordered;
  redelivered += o.redelivered;
  corrupt += o.corrupt;
  notices += o.notices;
  summaries += o.summaries;
  unanswered += o.unanswered;
  welcome_mismatch += o.welcome_mismatch;
  connect_retries += o.connect_retries;
  reconnects += o.reconnects;
  acks_sent += o.acks_sent;
  acked_ids += o.acked_ids;
  acks_ok += o.acks_ok;
  receipt_duplicates += o.receipt_duplicates;
  receipts_redelivered += o.receipts_redelivered;
  presence_sets += o.presence_sets;
  frames_in += o.frames_in;
  frames_out += o.frames_out;
  auto min_nz = [](std::int64_t a, std::int64_t b) { return a == 0 ? b : b == 0 ? a : std::min(a, b); };
  first_sent_ns = min_nz(first_sent_ns, o.first_sent_ns);
  first_recv_ns = min_nz(first_recv_ns, o.first_recv_ns);
  last_sent_ns = std::max(last_sent_ns, o.last_sent_ns);
  last_recv_ns = std::max(last_recv_ns, o.last_recv_ns);
  if (sent.empty()) sent = std::move(o.sent);
  else sent.insert(sent.end(), o.sent.begin(), o.sent.end());
  if (received.empty()) received = std::move(o.received);
  else received.insert(received.end(), o.received.begin(), o.received.end());
  if (receipts.empty()) receipts = std::move(o.receipts);
  else receipts.insert(receipts.end(), o.receipts.begin(), o.receipts.end());
  if (timeline.size() < o.timeline.size()) timeline.resize(o.timeline.size());
  for (std::size_t i = 0; i < o.timeline.size(); ++i) {
    timeline[i].sent_ok += o.timeline[i].sent_ok;
    timeline[i].received += o.timeline[i].received;
    timeline[i].errors += o.timeline[i].errors;
    timeline[i].signins += o.timeline[i].signins;
    timeline[i].latency.merge(o.timeline[i].latency);
  }
}

}  // namespace oms::load
