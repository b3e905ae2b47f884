// FrameQueue: a session's send queue of encoded frames, in order.
//
// A vector used as a FIFO (std::deque would allocate a 512-byte block for
// every connection, idle or not). The consumed head is dropped once it is
// half of the vector, so a queue that never empties does not grow without
// end; an emptied queue gives back the room of a big burst. The bounds
// (delivery.max_send_queue frames, limits.max_send_queue_bytes bytes) are the
// session's to enforce; bytes() is the sum of the frames' sizes.
//
// Not thread-safe: used only on the owning session's strand.
#pragma once

#include <cassert>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace oms::server {

class FrameQueue {
 public:
  using Frame = std::shared_ptr<const std::string>;
  bool empty() const { return head_ == frames_.size(); }
  std::size_t size() const { return frames_.size() - head_; }
  std::size_t bytes() const { return bytes_; }
  const Frame& front() const { return frames_[head_]; }
  void push_back(Frame f) {
    bytes_ += f->size();
    frames_.push_back(std::move(f));
  }
  void pop_front() {
    assert(!empty());
    bytes_ -= frames_[head_]->size();
    frames_[head_++].reset();
    if (head_ == frames_.size()) {
      clear();
    } else if (head_ >= kCompactAt && head_ * 2 >= frames_.size()) {
      frames_.erase(frames_.begin(), frames_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void clear() {
    frames_.clear();
    head_ = 0;
    bytes_ = 0;
    if (frames_.capacity() > kKeepCapacity) frames_.shrink_to_fit();  // after a big burst
  }
  // Drops everything but the front (the frame being written).
  void keep_front_only() {
    frames_.resize(head_ + 1);
    bytes_ = frames_[head_]->size();
  }

  // Entries held, consumed head included, and the vector's capacity (for tests).
  std::size_t held() const { return frames_.size(); }
  std::size_t capacity() const { return frames_.capacity(); }
  static constexpr std::size_t kKeepCapacity = 16;  // kept across empty queues

 private:
  static constexpr std::size_t kCompactAt = 64;  // consumed head worth a shift
  std::vector<Frame> frames_;
  std::size_t head_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace oms::server
