// Helpers for the storage unit tests: the back ends under test, and waiting
// for a store callback through a promise (never a sleep).
//
// The behavioural tests (append/read, ack/purge, quota, dedup, expiry,
// summary, lifecycle, write failure, policies) are written against the
// interfaces (store.h) and run once per back end in backends(), each run a
// doctest SUBCASE named after the back end: a new back end joins by adding
// its entry there. Tests that are about RocksDB itself (keys, crash/WAL,
// format version, checkpoints, what is in a column family) say so and use
// rocks_options_in().
//
// The "postgres" back end needs the test server of the ctest run (the
// fixture pg/start, tests/support/pg-test-server): its socket directory is
// in OMS_TEST_PG_HOST. Each store gets a database of its own on it, dropped
// when the test process ends.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <functional>
#include <map>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

#include "storage/pg_connection.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"

namespace oms::storage::testing {

using oms::test::TempDir;

// Generous: a callback that takes this long means the store is stuck.
inline constexpr auto kCallbackTimeout = std::chrono::seconds(60);

// RocksDB: the database directory of a store kept in `dir`.
inline std::string rocks_path(const TempDir& dir) { return (dir.path() / "db").string(); }

// RocksDB: options for a new store kept in `dir`.
inline StoreOptions rocks_options_in(const TempDir& dir) {
  StoreOptions o;
  o.path = rocks_path(dir);
  return o;
}

// PostgreSQL: the DSN of a new, empty database on the ctest run's test
// server. The databases are dropped at exit (the server's data dir is
// thrown away anyway; this keeps a long run's disk use flat).
class PgTestDatabases {
 public:
  static PgTestDatabases& instance() {
    static PgTestDatabases d;
    return d;
  }
  // The DSN of `dir`'s database (created on first use).
  std::string for_dir(const std::string& dir) {
    const char* host = std::getenv("OMS_TEST_PG_HOST");
    if (!host || !*host)
      FAIL("OMS_TEST_PG_HOST is not set: run the postgres tests through ctest (the pg/start fixture "
           "starts the test server), or start one with tests/support/pg-test-server start DIR and set "
           "OMS_TEST_PG_HOST=DIR/socket");
    std::lock_guard lock(mu_);
    if (auto it = by_dir_.find(dir); it != by_dir_.end()) return it->second;
    if (!admin_) {
      auto c = pg::Connection::open(fmt::format("host={} dbname=postgres user=postgres", host));
      REQUIRE_MESSAGE(c.is_ok(), c.status().to_string());
      admin_ = std::move(c).value();
      host_ = host;
    }
    // (Digits only: the name needs no quoting.)
    std::string name = fmt::format("oms_t_{}_{}_{}", ::getpid(), created_.size(),
                                   std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
    Status s = admin_->command(fmt::format("CREATE DATABASE {} STRATEGY FILE_COPY", name).c_str());
    REQUIRE_MESSAGE(s.is_ok(), s.to_string());
    created_.push_back(name);
    return by_dir_[dir] = fmt::format("host={} dbname={} user=postgres", host_, name);
  }
  ~PgTestDatabases() {
    if (!admin_) return;
    for (const auto& name : created_)
      (void)admin_->command(fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", name).c_str());
  }

 private:
  std::mutex mu_;
  std::unique_ptr<pg::Connection> admin_;
  std::string host_;
  std::vector<std::string> created_;
  std::map<std::string, std::string> by_dir_;
};

// PostgreSQL: options for a new store (its own database).
inline StoreOptions pg_options_in(const TempDir& dir) {
  StoreOptions o;
  o.backend = Backend::kPostgres;
  o.postgres_dsn = PgTestDatabases::instance().for_dir(dir.path().string());
  o.postgres_read_connections = 2;
  return o;
}

// A back end under test: `options_in(dir)` describes a new, empty store of
// it whose data lives as long as `dir` (opening it again with the same
// options finds the same data).
struct BackendUnderTest {
  const char* name;
  std::function<StoreOptions(const TempDir& dir)> options_in;
};

// Every back end the behavioural tests run against.
inline const std::vector<BackendUnderTest>& backends() {
  static const std::vector<BackendUnderTest> all = {
      {"rocksdb", rocks_options_in},
      {"postgres", pg_options_in},
  };
  return all;
}

// Runs `test(backend)` once per back end, each in its own SUBCASE.
template <class Test>
void for_each_backend(Test test) {
  for (const BackendUnderTest& backend : backends())
    SUBCASE(backend.name) { test(backend); }
}

// Opens a store through the seam (open_store) and REQUIREs success.
inline std::unique_ptr<Store> open_ok(StoreOptions o) {
  auto r = open_store(std::move(o));
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  return std::move(r).value();
}

// The mailbox store of a store opened with open_ok; it owns the whole Store
// (resetting the last copy closes it).
inline std::shared_ptr<MailboxStore> open_mailboxes(StoreOptions o) {
  std::shared_ptr<Store> store = open_ok(std::move(o));
  return std::shared_ptr<MailboxStore>(store, &store->mailboxes());
}

template <class T>
T wait_result(std::future<T>& f) {
  REQUIRE_MESSAGE(f.wait_for(kCallbackTimeout) == std::future_status::ready,
                  "store callback never came");
  return f.get();
}

inline AppendRequest message(std::string to, std::string from, std::string body,
                             std::string client_msg_id = {},
                             proto::MessageKind kind = proto::MessageKind::kOffline) {
  AppendRequest r;
  r.mailbox = std::move(to);
  r.from = std::move(from);
  r.body = std::move(body);
  r.client_msg_id = std::move(client_msg_id);
  r.kind = kind;
  return r;
}

// Starts a store call with a callback that fulfils a promise, and waits for
// the result (kCallbackTimeout): what every *_wait helper below does.
template <class T, class Start>
Result<T> call_wait(Start&& start) {
  std::promise<Result<T>> p;
  auto f = p.get_future();
  start([&p](Result<T> r) { p.set_value(std::move(r)); });
  return wait_result(f);
}

inline Result<AppendResult> append_wait(MailboxStore& s, AppendRequest req) {
  return call_wait<AppendResult>([&](auto done) { s.append(std::move(req), std::move(done)); });
}

// Appends and REQUIREs success; returns the seq.
inline std::uint64_t append_ok(MailboxStore& s, AppendRequest req) {
  auto r = append_wait(s, std::move(req));
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  REQUIRE_FALSE(r->duplicate);
  return r->seq;
}

// An ack by one device (contract 4.1).
inline Result<std::uint64_t> ack_wait(MailboxStore& s, std::string mailbox, std::string device,
                                      std::vector<std::uint64_t> seqs) {
  return call_wait<std::uint64_t>(
      [&](auto done) { s.ack(std::move(mailbox), std::move(device), std::move(seqs), std::move(done)); });
}

inline Result<std::uint64_t> ack_wait(MailboxStore& s, std::string mailbox, std::vector<std::uint64_t> seqs) {
  return ack_wait(s, std::move(mailbox), "", std::move(seqs));
}

// An ack nobody is promised (MailboxStore::ack_unsynced).
inline Result<std::uint64_t> ack_unsynced_wait(MailboxStore& s, std::string mailbox,
                                               std::vector<std::uint64_t> seqs) {
  return call_wait<std::uint64_t>(
      [&](auto done) { s.ack_unsynced(std::move(mailbox), "", std::move(seqs), std::move(done)); });
}

// A session of `device` signs in; yields whether the device was new.
inline Result<bool> sign_in_wait(MailboxStore& s, std::string user, std::string device, bool capable = true) {
  return call_wait<bool>(
      [&](auto done) { s.device_signed_in(std::move(user), std::move(device), capable, std::move(done)); });
}

inline void sign_out_wait(MailboxStore& s, std::string user, std::string device) {
  REQUIRE(call_wait<std::uint64_t>([&](auto done) {
            s.device_signed_out(std::move(user), std::move(device), std::move(done));
          }).is_ok());
}

inline Result<std::uint64_t> forget_wait(MailboxStore& s, std::string user, std::string device) {
  return call_wait<std::uint64_t>(
      [&](auto done) { s.forget_device(std::move(user), std::move(device), std::move(done)); });
}

inline Result<std::uint64_t> reconcile_wait(MailboxStore& s) {
  return call_wait<std::uint64_t>([&](auto done) { s.reconcile_devices(std::move(done)); });
}

inline Result<std::uint64_t> purge_wait(MailboxStore& s, std::string mailbox) {
  return call_wait<std::uint64_t>([&](auto done) { s.purge(std::move(mailbox), std::move(done)); });
}

inline Result<std::uint64_t> want_receipt_wait(MailboxStore& s, std::string mailbox, std::uint64_t seq,
                                              std::string from, std::string client_msg_id = {}) {
  return call_wait<std::uint64_t>([&](auto done) {
    s.want_receipt(std::move(mailbox), seq, std::move(from), std::move(client_msg_id), std::move(done));
  });
}

inline Result<std::uint64_t> sweep_wait(MailboxStore& s) {
  return call_wait<std::uint64_t>([&](auto done) { s.sweep_expired(std::move(done)); });
}

// Counts callbacks and lets a test wait for N of them.
class CompletionLatch {
 public:
  explicit CompletionLatch(std::size_t expected) : expected_(expected) {
    if (expected_ == 0) done_.set_value();
  }
  void count_down() {
    if (++count_ == expected_) done_.set_value();
  }
  void wait() {
    auto f = done_.get_future();
    REQUIRE_MESSAGE(f.wait_for(kCallbackTimeout) == std::future_status::ready,
                    "store callbacks never all came");
  }

 private:
  std::size_t expected_;
  std::atomic<std::size_t> count_{0};
  std::promise<void> done_;
};

// Holds the store's writer inside its first batch write (through
// StoreOptions::inject_write_error) until release(): requests sent meanwhile
// queue up, and land in one batch once released. Declare it before the
// store it is installed in.
class WriterGate {
 public:
  explicit WriterGate(StoreOptions& o) : released_(release_.get_future().share()) {
    o.inject_write_error = [this]() -> Status {
      if (writes_.fetch_add(1) == 0) {
        entered_.set_value();
        // (Bounded: a test that fails before release() must not hang.)
        if (released_.wait_for(kCallbackTimeout) != std::future_status::ready)
          return Status::io_error("WriterGate: never released");
      }
      return Status::ok();
    };
  }
  // Waits until the writer is held.
  void wait_entered() {
    auto f = entered_.get_future();
    REQUIRE_MESSAGE(f.wait_for(kCallbackTimeout) == std::future_status::ready,
                    "the writer never reached its first write");
  }
  void release() { release_.set_value(); }
  int writes() const { return writes_.load(); }

 private:
  std::promise<void> entered_, release_;
  std::shared_future<void> released_;
  std::atomic<int> writes_{0};
};

inline std::vector<StoredMessage> read_all(const MailboxStore& s, std::string_view mailbox) {
  auto r = s.read(mailbox, "", 0, 1'000'000);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  return std::move(r).value();
}

// What `device` would be delivered (messages and receipts, in order).
inline std::vector<StoredMessage> read_for(const MailboxStore& s, std::string_view mailbox, std::string_view device) {
  auto r = s.read(mailbox, device, 0, 1'000'000);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  return std::move(r).value();
}

inline std::vector<std::uint64_t> seqs_of(const std::vector<StoredMessage>& ms) {
  std::vector<std::uint64_t> out;
  for (const auto& m : ms) out.push_back(m.seq);
  return out;
}

}  // namespace oms::storage::testing
