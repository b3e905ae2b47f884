// Waiting for a condition with a deadline (the only way tests synchronise
// with the server: never a bare sleep).
#pragma once

#include <chrono>
#include <thread>

namespace oms::test {

using SteadyClock = std::chrono::steady_clock;
using SteadyClockTimePoint = SteadyClock::time_point;
using std::chrono::milliseconds;

// Polls `pred` every `poll` until it returns true (-> true) or `timeout`
// passes (-> false). `pred` is evaluated once more at the deadline.
template <class Pred>
bool wait_until(Pred&& pred, milliseconds timeout, milliseconds poll = milliseconds(5)) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll);
  }
}

}  // namespace oms::test
