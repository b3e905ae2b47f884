// I/O faults: failing writes and syncs (EIO, ENOSPC).
//
// Store level (the real MailboxStore on RocksDB through FaultFs), per case:
// 20 appends succeed, then the fault is switched on and 20 more are tried,
// then it is switched off and 20 more are tried; then the power is cut
// (FaultFs drops every unsynced byte) and the store is reopened. Required:
//   - no append reports OK while its write or sync failed: every append
//     that reported OK is present after the power loss (lost = 0);
//   - at least one append was refused while the fault was on, and
//     MailboxStore::writable() (what /readyz and oms_store_writable show) was
//     false then;
//   - nothing unexpected is present after the reopen.
// Reported, not required: whether the store recovers without a restart once
// the fault is gone, and how many refused appends are present after reopen.
//
// End to end (the real omsd, no test hook in the binary): strace attaches to
// the running omsd and makes syscalls fail (`strace -e inject=`), then
// detaches. Cases: every fdatasync/fsync fails with EIO; every write to the
// current WAL file fails with ENOSPC. Required: while injected, sends get an
// `error` (store_error or unavailable), never `sent`; /readyz is 503 and
// oms_store_writable is 0 once a write failed; the server stays up. After
// SIGKILL and restart every `sent` message is delivered (lost = 0).
// Skipped (and said so) when strace is missing or cannot attach.
//
// Usage: oms_io_faults [--report=FILE.md] [--e2e=true]
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "storage/store.h"
#include "tests/reliability/fault_fs.h"
#include "tests/reliability/report.h"
#include "tests/support/omsd_process.h"
#include "tests/support/process.h"
#include "tests/support/wait.h"
#include "tests/support/ws_client.h"

namespace oms::reliability {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr std::size_t kPerPhase = 20;
constexpr auto kAppendTimeout = 20s;
constexpr auto kHealTimeout = 10s;  // RocksDB retries its own recovery after 5 s
// How long the end-to-end cases give omsd to heal after the fault is gone.
constexpr auto kHealWait = 10s;

struct CaseResult {
  std::string name;
  std::uint64_t acked = 0, refused_during_fault = 0, ok_during_fault = 0, lost = 0,
                unexpected = 0, refused_present = 0, recovered_ok = 0;
  bool unwritable_seen = false;
  bool healed = false;      // end to end: a send succeeded again without a restart
  std::int64_t heal_ms = -1;
  bool writable_after = false;
  std::string first_error;
  bool pass = false;
  std::string skipped;  // non-empty: not run, and why
};

// ---------------------------------------------------------------------------
// store level

// reopen_before_fault: the store is closed and opened again between the
// first phase and the fault, so that every memtable is empty (RocksDB flushes
// what it recovers) when the first write under the fault fails.
// must_heal: once the fault is gone the store must take appends again (after
// RocksDB's own recovery, waited for up to kHealTimeout), every one of them.
// close_under_fault: while the fault is still on, a checkpoint is asked for
// and the store is closed (neither may abort), then opened again.
CaseResult store_case(const std::string& name, bool fault_syncs, FaultKind kind,
                      std::uint64_t fault_count, bool reopen_before_fault = false,
                      bool must_heal = false, bool close_under_fault = false) {
  CaseResult r;
  r.name = name;
  const auto dir = std::filesystem::temp_directory_path() /
                   fmt::format("oms-io-faults-{}-{}", ::getpid(), std::hash<std::string>{}(name));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto fs = std::make_shared<FaultFs>();
  storage::StoreOptions so;
  so.path = (dir / "db").string();
  so.env = env_for(fs);
  auto opened = storage::open_store(so);
  if (!opened) {
    r.first_error = opened.status().message();
    return r;
  }
  auto store = std::move(opened).value();
  std::map<std::string, std::uint64_t> acked;  // body -> seq
  std::set<std::string> refused, attempted;
  std::uint64_t n = 0;
  auto append = [&]() -> bool {
    storage::AppendRequest req;
    req.mailbox = "victim@contoso.com";
    req.from = "writer@contoso.com";
    req.body = fmt::format("m{}|{}", n, std::string(n % 97, 'x'));
    req.client_msg_id = fmt::format("c{}", n);
    ++n;
    attempted.insert(req.body);
    const std::string body = req.body;
    auto p = std::make_shared<std::promise<Result<storage::AppendResult>>>();
    auto fut = p->get_future();
    store->mailboxes().append(std::move(req), [p](Result<storage::AppendResult> res) { p->set_value(std::move(res)); });
    if (fut.wait_for(kAppendTimeout) != std::future_status::ready)
      throw std::runtime_error("an append did not complete in time");
    auto res = fut.get();
    if (res) {
      acked[body] = res.value().seq;
      return true;
    }
    if (r.first_error.empty()) r.first_error = res.status().message();
    refused.insert(body);
    return false;
  };

  for (std::size_t i = 0; i < kPerPhase; ++i) append();
  if (reopen_before_fault) {
    store.reset();
    auto again = storage::open_store(so);
    if (!again) {
      r.first_error = "reopen before the fault: " + again.status().message();
      return r;
    }
    store = std::move(again).value();
  }
  if (fault_syncs) fs->fail_syncs(kind, fault_count);
  else fs->fail_appends(kind, fault_count);
  for (std::size_t i = 0; i < kPerPhase; ++i) {
    if (append()) ++r.ok_during_fault;
    else ++r.refused_during_fault;
    if (!store->mailboxes().writable()) r.unwritable_seen = true;
  }
  if (close_under_fault) {
    store->checkpoint((dir / "checkpoint").string()).is_ok();  // refused or taken; it must not abort
    store.reset();
  }
  fs->clear_faults();
  if (close_under_fault) {
    auto again = storage::open_store(so);
    if (!again) {
      r.first_error = "reopen after a close under the fault: " + again.status().message();
      return r;
    }
    store = std::move(again).value();
  }
  if (must_heal) {
    const auto deadline = std::chrono::steady_clock::now() + kHealTimeout;
    while (!append() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // bounded retry, as a client would
  }
  for (std::size_t i = 0; i < kPerPhase; ++i)
    if (append()) ++r.recovered_ok;
  r.writable_after = store->mailboxes().writable();
  r.acked = acked.size();

  fs->crash_now();
  store.reset();
  fs->simulate_power_loss();
  fs->reset();
  so.env = env_for(fs);
  auto reopened = storage::open_store(so);
  if (!reopened) {
    r.first_error = "reopen: " + reopened.status().message();
    return r;
  }
  auto msgs = reopened.value()->mailboxes().read("victim@contoso.com", "", 0, 100000);
  std::set<std::string> present;
  if (msgs)
    for (const auto& m : msgs.value()) {
      present.insert(m.body);
      if (!attempted.count(m.body)) ++r.unexpected;
      if (refused.count(m.body)) ++r.refused_present;
    }
  for (const auto& [body, seq] : acked)
    if (!present.count(body)) ++r.lost;
  reopened.value().reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  r.pass = msgs.is_ok() && r.lost == 0 && r.unexpected == 0 && r.refused_during_fault > 0 &&
           r.unwritable_seen && (!must_heal || r.recovered_ok == kPerPhase);
  return r;
}

// ---------------------------------------------------------------------------
// end to end: strace -e inject= on the running omsd

std::vector<pid_t> tasks_of(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid), ec))
    out.push_back(static_cast<pid_t>(std::stol(e.path().filename().string())));
  return out;
}

pid_t tracer_of(pid_t tid) {
  std::ifstream in(fmt::format("/proc/{}/status", tid));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("TracerPid:", 0) == 0) return static_cast<pid_t>(std::stol(line.substr(10)));
  return 0;
}

bool all_traced_by(pid_t pid, pid_t tracer) {
  auto tasks = tasks_of(pid);
  if (tasks.empty()) return false;
  for (pid_t t : tasks)
    if (tracer_of(t) != tracer) return false;
  return true;
}

// The newest WAL file of omsd's store.
std::string current_wal(const std::filesystem::path& store_dir) {
  std::string best;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(store_dir, ec)) {
    const std::string f = e.path().filename().string();
    if (f.size() > 4 && f.ends_with(".log") && (best.empty() || f > best)) best = f;
  }
  return best.empty() ? "" : (store_dir / best).string();
}

std::string strace_path() {
  for (const char* p : {"/usr/bin/strace", "/bin/strace", "/usr/local/bin/strace"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

std::string metric_line(const test::OmsdProcess& omsd, std::string_view name) {
  auto r = omsd.admin().get("/metrics");
  std::istringstream in(r.raw);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(std::string(name) + " ", 0) == 0) return line.substr(name.size() + 1);
  return "";
}

// wal_may_switch: the fault is on one WAL file (see @WAL below).
CaseResult e2e_case(const std::string& name, const std::vector<std::string>& strace_filter,
                    bool wal_may_switch = false) {
  CaseResult r;
  r.name = name;
  const std::string strace = strace_path();
  if (strace.empty()) {
    r.skipped = "strace not installed";
    return r;
  }
  test::OmsdProcess omsd;
  // When the case is cut short by an exception, say how omsd was then.
  struct Witness {
    test::OmsdProcess& omsd;
    int exceptions = std::uncaught_exceptions();
    ~Witness() {
      if (std::uncaught_exceptions() <= exceptions) return;
      std::cerr << "io_faults: case aborted; omsd " << (omsd.running() ? "running" : "NOT running")
                << "; its last output:\n"
                << omsd.stderr_tail(30) << "\n";
    }
  } witness{omsd};
  const std::string sender = "writer@contoso.com", rcpt = "victim@contoso.com";
  std::map<std::string, std::string> acked;  // body -> id
  std::set<std::string> refused, attempted;
  std::uint64_t n = 0;
  auto client = std::make_unique<test::WsClient>(10s);
  client->connect(omsd.client_port());
  client->hello(omsd.token(sender));
  auto send = [&]() -> bool {
    const std::string body = fmt::format("m{}", n++);
    attempted.insert(body);
    test::Json reply = client->send(rcpt, body);
    if (test::type_of(reply) == "sent") {
      acked[body] = test::str_of(reply, "id");
      return true;
    }
    const std::string code = test::str_of(reply, "code");
    if (r.first_error.empty()) r.first_error = code + ": " + test::str_of(reply, "message");
    if (code != "store_error" && code != "unavailable") ++r.unexpected;  // a wrong refusal
    refused.insert(body);
    return false;
  };
  for (std::size_t i = 0; i < kPerPhase; ++i) send();

  // Attach.
  std::vector<std::string> argv = {strace, "-f", "-qq", "-o", "/dev/null"};
  // @WAL: the current WAL file. RocksDB's recovery from a failed WAL write
  // may move on to a new WAL, which the fault does not follow: then writes
  // succeed again while "the fault" is on (see wal_may_switch).
  std::vector<std::string> filter = strace_filter;
  for (auto& a : filter)
    if (a == "@WAL") a = current_wal(omsd.data_dir() / "store");
  argv.insert(argv.end(), filter.begin(), filter.end());
  argv.push_back("-p");
  argv.push_back(std::to_string(omsd.pid()));
  const pid_t tracer = test::spawn_process(argv, omsd.root_dir() / "strace.log");
  if (!test::wait_until([&] { return all_traced_by(omsd.pid(), tracer); }, 10s)) {
    ::kill(tracer, SIGKILL);
    test::wait_exit(tracer, 5s);
    r.skipped = "strace could not attach (ptrace not permitted here?): " +
                test::file_tail(omsd.root_dir() / "strace.log", 3);
    return r;
  }
  // Whether omsd reports the store unwritable is asked right after the first
  // refusal: nothing is written between that refusal and the question (one
  // client, one send at a time), so a store that recovers on its own (a new
  // WAL) cannot hide the report.
  auto unwritable_now = [&] {
    const int readyz = omsd.admin().get("/readyz", test::Auth::none()).status;
    return readyz == 503 && metric_line(omsd, "oms_store_writable") == "0";
  };
  for (std::size_t i = 0; i < kPerPhase; ++i) {
    if (send()) {
      ++r.ok_during_fault;
    } else if (++r.refused_during_fault == 1) {
      r.unwritable_seen = unwritable_now();
    }
  }
  const bool healthy = omsd.admin().get("/healthz", test::Auth::none()).status == 200;

  // Detach (strace detaches from every thread on SIGINT).
  ::kill(tracer, SIGINT);
  if (!test::wait_exit(tracer, 10s)) {
    ::kill(tracer, SIGKILL);
    test::wait_exit(tracer, 5s);
  }
  test::wait_until([&] { return all_traced_by(omsd.pid(), 0); }, 10s);
  auto reconnect = [&] {
    if (client->is_open()) return;
    client = std::make_unique<test::WsClient>(10s);
    client->connect(omsd.client_port());
    client->hello(omsd.token(sender));
  };
  // Does it heal without a restart? One send every 50 ms until one is
  // `sent`, for at most kHealWait.
  const auto healing = Clock::now();
  r.healed = test::wait_until(
      [&] {
        reconnect();
        return send();
      },
      kHealWait, 50ms);
  r.heal_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - healing).count();
  for (std::size_t i = 0; i < kPerPhase; ++i) {
    reconnect();
    if (send()) ++r.recovered_ok;
  }
  r.writable_after = omsd.admin().get("/readyz", test::Auth::none()).status == 200;
  r.acked = acked.size();
  client.reset();

  // Kill, restart, drain.
  omsd.kill();
  omsd.restart();
  test::WsClient c(10s);
  c.connect(omsd.client_port());
  c.hello(omsd.token(rcpt));
  std::set<std::string> present;
  const auto end = Clock::now() + 60s;
  while (Clock::now() < end) {
    auto f = c.try_recv(10s);
    if (!f) break;
    const std::string type = test::type_of(*f);
    if (type == "message") {
      const std::string body = test::str_of(*f, "body");
      present.insert(body);
      if (!attempted.count(body)) ++r.unexpected;
      if (refused.count(body)) ++r.refused_present;
      auto a = acked.find(body);
      if (a != acked.end() && a->second != test::str_of(*f, "id")) ++r.unexpected;
      c.ack({test::str_of(*f, "id")});
    } else if (type == "mailbox.drained") {
      break;
    }
  }
  for (const auto& [body, id] : acked)
    if (!present.count(body)) ++r.lost;
  // With a fault on one WAL file, sends after RocksDB moved to a new WAL may
  // succeed (durably): then OK under the fault is allowed.
  r.pass = healthy && r.refused_during_fault > 0 && r.unwritable_seen && r.lost == 0 &&
           r.unexpected == 0 && (wal_may_switch || r.ok_during_fault == 0);
  if (!healthy) r.first_error += " (healthz not 200 under the fault)";
  return r;
}

}  // namespace
}  // namespace oms::reliability

int main(int argc, char** argv) {
  using namespace oms::reliability;
  ::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<Flags> flags;
  try {
    flags = std::make_unique<Flags>(
        argc, argv, std::map<std::string, std::string>{{"report", ""}, {"e2e", "true"}});
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  std::vector<CaseResult> results;
  auto guarded = [&](const std::string& name, auto&& fn) {
    try {
      results.push_back(fn());
    } catch (const std::exception& e) {
      CaseResult r;
      r.name = name;
      r.first_error = std::string("aborted: ") + e.what();
      results.push_back(r);
    }
  };
  guarded("store: EIO on 3 syncs", [] { return store_case("store: EIO on 3 syncs", true, FaultKind::kEio, 3); });
  guarded("store: ENOSPC on 3 appends", [] { return store_case("store: ENOSPC on 3 appends", false, FaultKind::kEnospc, 3); });
  guarded("store: EIO on every sync", [] { return store_case("store: EIO on every sync", true, FaultKind::kEio, 1u << 30); });
  guarded("store: ENOSPC on every append", [] { return store_case("store: ENOSPC on every append", false, FaultKind::kEnospc, 1u << 30); });
  // RocksDB 7.8 does not move to a new WAL when it recovers with every
  // memtable empty; the store must then not write to the failed one.
  guarded("store: ENOSPC on the first append after a reopen", [] {
    return store_case("store: ENOSPC on the first append after a reopen", false, FaultKind::kEnospc, 1,
                      /*reopen_before_fault=*/true, /*must_heal=*/true);
  });
  // The same WAL still failed when a checkpoint is taken and the store
  // closed: both would switch memtables outside RocksDB's recovery.
  guarded("store: ENOSPC, then a checkpoint and a close under the fault", [] {
    return store_case("store: ENOSPC, then a checkpoint and a close under the fault", false,
                      FaultKind::kEnospc, 1u << 30, /*reopen_before_fault=*/true, /*must_heal=*/true,
                      /*close_under_fault=*/true);
  });
  if (flags->flag("e2e")) {
    guarded("omsd: EIO on every fdatasync/fsync (strace)", [] {
      return e2e_case("omsd: EIO on every fdatasync/fsync (strace)",
                      {"-e", "trace=fdatasync,fsync", "-e", "inject=fdatasync,fsync:error=EIO"});
    });
    guarded("omsd: ENOSPC on writes to the WAL (strace)", [] {
      return e2e_case("omsd: ENOSPC on writes to the WAL (strace)",
                      {"-P", "@WAL", "-e", "trace=write,pwrite64,writev,pwritev",
                       "-e", "inject=write,pwrite64,writev,pwritev:error=ENOSPC"},
                      /*wal_may_switch=*/true);
    });
  }

  bool pass = true;
  for (const auto& r : results)
    if (r.skipped.empty()) pass = pass && r.pass;
  std::ostringstream md;
  md << "### I/O faults (EIO, ENOSPC) — " << (pass ? "PASS" : "**FAIL**") << "\n\n"
     << "Required per case: **lost** 0, **unexpected** 0, refused under the fault > 0, OK under "
        "the fault 0 (end to end), store unwritable / `/readyz` 503 seen. Each case: "
     << kPerPhase << " appends before, " << kPerPhase << " under and " << kPerPhase
     << " after the fault; unwritable / 503 is asked right after the first refusal. Where the "
        "fault is on one WAL file, RocksDB may move on to a new WAL while it is on: sends may "
        "then succeed (durably), and OK under the fault is allowed there.\n\n"
     << "| case | result | acked | refused under fault | OK under fault | **lost** | **unexpected** "
        "| unwritable / 503 seen | healed without restart | OK after the fault cleared | refused, present after restart |\n"
     << "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |\n";
  for (const auto& r : results) {
    if (!r.skipped.empty()) {
      md << "| " << r.name << " | skipped: " << r.skipped << " | | | | | | | | | |\n";
      continue;
    }
    const std::string healed =
        r.heal_ms < 0 ? "n/a (store level)"
        : r.healed    ? fmt::format("yes, after {} ms", r.heal_ms)
                      : fmt::format("no (waited {} s)", kHealWait.count());
    md << fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} | {} |\n", r.name,
                      r.pass ? "PASS" : "**FAIL**", r.acked, r.refused_during_fault,
                      r.ok_during_fault, r.lost, r.unexpected, r.unwritable_seen ? "yes" : "no",
                      healed, r.recovered_ok, kPerPhase, r.refused_present);
  }
  md << "\n";
  for (const auto& r : results)
    if (!r.first_error.empty()) md << "- " << r.name << ": first error: `" << r.first_error << "`\n";
  md << "\n";
  std::cout << md.str();
  if (const std::string path = flags->str("report"); !path.empty()) {
    std::ofstream out(path, std::ios::trunc);
    out << md.str();
  }
  return pass ? 0 : 1;
}
