#include "server/delivery_window.h"

#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <vector>

#include <doctest/doctest.h>

namespace oms::server {
namespace {

using Arrived = DeliveryWindow::Arrived;
using ReadState = DeliveryWindow::ReadState;

// A page of `n` seqs from `first` on, taken by the window: returns how many
// it took.
std::size_t take_page(DeliveryWindow& w, std::uint64_t first, std::size_t n) {
  std::size_t taken = 0;
  for (std::uint64_t s = first; s < first + n; ++s) taken += w.take(s) ? 1 : 0;
  return taken;
}

TEST_CASE("delivery window: an empty mailbox is caught up and drained at once") {
  DeliveryWindow w(256);
  CHECK(w.begin(0) == DeliveryWindow::kPageMessages);
  CHECK(w.state() == ReadState::kReading);
  w.scan_returned(0);
  CHECK_FALSE(w.page_done(0));
  CHECK(w.state() == ReadState::kCaughtUp);
  CHECK_FALSE(w.drained_sent());
  CHECK(w.take_drained());
  CHECK(w.drained_sent());
  CHECK_FALSE(w.take_drained());  // once
}

TEST_CASE("delivery window: the first page is bounded by the window") {
  DeliveryWindow w(10);
  CHECK(w.begin(0) == 10);
  DeliveryWindow big(65536);
  CHECK(big.begin(0) == DeliveryWindow::kPageMessages);
}

TEST_CASE("delivery window: a full page reads again, after the cursor, within the free room") {
  DeliveryWindow w(300);
  const std::size_t first = w.begin(1000);
  REQUIRE(first == 256);
  CHECK(take_page(w, 1, first) == 256);
  CHECK(w.cursor() == 256);
  CHECK(w.in_flight() == 256);
  CHECK(w.page_done(first));  // a full page: more may wait
  CHECK(w.state() == ReadState::kBehind);
  auto next = w.next_read();
  REQUIRE(next);
  CHECK(next->after == 256);
  CHECK(next->limit == 300 - 256);
  CHECK(w.state() == ReadState::kReading);
  CHECK_FALSE(w.next_read());  // one read at a time
  CHECK(take_page(w, 257, next->limit) == 44);
  CHECK(w.page_done(next->limit));
  CHECK_FALSE(w.next_read());  // the window is full
  CHECK(w.state() == ReadState::kBehind);
  CHECK_FALSE(w.take_drained());  // the backlog is not read yet
  // An ack makes room.
  CHECK(w.acked(1));
  CHECK_FALSE(w.acked(1));
  next = w.next_read();
  REQUIRE(next);
  CHECK(next->after == 300);
  CHECK(next->limit == 1);
}

TEST_CASE("delivery window: a message stored during the sign-in scan makes one more read") {
  DeliveryWindow w(256);
  const std::size_t limit = w.begin(5);
  CHECK(take_page(w, 1, 5) == 5);
  w.scan_returned(6);  // seq 6 arrived while the scan ran
  CHECK(w.state() == ReadState::kReadingDirty);
  CHECK(w.page_done(5));  // a short page, but dirty: read again
  auto next = w.next_read();
  REQUIRE(next);
  CHECK(next->after == 5);
  CHECK(next->limit == limit - 5);
  CHECK(take_page(w, 6, 1) == 1);
  CHECK_FALSE(w.page_done(1));
  CHECK(w.state() == ReadState::kCaughtUp);
}

TEST_CASE("delivery window: messages arriving while a read runs are left to the read") {
  DeliveryWindow w(256);
  w.begin(0);
  CHECK(w.on_stored(1, true) == Arrived::kNone);
  CHECK(w.state() == ReadState::kReadingDirty);
  CHECK(w.on_stored(2, true) == Arrived::kNone);
  CHECK(w.state() == ReadState::kReadingDirty);
  CHECK(take_page(w, 1, 1) == 1);  // the page saw only seq 1
  CHECK(w.page_done(1));           // dirty: read again
  auto next = w.next_read();
  REQUIRE(next);
  CHECK(next->after == 1);
  CHECK(take_page(w, 2, 1) == 1);
  CHECK_FALSE(w.page_done(1));
  CHECK(w.in_flight() == 2);
}

TEST_CASE("delivery window: caught up, a new message is pushed straight from the fan-out") {
  DeliveryWindow w(2);
  w.begin(0);
  CHECK_FALSE(w.page_done(0));
  CHECK(w.on_stored(1, true) == Arrived::kPush);
  CHECK(w.cursor() == 1);
  CHECK(w.in_flight() == 1);
  CHECK(w.state() == ReadState::kCaughtUp);
  CHECK(w.on_stored(1, true) == Arrived::kNone);  // pushed already
  CHECK(w.on_stored(2, true) == Arrived::kPush);
  // The window is full: the message waits in the mailbox.
  CHECK(w.on_stored(3, true) == Arrived::kRead);
  CHECK(w.state() == ReadState::kBehind);
  CHECK_FALSE(w.next_read());  // still full
  CHECK(w.on_stored(4, true) == Arrived::kRead);  // behind: every arrival asks for a read
  CHECK(w.acked(1));
  auto next = w.next_read();
  REQUIRE(next);
  CHECK(next->after == 2);
  CHECK(next->limit == 1);
}

TEST_CASE("delivery window: unordered arrivals (cluster mode) are pushed only when their mseq is next") {
  DeliveryWindow w(8);
  w.begin(0);
  // The sign-in read: seqs 10 and 40 (other nodes took the seqs between),
  // mseqs 1 and 2.
  CHECK(w.take(10, 1));
  CHECK(w.take(40, 2));
  CHECK_FALSE(w.page_done(2));
  REQUIRE(w.state() == ReadState::kCaughtUp);
  // mseq 3 follows mseq 2: nothing can come between, push it.
  CHECK(w.on_stored(55, true, /*ordered=*/false, 3) == Arrived::kPush);
  CHECK(w.cursor() == 55);
  // mseq 5 after 3: mseq 4 (another node's) is missing, read the mailbox.
  CHECK(w.on_stored(70, true, false, 5) == Arrived::kRead);
  CHECK(w.state() == ReadState::kBehind);
  CHECK(w.on_stored(60, true, false, 4) == Arrived::kRead);  // behind: still a read
  auto next = w.next_read();
  REQUIRE(next);
  CHECK(next->after == 55);
  CHECK(w.take(60, 4));
  CHECK(w.take(70, 5));
  CHECK_FALSE(w.page_done(2));
  // No mseq kept (0), unordered: always a read.
  CHECK(w.on_stored(80, true, false, 0) == Arrived::kRead);
}

TEST_CASE("delivery window: unordered, an empty mailbox's first message (mseq 1) is pushed, without a frame it is read") {
  DeliveryWindow w(8);
  w.begin(0);
  CHECK_FALSE(w.page_done(0));
  CHECK(w.on_stored(7, /*has_frame=*/false, false, 1) == Arrived::kRead);
  DeliveryWindow v(8);
  v.begin(0);
  CHECK_FALSE(v.page_done(0));
  CHECK(v.on_stored(7, true, false, 2) == Arrived::kRead);  // mseq 1 was never read: read
  DeliveryWindow u(8);
  u.begin(0);
  CHECK_FALSE(u.page_done(0));
  CHECK(u.on_stored(7, true, false, 1) == Arrived::kPush);
}

TEST_CASE("delivery window: a message without a frame is read from the mailbox") {
  DeliveryWindow w(8);
  w.begin(0);
  CHECK_FALSE(w.page_done(0));
  CHECK(w.on_stored(1, /*has_frame=*/false) == Arrived::kRead);
  CHECK(w.state() == ReadState::kBehind);
  CHECK(w.cursor() == 0);
  auto next = w.next_read();
  REQUIRE(next);
  CHECK(next->after == 0);
}

TEST_CASE("delivery window: a page skips what was pushed already") {
  DeliveryWindow w(8);
  w.begin(0);
  CHECK_FALSE(w.page_done(0));
  CHECK(w.on_stored(1, true) == Arrived::kPush);
  CHECK(w.on_stored(2, false) == Arrived::kRead);
  auto next = w.next_read();
  REQUIRE(next);
  CHECK(next->after == 1);
  CHECK_FALSE(w.take(1));
  CHECK(w.take(2));
  CHECK_FALSE(w.take(2));
}

TEST_CASE("delivery window: drained waits for the backlog's acks and their writes") {
  DeliveryWindow w(8);
  w.begin(3);  // three messages were stored before sign-in
  CHECK(take_page(w, 1, 3) == 3);
  CHECK_FALSE(w.page_done(3));
  CHECK_FALSE(w.take_drained());  // all three in flight
  CHECK(w.acked(1));
  CHECK(w.acked(3));
  CHECK_FALSE(w.take_drained());  // 2 still
  w.ack_write_started();
  CHECK(w.acked(2));
  CHECK_FALSE(w.take_drained());  // the ack is not durable yet
  // A message after sign-in may stay unacked: it is not the backlog.
  CHECK(w.on_stored(4, true) == Arrived::kPush);
  w.ack_write_done();
  CHECK(w.take_drained());
  CHECK(w.drained_sent());
  CHECK_FALSE(w.take_drained());
}

TEST_CASE("delivery window: no drained before the backlog is read") {
  DeliveryWindow w(8);
  w.begin(0);
  CHECK_FALSE(w.take_drained());  // still reading
  CHECK(w.page_done(8));          // a full page
  CHECK_FALSE(w.take_drained());
}

// A mailbox driven at random: messages arrive (with or without a frame),
// pages are read and acks come back, in any order. Every message is pushed
// exactly once, in increasing order, and never more than `window` are in
// flight; once the traffic stops and everything is acked, the window
// catches up and says drained.
TEST_CASE("delivery window: every message once, in order, within the window (random)") {
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    const std::size_t window = 1 + rng() % 40;
    std::uint64_t stored = rng() % 600;  // the backlog before sign-in
    DeliveryWindow w(window);
    std::vector<std::uint64_t> pushed;
    std::deque<std::uint64_t> unacked;
    struct Read {
      std::uint64_t after;
      std::size_t limit;
    };
    std::optional<Read> running{Read{0, w.begin(stored)}};
    const std::uint64_t signin = stored;
    bool scan_done = false;

    auto push = [&](std::uint64_t seq) {
      pushed.push_back(seq);
      unacked.push_back(seq);
      CHECK(w.in_flight() <= window);
    };
    auto start_read = [&] {
      if (auto r = w.next_read()) {
        REQUIRE_FALSE(running);
        running = Read{r->after, r->limit};
      }
    };
    auto complete_read = [&] {
      // The page as the store would return it now.
      const Read r = *running;
      running.reset();
      if (!scan_done) {
        scan_done = true;
        w.scan_returned(stored);
      }
      std::size_t got = 0;
      for (std::uint64_t s = r.after + 1; s <= stored && got < r.limit; ++s, ++got)
        if (w.take(s)) push(s);
      if (w.page_done(got)) start_read();
    };

    for (int step = 0; step < 3000; ++step) {
      const unsigned what = rng() % 10;
      if (what < 3 && step < 2000) {  // a message arrives
        ++stored;
        if (!scan_done) continue;  // before welcome the session drops it
        switch (w.on_stored(stored, rng() % 8 != 0)) {
          case Arrived::kPush: push(stored); break;
          case Arrived::kRead: start_read(); break;
          case Arrived::kNone: break;
        }
      } else if (what < 6 && running) {
        complete_read();
      } else if (!unacked.empty()) {  // an ack, mostly of the oldest
        const std::size_t i = rng() % 4 == 0 ? rng() % unacked.size() : 0;
        CHECK(w.acked(unacked[i]));
        unacked.erase(unacked.begin() + static_cast<std::ptrdiff_t>(i));
        start_read();
      }
    }
    // Quiet: read and ack until nothing is left.
    for (int i = 0; i < 100000 && (running || !unacked.empty()); ++i) {
      if (running) complete_read();
      while (!unacked.empty()) {
        CHECK(w.acked(unacked.front()));
        unacked.pop_front();
        start_read();
      }
    }
    CHECK_FALSE(running);
    CHECK(w.state() == ReadState::kCaughtUp);
    REQUIRE(pushed.size() == stored);
    for (std::size_t i = 0; i < pushed.size(); ++i) CHECK(pushed[i] == i + 1);
    CHECK(w.take_drained());
    CHECK(w.signin_seq() == signin);
  }
}

}  // namespace
}  // namespace oms::server
