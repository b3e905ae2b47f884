// Worker: timeline slots, error counts, timers (see worker.h).
#include "load-tests/driver/worker.h"

#include <string>

#include <boost/asio/steady_timer.hpp>

#include "load-tests/driver/clock.h"
#include "load-tests/driver/run_state.h"

namespace oms::load {

Worker::Worker(RunState& r, unsigned i, std::size_t max_connecting)
    : run(r), index(i), rng(0x6f6d73ULL * (i + 1)), connects(max_connecting) {}

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
