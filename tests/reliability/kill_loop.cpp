// Kill loop: the real omsd, SIGKILLed at random moments under load.
//
// Synthetic senders (one thread and one WebSocket each) send numbered
// messages to offline recipients: sender i's k-th message has client_msg_id
// "s<i>-<k>" and a body that encodes (i, k, recipient). A sender sends one
// message at a time and moves to k+1 only after `sent`; when the connection
// breaks (the server was killed) it reconnects to the restarted server and
// resends k with the same client_msg_id, so the dedup index answers with the
// first id if the first attempt was stored. Meanwhile the controller kills
// omsd with SIGKILL at random moments (after a random number of newly
// acknowledged sends, 0 included: a kill right after the restart, during the
// reconnect storm) and restarts it on the same data dir, timing each restart
// to GET /readyz == 200.
//
// At the end every recipient signs in and drains its mailbox with acks, and
// the result is checked in Jepsen terms:
//   lost        acknowledged (`sent`) and never delivered           (must be 0)
//   unexpected  delivered but never sent, or with another sender,
//               recipient or body than sent, or another id than the
//               `sent` reply gave                                  (must be 0)
//   duplicated  one (sender, k) delivered under two different ids   (must be 0)
//   reordered   one sender's messages to one recipient out of k order (must be 0)
// then omsd is killed once more and restarted: every acked-and-deleted
// message must stay deleted (resurrected, must be 0).
//
// Usage: oms_kill_loop [--kills=20] [--senders=4] [--recipients=3]
//          [--max-seconds=90] [--max-gap=60] [--seed=N] [--report=FILE.md]
// Exits 0 only when every requirement holds.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/reliability/report.h"
#include "tests/support/omsd_process.h"
#include "tests/support/ws_client.h"

namespace oms::reliability {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using test::Json;

// How long a sender waits for a restart before trying again anyway, and the
// deadline of each request on a live connection.
constexpr auto kReconnectWait = 2s;
constexpr auto kRequestTimeout = 5s;
// A kill waits at most this long for its quota of new acknowledgements.
constexpr auto kKillGapLimit = 10s;
constexpr auto kDrainTimeout = 120s;

std::string sender_user(std::size_t i) { return fmt::format("sender{}@contoso.com", i); }
std::string recipient_user(std::size_t j) { return fmt::format("rcpt{}@contoso.com", j); }
std::size_t recipient_of(std::size_t i, std::uint64_t k, std::size_t recipients) {
  return (i + k) % recipients;
}
std::string body_of(std::size_t i, std::uint64_t k, std::size_t j) {
  std::string b = fmt::format("s{}:{}:{}|", i, k, j);
  const std::size_t pad = (k * 31 + i * 7) % 200;
  for (std::size_t p = 0; p < pad; ++p) b.push_back(static_cast<char>('a' + (k + p) % 26));
  return b;
}

// The server as the senders see it: a port and an epoch that changes at
// every restart.
struct ServerView {
  std::mutex mu;
  std::condition_variable cv;
  std::uint16_t port = 0;
  std::uint64_t epoch = 0;
  bool down = false;
  bool stop = false;
};

struct SenderLog {
  std::map<std::uint64_t, std::string> acked;  // k -> id from `sent`
  std::uint64_t attempted_max = 0;             // highest k ever sent
  std::uint64_t resends = 0, dedup_answers = 0, reconnects = 0;
  std::map<std::string, std::uint64_t> errors;  // error code -> count
};

void run_sender(std::size_t i, std::size_t recipients, const std::string& token, ServerView& view,
                std::atomic<std::uint64_t>& acked_total, SenderLog& log) {
  std::unique_ptr<test::WsClient> client;
  std::uint64_t k = 1;
  bool resend = false;
  std::uint64_t my_epoch = 0;
  for (;;) {
    std::uint16_t port = 0;
    {
      std::unique_lock<std::mutex> lock(view.mu);
      if (view.stop) return;
      if (!client) {
        // Wait for a restart (bounded); try again anyway when none comes.
        view.cv.wait_for(lock, kReconnectWait,
                         [&] { return view.stop || (!view.down && view.epoch != my_epoch); });
        if (view.stop) return;
        if (view.down) continue;
        my_epoch = view.epoch;
      }
      port = view.port;
    }
    try {
      if (!client) {
        auto c = std::make_unique<test::WsClient>(kRequestTimeout);
        c->connect(port);
        c->hello(token);
        client = std::move(c);
        ++log.reconnects;
      }
      const std::size_t j = recipient_of(i, k, recipients);
      log.attempted_max = std::max(log.attempted_max, k);
      if (resend) ++log.resends;
      Json reply = client->send(recipient_user(j), body_of(i, k, j), fmt::format("s{}-{}", i, k));
      if (test::type_of(reply) == "sent") {
        if (reply.contains("duplicate")) ++log.dedup_answers;
        log.acked[k] = test::str_of(reply, "id");
        ++acked_total;
        ++k;
        resend = false;
      } else {
        ++log.errors[test::str_of(reply, "code")];
        resend = true;
        client.reset();  // reconnect, then resend the same k
        my_epoch = 0;    // do not wait for a restart that may not come
      }
    } catch (const std::exception&) {
      client.reset();  // the server went away mid-request (or was not up yet)
      resend = true;
    }
  }
}

struct Delivered {
  std::string id, from, body;
};

}  // namespace
}  // namespace oms::reliability

int main(int argc, char** argv) {
  using namespace oms::reliability;
  using oms::test::OmsdProcess;
  ::signal(SIGPIPE, SIG_IGN);
  std::uint64_t seed = default_seed();
  std::unique_ptr<Flags> flags;
  try {
    flags = std::make_unique<Flags>(argc, argv,
                                    std::map<std::string, std::string>{
                                        {"kills", "20"},
                                        {"senders", "4"},
                                        {"recipients", "3"},
                                        {"max-seconds", "90"},
                                        {"max-gap", "60"},
                                        {"seed", std::to_string(seed)},
                                        {"report", ""},
                                        {"control-purge", "false"},
                                    });
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\nflags:\n";
    return 2;
  }
  seed = flags->num("seed");
  const std::size_t senders = flags->num("senders");
  const std::size_t recipients = flags->num("recipients");
  const std::uint64_t want_kills = flags->num("kills");
  const auto started = Clock::now();
  const auto deadline = started + std::chrono::seconds(flags->num("max-seconds"));
  std::mt19937_64 rng(seed);
  std::cout << "kill loop: seed " << seed << " (rerun with --seed=" << seed << ")\n";

  Figures f(flags->flag("control-purge")
                ? "Kill loop control (a mailbox purged behind the checker's back)"
                : "Kill loop (real omsd, SIGKILL, real WebSockets)");
  bool pass = true;
  try {
    OmsdProcess omsd;
    std::vector<std::string> tokens;
    for (std::size_t i = 0; i < senders; ++i) tokens.push_back(omsd.token(sender_user(i)));

    ServerView view;
    view.port = omsd.client_port();
    view.epoch = 1;
    std::atomic<std::uint64_t> acked_total{0};
    std::vector<SenderLog> logs(senders);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < senders; ++i)
      threads.emplace_back(run_sender, i, recipients, std::cref(tokens[i]), std::ref(view),
                           std::ref(acked_total), std::ref(logs[i]));

    std::vector<double> recovery_ms;
    std::uint64_t kills = 0, gap_timeouts = 0, restart_failures = 0;
    std::uniform_int_distribution<std::uint64_t> gap(0, flags->num("max-gap"));
    while (kills < want_kills && Clock::now() < deadline) {
      // A random moment: after `g` more acknowledged sends (bounded wait).
      const std::uint64_t target = acked_total.load() + gap(rng);
      const auto gap_end = Clock::now() + kKillGapLimit;
      if (!oms::test::wait_until([&] { return acked_total.load() >= target; },
                                 std::chrono::duration_cast<std::chrono::milliseconds>(
                                     gap_end - Clock::now()),
                                 std::chrono::milliseconds(1)))
        ++gap_timeouts;
      {
        std::lock_guard<std::mutex> lock(view.mu);
        view.down = true;
      }
      omsd.kill();
      ++kills;
      const auto t0 = Clock::now();
      try {
        omsd.restart();  // waits for ports.json, then /readyz == 200
      } catch (const std::exception& e) {
        ++restart_failures;
        std::cerr << "restart failed: " << e.what() << "\n";
        break;
      }
      recovery_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      {
        std::lock_guard<std::mutex> lock(view.mu);
        view.port = omsd.client_port();
        ++view.epoch;
        view.down = false;
      }
      view.cv.notify_all();
    }
    {
      std::lock_guard<std::mutex> lock(view.mu);
      view.stop = true;
    }
    view.cv.notify_all();
    for (auto& t : threads) t.join();  // each waits at most one request timeout

    // Control run: an operator purge of the first mailbox deletes
    // acknowledged messages behind the checker's back; it must see them lost.
    const bool control = flags->flag("control-purge");
    if (control) {
      const auto r = omsd.admin().del("/v1/users/" + recipient_user(0) + "/mailbox");
      if (r.status != 200) throw std::runtime_error("purge: HTTP " + std::to_string(r.status));
    }

    // ---- drain every mailbox with acks ----
    std::vector<std::vector<Delivered>> delivered(recipients);
    std::uint64_t drain_failures = 0, welcome_count = 0;
    for (std::size_t j = 0; j < recipients && restart_failures == 0; ++j) {
      oms::test::WsClient c(std::chrono::seconds(10));
      c.connect(omsd.client_port());
      Json welcome = c.hello(omsd.token(recipient_user(j)));
      welcome_count += static_cast<std::uint64_t>(
          oms::test::int_of(oms::test::obj_of(welcome, "mailbox"), "count"));
      const auto drain_end = Clock::now() + kDrainTimeout;
      bool drained = false;
      while (!drained && Clock::now() < drain_end) {
        auto frame = c.try_recv(std::chrono::seconds(10));
        if (!frame) break;
        const std::string type = oms::test::type_of(*frame);
        if (type == "message") {
          Delivered d{oms::test::str_of(*frame, "id"), oms::test::str_of(*frame, "from"),
                      oms::test::str_of(*frame, "body")};
          c.ack({d.id});
          delivered[j].push_back(std::move(d));
        } else if (type == "mailbox.drained") {
          drained = true;
        }
      }
      if (!drained) ++drain_failures;
      c.close();
    }

    // ---- check ----
    std::uint64_t acked = 0, resends = 0, dedup_answers = 0, reconnects = 0;
    std::map<std::string, std::uint64_t> errors;
    for (const auto& l : logs) {
      acked += l.acked.size();
      resends += l.resends;
      dedup_answers += l.dedup_answers;
      reconnects += l.reconnects;
      for (const auto& [code, n] : l.errors) errors[code] += n;
    }
    std::uint64_t lost = 0, unexpected = 0, duplicated = 0, reordered = 0, redelivered = 0,
                  indeterminate = 0, delivered_total = 0;
    std::vector<std::string> examples;
    std::map<std::pair<std::size_t, std::uint64_t>, std::string> id_of;  // (i,k) -> id delivered
    for (std::size_t j = 0; j < recipients; ++j) {
      std::set<std::string> ids;
      std::map<std::size_t, std::uint64_t> last_k;  // sender -> last k delivered to j
      for (const auto& d : delivered[j]) {
        if (!ids.insert(d.id).second) {
          ++redelivered;  // the same id again: a client drops it (at least once)
          continue;
        }
        ++delivered_total;
        std::size_t i = 0, jj = 0;
        unsigned long long k = 0;
        if (std::sscanf(d.body.c_str(), "s%zu:%llu:%zu|", &i, &k, &jj) != 3 || i >= senders ||
            jj != j || d.from != sender_user(i) || d.body != body_of(i, k, j) ||
            k > logs[i].attempted_max || k == 0) {
          ++unexpected;
          examples.push_back("unexpected: " + d.id + " " + d.body.substr(0, 40));
          continue;
        }
        auto ack = logs[i].acked.find(k);
        if (ack == logs[i].acked.end()) {
          ++indeterminate;  // sent, never confirmed (the run stopped first)
        } else if (ack->second != d.id) {
          ++unexpected;
          examples.push_back(fmt::format("id differs: s{}-{} sent {} delivered {}", i, k,
                                         ack->second, d.id));
        }
        auto [pos, fresh] = id_of.emplace(std::make_pair(i, k), d.id);
        if (!fresh && pos->second != d.id) {
          ++duplicated;
          examples.push_back(fmt::format("duplicated: s{}-{} as {} and {}", i, k, pos->second, d.id));
        }
        auto [lk, first] = last_k.emplace(i, k);
        if (!first) {
          if (k <= lk->second) {
            ++reordered;
            examples.push_back(fmt::format("reordered: s{} to r{}: {} after {}", i, j, k, lk->second));
          }
          lk->second = k;
        }
      }
    }
    for (std::size_t i = 0; i < senders; ++i)
      for (const auto& [k, id] : logs[i].acked)
        if (!id_of.count({i, k})) {
          ++lost;
          if (examples.size() < 20) examples.push_back(fmt::format("lost: s{}-{} ({})", i, k, id));
        }

    // ---- acked deletions survive a kill ----
    std::int64_t resurrected = -1;
    if (restart_failures == 0) {
      omsd.kill();
      omsd.restart();
      resurrected = 0;
      for (std::size_t j = 0; j < recipients; ++j) {
        const auto r = omsd.admin().get("/v1/users/" + recipient_user(j));
        if (r.status != 200) throw std::runtime_error("GET /v1/users/: HTTP " + std::to_string(r.status));
        resurrected += oms::test::int_of(oms::test::obj_of(r.json.as_object(), "mailbox"), "count");
      }
    }

    std::sort(recovery_ms.begin(), recovery_ms.end());
    const double rec_max = recovery_ms.empty() ? 0 : recovery_ms.back();
    const double rec_p50 = percentile(recovery_ms, 0.5);
    std::string error_text;
    for (const auto& [code, n] : errors) error_text += fmt::format("{}{}={}", error_text.empty() ? "" : ", ", code, n);

    if (control) {
      // Only the detection matters here: the purge must show up as loss.
      pass = lost > 0 && unexpected == 0;
      f.add("control (mailbox purged before the drain): **lost**", lost, "> 0 (the checker sees loss)");
    } else
    pass = kills >= want_kills && restart_failures == 0 && drain_failures == 0 && lost == 0 &&
           unexpected == 0 && duplicated == 0 && reordered == 0 && resurrected == 0 && acked > 0;
    f.add("SIGKILLs (each followed by a restart on the same data dir)", kills,
          fmt::format(">= {}", want_kills));
    f.add("  of which after the gap's time limit", gap_timeouts);
    f.add("senders / recipients", fmt::format("{} / {}", senders, recipients));
    f.add("sends acknowledged (`sent`)", acked, "> 0");
    f.add("resends after a broken connection or error", resends);
    f.add("  answered from the dedup index (`duplicate`)", dedup_answers);
    f.add("sender (re)connections", reconnects);
    f.add("error replies", error_text.empty() ? "none" : error_text);
    f.add("messages delivered at the final drain (distinct ids)", delivered_total);
    f.add("  same id delivered again (dropped by id)", redelivered);
    f.add("  sent, never confirmed, delivered (indeterminate)", indeterminate, "any");
    f.add("**lost** (acknowledged, never delivered)", lost, "0");
    f.add("**unexpected** (never sent / other content / other id)", unexpected, "0");
    f.add("**duplicated** (one send under two ids)", duplicated, "0");
    f.add("**reordered** (per sender and recipient)", reordered, "0");
    f.add("acked messages back after one more kill (resurrected)",
          resurrected < 0 ? std::string("not checked") : std::to_string(resurrected), "0");
    f.add("drain failures (no mailbox.drained in time)", drain_failures, "0");
    f.add("restart failures", restart_failures, "0");
    f.add("recovery, kill → /readyz 200: max ms", fmt::format("{:.0f}", rec_max));
    f.add("recovery, kill → /readyz 200: p50 ms", fmt::format("{:.0f}", rec_p50));
    f.add("seconds", fmt::format("{:.1f}",
                                 std::chrono::duration<double>(Clock::now() - started).count()));
    f.add("seed", seed);
    for (std::size_t e = 0; e < examples.size() && e < 10; ++e) f.note(examples[e]);
    (void)welcome_count;
  } catch (const std::exception& e) {
    pass = false;
    f.note(std::string("aborted: ") + e.what());
    std::cerr << "kill loop aborted: " << e.what() << "\n";
  }
  f.verdict(pass);
  f.print();
  f.write_markdown(flags->str("report"));
  return pass ? 0 : 1;
}
