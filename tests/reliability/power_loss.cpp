// Simulated power loss under the real mailbox store (RocksDB, group commit).
//
// Each round: open the store on a FaultFs, let many threads append
// concurrently, cut the power at a random I/O operation (every later write or
// sync fails), close, drop every byte that was not synced (FaultFs), reopen,
// and check the whole history so far:
//   lost        an append whose completion reported OK is missing   (must be 0)
//   unexpected  a stored message that was never appended, or whose
//               sender/mailbox/body differ from what was appended  (must be 0)
//   duplicated  one append stored under two sequence numbers       (must be 0)
//   reordered   one thread's appends to one mailbox out of order   (must be 0)
//   id changed  an acknowledged append found under another seq     (must be 0)
//   meta drift  mailbox meta count != messages in the mailbox, or a
//               device's summary count != what read() yields for it,
//               or receipt counts (meta, summary) != receipts read  (must be 0)
//   resurrected deleted by an ack that completed OK, back again     (must be 0)
// Devices and receipts (contract 4.1, 4.2): every mailbox's user has two
// named devices, "d1" and "d2", signed in (device_signed_in, capable) at the
// start of every round; every append asks for a receipt. An acker thread
// acks, concurrently with the appends and the crash, about half of the
// acknowledged messages seen at the start of the round, each with one of its
// devices that has not acked it yet or with both, one request per device
// and chunk. A message leaves only once both devices acked it. Checked too:
//   ack undone  read(mailbox, device) returns a message that device's
//               ack completed OK for                               (must be 0)
//   lost        ... and a message stays until both devices acked it
//   resurrected a message both devices' acks completed OK for      (must be 0)
//   receipts    in the writers' own mailboxes: at most one per message
//               (duplicate), one for every message an ack of which
//               completed OK (missing: durable no later than that OK), none
//               for a message nobody tried to ack (unexpected), each naming
//               its message, recipient and client_msg_id, state delivered
//               (wrong)                                            (all 0)
// Appends that failed (or were cut by the crash) may be present or not: they
// are counted as "indeterminate present".
//
// The control run does the same with StoreOptions::sync = false and must
// report lost > 0: proof that the test sees loss when there is loss.
//
// Usage: oms_power_loss [--crash-points=50] [--control-crash-points=10]
//          [--threads=16] [--seed=N] [--max-seconds=120] [--report=FILE.md]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
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

#include "storage/store.h"
#include "tests/reliability/fault_fs.h"
#include "tests/reliability/report.h"

namespace oms::reliability {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMailboxes = 8;
constexpr std::size_t kDevices = 2;
const char* const kDeviceNames[kDevices] = {"d1", "d2"};
// Acks per request of the acker thread.
constexpr std::size_t kAckChunk = 64;
// Bounds of one round: appends per thread, wall time before the power is
// cut anyway, and how long one append may take before the run is declared
// stuck.
constexpr std::uint64_t kMaxAppendsPerThreadPerRound = 400;
constexpr auto kRoundTimeLimit = std::chrono::seconds(5);
constexpr auto kAppendTimeout = std::chrono::seconds(20);

std::string mailbox_name(std::uint64_t i) { return fmt::format("box{}@contoso.com", i); }
std::string sender_name(std::uint64_t t) { return fmt::format("writer{}@contoso.com", t); }
std::string key_of(std::uint64_t t, std::uint64_t n) { return fmt::format("t{}-n{}", t, n); }
// Deterministic, length varies with n; checks bodies come back intact.
std::string body_of(std::uint64_t t, std::uint64_t n) {
  std::string b = key_of(t, n) + "|";
  const std::size_t pad = (n * 37 + t * 11) % 300;
  for (std::size_t i = 0; i < pad; ++i) b.push_back(static_cast<char>('a' + (n + i + t) % 26));
  return b;
}

struct Attempt {
  std::uint64_t thread = 0, n = 0;
  std::string mailbox;
  bool acked = false;
  std::uint64_t seq = 0;
  // Per device: 0 not acked, 1 ack sent but not confirmed (indeterminate),
  // 2 ack confirmed OK (never read back for that device; gone once both are).
  int dev[kDevices] = {0, 0};
  bool any_ok() const { return dev[0] == 2 || dev[1] == 2; }
  bool all_ok() const { return dev[0] == 2 && dev[1] == 2; }
  bool some_unacked() const { return dev[0] == 0 || dev[1] == 0; }
  bool ack_tried() const { return dev[0] != 0 || dev[1] != 0; }
};

// An acknowledged message seen present that a device has not acked with
// OK yet, to be acked next round.
struct Present {
  std::string key, mailbox;
  std::uint64_t seq = 0;
  int dev[kDevices] = {0, 0};
};

struct Ledger {
  std::mutex mu;
  std::map<std::string, Attempt> attempts;  // by key
};

struct Totals {
  std::uint64_t rounds = 0, forced_crashes = 0, attempted = 0, acked = 0, failed = 0;
  std::uint64_t files_truncated = 0, files_removed = 0, bytes_dropped = 0;
  std::set<std::string> lost, unexpected, duplicated, id_changed, indeterminate_present, resurrected;
  std::set<std::string> ack_undone;  // "key/device"
  std::set<std::uint64_t> receipt_duplicate, receipt_missing, receipt_unexpected, receipt_wrong;
  std::uint64_t receipts_seen = 0, device_acks_confirmed = 0, both_acked = 0, first_acked = 0;
  std::uint64_t device_signins_ok = 0, device_signins_failed = 0;
  std::uint64_t acks_confirmed = 0, acks_failed = 0, flushes_ok = 0, flushes_failed = 0;
  std::uint64_t reordered = 0, meta_drift = 0, reopen_failures = 0, stuck = 0, crashed_in_open = 0;
};

// Checks every mailbox against the ledger (see the file comment).
std::vector<Present> verify(storage::MailboxStore& store, Ledger& ledger, Totals& t,
                            std::uint64_t threads) {
  std::vector<Present> present;
  std::lock_guard<std::mutex> lock(ledger.mu);
  std::set<std::string> seen;
  for (std::size_t m = 0; m < kMailboxes; ++m) {
    const std::string mailbox = mailbox_name(m);
    auto msgs = store.read(mailbox, "", 0, SIZE_MAX - 1);
    if (!msgs) {
      t.unexpected.insert("read failed: " + msgs.status().message());
      continue;
    }
    std::map<std::uint64_t, std::uint64_t> last_n;  // thread -> last n in seq order
    for (const auto& msg : msgs.value()) {
      const std::string key = msg.body.substr(0, msg.body.find('|'));
      auto it = ledger.attempts.find(key);
      if (it == ledger.attempts.end()) {
        t.unexpected.insert(fmt::format("{}#{}", mailbox, msg.seq));
        continue;
      }
      const Attempt& a = it->second;
      if (a.mailbox != mailbox || msg.from != sender_name(a.thread) ||
          msg.body != body_of(a.thread, a.n)) {
        t.unexpected.insert(key + " (content differs)");
        continue;
      }
      if (!seen.insert(key).second) t.duplicated.insert(key);
      if (a.acked && msg.seq != a.seq) t.id_changed.insert(key);
      if (a.all_ok()) t.resurrected.insert(key);
      if (a.acked && !a.all_ok()) {
        Present p{key, mailbox, msg.seq};
        std::copy(std::begin(a.dev), std::end(a.dev), std::begin(p.dev));
        present.push_back(p);
      }
      if (!a.acked) t.indeterminate_present.insert(key);
      auto [pos, fresh] = last_n.emplace(a.thread, a.n);
      if (!fresh) {
        if (a.n < pos->second) ++t.reordered;
        pos->second = a.n;
      }
    }
    if (store.stats(mailbox).count != msgs.value().size()) ++t.meta_drift;
    // Per device: nothing its ack completed OK for comes back for it.
    for (std::size_t d = 0; d < kDevices; ++d) {
      auto mine = store.read(mailbox, kDeviceNames[d], 0, SIZE_MAX - 1);
      if (!mine) {
        t.unexpected.insert("read failed: " + mine.status().message());
        continue;
      }
      for (const auto& msg : mine.value()) {
        auto it = ledger.attempts.find(msg.body.substr(0, msg.body.find('|')));
        if (it != ledger.attempts.end() && it->second.dev[d] == 2)
          t.ack_undone.insert(it->first + "/" + kDeviceNames[d]);
      }
      // The sign-in summary of this device counts what read() yields for it.
      auto sum = store.summary(mailbox, kDeviceNames[d]);
      if (!sum || sum.value().count != mine.value().size()) ++t.meta_drift;
    }
  }
  // Receipts, in the writers' own mailboxes.
  std::map<std::uint64_t, const std::pair<const std::string, Attempt>*> by_seq;
  for (const auto& entry : ledger.attempts)
    if (entry.second.acked) by_seq[entry.second.seq] = &entry;
  std::map<std::uint64_t, std::uint64_t> receipts;  // msg_seq -> receipts for it
  for (std::size_t w = 0; w < threads; ++w) {
    auto entries = store.read(sender_name(w), "", 0, SIZE_MAX - 1);
    if (!entries) {
      t.unexpected.insert("read failed: " + entries.status().message());
      continue;
    }
    std::uint64_t n = 0;
    for (const auto& e : entries.value()) {
      if (!e.receipt) {
        t.unexpected.insert(fmt::format("{}#{} (a message in a writer's mailbox)", sender_name(w), e.seq));
        continue;
      }
      ++n;
      const auto& r = *e.receipt;
      ++receipts[r.msg_seq];
      auto it = by_seq.find(r.msg_seq);
      if (it == by_seq.end() || !it->second->second.ack_tried()) {
        t.receipt_unexpected.insert(r.msg_seq);  // for no message, or one nobody acked
        continue;
      }
      const auto& [key, a] = *it->second;
      if (a.thread != w || r.to != a.mailbox || r.client_msg_id != key ||
          r.state != proto::ReceiptState::kDelivered)
        t.receipt_wrong.insert(r.msg_seq);
    }
    if (store.stats(sender_name(w)).receipts != n) ++t.meta_drift;
    auto sum = store.summary(sender_name(w), "");
    if (!sum || sum.value().receipts != n || sum.value().count != 0) ++t.meta_drift;
  }
  std::uint64_t total = 0;
  for (const auto& [seq, n] : receipts) {
    total += n;
    if (n > 1) t.receipt_duplicate.insert(seq);
  }
  t.receipts_seen = total;
  for (const auto& [key, a] : ledger.attempts) {
    if (a.acked && a.some_unacked() && !seen.count(key)) t.lost.insert(key);
    if (a.acked && a.any_ok() && !receipts.count(a.seq)) t.receipt_missing.insert(a.seq);
  }
  return present;
}

struct RunResult {
  Totals totals;
  double seconds = 0;
};

RunResult run(bool sync, std::uint64_t crash_points, std::uint64_t threads, std::uint64_t seed,
              Clock::time_point deadline) {
  RunResult result;
  Totals& t = result.totals;
  const auto started = Clock::now();
  const auto root = std::filesystem::temp_directory_path() /
                    fmt::format("oms-power-loss-{}-{}", ::getpid(), sync ? "sync" : "nosync");
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);
  auto fs = std::make_shared<FaultFs>();
  auto env = env_for(fs);
  std::mt19937_64 rng(seed);
  Ledger ledger;
  std::vector<std::uint64_t> next_n(threads, 0);
  // Drops what was not synced (the store is closed), powers on again.
  auto power_loss = [&] {
    const PowerLossStats pl = fs->simulate_power_loss();
    t.files_truncated += pl.files_truncated;
    t.files_removed += pl.files_removed;
    t.bytes_dropped += pl.bytes_dropped;
    fs->reset();
    ++t.rounds;
  };

  for (std::uint64_t round = 0; round < crash_points && Clock::now() < deadline; ++round) {
    storage::StoreOptions so;
    so.path = (root / "db").string();
    so.sync = sync;
    so.env = env;
    so.max_receipts_per_mailbox = 1'000'000;  // none dropped: every one is checked
    // Every fifth round the power is cut during the open itself (WAL replay,
    // recovery flush, MANIFEST and OPTIONS writes): recovery must be
    // restartable.
    const bool crash_in_open = round % 5 == 4;
    if (crash_in_open) fs->crash_after_ops(std::uniform_int_distribution<std::uint64_t>(1, 40)(rng));
    auto opened = storage::open_store(so);
    if (!opened && crash_in_open && fs->crashed()) {
      ++t.crashed_in_open;
      power_loss();
      continue;
    }
    if (!opened) {
      ++t.reopen_failures;
      std::cerr << "reopen failed: " << opened.status().message() << "\n";
      break;
    }
    if (crash_in_open) {
      // The open finished before the countdown: cut the power right away.
      ++t.crashed_in_open;
      fs->crash_now();
      opened.value().reset();
      power_loss();
      continue;
    }
    std::unique_ptr<storage::Store> store = std::move(opened).value();
    std::vector<Present> present = verify(store->mailboxes(), ledger, t, threads);  // what the previous crash left
    // The devices sign in again (a restart forgets open sessions; their
    // records make them active by last-seen time).
    // All at once: they share a group commit.
    std::vector<std::future<Result<bool>>> signins;
    for (std::size_t m = 0; m < kMailboxes; ++m)
      for (const char* device : kDeviceNames) {
        auto done = std::make_shared<std::promise<Result<bool>>>();
        signins.push_back(done->get_future());
        store->mailboxes().device_signed_in(mailbox_name(m), device, true,
                                            [done](Result<bool> r) { done->set_value(std::move(r)); });
      }
    for (auto& fut : signins) {
      if (fut.wait_for(kAppendTimeout) != std::future_status::ready) {
        ++t.stuck;
        continue;
      }
      ++(fut.get() ? t.device_signins_ok : t.device_signins_failed);
    }
    // About half of it is acked this round: by one device that has not acked
    // it with OK yet, or by both (one request per device and chunk).
    std::shuffle(present.begin(), present.end(), rng);
    present.resize(present.size() / 2);
    std::map<std::pair<std::string, std::size_t>, std::vector<const Present*>> plan;  // (mailbox, device)
    for (const auto& p : present) {
      std::vector<std::size_t> open;
      for (std::size_t d = 0; d < kDevices; ++d)
        if (p.dev[d] != 2) open.push_back(d);
      if (open.size() == 2 && rng() % 3 == 0) {
        for (std::size_t d : open) plan[{p.mailbox, d}].push_back(&p);
      } else {
        plan[{p.mailbox, open[rng() % open.size()]}].push_back(&p);
      }
    }

    // A random moment: the k-th write-side I/O operation from now.
    fs->crash_after_ops(std::uniform_int_distribution<std::uint64_t>(1, 800)(rng));
    const auto round_end = Clock::now() + kRoundTimeLimit;
    std::vector<std::thread> workers;
    std::atomic<std::uint64_t> stuck{0};
    for (std::uint64_t th = 0; th < threads; ++th) {
      workers.emplace_back([&, th] {
        for (std::uint64_t i = 0; i < kMaxAppendsPerThreadPerRound && !fs->crashed() &&
                                  Clock::now() < round_end;
             ++i) {
          const std::uint64_t n = next_n[th]++;
          const std::string key = key_of(th, n);
          storage::AppendRequest req;
          req.mailbox = mailbox_name((n + th) % kMailboxes);
          req.from = sender_name(th);
          req.body = body_of(th, n);
          req.client_msg_id = key;
          req.want_receipt = true;
          {
            std::lock_guard<std::mutex> lock(ledger.mu);
            ledger.attempts[key] = Attempt{th, n, req.mailbox, false, 0};
          }
          auto done = std::make_shared<std::promise<Result<storage::AppendResult>>>();
          auto fut = done->get_future();
          store->mailboxes().append(std::move(req), [done](Result<storage::AppendResult> r) {
            done->set_value(std::move(r));
          });
          if (fut.wait_for(kAppendTimeout) != std::future_status::ready) {
            ++stuck;  // the store never answered: a hang, reported as a failure
            return;
          }
          auto r = fut.get();
          std::lock_guard<std::mutex> lock(ledger.mu);
          if (r && !r.value().duplicate) {
            ledger.attempts[key].acked = true;
            ledger.attempts[key].seq = r.value().seq;
          }
        }
      });
    }
    // The acker: deletes, concurrently with the appends and the crash. In
    // every other round it first takes a checkpoint, which flushes the
    // memtables: SST, MANIFEST and (later) compaction writes get crashed too.
    workers.emplace_back([&] {
      if (round % 2 == 0) {
        const auto cp = root / fmt::format("checkpoint-{}", round);
        const Status st = store->checkpoint(cp.string());
        std::lock_guard<std::mutex> lock(ledger.mu);
        ++(st.is_ok() ? t.flushes_ok : t.flushes_failed);
      }
      for (auto& [target, items] : plan) {
        const auto& [mailbox, device] = target;
        for (std::size_t i = 0; i < items.size() && !fs->crashed() && Clock::now() < round_end;
             i += kAckChunk) {
          std::vector<std::uint64_t> seqs;
          std::vector<std::string> keys;
          for (std::size_t j = i; j < std::min(items.size(), i + kAckChunk); ++j) {
            seqs.push_back(items[j]->seq);
            keys.push_back(items[j]->key);
          }
          {
            std::lock_guard<std::mutex> lock(ledger.mu);
            for (const auto& k : keys) ledger.attempts[k].dev[device] = std::max(ledger.attempts[k].dev[device], 1);
          }
          auto done = std::make_shared<std::promise<Result<std::uint64_t>>>();
          auto fut = done->get_future();
          store->mailboxes().ack(mailbox, kDeviceNames[device], seqs,
                                 [done](Result<std::uint64_t> r) { done->set_value(std::move(r)); });
          if (fut.wait_for(kAppendTimeout) != std::future_status::ready) {
            ++stuck;
            return;
          }
          auto r = fut.get();
          std::lock_guard<std::mutex> lock(ledger.mu);
          if (r) {
            ++t.acks_confirmed;
            for (const auto& k : keys) {
              Attempt& a = ledger.attempts[k];
              const bool first = !a.any_ok();
              a.dev[device] = 2;
              ++t.device_acks_confirmed;
              if (first) ++t.first_acked;
              if (a.all_ok()) ++t.both_acked;
            }
          } else {
            ++t.acks_failed;
          }
        }
      }
    });
    for (auto& w : workers) w.join();
    t.stuck += stuck.load();
    if (!fs->crashed()) {
      ++t.forced_crashes;  // the countdown was not reached in time
      fs->crash_now();
    }
    store.reset();  // close: every write fails, as after a power cut
    power_loss();
  }
  // The state after the last crash.
  {
    storage::StoreOptions so;
    so.path = (root / "db").string();
    so.env = env;
    so.max_receipts_per_mailbox = 1'000'000;
    auto opened = storage::open_store(so);
    if (!opened) {
      ++t.reopen_failures;
    } else {
      verify(opened.value()->mailboxes(), ledger, t, threads);
    }
  }
  {
    std::lock_guard<std::mutex> lock(ledger.mu);
    for (const auto& [key, a] : ledger.attempts) {
      ++t.attempted;
      if (a.acked) ++t.acked;
    }
  }
  t.failed = t.attempted - t.acked;
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return result;
}

std::string sample(const std::set<std::string>& s) {
  std::string out;
  std::size_t i = 0;
  for (const auto& k : s) {
    if (i++ == 5) return out + ", ...";
    out += (out.empty() ? "" : ", ") + k;
  }
  return out;
}

}  // namespace
}  // namespace oms::reliability

// MailboxStore::ack_unsynced: an unsynced ack is lost in a power loss (the
// message comes back: at least once), unless a synced write follows, even
// a synced ack that writes nothing because the unsynced one deleted the
// message already (its answer rests on that delete). Returns the failures.
namespace oms::reliability {
std::vector<std::string> check_unsynced_acks() {
  std::vector<std::string> failures;
  const auto root = std::filesystem::temp_directory_path() / fmt::format("oms-power-loss-{}-unsynced", ::getpid());
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);
  auto fs = std::make_shared<FaultFs>();
  auto env = env_for(fs);
  storage::StoreOptions so;
  so.path = (root / "db").string();
  so.env = env;
  auto wait = [](auto&& start) {
    auto p = std::make_shared<std::promise<Result<std::uint64_t>>>();
    auto fut = p->get_future();
    start([p](auto r) {
      if (r) p->set_value(std::uint64_t{1});
      else p->set_value(r.status());
    });
    return fut.get();
  };
  // One message, acked without a sync, then (`then_synced`) again with one;
  // power lost; is the message back?
  auto round = [&](bool then_synced) -> std::optional<bool> {
    auto opened = storage::open_store(so);
    if (!opened) {
      std::cerr << "unsynced ack check: open: " << opened.status().message() << "\n";
      return std::nullopt;
    }
    std::unique_ptr<storage::Store> store = std::move(opened).value();
    auto& mb = store->mailboxes();
    std::uint64_t seq = 0;
    auto p = std::make_shared<std::promise<Result<storage::AppendResult>>>();
    auto fut = p->get_future();
    storage::AppendRequest req;
    req.mailbox = "unsynced";
    req.from = "w";
    req.body = then_synced ? "b" : "a";
    mb.append(std::move(req), [p](Result<storage::AppendResult> r) { p->set_value(std::move(r)); });
    auto appended = fut.get();
    if (!appended) {
      std::cerr << "unsynced ack check: append: " << appended.status().message() << "\n";
      return std::nullopt;
    }
    seq = appended.value().seq;
    if (!wait([&](auto cb) { mb.ack_unsynced("unsynced", "", {seq}, cb); })) return std::nullopt;
    if (then_synced && !wait([&](auto cb) { mb.ack("unsynced", "", {seq}, cb); })) return std::nullopt;
    fs->crash_now();
    store.reset();
    fs->simulate_power_loss();
    fs->reset();
    auto reopened = storage::open_store(so);
    if (!reopened) return std::nullopt;
    auto msgs = reopened.value()->mailboxes().read("unsynced", "", 0, 100);
    if (!msgs) return std::nullopt;
    bool back = false;
    for (const auto& m : msgs.value()) back = back || m.seq == seq;
    if (back && !then_synced) {  // at least once: ack it for the next round
      if (!wait([&](auto cb) { reopened.value()->mailboxes().ack("unsynced", "", {seq}, cb); }))
        return std::nullopt;
    }
    return back;
  };
  const auto alone = round(false);
  if (!alone) failures.push_back("unsynced ack check: a store operation failed");
  else if (!*alone) failures.push_back("an unsynced ack alone survived the power loss: was it synced?");
  const auto followed = round(true);
  if (!followed) failures.push_back("unsynced ack check: a store operation failed (second round)");
  else if (*followed) failures.push_back("a message came back after a synced ack answered for it (the unsynced ack "
                                         "before it was not made durable)");
  std::filesystem::remove_all(root);
  return failures;
}
}  // namespace oms::reliability

int main(int argc, char** argv) {
  using namespace oms::reliability;
  std::uint64_t seed = default_seed();
  std::unique_ptr<Flags> flags;
  try {
    flags = std::make_unique<Flags>(
        argc, argv,
        std::map<std::string, std::string>{{"crash-points", "50"},
                                           {"control-crash-points", "10"},
                                           {"threads", "16"},
                                           {"seed", std::to_string(seed)},
                                           {"max-seconds", "120"},
                                           {"report", ""}});
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  seed = flags->num("seed");
  const auto deadline = Clock::now() + std::chrono::seconds(flags->num("max-seconds"));
  const std::uint64_t want = flags->num("crash-points");
  std::cout << "power loss: seed " << seed << " (rerun with --seed=" << seed << ")\n";

  const std::vector<std::string> unsynced_failures = check_unsynced_acks();
  for (const auto& e : unsynced_failures) std::cout << "FAIL: " << e << "\n";
  RunResult main_run = run(true, want, flags->num("threads"), seed, deadline);
  RunResult control = run(false, flags->num("control-crash-points"), flags->num("threads"),
                          seed + 1, deadline + std::chrono::seconds(30));
  const Totals& t = main_run.totals;
  const Totals& c = control.totals;

  const bool pass = unsynced_failures.empty() && t.rounds >= want && t.lost.empty() && t.resurrected.empty() && t.unexpected.empty() &&
                    t.duplicated.empty() && t.reordered == 0 && t.id_changed.empty() &&
                    t.meta_drift == 0 && t.reopen_failures == 0 && t.stuck == 0 &&
                    t.ack_undone.empty() && t.receipt_duplicate.empty() && t.receipt_missing.empty() &&
                    t.receipt_unexpected.empty() && t.receipt_wrong.empty() && t.first_acked > 0 &&
                    t.both_acked > 0 &&
                    c.reopen_failures == 0 && c.stuck == 0 && !c.lost.empty();
  Figures f("Simulated power loss (store level, FaultFs, group commit)");
  f.add("crash points (sync on)", t.rounds, fmt::format(">= {}", want));
  f.add("  of which during the open / recovery", t.crashed_in_open);
  f.add("  of which forced at the round's time limit", t.forced_crashes);
  f.add("concurrent appenders", flags->num("threads"));
  f.add("appends attempted", t.attempted);
  f.add("appends acknowledged OK", t.acked);
  f.add("appends failed / cut by the crash", t.failed);
  f.add("**lost** (acknowledged, missing after reopen)", t.lost.size(), "0");
  f.add("**unexpected** (never appended, or content differs)", t.unexpected.size(), "0");
  f.add("**duplicated** (one append under two seqs)", t.duplicated.size(), "0");
  f.add("**reordered** (per writer and mailbox)", t.reordered, "0");
  f.add("acknowledged found under another seq", t.id_changed.size(), "0");
  f.add("device sign-ins (2 devices per mailbox, every round) OK / failed",
        fmt::format("{} / {}", t.device_signins_ok, t.device_signins_failed));
  f.add("ack requests (one device, <= 64 ids) confirmed / failed",
        fmt::format("{} / {}", t.acks_confirmed, t.acks_failed));
  f.add("per-device acks confirmed OK", t.device_acks_confirmed);
  f.add("  messages whose first ack was confirmed (a receipt due)", t.first_acked, "> 0");
  f.add("  messages both devices' acks were confirmed for (must be gone)", t.both_acked, "> 0");
  f.add("**ack undone** (read back for a device whose ack was confirmed)", t.ack_undone.size(), "0");
  f.add("receipts in the writers' mailboxes after the last reopen", t.receipts_seen);
  f.add("**receipts missing** (first ack confirmed, no receipt after reopen)", t.receipt_missing.size(), "0");
  f.add("**duplicate receipts** (two for one message)", t.receipt_duplicate.size(), "0");
  f.add("receipts for a message nobody acked, or for none", t.receipt_unexpected.size(), "0");
  f.add("receipts wrong (recipient, client_msg_id, writer, state)", t.receipt_wrong.size(), "0");
  f.add("checkpoints (memtable flushes) under load: OK / cut by the crash",
        fmt::format("{} / {}", t.flushes_ok, t.flushes_failed));
  f.add("**resurrected** (both devices' acks confirmed, back after reopen)", t.resurrected.size(), "0");
  f.add("mailbox meta count drift", t.meta_drift, "0");
  f.add("reopen failures", t.reopen_failures, "0");
  f.add("indeterminate (failed) appends present after reopen", t.indeterminate_present.size(),
        "any");
  f.add("files truncated / removed at power loss",
        fmt::format("{} / {}", t.files_truncated, t.files_removed));
  f.add("unsynced bytes dropped", t.bytes_dropped);
  f.add("control (sync off): crash points", c.rounds);
  f.add("control (sync off): acknowledged", c.acked);
  f.add("control (sync off): **lost**", c.lost.size(), "> 0 (the test sees loss)");
  f.add("seconds (sync on + control)", fmt::format("{:.1f} + {:.1f}", main_run.seconds, control.seconds));
  f.add("seed", seed);
  if (!t.lost.empty()) f.note("lost: " + sample(t.lost));
  if (!t.unexpected.empty()) f.note("unexpected: " + sample(t.unexpected));
  if (!t.duplicated.empty()) f.note("duplicated: " + sample(t.duplicated));
  if (!t.resurrected.empty()) f.note("resurrected: " + sample(t.resurrected));
  if (!t.ack_undone.empty()) f.note("ack undone: " + sample(t.ack_undone));
  auto seqs = [](const std::set<std::uint64_t>& v) {
    std::set<std::string> s;
    for (auto x : v) s.insert(std::to_string(x));
    return sample(s);
  };
  if (!t.receipt_missing.empty()) f.note("receipt missing for seq " + seqs(t.receipt_missing));
  if (!t.receipt_duplicate.empty()) f.note("duplicate receipts for seq " + seqs(t.receipt_duplicate));
  if (!t.receipt_unexpected.empty()) f.note("unexpected receipt for seq " + seqs(t.receipt_unexpected));
  if (!t.receipt_wrong.empty()) f.note("wrong receipt for seq " + seqs(t.receipt_wrong));
  f.verdict(pass);
  f.print();
  f.write_markdown(flags->str("report"));
  return pass ? 0 : 1;
}
