// An injectable clock: wall time in milliseconds since the Unix epoch.
#pragma once

#include <atomic>
#include <cstdint>

namespace oms {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t now_ms() const = 0;
  std::int64_t now_s() const { return now_ms() / 1000; }
};

// The real clock (std::chrono::system_clock). Thread-safe.
class SystemClock final : public Clock {
 public:
  std::int64_t now_ms() const override;
  static const SystemClock& instance();
};

// A clock tests move by hand. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  std::int64_t now_ms() const override { return now_.load(); }
  void set_ms(std::int64_t ms) { now_.store(ms); }
  void advance_ms(std::int64_t d) { now_.fetch_add(d); }

 private:
  std::atomic<std::int64_t> now_;
};

}  // namespace oms
