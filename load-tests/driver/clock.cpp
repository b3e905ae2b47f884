// now_ns(): the process-wide monotonic clock of oms-load (see clock.h).
#include "load-tests/driver/clock.h"

namespace oms::load {

namespace {

const std::chrono::steady_clock::time_point kOrigin = std::chrono::steady_clock::now();

}  // namespace

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - kOrigin)
      .count();
}

std::chrono::steady_clock::time_point steady_time_at(std::int64_t ns) {
  return kOrigin + std::chrono::nanoseconds(ns);
}

}  // namespace oms::load
