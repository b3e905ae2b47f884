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
//   meta drift  mailbox meta count != messages in the mailbox      (must be 0)
//   resurrected deleted by an ack that completed OK, back again     (must be 0)
// An acker thread deletes (acks) half of the acknowledged messages seen at
// the start of the round, concurrently with the appends and the crash.
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
  // Deletion by ack: 0 none, 1 ack sent but not confirmed (indeterminate),
  // 2 ack confirmed OK (must stay deleted).
  int deleted = 0;
};

// An acknowledged message seen present, to be acked (deleted) next round.
struct Present {
  std::string key, mailbox;
  std::uint64_t seq = 0;
};

struct Ledger {
  std::mutex mu;
  std::map<std::string, Attempt> attempts;  // by key
};

struct Totals {
  std::uint64_t rounds = 0, forced_crashes = 0, attempted = 0, acked = 0, failed = 0;
  std::uint64_t files_truncated = 0, files_removed = 0, bytes_dropped = 0;
  std::set<std::string> lost, unexpected, duplicated, id_changed, indeterminate_present, resurrected;
  std::uint64_t acks_confirmed = 0, acks_failed = 0, flushes_ok = 0, flushes_failed = 0;
  std::uint64_t reordered = 0, meta_drift = 0, reopen_failures = 0, stuck = 0, crashed_in_open = 0;
};

// Checks every mailbox against the ledger (see the file comment).
std::vector<Present> verify(storage::MailboxStore& store, Ledger& ledger, Totals& t) {
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
      if (a.deleted == 2) t.resurrected.insert(key);
      if (a.acked && a.deleted == 0) present.push_back({key, mailbox, msg.seq});
      if (!a.acked) t.indeterminate_present.insert(key);
      auto [pos, fresh] = last_n.emplace(a.thread, a.n);
      if (!fresh) {
        if (a.n < pos->second) ++t.reordered;
        pos->second = a.n;
      }
    }
    if (store.stats(mailbox).count != msgs.value().size()) ++t.meta_drift;
  }
  for (const auto& [key, a] : ledger.attempts)
    if (a.acked && a.deleted == 0 && !seen.count(key)) t.lost.insert(key);
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
    std::vector<Present> present = verify(store->mailboxes(), ledger, t);  // what the previous crash left
    std::shuffle(present.begin(), present.end(), rng);
    present.resize(present.size() / 2);  // half of it is acked (deleted) this round

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
      std::map<std::string, std::vector<const Present*>> by_mailbox;
      for (const auto& p : present) by_mailbox[p.mailbox].push_back(&p);
      for (auto& [mailbox, items] : by_mailbox) {
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
            for (const auto& k : keys) ledger.attempts[k].deleted = 1;
          }
          auto done = std::make_shared<std::promise<Result<std::uint64_t>>>();
          auto fut = done->get_future();
          store->mailboxes().ack(mailbox, "", seqs, [done](Result<std::uint64_t> r) { done->set_value(std::move(r)); });
          if (fut.wait_for(kAppendTimeout) != std::future_status::ready) {
            ++stuck;
            return;
          }
          auto r = fut.get();
          std::lock_guard<std::mutex> lock(ledger.mu);
          if (r) {
            ++t.acks_confirmed;
            for (const auto& k : keys) ledger.attempts[k].deleted = 2;
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
    auto opened = storage::open_store(so);
    if (!opened) {
      ++t.reopen_failures;
    } else {
      verify(opened.value()->mailboxes(), ledger, t);
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

  RunResult main_run = run(true, want, flags->num("threads"), seed, deadline);
  RunResult control = run(false, flags->num("control-crash-points"), flags->num("threads"),
                          seed + 1, deadline + std::chrono::seconds(30));
  const Totals& t = main_run.totals;
  const Totals& c = control.totals;

  const bool pass = t.rounds >= want && t.lost.empty() && t.resurrected.empty() && t.unexpected.empty() &&
                    t.duplicated.empty() && t.reordered == 0 && t.id_changed.empty() &&
                    t.meta_drift == 0 && t.reopen_failures == 0 && t.stuck == 0 &&
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
  f.add("ack requests confirmed / failed (64 ids each, concurrent)",
        fmt::format("{} / {}", t.acks_confirmed, t.acks_failed));
  f.add("checkpoints (memtable flushes) under load: OK / cut by the crash",
        fmt::format("{} / {}", t.flushes_ok, t.flushes_failed));
  f.add("**resurrected** (deleted by a confirmed ack, back after reopen)", t.resurrected.size(), "0");
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
  f.verdict(pass);
  f.print();
  f.write_markdown(flags->str("report"));
  return pass ? 0 : 1;
}
