// A thread pool that is fair between users: the mailbox scans of sign-ins,
// delivery pages and missed-message digests run here, keyed by user.
//
// - One user's tasks run one at a time, in submission order: a user never
//   holds more than one thread, so with two or more threads the others keep
//   serving everyone else.
// - Users with work waiting take turns (round robin): a user with a hundred
//   queued scans gets one turn, then every other waiting user gets one.
// - Each user's queue is bounded (`max_queued_per_key`): submit() refuses
//   beyond it and the caller answers the client with an error.
//
// So a sign-in waits at most for the tasks already running (at most one per
// thread) and one task of each other user ahead of it in the ring, however
// much any one user has queued. Tasks for sessions that are gone should
// return at once (the caller's check): they still take their turn, cheaply.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace oms::server {

class FairPool {
 public:
  FairPool(unsigned threads, std::size_t max_queued_per_key, std::string thread_name);
  ~FairPool();  // stop() + join()
  FairPool(const FairPool&) = delete;
  FairPool& operator=(const FairPool&) = delete;

  // Queues `fn` under `key`. False (fn dropped) when the key already has
  // max_queued_per_key tasks waiting or running, or the pool is stopping.
  bool submit(const std::string& key, std::function<void()> fn);

  // Stops taking tasks; workers finish what is queued, then exit.
  void stop();
  void join();

  std::size_t queued() const;            // tasks waiting or running
  std::uint64_t refused() const;         // submit() == false so far

 private:
  struct KeyQueue {
    std::deque<std::function<void()>> tasks;  // front = running when `running`
    bool running = false;
  };
  void work();

  const std::size_t max_per_key_;
  const std::string thread_name_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, KeyQueue> keys_;
  std::deque<std::string> ring_;  // keys with a task ready and none running
  std::size_t queued_ = 0;
  std::uint64_t refused_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace oms::server
