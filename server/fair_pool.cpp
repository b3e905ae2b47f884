#include "server/fair_pool.h"

#include <pthread.h>

#include <utility>

#include <spdlog/spdlog.h>

namespace oms::server {

FairPool::FairPool(unsigned threads, std::size_t max_queued_per_key, std::string thread_name)
    : max_per_key_(max_queued_per_key ? max_queued_per_key : 1), thread_name_(std::move(thread_name)) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

FairPool::~FairPool() {
  stop();
  join();
}

bool FairPool::submit(const std::string& key, std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      ++refused_;
      return false;
    }
    KeyQueue& q = keys_[key];
    if (q.tasks.size() >= max_per_key_) {
      ++refused_;
      return false;
    }
    q.tasks.push_back(std::move(fn));
    ++queued_;
    if (q.tasks.size() == 1 && !q.running) ring_.push_back(key);
  }
  cv_.notify_one();
  return true;
}

void FairPool::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

void FairPool::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

std::size_t FairPool::queued() const {
  std::lock_guard lock(mu_);
  return queued_;
}

std::uint64_t FairPool::refused() const {
  std::lock_guard lock(mu_);
  return refused_;
}

void FairPool::work() {
  pthread_setname_np(pthread_self(), thread_name_.substr(0, 15).c_str());
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return !ring_.empty() || (stopping_ && queued_ == 0); });
    if (ring_.empty()) return;  // stopping, nothing left
    std::string key = std::move(ring_.front());
    ring_.pop_front();
    auto it = keys_.find(key);
    it->second.running = true;
    std::function<void()> fn = std::move(it->second.tasks.front());
    lock.unlock();
    try {
      fn();
    } catch (const std::exception& e) {
      spdlog::error("{}: a task for {} threw: {}", thread_name_, key, e.what());
    }
    fn = nullptr;  // release what it captured outside the lock
    lock.lock();
    it = keys_.find(key);
    it->second.tasks.pop_front();
    it->second.running = false;
    --queued_;
    if (it->second.tasks.empty()) keys_.erase(it);
    else ring_.push_back(std::move(key));  // to the back: everyone else first
    if (stopping_ && queued_ == 0) cv_.notify_all();  // the idle workers exit too
  }
}

}  // namespace oms::server
