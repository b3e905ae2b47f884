// Worker: the connect limiter, timeline slots, error counts, timers (see worker.h).
#include "load-tests/driver/worker.h"

#include <algorithm>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "load-tests/driver/clock.h"
#include "load-tests/driver/connection.h"
#include "load-tests/driver/run.h"

namespace oms::load {

Worker::Worker(Run& r, unsigned i, std::size_t max_connecting)
    : run(r), index(i), rng(0x6f6d73ULL * (i + 1)), max_connecting_(std::max<std::size_t>(1, max_connecting)) {}

void Worker::request_connect(std::shared_ptr<Connection> c) {
  c->phase_ = Connection::Phase::kQueued;
  waiting_.push_back(std::move(c));
  admit_waiting();
}

void Worker::connect_finished() {
  --connecting_;
  admit_waiting();
}

void Worker::admit_waiting() {
  while (connecting_ < max_connecting_ && !waiting_.empty()) {
    auto next = std::move(waiting_.front());
    waiting_.pop_front();
    if (next->phase_ != Connection::Phase::kQueued) continue;  // signed out while queued
    ++connecting_;
    next->slot_held_ = true;
    next->begin_connect();
  }
}

TimelineSlot* Worker::slot(std::int64_t t_ns) {
  const std::int64_t slot_ns = static_cast<std::int64_t>(run.opt.slot_ms * 1e6);
  const std::int64_t i = (t_ns - run.t0) / slot_ns;
  // Bounded by the hard deadline (plus slack).
  const std::int64_t max_slots = static_cast<std::int64_t>(run.opt.timeout_s * 1e9) / slot_ns + 2;
  if (i < 0 || i >= max_slots) return nullptr;
  if (static_cast<std::size_t>(i) >= stats.timeline.size())
    stats.timeline.resize(static_cast<std::size_t>(i) + 1);
  return &stats.timeline[static_cast<std::size_t>(i)];
}

void Worker::count_error(std::string_view code, std::uint64_t n) {
  auto it = stats.errors.find(code);
  if (it == stats.errors.end()) it = stats.errors.emplace(std::string(code), 0).first;
  it->second += n;
  if (auto* s = slot(now_ns())) s->errors += static_cast<std::uint32_t>(n);
}

void Worker::after(std::chrono::nanoseconds delay, std::function<void()> f) {
  auto timer = std::make_shared<net::steady_timer>(ioc, delay);
  timer->async_wait([timer, f = std::move(f)](const boost::system::error_code& ec) {
    if (!ec) f();
  });
}

}  // namespace oms::load
