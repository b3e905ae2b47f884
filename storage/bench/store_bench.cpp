// oms-store-bench: what group commit buys. The mailbox store (one writer
// thread, one synced WriteBatch per group of appends) against a plain RocksDB
// database doing one synced Put per message, on the same disk, in one run.
//
// Build and run (numbers only mean something in a Release build):
//   cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release
//   cmake --build build-rel --target oms-store-bench -j2
//   ./build-rel/storage/oms-store-bench                  # defaults below
//   ./build-rel/storage/oms-store-bench --dir /data/bench --seconds 5
//       --body-bytes 200 --producers 1,8,64,256 --max-ops 2000000   (one line)
//
// Options:
//   --dir DIR         where the databases go (default: a fresh directory under
//                     ./, i.e. on the disk of the working directory; /tmp is
//                     avoided because it is often a tmpfs, where sync is free).
//                     The filesystem type is printed, with a warning for tmpfs.
//   --seconds S       duration of each run (default 3)
//   --body-bytes N    message body size (default 200)
//   --producers LIST  producer thread counts, comma-separated (default 1,8,64)
//   --max-ops N       stop a run after N operations even if time is left
//                     (default 5000000)
//   --spin-wait       group commit producers wait for their callback by
//                     yield-spinning instead of blocking (as RocksDB's own
//                     write-group followers do; see the note below)
//   --keep            do not delete the databases afterwards
//   --postgres DSN    the group-commit runs use the PostgreSQL back end on
//                     DSN (a database of its own: its tables fill up)
//                     instead of RocksDB; "plain" stays RocksDB
//
// For each producer count P:
//   group:   P threads, each a closed loop (one append in flight: append, wait
//            for its callback, repeat) to mailboxes spread over 1,000
//            recipients, StoreOptions::sync = true. Reports appends/s, the
//            mean batch size (requests per WriteBatch) and latency p50/p99.
//   plain P: P threads each doing one rocksdb::DB::Put per message with
//            WriteOptions::sync = true (RocksDB may still merge concurrent
//            writers into one WAL write: its own write-group leader).
// And once, plain 1: one thread, one synced Put per message, no concurrency
// at all: the "no group commit" baseline. The ratios are group / plain 1 and
// group / plain P.
//
// Note on virtual machines: where an idle vCPU makes I/O completions late
// (seen on a 2-vCPU Firecracker VM: fdatasync p50 1.5-4 ms with idle CPUs,
// 0.13 ms with busy ones), "plain P" gains from RocksDB's followers spinning
// (enable_write_thread_adaptive_yield) while the group-commit producers
// sleep. --spin-wait shows the group-commit side under the same condition.
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <rocksdb/db.h>

#include "common/coding.h"
#include "storage/store.h"

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr int kRecipients = 1000;
constexpr long kTmpfsMagic = 0x01021994;

struct Args {
  std::string dir;
  double seconds = 3;
  std::size_t body_bytes = 200;
  std::vector<int> producers = {1, 8, 64};
  std::uint64_t max_ops = 5'000'000;
  bool keep = false;
  bool spin_wait = false;
  std::string postgres_dsn;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "oms-store-bench: %s\n"
               "usage: oms-store-bench [--dir DIR] [--seconds S] [--body-bytes N]\n"
               "                       [--producers 1,8,64] [--max-ops N] [--keep] [--postgres DSN]\n",
               why);
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(fmt::format("{} needs a value", arg).c_str());
      return argv[++i];
    };
    if (arg == "--dir") {
      a.dir = value();
    } else if (arg == "--seconds") {
      a.seconds = std::atof(value().c_str());
      if (a.seconds <= 0) usage("--seconds must be > 0");
    } else if (arg == "--body-bytes") {
      a.body_bytes = std::strtoull(value().c_str(), nullptr, 10);
    } else if (arg == "--producers") {
      a.producers.clear();
      std::string list = value();
      std::size_t pos = 0;
      while (pos <= list.size()) {
        std::size_t comma = list.find(',', pos);
        if (comma == std::string::npos) comma = list.size();
        int p = std::atoi(list.substr(pos, comma - pos).c_str());
        if (p <= 0) usage("--producers wants positive counts, e.g. 1,8,64");
        a.producers.push_back(p);
        pos = comma + 1;
      }
    } else if (arg == "--max-ops") {
      a.max_ops = std::strtoull(value().c_str(), nullptr, 10);
      if (a.max_ops == 0) usage("--max-ops must be > 0");
    } else if (arg == "--spin-wait") {
      a.spin_wait = true;
    } else if (arg == "--postgres") {
      a.postgres_dsn = value();
    } else if (arg == "--keep") {
      a.keep = true;
    } else if (arg == "--help" || arg == "-h") {
      usage("group commit vs one synced Put per message");
    } else {
      usage(fmt::format("unknown argument '{}'", arg).c_str());
    }
  }
  return a;
}

std::string fs_type_name(const fs::path& p, bool* is_tmpfs) {
  struct statfs st {};
  *is_tmpfs = false;
  if (::statfs(p.c_str(), &st) != 0) return "unknown";
  switch (static_cast<long>(st.f_type)) {
    case kTmpfsMagic: *is_tmpfs = true; return "tmpfs";
    case 0xEF53: return "ext2/3/4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794C7630: return "overlayfs";
    default: return fmt::format("0x{:x}", static_cast<unsigned long>(st.f_type));
  }
}

struct RunResult {
  double seconds = 0;
  std::uint64_t ops = 0;
  std::uint64_t errors = 0;
  double mean_batch = 0;
  double mean_write_us = 0;  // group commit: time in DB::Write per batch
  double p50_us = 0, p99_us = 0;
  double rate() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
};

double percentile(std::vector<std::uint32_t>& v, double q) {
  if (v.empty()) return 0;
  std::size_t k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// Runs `op(thread, i)` in a closed loop on `threads` threads until the time
// or the operation budget is used up. `op` returns false on an error.
template <class Op>
RunResult run_closed_loop(int threads, const Args& args, Op op) {
  std::atomic<std::uint64_t> issued{0}, done{0}, errors{0};
  std::atomic<bool> go{false};
  std::vector<std::vector<std::uint32_t>> latencies(threads);
  const auto duration = std::chrono::duration<double>(args.seconds);
  SteadyClock::time_point start, deadline;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      auto& lat = latencies[t];
      for (std::uint64_t i = 0;; ++i) {
        if (issued.fetch_add(1) >= args.max_ops) break;
        const auto t0 = SteadyClock::now();
        if (t0 >= deadline) break;
        if (!op(t, i)) ++errors;
        const auto t1 = SteadyClock::now();
        lat.push_back(static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count()));
        ++done;
      }
    });
  start = SteadyClock::now();
  deadline = start + std::chrono::duration_cast<SteadyClock::duration>(duration);
  go.store(true, std::memory_order_release);
  for (auto& th : pool) th.join();
  RunResult r;
  r.seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  r.ops = done.load() - errors.load();
  r.errors = errors.load();
  std::vector<std::uint32_t> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  r.p50_us = percentile(all, 0.50);
  r.p99_us = percentile(all, 0.99);
  return r;
}

// Sums the store's batch write times.
struct WriteTimes final : oms::storage::BatchObserver {
  std::atomic<std::uint64_t> batches{0}, micros{0};
  void on_batch(std::size_t, std::int64_t write_micros, bool, const oms::Status&) override {
    ++batches;
    micros += static_cast<std::uint64_t>(write_micros);
  }
};

std::string recipient(std::uint64_t x) { return fmt::format("user{}@bench.example", x % kRecipients); }

RunResult run_group_commit(const fs::path& dir, int producers, const Args& args) {
  oms::storage::StoreOptions o;
  o.path = dir.string();
  if (!args.postgres_dsn.empty()) {
    o.backend = oms::storage::Backend::kPostgres;
    o.postgres_dsn = args.postgres_dsn;
  }
  o.sync = true;
  o.max_messages = UINT64_MAX / 2;
  o.max_bytes = UINT64_MAX / 2;
  auto opened = oms::storage::open_store(o);
  if (!opened) {
    std::fprintf(stderr, "cannot open the store: %s\n", opened.status().to_string().c_str());
    std::exit(1);
  }
  auto db = std::move(opened).value();
  oms::storage::MailboxStore* store = &db->mailboxes();
  WriteTimes write_times;
  store->set_batch_observer(&write_times);
  const std::string body(args.body_bytes, 'x');
  std::vector<std::uint64_t> rng_state(static_cast<std::size_t>(producers));
  for (int t = 0; t < producers; ++t) rng_state[t] = 0x9E3779B97F4A7C15ull * (t + 1);

  RunResult r = run_closed_loop(producers, args, [&](int t, std::uint64_t) {
    std::uint64_t& x = rng_state[t];  // xorshift: cheap, per thread
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    oms::storage::AppendRequest req;
    req.mailbox = recipient(x);
    req.from = fmt::format("sender{}@bench.example", t);
    req.body = body;
    bool ok = false;
    if (args.spin_wait) {
      std::atomic<bool> done{false};
      store->append(std::move(req), [&](oms::Result<oms::storage::AppendResult> res) {
        ok = res.is_ok();
        done.store(true, std::memory_order_release);
      });
      while (!done.load(std::memory_order_acquire)) std::this_thread::yield();
    } else {
      std::binary_semaphore done{0};
      store->append(std::move(req), [&](oms::Result<oms::storage::AppendResult> res) {
        ok = res.is_ok();
        done.release();
      });
      done.acquire();
    }
    return ok;
  });
  const auto& c = store->counters();
  r.mean_batch = c.batches ? static_cast<double>(c.batch_requests.load()) /
                                 static_cast<double>(c.batches.load())
                           : 0;
  r.mean_write_us = write_times.batches ? static_cast<double>(write_times.micros.load()) /
                                              static_cast<double>(write_times.batches.load())
                                        : 0;
  return r;
}

RunResult run_plain(const fs::path& dir, int threads, const Args& args) {
  rocksdb::Options o;
  o.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, dir.string(), &raw);
  if (!s.ok()) {
    std::fprintf(stderr, "cannot open the plain db: %s\n", s.ToString().c_str());
    std::exit(1);
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  std::atomic<std::uint64_t> seq{0};
  // The same shape as a stored message: a mailbox+seq key, a small header
  // and the body.
  const std::string value = std::string(40, 'h') + std::string(args.body_bytes, 'x');
  RunResult r = run_closed_loop(threads, args, [&](int, std::uint64_t i) {
    const std::uint64_t n = seq.fetch_add(1) + 1;
    std::string key = recipient(i * 7919 + n);
    oms::put_fixed64_be(key, n);
    return db->Put(wo, key, value).ok();
  });
  db->Close().PermitUncheckedError();
  r.mean_batch = 1;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse_args(argc, argv);
  const bool own_dir = args.dir.empty();
  fs::path root;
  if (own_dir) {
    std::random_device rd;
    root = fs::current_path() / fmt::format("oms-store-bench-{}-{:08x}", ::getpid(), rd());
  } else {
    root = fs::path(args.dir) / fmt::format("oms-store-bench-{}", ::getpid());
  }
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) {
    std::fprintf(stderr, "cannot create %s: %s\n", root.c_str(), ec.message().c_str());
    return 1;
  }
  bool dir_tmpfs = false, tmp_tmpfs = false;
  const std::string dir_fs = fs_type_name(root, &dir_tmpfs);
  const std::string tmp_fs = fs_type_name(fs::temp_directory_path(), &tmp_tmpfs);
  std::printf("oms-store-bench: dir %s (%s); %s is %s%s\n", root.c_str(), dir_fs.c_str(),
              fs::temp_directory_path().c_str(), tmp_fs.c_str(),
              tmp_tmpfs ? " (avoided: sync is free there)" : "");
  if (dir_tmpfs)
    std::printf("WARNING: %s is a tmpfs: synced writes cost nothing, the ratios mean little\n",
                root.c_str());
  std::printf("runs of %.1f s (at most %llu ops), body %zu bytes, %d recipients, sync=true, "
              "%u hardware threads, group-commit producers %s\n\n",
              args.seconds, static_cast<unsigned long long>(args.max_ops), args.body_bytes,
              kRecipients, std::thread::hardware_concurrency(),
              args.spin_wait ? "spin-wait" : "block");

  int run_id = 0;
  auto fresh = [&](const std::string& name) { return root / fmt::format("{}-{}", run_id++, name); };

  std::printf("plain RocksDB, 1 thread, one synced Put per message ...\n");
  const RunResult plain1 = run_plain(fresh("plain-1"), 1, args);
  std::printf("  %.0f puts/s (p50 %.0f us, p99 %.0f us)\n\n", plain1.rate(), plain1.p50_us,
              plain1.p99_us);

  struct Row {
    int producers;
    RunResult group, plain;
  };
  std::vector<Row> rows;
  for (int p : args.producers) {
    std::printf("P=%d: group commit ...\n", p);
    Row row{p, run_group_commit(fresh(fmt::format("group-{}", p)), p, args), {}};
    std::printf("  %.0f appends/s, mean batch %.1f (%.0f us per batch write), p50 %.0f us, "
                "p99 %.0f us%s\n",
                row.group.rate(), row.group.mean_batch, row.group.mean_write_us, row.group.p50_us,
                row.group.p99_us,
                row.group.errors ? fmt::format(", {} ERRORS", row.group.errors).c_str() : "");
    std::printf("P=%d: plain RocksDB, %d threads ...\n", p, p);
    row.plain = run_plain(fresh(fmt::format("plain-{}", p)), p, args);
    std::printf("  %.0f puts/s, p50 %.0f us, p99 %.0f us\n", row.plain.rate(), row.plain.p50_us,
                row.plain.p99_us);
    rows.push_back(row);
  }

  std::printf("\n%9s | %14s | %10s | %14s | %14s | %11s | %11s\n", "producers", "group appends/s",
              "mean batch", "plain-1 puts/s", "plain-P puts/s", "vs plain-1", "vs plain-P");
  std::printf("%s\n", std::string(105, '-').c_str());
  for (const auto& r : rows)
    std::printf("%9d | %15.0f | %10.1f | %14.0f | %14.0f | %10.1fx | %10.1fx\n", r.producers,
                r.group.rate(), r.group.mean_batch, plain1.rate(), r.plain.rate(),
                r.group.rate() / plain1.rate(), r.group.rate() / r.plain.rate());
  const Row& top = rows.back();
  std::printf("\nsummary: %d producers: group commit %.0f appends/s = %.1fx one synced Put per "
              "message (%.0f/s), %.1fx %d threads of synced Puts (%.0f/s); mean batch %.1f; "
              "%s%s\n",
              top.producers, top.group.rate(), top.group.rate() / plain1.rate(), plain1.rate(),
              top.group.rate() / top.plain.rate(), top.producers, top.plain.rate(),
              top.group.mean_batch, dir_fs.c_str(), dir_tmpfs ? " (tmpfs!)" : "");

  if (!args.keep) fs::remove_all(root, ec);
  return 0;
}
