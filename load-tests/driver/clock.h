// The load generator's one clock: monotonic nanoseconds since the process
// started, the same for every thread, so a sender's timestamp embedded in a
// body is comparable at the receiver. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>

namespace oms::load {

// Monotonic nanoseconds since the process started.
std::int64_t now_ns();

// The steady_clock time point at which now_ns() reads `ns` (for waits that
// take a time point, e.g. condition_variable::wait_until).
std::chrono::steady_clock::time_point steady_time_at(std::int64_t ns);

}  // namespace oms::load
