// The traffic of the cluster fault checker: see cluster_traffic.h.
#include "tests/cluster/cluster_traffic.h"

#include <algorithm>
#include <memory>
#include <random>
#include <thread>

#include <boost/json/serialize.hpp>

#include "tests/support/ws_client.h"

namespace oms::cluster_test {

using namespace std::chrono_literals;
using reliability::DeviceStream;
using test::Json;

namespace {

// Between failed connection attempts: short, growing, bounded, with jitter
// (a retry pace, not a synchronisation: the next attempt simply tries again).
void backoff(unsigned failures, std::mt19937_64& rng) {
  const auto base = std::min<unsigned>(failures, 10) * 50;
  std::this_thread::sleep_for(std::chrono::milliseconds(base + rng() % 50));
}

// Home first; after a failure there, haproxy; then home again.
std::size_t pick(std::size_t home, unsigned failures) { return home != 0 && failures % 2 == 0 ? home : 0; }

std::unique_ptr<test::WsClient> open(Traffic& t, ClientStats& st, std::size_t where, const std::string& token,
                                     const std::string& device) {
  auto c = std::make_unique<test::WsClient>(t.opt.connect_timeout);
  c->connect(t.ep.port(where));
  reliability::hello_as(*c, token, device);
  ++st.connects;
  ++(where == 0 ? st.via_haproxy : st.via_node);
  return c;
}

// The server's close code of a connection that ended (-1: none came).
int close_code_of(test::WsClient& c) {
  try {
    return c.expect_closed(std::nullopt, 0ms);
  } catch (const std::exception&) {
    return -2;
  }
}

}  // namespace

void run_sender(Traffic& t, std::size_t i, std::size_t recipients, const std::string& token, std::size_t home,
                std::uint64_t seed, reliability::SenderLog& log) {
  std::mt19937_64 rng(seed);
  ClientStats& st = t.senders_stats;
  std::unique_ptr<test::WsClient> c;
  std::uint64_t k = 1;
  auto first_try = Clock::now();  // of k
  bool resend = false;
  unsigned failures = 0;     // consecutive failed connection attempts
  unsigned errors_here = 0;  // consecutive error replies on this connection
  while (!t.stop.load()) {
    if (!c) {
      try {
        c = open(t, st, pick(home, failures), token, reliability::kSenderDevice);
        ++log.reconnects;
        failures = 0;
        errors_here = 0;
      } catch (const std::exception&) {
        ++failures;
        ++st.connect_failures;
        backoff(failures, rng);
        continue;
      }
    }
    try {
      const std::size_t j = reliability::recipient_of(i, k, recipients);
      log.attempted_max = std::max(log.attempted_max, k);
      if (resend) ++log.resends;
      const auto this_try = Clock::now();
      Json reply = c->request(Json{{"type", "send"},
                                   {"to", reliability::recipient_user(j)},
                                   {"body", reliability::body_of(i, k, j)},
                                   {"client_msg_id", reliability::cmid_of(i, k)}},
                              t.opt.request_timeout);
      // Receipts are recorded and acked without a rid: one lost to a break comes again, same id.
      std::vector<std::string> receipt_ids;
      for (const Json& r : c->take_all("receipt")) {
        log.receipts.push_back(reliability::receipt_of(r));
        receipt_ids.push_back(log.receipts.back().id);
      }
      if (!receipt_ids.empty()) (void)c->try_ack(receipt_ids);
      if (test::type_of(reply) == "sent") {
        const bool dup = reply.contains("duplicate");
        if (dup) ++log.dedup_answers;
        const auto now = Clock::now();
        log.acked[k] = reliability::SendRecord{test::str_of(reply, "id"), test::str_of(reply, "status"),
                                               dup ? first_try : this_try, now, dup};
        ++t.confirmed;
        ++k;
        first_try = now;
        resend = false;
        errors_here = 0;
        if (t.opt.pace.count() > 0) std::this_thread::sleep_for(t.opt.pace);
      } else {
        const std::string code = test::has(reply, "code") ? test::str_of(reply, "code") : test::to_text(reply);
        ++log.errors[code];
        st.error(code);
        resend = true;
        // Nothing was stored (contract 1.3): try again, on another node after a few.
        if (++errors_here >= 3) {
          c.reset();
          failures = 1;  // through haproxy
        }
        backoff(errors_here, rng);
      }
    } catch (const std::exception&) {
      // No reply in time, or the connection ended: drop it, resend k elsewhere.
      if (c->is_open()) {
        ++st.timeouts;
        c->drop();
      } else {
        st.close_code(close_code_of(*c));
      }
      ++st.breaks;
      c.reset();
      resend = true;
      failures = 1;  // the next attempt goes through haproxy
    }
  }
  if (c && c->is_open()) c->close();
}

void run_device(Traffic& t, const std::string& token, std::size_t home, std::uint64_t seed,
                reliability::DeviceLog& log, std::vector<Clock::time_point>& closes, DeviceProgress& progress) {
  std::mt19937_64 rng(seed);
  ClientStats& st = t.devices_stats;
  const TrafficOptions& o = t.opt;
  unsigned failures = 0;
  auto churn_delay = [&] {
    if (o.churn_max.count() <= 0) return Clock::duration::max();
    const auto span = static_cast<std::uint64_t>(std::max<std::int64_t>(1, (o.churn_max - o.churn_min).count()));
    return std::chrono::duration_cast<Clock::duration>(o.churn_min + std::chrono::milliseconds(rng() % span));
  };
  while (!t.stop.load()) {
    std::unique_ptr<test::WsClient> c;
    try {
      c = open(t, st, pick(home, failures), token, log.device);
      failures = 0;
    } catch (const std::exception&) {
      ++failures;
      ++st.connect_failures;
      backoff(failures, rng);
      continue;
    }
    DeviceStream s(*c, &log, nullptr);
    progress.online = true;
    const auto d = churn_delay();
    const auto churn_at = d == Clock::duration::max() ? Clock::time_point::max() : Clock::now() + d;
    auto last_ping = Clock::now();
    bool churned = false, broken = false;
    while (!t.stop.load()) {
      const std::uint64_t before = log.deliveries;
      const auto pumped = s.pump(100ms);
      if (log.deliveries != before) progress.last_delivery = Clock::now().time_since_epoch().count();
      if (pumped == DeviceStream::Pumped::kGone) {
        ++st.breaks;
        st.close_code(close_code_of(*c));
        broken = true;
        break;
      }
      const auto now = Clock::now();
      if (now - s.last_frame() > o.stall_timeout) {
        // Not even a pong: a hung node (its TCP connection still open).
        ++st.stalls;
        c->drop();
        broken = true;
        break;
      }
      if (now - s.last_frame() >= o.ping_every && now - last_ping >= o.ping_every) {
        last_ping = now;
        if (c->try_send_text(boost::json::serialize(Json{{"type", "ping"}, {"rid", c->next_rid()}}))) {
          ++st.breaks;
          broken = true;
          break;
        }
      }
      if (now >= churn_at && s.acks_unanswered() == 0) {
        ++st.churns;
        churned = true;
        break;
      }
    }
    progress.online = false;
    if (!broken) c->close();
    closes.push_back(Clock::now());
    if (broken) failures = 1;  // the next attempt goes through haproxy
    if (churned && o.churn_pause.count() > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % o.churn_pause.count()));
  }
}

}  // namespace oms::cluster_test
