// The seqs a session has pushed and not yet seen acked, in increasing order.
//
// Pushes come in increasing seq order (the delivery cursor only moves
// forward) and acks mostly take the oldest ones, so this is a sorted vector
// whose consumed front is skipped rather than erased: a push is an append,
// an ack of the oldest is an increment. Any other ack is a binary search and
// a shift of the shorter side, at most half the window (delivery.window,
// 256 by default: 1 KiB moved at most; at the largest window allowed, 65,536,
// 256 KiB, tens of microseconds, for a client that acks out of order on
// purpose). It
// replaces a std::set, whose node per message was a malloc and a free on the
// drain path. An emptied window gives back a large buffer, so a session
// that drained a big mailbox does not keep it while idle.
//
// Not thread-safe: used only on the owning session's strand.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace oms::server {

class InFlight {
 public:
  bool empty() const { return head_ == seqs_.size(); }
  std::size_t size() const { return seqs_.size() - head_; }
  // The oldest seq in flight.
  std::uint64_t front() const {
    assert(!empty());
    return seqs_[head_];
  }

  // Adds `seq`; a seq already in flight is not added twice.
  void insert(std::uint64_t seq) {
    if (empty() || seq > seqs_.back()) {
      seqs_.push_back(seq);
      return;
    }
    auto it = std::lower_bound(live_begin(), seqs_.end(), seq);
    if (*it != seq) seqs_.insert(it, seq);
  }

  // Removes `seq`; false when it was not in flight.
  bool erase(std::uint64_t seq) {
    const auto first = live_begin();
    auto it = std::lower_bound(first, seqs_.end(), seq);
    if (it == seqs_.end() || *it != seq) return false;
    if (it - first < seqs_.end() - it) {
      // Nearer the front: move the older ones up by one, over it.
      std::move_backward(first, it, it + 1);
      ++head_;
    } else {
      seqs_.erase(it);
    }
    if (empty()) reset();
    else if (head_ >= kCompactAt && head_ * 2 >= seqs_.size()) compact();
    return true;
  }

  // Entries held, consumed front included (for tests: at most about twice
  // size(), and at most kKeepCapacity once the window emptied).
  std::size_t held() const { return seqs_.size(); }
  std::size_t capacity() const { return seqs_.capacity(); }
  static constexpr std::size_t kKeepCapacity = 16;  // kept across empty windows

 private:
  static constexpr std::size_t kCompactAt = 64;  // consumed front worth a shift

  std::vector<std::uint64_t>::iterator live_begin() {
    return seqs_.begin() + static_cast<std::ptrdiff_t>(head_);
  }
  void compact() {
    seqs_.erase(seqs_.begin(), live_begin());
    head_ = 0;
  }
  void reset() {
    if (seqs_.capacity() > kKeepCapacity) std::vector<std::uint64_t>().swap(seqs_);
    else seqs_.clear();
    head_ = 0;
  }

  // [head_, end) is sorted and in flight; [0, head_) was acked (and is not
  // necessarily below what follows it).
  std::vector<std::uint64_t> seqs_;
  std::size_t head_ = 0;
};

}  // namespace oms::server
