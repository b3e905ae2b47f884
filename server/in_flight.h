// The seqs a session has pushed and not yet seen acked, in increasing order.
//
// Pushes come in increasing seq order (the delivery cursor only moves
// forward) and acks mostly take the oldest ones, so this is a sorted vector
// whose consumed front is skipped rather than erased: a push is an append,
// an ack of the oldest is an increment, any other ack a binary search and a
// shift. It replaces a std::set, whose node per message was a malloc and a
// free on the drain path. An emptied window gives back a large buffer, so a
// session that drained a big mailbox does not keep it while idle.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace oms::server {

class InFlight {
 public:
  bool empty() const { return head_ == seqs_.size(); }
  std::size_t size() const { return seqs_.size() - head_; }
  // The oldest seq in flight; only when !empty().
  std::uint64_t front() const { return seqs_[head_]; }

  // Adds `seq`; a seq already in flight is not added twice.
  void insert(std::uint64_t seq) {
    if (empty() || seq > seqs_.back()) {
      seqs_.push_back(seq);
      return;
    }
    auto it = std::lower_bound(seqs_.begin() + static_cast<std::ptrdiff_t>(head_), seqs_.end(), seq);
    if (*it != seq) seqs_.insert(it, seq);
  }

  // Removes `seq`; false when it was not in flight.
  bool erase(std::uint64_t seq) {
    const auto first = seqs_.begin() + static_cast<std::ptrdiff_t>(head_);
    auto it = std::lower_bound(first, seqs_.end(), seq);
    if (it == seqs_.end() || *it != seq) return false;
    if (it == first) ++head_;
    else seqs_.erase(it);
    if (empty()) reset();
    else if (head_ >= kCompactAt && head_ * 2 >= seqs_.size()) compact();
    return true;
  }

 private:
  static constexpr std::size_t kCompactAt = 64;     // consumed front worth a shift
  static constexpr std::size_t kKeepCapacity = 16;  // kept across empty windows

  void compact() {
    seqs_.erase(seqs_.begin(), seqs_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  void reset() {
    if (seqs_.capacity() > kKeepCapacity) std::vector<std::uint64_t>().swap(seqs_);
    else seqs_.clear();
    head_ = 0;
  }

  std::vector<std::uint64_t> seqs_;  // sorted; [0, head_) already acked
  std::size_t head_ = 0;
};

}  // namespace oms::server
