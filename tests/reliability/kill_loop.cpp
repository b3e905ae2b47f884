// Kill loop: the real omsd, SIGKILLed at random moments under load.
//
// Synthetic senders (one thread and one WebSocket each, signed in as device
// "phone" with offline-messages) send numbered messages to recipients who
// each have two named devices, "d1" and "d2" (contract 4.1): sender i's k-th message has client_msg_id
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
// Kills come in three kinds, in turn (kill_kind()):
//   plain     after a random number of newly confirmed sends (recipients
//             offline);
//   mid-drain one recipient device signs in and drains, acking with a rid,
//             and omsd is killed after a random number of `ok` replies
//             (0 included), acks possibly still in flight;
//   between   "kill -9 between the two devices' acks": one device drains
//             everything and every ack got `ok`, SIGKILL, then the other
//             device drains (it must get every message the first acked) and
//             the first signs in again (it must get none it acked with ok).
// Every ack carries a rid; an id counts as acked by a device only once its
// `ok` came. The senders record every `receipt` frame (4.2) and ack it.
//
// At the end both devices of every recipient drain with acks, omsd is
// killed and restarted, then every sender signs in and drains its receipts
// (written while it was offline), and the result is checked in
// Jepsen terms, per device:
//   lost        acknowledged (`sent`) and never delivered to a device (must be 0)
//   dup-after-ok delivered to a device again after its ack got ok     (must be 0)
//   unexpected  delivered but never sent, or with another sender,
//               recipient or body than sent, or another id than the
//               `sent` reply gave                                  (must be 0)
//   duplicated  one (sender, k) delivered under two different ids   (must be 0)
//   reordered   one sender's messages to one device out of k order, in
//               one session or by first delivery                  (must be 0)
// and for receipts: exactly one (by `msg`; a repeat of the same receipt id
// is dropped by id) per confirmed message whose `sent` said stored or
// missed, state delivered, for the right message (missing, duplicate, wrong:
// must be 0); the mailbox is empty once both devices acked everything; then
// omsd is killed once more and restarted: every acked-and-deleted message and
// receipt must stay deleted (resurrected, must be 0).
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

#include "tests/reliability/kill_loop_devices.h"
#include "tests/reliability/report.h"
#include "tests/support/omsd_process.h"
#include "tests/support/ws_client.h"

namespace oms::reliability {
namespace {

using namespace std::chrono_literals;
using test::Json;

// How long a sender waits for a restart before trying again anyway, and the
// deadline of each request on a live connection.
constexpr auto kReconnectWait = 2s;
constexpr auto kRequestTimeout = 5s;
// A kill waits at most this long for its quota of new acknowledgements.
constexpr auto kKillGapLimit = 10s;
constexpr auto kDrainTimeout = 120s;
// A sender's `stored` for a message sent while a recipient session was
// closing: counted apart (it once lacked its receipt; server/PROTOCOL.md,
// "Stored after all"); the window.
constexpr auto kCloseMargin = 2s;

enum class KillKind { kPlain, kMidDrain, kBetween };
KillKind kill_kind(std::uint64_t n) {
  switch (n % 4) {
    case 1: return KillKind::kMidDrain;
    case 3: return KillKind::kBetween;
    default: return KillKind::kPlain;
  }
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

void run_sender(std::size_t i, std::size_t recipients, const std::string& token, ServerView& view,
                std::atomic<std::uint64_t>& acked_total, SenderLog& log) {
  std::unique_ptr<test::WsClient> client;
  std::uint64_t k = 1;
  auto first_try = Clock::now();  // of k
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
        hello_as(*c, token, kSenderDevice);
        client = std::move(c);
        ++log.reconnects;
      }
      const std::size_t j = recipient_of(i, k, recipients);
      log.attempted_max = std::max(log.attempted_max, k);
      if (resend) ++log.resends;
      const auto this_try = Clock::now();
      Json reply = client->send(recipient_user(j), body_of(i, k, j), cmid_of(i, k));
      // Receipts (pushed live, or streamed at sign-in) are recorded and
      // acked without a rid: one lost to a kill comes again, same id.
      std::vector<std::string> receipt_ids;
      for (const Json& r : client->take_all("receipt")) {
        log.receipts.push_back(receipt_of(r));
        receipt_ids.push_back(log.receipts.back().id);
      }
      if (!receipt_ids.empty()) (void)client->try_ack(receipt_ids);
      if (test::type_of(reply) == "sent") {
        if (reply.contains("duplicate")) ++log.dedup_answers;
        // The send was decided during this try, or (a dedup answer) during
        // an earlier one.
        log.acked[k] = SendRecord{test::str_of(reply, "id"), test::str_of(reply, "status"),
                                  reply.contains("duplicate") ? first_try : this_try, Clock::now(),
                                  reply.contains("duplicate")};
        ++acked_total;
        ++k;
        first_try = Clock::now();
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

}  // namespace
}  // namespace oms::reliability

int main(int argc, char** argv) {
  using namespace oms::reliability;
  using oms::test::OmsdProcess;
  using oms::test::WsClient;
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
  const bool control = flags->flag("control-purge");
  const auto started = Clock::now();
  const auto deadline = started + std::chrono::seconds(flags->num("max-seconds"));
  std::mt19937_64 rng(seed);
  std::cout << "kill loop: seed " << seed << " (rerun with --seed=" << seed << ")\n";

  Figures f(control ? "Kill loop control (a mailbox purged behind the checker's back)"
                    : "Kill loop (real omsd, SIGKILL, real WebSockets, two devices per recipient, receipts)");
  bool pass = true;
  try {
    OmsdProcess omsd;
    std::vector<std::string> tokens, rtokens;
    for (std::size_t i = 0; i < senders; ++i) tokens.push_back(omsd.token(sender_user(i)));
    for (std::size_t j = 0; j < recipients; ++j) rtokens.push_back(omsd.token(recipient_user(j)));

    // The recipient devices: devices[j * 2 + d].
    std::vector<DeviceLog> devices;
    for (std::size_t j = 0; j < recipients; ++j)
      for (const auto& name : kRecipientDevices) {
        devices.emplace_back();
        devices.back().recipient = j;
        devices.back().device = name;
      }
    auto dev = [&](std::size_t j, std::size_t d) -> DeviceLog& { return devices[j * 2 + d]; };
    std::vector<std::vector<Clock::time_point>> closes(recipients);  // client-side session ends
    auto open_device = [&](std::size_t j, std::size_t d) {
      auto c = std::make_unique<WsClient>(std::chrono::seconds(10));
      c->connect(omsd.client_port());
      oms::test::Json welcome = hello_as(*c, rtokens[j], kRecipientDevices[d]);
      return std::make_pair(std::move(c), std::move(welcome));
    };
    auto close_device = [&](WsClient& c, std::size_t j) {
      closes[j].push_back(Clock::now());
      c.close();
    };
    // Every device signs in once before anything is sent: from then on it is
    // active and holds every message back until it acked it.
    for (std::size_t j = 0; j < recipients; ++j)
      for (std::size_t d = 0; d < kRecipientDevices.size(); ++d) {
        auto c = open_device(j, d).first;
        drain(*c, &dev(j, d), nullptr, UINT64_MAX, std::chrono::seconds(20));
        close_device(*c, j);
      }

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
    std::uint64_t mid_drain_kills = 0, mid_drain_oks = 0;
    std::uint64_t between_kills = 0, between_acked = 0, between_missing = 0, between_redelivered = 0,
                  between_incomplete = 0;
    std::uniform_int_distribution<std::uint64_t> gap(0, flags->num("max-gap"));
    auto wait_gap = [&](std::uint64_t g) {
      const std::uint64_t target = acked_total.load() + g;
      if (!oms::test::wait_until([&] { return acked_total.load() >= target; },
                                 std::chrono::duration_cast<std::chrono::milliseconds>(kKillGapLimit),
                                 std::chrono::milliseconds(1)))
        ++gap_timeouts;
    };
    // SIGKILL, restart on the same data dir; false when the restart failed.
    auto kill_restart = [&] {
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
        return false;
      }
      recovery_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      {
        std::lock_guard<std::mutex> lock(view.mu);
        view.port = omsd.client_port();
        ++view.epoch;
        view.down = false;
      }
      view.cv.notify_all();
      return true;
    };
    // The control run keeps the purged mailbox (the first) out of the drains
    // during the run, so that the purge always takes something unacked.
    auto pick_recipient = [&]() -> std::size_t {
      return control && recipients > 1 ? 1 + rng() % (recipients - 1) : rng() % recipients;
    };
    while (kills < want_kills && Clock::now() < deadline) {
      const KillKind kind = kill_kind(kills);
      if (kind == KillKind::kPlain) {
        wait_gap(gap(rng));  // a random moment: after `g` more confirmed sends
        if (!kill_restart()) break;
      } else if (kind == KillKind::kMidDrain) {
        wait_gap(gap(rng) / 2);
        const std::size_t j = pick_recipient(), d = rng() % kRecipientDevices.size();
        auto c = open_device(j, d).first;
        const auto r = drain(*c, &dev(j, d), nullptr, rng() % 40, std::chrono::seconds(20));
        ++mid_drain_kills;
        mid_drain_oks += r.oks;
        if (!kill_restart()) break;
      } else {
        // kill -9 between the two devices' acks.
        wait_gap(gap(rng) / 2);
        const std::size_t j = pick_recipient(), a = rng() % 2, b = 1 - a;
        const std::set<std::string> b_acked_before = dev(j, b).ack_sent;
        const std::set<std::string> a_ok_before = dev(j, a).ok;
        auto ca = open_device(j, a).first;
        if (!drain(*ca, &dev(j, a), nullptr, UINT64_MAX, std::chrono::seconds(60)).drained)
          ++between_incomplete;
        std::vector<std::string> a_acked;  // acked with ok in this drain
        for (const auto& id : dev(j, a).ok)
          if (!a_ok_before.count(id)) a_acked.push_back(id);
        ++between_kills;
        between_acked += a_acked.size();
        if (!kill_restart()) break;
        ca.reset();
        const std::uint64_t b_first = dev(j, b).first.size();
        const std::set<std::string> b_seen_before = dev(j, b).seen;
        auto cb = open_device(j, b).first;
        if (!drain(*cb, &dev(j, b), nullptr, UINT64_MAX, std::chrono::seconds(60)).drained)
          ++between_incomplete;
        close_device(*cb, j);
        std::set<std::string> b_got(b_seen_before);
        for (std::size_t x = b_first; x < dev(j, b).first.size(); ++x) b_got.insert(dev(j, b).first[x].id);
        for (const auto& id : a_acked)
          if (!b_acked_before.count(id) && !b_got.count(id)) {
            ++between_missing;
            f.note(fmt::format("between kill {}: {} acked by {}/{} with ok, not delivered to {} after the kill",
                               kills, id, recipient_user(j), kRecipientDevices[a], kRecipientDevices[b]));
          }
        const std::uint64_t dup_before = dev(j, a).dup_after_ok;
        auto ca2 = open_device(j, a).first;
        if (!drain(*ca2, &dev(j, a), nullptr, UINT64_MAX, std::chrono::seconds(60)).drained)
          ++between_incomplete;
        close_device(*ca2, j);
        between_redelivered += dev(j, a).dup_after_ok - dup_before;
      }
    }
    {
      std::lock_guard<std::mutex> lock(view.mu);
      view.stop = true;
    }
    view.cv.notify_all();
    for (auto& t : threads) t.join();  // each waits at most one request timeout

    // Control run: an operator purge of the first mailbox deletes
    // acknowledged messages behind the checker's back; it must see them lost.
    if (control) {
      const auto r = omsd.admin().del("/v1/users/" + recipient_user(0) + "/mailbox");
      if (r.status != 200) throw std::runtime_error("purge: HTTP " + std::to_string(r.status));
    }

    // ---- both devices of every recipient drain with acks, then every sender its receipts ----
    auto mailbox_counts = [&] {
      std::int64_t n = 0;
      for (std::size_t j = 0; j < recipients; ++j) {
        const auto r = omsd.admin().get("/v1/users/" + recipient_user(j));
        if (r.status != 200) throw std::runtime_error("GET /v1/users/: HTTP " + std::to_string(r.status));
        n += oms::test::int_of(oms::test::obj_of(r.json.as_object(), "mailbox"), "count");
      }
      return n;
    };
    std::uint64_t drain_failures = 0, final_receipts = 0;
    std::int64_t left = -1;
    if (restart_failures == 0) {
      for (std::size_t j = 0; j < recipients; ++j) {
        const std::size_t first = rng() % 2;
        for (std::size_t d : {first, 1 - first}) {
          auto c = open_device(j, d).first;
          if (!drain(*c, &dev(j, d), nullptr, UINT64_MAX, kDrainTimeout).drained) ++drain_failures;
          close_device(*c, j);
        }
      }
      left = mailbox_counts();
      // The receipts of that drain were written while every sender was
      // offline: they must survive a restart too.
      omsd.kill();
      omsd.restart();
      for (std::size_t i = 0; i < senders; ++i) {
        const std::size_t before = logs[i].receipts.size();
        WsClient c(std::chrono::seconds(10));
        c.connect(omsd.client_port());
        hello_as(c, tokens[i], kSenderDevice);
        if (!drain(c, nullptr, &logs[i].receipts, UINT64_MAX, kDrainTimeout).drained) ++drain_failures;
        c.close();
        final_receipts += logs[i].receipts.size() - before;
      }
    }

    // ---- check ----
    std::uint64_t acked = 0, resends = 0, dedup_answers = 0, reconnects = 0, stored = 0;
    std::map<std::string, std::uint64_t> errors;
    for (const auto& l : logs) {
      acked += l.acked.size();
      resends += l.resends;
      dedup_answers += l.dedup_answers;
      reconnects += l.reconnects;
      for (const auto& [code, n] : l.errors) errors[code] += n;
      for (const auto& [k, rec] : l.acked) stored += rec.status != "delivered";
    }
    const DeliveryFigures d = check_deliveries(logs, devices, recipients);
    const ReceiptFigures rc = check_receipts(logs, recipients, closes, kCloseMargin);

    // ---- acked deletions survive a kill: nothing left for any device or sender ----
    std::int64_t resurrected = -1;
    if (restart_failures == 0) {
      omsd.kill();
      omsd.restart();
      resurrected = mailbox_counts();
      for (std::size_t j = 0; j < recipients; ++j)
        for (std::size_t dd = 0; dd < kRecipientDevices.size(); ++dd) {
          auto [c, welcome] = open_device(j, dd);
          resurrected += oms::test::int_of(oms::test::obj_of(welcome, "mailbox"), "count");
          c->close();
        }
      for (std::size_t i = 0; i < senders; ++i) {
        WsClient c(std::chrono::seconds(10));
        c.connect(omsd.client_port());
        resurrected += oms::test::int_of(oms::test::obj_of(hello_as(c, tokens[i], kSenderDevice), "mailbox"),
                                         "receipts");
        c.close();
      }
    }

    std::sort(recovery_ms.begin(), recovery_ms.end());
    const double rec_max = recovery_ms.empty() ? 0 : recovery_ms.back();
    const double rec_p50 = percentile(recovery_ms, 0.5);
    std::string error_text;
    for (const auto& [code, n] : errors) error_text += fmt::format("{}{}={}", error_text.empty() ? "" : ", ", code, n);

    if (control) {
      // Only the detection matters here: the purge must show up as loss.
      pass = d.lost > 0 && d.unexpected == 0;
      f.add("control (mailbox purged before the drain): **lost** (per device)", d.lost,
            "> 0 (the checker sees loss)");
    } else {
      pass = kills >= want_kills && restart_failures == 0 && drain_failures == 0 && d.lost == 0 &&
             d.unexpected == 0 && d.duplicated == 0 && d.reordered == 0 && d.session_repeats == 0 &&
             d.dup_after_ok == 0 &&
             d.ack_errors == 0 && resurrected == 0 && left == 0 && acked > 0 && rc.missing == 0 &&
             rc.excused == 0 && rc.duplicate == 0 && rc.wrong == 0 && rc.for_live == 0 && between_missing == 0 &&
             between_incomplete == 0 && (want_kills < 4 || between_kills > 0);
    }
    f.add("SIGKILLs (each followed by a restart on the same data dir)", kills,
          fmt::format(">= {}", want_kills));
    f.add("  of which after the gap's time limit", gap_timeouts);
    f.add("  of which during a device's drain (acks in flight)", mid_drain_kills);
    f.add("  of which between the two devices' acks", between_kills, want_kills >= 4 ? "> 0" : "");
    f.add("senders / recipients (x2 devices)", fmt::format("{} / {}", senders, recipients));
    f.add("sends acknowledged (`sent`)", acked, "> 0");
    f.add("  of which `stored` or `missed` (a receipt due)", stored);
    f.add("resends after a broken connection or error", resends);
    f.add("  answered from the dedup index (`duplicate`)", dedup_answers);
    f.add("sender (re)connections", reconnects);
    f.add("error replies", error_text.empty() ? "none" : error_text);
    f.add("device sessions / acks sent (with rid) / answered ok", fmt::format("{} / {} / {}", d.sessions, d.acks, d.oks));
    f.add("ack replies other than ok", d.ack_errors, "0");
    f.add("messages delivered (distinct ids, summed over devices)", d.delivered);
    f.add("  same id to the same device again, not acked with ok before", d.redelivered);
    f.add("  sent, never confirmed, delivered (indeterminate)", d.indeterminate, "any");
    f.add("**lost** (acknowledged, never delivered to a device; per device)", d.lost, "0");
    f.add("**delivered again after ok** (to the device whose ack got ok)", d.dup_after_ok, "0");
    f.add("**unexpected** (never sent / other content / other id)", d.unexpected, "0");
    f.add("**duplicated** (one send under two ids)", d.duplicated, "0");
    f.add("**reordered** (per sender and device)", d.reordered, "0");
    f.add("the same id twice in one session", d.session_repeats, "0");
    f.add("between kills: ids acked with ok by the first device", between_acked);
    f.add("between kills: of those, not delivered to the other device", between_missing, "0");
    f.add("between kills: of those, delivered to the first device again", between_redelivered, "0");
    f.add("mid-drain kills: oks before the kill", mid_drain_oks);
    f.add("messages left after both devices acked everything",
          left < 0 ? std::string("not checked") : std::to_string(left), "0");
    f.add("receipt frames received / distinct ids", fmt::format("{} / {}", rc.frames, rc.distinct));
    f.add("  same receipt id again (not acked before a kill)", rc.repeated);
    f.add("  received at the senders' final sign-in (offline senders, after a restart)", final_receipts);
    f.add("receipts due (confirmed `stored`/`missed`)", rc.expected);
    f.add("**receipts missing**", rc.missing, "0");
    f.add("  missing, sent while a recipient session closed (PROTOCOL.md's \"stored after all\")", rc.excused, "0");
    f.add("    longest from the client's close to the send (ms; the window is 2,000)",
          static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(rc.excused_lead).count()));
    f.add("**duplicate receipts** (two receipt ids for one message)", rc.duplicate, "0");
    f.add("receipts wrong (state not delivered, other message or recipient)", rc.wrong, "0");
    f.add("receipts for a message whose `sent` said delivered", rc.for_live, "0");
    f.add("receipts for never-confirmed sends", rc.indeterminate, "any");
    f.add("messages and receipts back after one more kill (resurrected)",
          resurrected < 0 ? std::string("not checked") : std::to_string(resurrected), "0");
    f.add("drain failures (no mailbox.drained in time)", drain_failures + between_incomplete, "0");
    f.add("restart failures", restart_failures, "0");
    f.add("recovery, kill → /readyz 200: max ms", fmt::format("{:.0f}", rec_max));
    f.add("recovery, kill → /readyz 200: p50 ms", fmt::format("{:.0f}", rec_p50));
    f.add("seconds", fmt::format("{:.1f}",
                                 std::chrono::duration<double>(Clock::now() - started).count()));
    f.add("seed", seed);
    for (std::size_t e = 0; e < d.examples.size() && e < 10; ++e) f.note(d.examples[e]);
    for (std::size_t e = 0; e < rc.examples.size() && e < 10; ++e) f.note(rc.examples[e]);
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
