#include "storage/write_batcher.h"

#include <pthread.h>

#include <algorithm>
#include <type_traits>
#include <utility>

namespace oms::storage {
namespace {

// A batch also stops growing once its bodies reach this size, so that one
// batch's memory stays bounded whatever max_batch_requests is.
constexpr std::size_t kMaxBatchBodyBytes = 16u << 20;
// Committed batches waiting for their callbacks before the writer waits.
constexpr std::size_t kMaxBatchesToComplete = 2;

void complete(WriteRequest& r, const WriteOutcome& o) {
  if (auto* d = std::get_if<DeviceOp>(&r); d && d->kind == DeviceOp::Kind::kSignIn) {
    if (!d->signed_in) return;
    if (o.status.is_ok())
      d->signed_in(Result<bool>(o.count == 1));
    else
      d->signed_in(Result<bool>(o.status));
    return;
  }
  std::visit(
      [&](auto& op) {
        using Op = std::decay_t<decltype(op)>;
        if (!op.done) return;
        if constexpr (std::is_same_v<Op, AppendOp>) {
          if (o.status.is_ok())
            op.done(Result<AppendResult>(o.append));
          else
            op.done(Result<AppendResult>(o.status));
        } else {
          if (o.status.is_ok())
            op.done(Result<std::uint64_t>(o.count));
          else
            op.done(Result<std::uint64_t>(o.status));
        }
      },
      r);
}

std::size_t body_bytes(const WriteRequest& r) {
  if (const auto* a = std::get_if<AppendOp>(&r)) return a->req.body.size();
  return 0;
}

}  // namespace

WriteBatcher::WriteBatcher(std::size_t max_batch_requests, std::size_t max_queued_requests,
                           Commit commit)
    : max_batch_requests_(std::max<std::size_t>(1, max_batch_requests)),
      max_queued_requests_(max_queued_requests),
      commit_(std::move(commit)) {}

WriteBatcher::~WriteBatcher() { stop(); }

void WriteBatcher::start() {
  completer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "oms-complete");
    run_completer();
  });
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "oms-writer");  // visible in top -H, perf
    run_writer();
  });
}

void WriteBatcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();  // drains the queue first
  {
    std::lock_guard<std::mutex> lock(done_mu_);
    done_stopping_ = true;
  }
  done_cv_.notify_all();
  if (completer_.joinable()) completer_.join();  // runs every callback handed to it
}

void WriteBatcher::set_after_batch(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(done_mu_);
  after_batch_ = std::move(hook);
}

void WriteBatcher::enqueue(WriteRequest r) {
  Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_)
      refused = Status::unavailable("the store is closing");
    else if (queue_.size() >= max_queued_requests_)
      refused = Status::unavailable("the store's write queue is full");
    else
      queue_.push_back(std::move(r));
  }
  if (!refused.is_ok()) {
    complete(r, WriteOutcome{std::move(refused), {}, 0});
    return;
  }
  cv_.notify_one();
}

void WriteBatcher::run_writer() {
  std::vector<WriteRequest> requests;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      std::size_t bytes = 0;
      while (!queue_.empty() && requests.size() < max_batch_requests_ &&
             (requests.empty() || bytes + body_bytes(queue_.front()) <= kMaxBatchBodyBytes)) {
        bytes += body_bytes(queue_.front());
        requests.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::vector<WriteOutcome> outcomes;
    outcomes.reserve(requests.size());
    Followers then = commit_(requests, outcomes);
    // The callbacks need neither the bodies nor the dedup payloads: give them
    // back now rather than after the completion thread's turn.
    for (auto& r : requests)
      if (auto* a = std::get_if<AppendOp>(&r)) {
        std::string().swap(a->req.body);
        std::string().swap(a->req.dedup_payload);
      }
    hand_off(std::move(requests), std::move(outcomes), std::move(then));
    requests.clear();
  }
}

void WriteBatcher::hand_off(std::vector<WriteRequest> requests,
                            std::vector<WriteOutcome> outcomes, Followers then) {
  {
    std::unique_lock<std::mutex> lock(done_mu_);
    done_cv_.wait(lock, [&] { return done_.size() < kMaxBatchesToComplete; });
    done_.push_back({std::move(requests), std::move(outcomes), std::move(then)});
  }
  done_cv_.notify_all();
}

void WriteBatcher::run_completer() {
  for (;;) {
    Committed c;
    std::function<void()> after;
    {
      std::unique_lock<std::mutex> lock(done_mu_);
      done_cv_.wait(lock, [&] { return done_stopping_ || !done_.empty(); });
      if (done_.empty()) return;  // stopping and drained
      c = std::move(done_.front());
      done_.pop_front();
      if (after_batch_) after = after_batch_;
    }
    done_cv_.notify_all();  // room for the writer
    auto next = c.then.begin();
    for (std::size_t i = 0; i < c.requests.size(); ++i) {
      complete(c.requests[i], c.outcomes[i]);
      for (; next != c.then.end() && next->first <= i; ++next) next->second();
    }
    for (; next != c.then.end(); ++next) next->second();
    if (after) after();
  }
}

}  // namespace oms::storage
