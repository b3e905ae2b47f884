// Worker: one thread, one io_context, and the users i with i % T == index
// (T workers). It owns what its sessions share: the connect limiter's
// queue, the live counters, the statistics and the random generator. It
// sees its Run only as the RunState (run_state.h) and never calls into a
// Connection; the sessions drive the limiter (connection.cpp).
//
// Thread-safety: everything but `live` is touched only on the worker's own
// thread (post onto `ioc` to reach it), or by the orchestrating thread after
// the worker has stopped. `live` is atomics, readable from anywhere.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string_view>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "load-tests/driver/stats.h"

namespace oms::load {

namespace net = boost::asio;

class Connection;
class RunState;

// The connect limiter's state: at most `max_connecting` connects + upgrades
// at once; the rest wait in order. Connection queues itself, takes and
// releases the slots (Connection::start, admit_waiting, release_connect_slot).
struct ConnectQueue {
  explicit ConnectQueue(std::size_t max) : max_connecting(std::max<std::size_t>(1, max)) {}
  std::deque<std::shared_ptr<Connection>> waiting;
  std::size_t connecting = 0;
  const std::size_t max_connecting;
};

class Worker {
 public:
  Worker(RunState& run, unsigned index, std::size_t max_connecting);
  RunState& run;
  const unsigned index;
  net::io_context ioc{1};
  LiveCounters live;
  WorkerStats stats;
  std::mt19937_64 rng;
  // Declared after `ioc`: queued sessions use it until they are destroyed.
  ConnectQueue connects;

  // The timeline slot of time t_ns; nullptr outside the run's deadline.
  TimelineSlot* slot(std::int64_t t_ns);
  void count_error(std::string_view code, std::uint64_t n = 1);
  // Runs `f` on this worker after `delay` (a one-shot timer).
  void after(std::chrono::nanoseconds delay, std::function<void()> f);

 private:
  friend class Run;

  std::optional<net::executor_work_guard<net::io_context::executor_type>> guard_;
  std::thread thread_;
};

}  // namespace oms::load
