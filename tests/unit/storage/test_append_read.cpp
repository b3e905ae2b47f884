// Appending and reading: order, concurrency, ids unique across restarts.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <thread>

#include "tests/unit/storage/store_test_util.h"

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;

TEST_SUITE("storage") {

TEST_CASE("store: append then read returns the message, oldest first, with paging") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-append-read");
    auto store = open_mailboxes(backend.options_in(dir));
    CHECK(store->last_seq() == 0);
    std::vector<std::uint64_t> seqs;
    for (int i = 0; i < 5; ++i)
      seqs.push_back(append_ok(*store, message("bob", "alice", fmt::format("m{}", i))));
    append_ok(*store, message("carol", "alice", "for carol", "", proto::MessageKind::kMissed));
    for (std::size_t i = 1; i < seqs.size(); ++i) CHECK(seqs[i] > seqs[i - 1]);
    CHECK(store->last_seq() == seqs.back() + 1);

    auto all = read_all(*store, "bob");
    REQUIRE(all.size() == 5);
    for (int i = 0; i < 5; ++i) {
      CHECK(all[i].seq == seqs[i]);
      CHECK(all[i].from == "alice");
      CHECK(all[i].body == fmt::format("m{}", i));
      CHECK(all[i].kind == proto::MessageKind::kOffline);
      CHECK(all[i].sent_at_ms > 0);
    }
    auto page = store->read("bob", "", seqs[1], 2);
    REQUIRE(page.is_ok());
    REQUIRE(page->size() == 2);
    CHECK((*page)[0].seq == seqs[2]);
    CHECK((*page)[1].seq == seqs[3]);
    CHECK(store->read("bob", "", seqs[4], 10)->empty());
    CHECK(store->read("bob", "", 0, 0)->empty());
    CHECK(store->read("nobody", "", 0, 10)->empty());
    auto carol = read_all(*store, "carol");
    REQUIRE(carol.size() == 1);
    CHECK(carol[0].kind == proto::MessageKind::kMissed);

    CHECK(store->stats("bob").count == 5);
    CHECK(store->stats("bob").bytes == 10);
    CHECK(store->counters().appended == 6);
    CHECK(store->counters().total_messages == 6);
    CHECK(store->counters().total_bytes == 10 + 9);
  });
}

TEST_CASE("store: invalid requests are refused and store nothing") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-invalid");
    auto store = open_mailboxes(backend.options_in(dir));
    auto r = append_wait(*store, message("", "alice", "x"));
    CHECK(r.status().code() == Code::kInvalidArgument);
    r = append_wait(*store, message(std::string(256, 'b'), "alice", "x"));
    CHECK(r.status().code() == Code::kInvalidArgument);
    r = append_wait(*store, message("bob", std::string(256, 'a'), "x"));
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(store->read("", "", 0, 10).status().code() == Code::kInvalidArgument);
    CHECK(store->counters().total_messages == 0);
    CHECK(store->last_seq() == 0);
  });
}

TEST_CASE("store: many concurrent producers keep per-producer order kept, seqs unique") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-concurrent");
    auto store = open_mailboxes(backend.options_in(dir));
    constexpr int kThreads = 16;
    constexpr int kPerThread = 300;
    constexpr int kMailboxes = 5;
    CompletionLatch latch(kThreads * kPerThread);
    std::mutex mu;
    std::set<std::uint64_t> seqs;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i)
          store->append(message(fmt::format("box{}", i % kMailboxes), fmt::format("user{}", t),
                                fmt::format("{}:{}", t, i)),
                        [&](Result<AppendResult> r) {
                          if (!r) {
                            ++failures;
                          } else {
                            std::lock_guard<std::mutex> lock(mu);
                            seqs.insert(r->seq);
                          }
                          latch.count_down();
                        });
      });
    for (auto& th : threads) th.join();
    latch.wait();
    CHECK(failures == 0);
    CHECK(seqs.size() == static_cast<std::size_t>(kThreads * kPerThread));

    std::size_t total = 0;
    for (int m = 0; m < kMailboxes; ++m) {
      auto msgs = read_all(*store, fmt::format("box{}", m));
      total += msgs.size();
      std::map<int, int> last_i;  // producer -> last index seen in this mailbox
      for (std::size_t k = 0; k < msgs.size(); ++k) {
        if (k > 0) CHECK(msgs[k].seq > msgs[k - 1].seq);
        CHECK(seqs.count(msgs[k].seq) == 1);
        int t = 0, i = 0;
        REQUIRE(std::sscanf(msgs[k].body.c_str(), "%d:%d", &t, &i) == 2);
        CHECK(msgs[k].from == fmt::format("user{}", t));
        CHECK(i % kMailboxes == m);
        auto it = last_i.find(t);
        if (it != last_i.end()) CHECK(i > it->second);  // a producer's messages stay in order
        last_i[t] = i;
      }
    }
    CHECK(total == static_cast<std::size_t>(kThreads * kPerThread));
    CHECK(store->counters().batches < store->counters().batch_requests);  // some grouping happened
  });
}

TEST_CASE("store: seqs stay unique and increasing across reopen, and data and totals survive") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-reopen");
    std::uint64_t max_seq = 0;
    {
      auto store = open_mailboxes(backend.options_in(dir));
      for (int i = 0; i < 50; ++i)
        max_seq = std::max(max_seq, append_ok(*store, message(i % 2 ? "bob" : "carol", "alice",
                                                              std::string(i, 'x'))));
      // An ack too: the totals at reopen come from the mailbox meta.
      auto bob = read_all(*store, "bob");
      REQUIRE(ack_wait(*store, "bob", {bob.back().seq}).is_ok());
    }
    for (int round = 0; round < 3; ++round) {
      auto store = open_mailboxes(backend.options_in(dir));
      CHECK(store->last_seq() == max_seq);
      CHECK(store->counters().total_messages == 49 + round);
      CHECK(read_all(*store, "carol").size() == 25);
      const std::uint64_t seq = append_ok(*store, message("dave", "alice", "after reopen"));
      CHECK(seq > max_seq);
      max_seq = seq;
    }
    auto store = open_mailboxes(backend.options_in(dir));
    CHECK(read_all(*store, "dave").size() == 3);
    auto carol = read_all(*store, "carol");
    for (const auto& m : carol) CHECK(m.body == std::string(m.body.size(), 'x'));
  });
}

}  // TEST_SUITE
