// RocksDB only (its WAL and synced writes): durability under a crash. A
// child process appends as fast as it can and reports every acknowledged seq
// through a pipe; the parent SIGKILLs it, reopens the store and finds every
// acknowledged message intact.
//
// The child is this same test binary, started with fork() + execve() and
// running only the "crash child" test case below (which does nothing unless
// the parent set OMS_CRASH_CHILD_DIR). Exec'ing gives the child a clean
// process: RocksDB's background threads do not survive a bare fork().
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <semaphore>
#include <thread>

#include "tests/unit/storage/store_test_util.h"

extern char** environ;

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;

namespace {

constexpr const char* kChildTestName = "storage crash child (helper)";
constexpr int kChildThreads = 4;
constexpr int kMailboxes = 8;
constexpr std::size_t kAcksBeforeKill = 4000;
constexpr auto kChildDeadline = std::chrono::seconds(120);  // the child stops by itself

// One acknowledged append, as the child reports it.
struct AckRecord {
  std::uint64_t seq;
  std::uint64_t thread;
  std::uint64_t index;
};

std::string crash_mailbox(std::uint64_t index) { return fmt::format("m{}", index % kMailboxes); }
std::string crash_sender(std::uint64_t thread) { return fmt::format("writer{}", thread); }
std::string crash_body(std::uint64_t thread, std::uint64_t index) {
  std::string body = fmt::format("t{}-i{}:", thread, index);
  for (std::size_t k = 0; body.size() < 150; ++k)
    body.push_back(static_cast<char>('a' + (thread * 7 + index * 13 + k) % 26));
  return body;
}

bool write_all(int fd, const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Reads whole records until `want` are in (or EOF / the deadline).
void read_records(int fd, std::vector<AckRecord>& out, std::string& partial, std::size_t want,
                  std::chrono::steady_clock::time_point deadline) {
  char buf[4096];
  while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    int pr = ::poll(&pfd, 1, 100);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EOF
    partial.append(buf, static_cast<std::size_t>(n));
    while (partial.size() >= sizeof(AckRecord)) {
      AckRecord r;
      std::memcpy(&r, partial.data(), sizeof r);
      partial.erase(0, sizeof r);
      out.push_back(r);
    }
  }
}

}  // namespace

TEST_SUITE("storage") {

// Runs only inside the child started by the test below.
TEST_CASE("storage crash child (helper)") {
  const char* dir = std::getenv("OMS_CRASH_CHILD_DIR");
  const char* fd_text = std::getenv("OMS_CRASH_CHILD_FD");
  if (!dir || !fd_text) return;  // a normal run: nothing to do
  const int fd = std::atoi(fd_text);
  StoreOptions o;
  o.path = dir;
  o.max_messages = 1'000'000;
  auto opened = open_store(o);
  if (!opened) std::_Exit(3);
  auto db = std::move(opened).value();
  MailboxStore* store = &db->mailboxes();

  std::atomic<bool> pipe_ok{true};
  std::vector<std::thread> threads;
  const auto deadline = std::chrono::steady_clock::now() + kChildDeadline;
  for (std::uint64_t t = 0; t < kChildThreads; ++t)
    threads.emplace_back([&, t] {
      std::counting_semaphore<64> in_flight(64);
      for (std::uint64_t i = 0; pipe_ok && std::chrono::steady_clock::now() < deadline; ++i) {
        in_flight.acquire();
        store->append(message(crash_mailbox(i), crash_sender(t), crash_body(t, i)),
                      [&, t, i](Result<AppendResult> r) {
                        // Runs on the completion thread, after the synced write.
                        if (r) {
                          AckRecord rec{r->seq, t, i};
                          if (!write_all(fd, &rec, sizeof rec)) pipe_ok = false;
                        }
                        in_flight.release();
                      });
      }
      for (int k = 0; k < 64; ++k) in_flight.acquire();
    });
  for (auto& th : threads) th.join();
  std::_Exit(0);  // not reached in the test: the parent kills us first
}

TEST_CASE("crash: every acknowledged append survives SIGKILL") {
  TempDir dir("oms-storage-crash");
  const std::string db = rocks_path(dir);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);

  // Everything the child needs is built before fork(): after it, only exec.
  const std::string env_dir = std::string("OMS_CRASH_CHILD_DIR=") + db;
  const std::string env_fd = fmt::format("OMS_CRASH_CHILD_FD={}", fds[1]);
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "OMS_CRASH_CHILD_", 16) != 0) envp.push_back(*e);
  envp.push_back(const_cast<char*>(env_dir.c_str()));
  envp.push_back(const_cast<char*>(env_fd.c_str()));
  envp.push_back(nullptr);
  const std::string filter = std::string("--test-case=") + kChildTestName;
  std::vector<char*> argv = {const_cast<char*>("oms_unit_tests"), const_cast<char*>(filter.c_str()),
                             const_cast<char*>("--minimal"), nullptr};

  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::execve("/proc/self/exe", argv.data(), envp.data());
    std::_Exit(127);
  }
  ::close(fds[1]);

  std::vector<AckRecord> acks;
  std::string partial;
  read_records(fds[0], acks, partial, kAcksBeforeKill,
               std::chrono::steady_clock::now() + std::chrono::seconds(90));
  const bool enough = acks.size() >= kAcksBeforeKill;
  ::kill(pid, SIGKILL);
  int wstatus = 0;
  REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
  // Whatever the child acknowledged before it died counts too.
  read_records(fds[0], acks, partial, SIZE_MAX,
               std::chrono::steady_clock::now() + std::chrono::seconds(10));
  ::close(fds[0]);
  REQUIRE_MESSAGE(enough, "the child acknowledged only ", acks.size(), " appends");
  CHECK(WIFSIGNALED(wstatus));
  CHECK(partial.empty());
  MESSAGE("child acknowledged ", acks.size(), " appends before SIGKILL");

  StoreOptions o;
  o.path = db;
  o.max_messages = 1'000'000;
  auto store = open_mailboxes(o);
  std::uint64_t max_seq = 0;
  std::size_t missing = 0, wrong = 0;
  for (const auto& a : acks) {
    max_seq = std::max(max_seq, a.seq);
    auto r = store->read(crash_mailbox(a.index), "", a.seq - 1, 1);
    REQUIRE(r.is_ok());
    if (r->empty() || (*r)[0].seq != a.seq) {
      ++missing;
      continue;
    }
    const auto& m = (*r)[0];
    if (m.body != crash_body(a.thread, a.index) || m.from != crash_sender(a.thread)) ++wrong;
  }
  CHECK(missing == 0);
  CHECK(wrong == 0);
  CHECK(store->last_seq() >= max_seq);

  // The meta survived in step with the messages.
  std::uint64_t stored = 0;
  for (int m = 0; m < kMailboxes; ++m) {
    const std::string box = fmt::format("m{}", m);
    const auto n = read_all(*store, box).size();
    CHECK(store->stats(box).count == n);
    stored += n;
  }
  CHECK(stored >= acks.size());
  CHECK(store->counters().total_messages == stored);
  CHECK(append_ok(*store, message("m0", "after", "crash")) > max_seq);
}

}  // TEST_SUITE
