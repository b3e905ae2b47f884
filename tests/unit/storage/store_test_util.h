// Helpers for the storage unit tests: a unique temp dir per test, and
// waiting for a store callback through a promise (never a sleep).
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <random>
#include <string>

#include <fmt/format.h>

#include "storage/mailbox_store.h"

namespace oms::storage::testing {

// Generous: a callback that takes this long means the store is stuck.
inline constexpr auto kCallbackTimeout = std::chrono::seconds(60);

// <temp_directory_path>/oms-storage-<name>-<pid>-<n>-<random>, removed (with
// everything in it) on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view name) {
    static std::atomic<int> counter{0};
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            fmt::format("oms-storage-{}-{}-{}-{:08x}", name, ::getpid(), counter++, rd());
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string db() const { return (path_ / "db").string(); }

 private:
  std::filesystem::path path_;
};

inline StoreOptions options_in(const TempDir& dir) {
  StoreOptions o;
  o.path = dir.db();
  return o;
}

inline std::unique_ptr<MailboxStore> open_store(StoreOptions o) {
  auto r = MailboxStore::open(std::move(o));
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  return std::move(r).value();
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

inline Result<AppendResult> append_wait(MailboxStore& s, AppendRequest req) {
  std::promise<Result<AppendResult>> p;
  auto f = p.get_future();
  s.append(std::move(req), [&p](Result<AppendResult> r) { p.set_value(std::move(r)); });
  return wait_result(f);
}

// Appends and REQUIREs success; returns the seq.
inline std::uint64_t append_ok(MailboxStore& s, AppendRequest req) {
  auto r = append_wait(s, std::move(req));
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  REQUIRE_FALSE(r->duplicate);
  return r->seq;
}

inline Result<std::uint64_t> ack_wait(MailboxStore& s, std::string mailbox,
                                      std::vector<std::uint64_t> seqs) {
  std::promise<Result<std::uint64_t>> p;
  auto f = p.get_future();
  s.ack(std::move(mailbox), std::move(seqs),
        [&p](Result<std::uint64_t> r) { p.set_value(std::move(r)); });
  return wait_result(f);
}

inline Result<std::uint64_t> purge_wait(MailboxStore& s, std::string mailbox) {
  std::promise<Result<std::uint64_t>> p;
  auto f = p.get_future();
  s.purge(std::move(mailbox), [&p](Result<std::uint64_t> r) { p.set_value(std::move(r)); });
  return wait_result(f);
}

inline Result<std::uint64_t> sweep_wait(MailboxStore& s) {
  std::promise<Result<std::uint64_t>> p;
  auto f = p.get_future();
  s.sweep_expired([&p](Result<std::uint64_t> r) { p.set_value(std::move(r)); });
  return wait_result(f);
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
  auto r = s.read(mailbox, 0, 1'000'000);
  REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
  return std::move(r).value();
}

}  // namespace oms::storage::testing
