// Latency histograms with HdrHistogram's layout: values below 2^kSubBits are
// kept exactly; above that, every power of two is split into 2^(kSubBits-1)
// equal buckets, so any reported value is within 2^-(kSubBits-1) of the truth
// (kSubBits = 8: 0.8 %). Values are nanoseconds (or any non-negative count).
// Min, max, count and sum are exact.
//
// Not thread-safe: each worker thread records into its own and the
// histograms are merged after the threads have joined.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace oms::load {

template <unsigned kSubBits, class Count = std::uint64_t>
class LogHistogram {
 public:
  static_assert(kSubBits >= 2 && kSubBits <= 16);
  static constexpr unsigned kExact = 1u << kSubBits;  // [0, kExact) recorded exactly
  static constexpr unsigned kHalf = kExact / 2;       // buckets per power of two above it
  static constexpr unsigned kBuckets = kExact + (64 - kSubBits) * kHalf;

  LogHistogram() : counts_(kBuckets, 0) {}

  void record(std::int64_t value) {
    const std::uint64_t v = value < 0 ? 0 : static_cast<std::uint64_t>(value);
    ++counts_[index_of(v)];
    ++total_;
    sum_ += static_cast<double>(v);
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }

  void merge(const LogHistogram& o) {
    if (o.total_ == 0) return;
    for (unsigned i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    sum_ += o.sum_;
    min_ = std::min(min_, o.min_);
    max_ = std::max(max_, o.max_);
  }

  std::uint64_t count() const { return total_; }
  std::uint64_t min() const { return total_ ? min_ : 0; }
  std::uint64_t max() const { return max_; }
  double mean() const { return total_ ? sum_ / static_cast<double>(total_) : 0.0; }

  // The value at quantile q (0..1): the smallest recorded bucket whose
  // cumulative count reaches ceil(q * count), reported as the bucket's
  // midpoint clamped to [min, max]. q = 1 returns the exact max.
  std::uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    if (q >= 1.0) return max_;
    if (q <= 0.0) return min_;
    const auto target = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_))));
    std::uint64_t seen = 0;
    for (unsigned i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= target) {
        const std::uint64_t mid = lower(i) + width(i) / 2;
        return std::clamp(mid, min_, max_);
      }
    }
    return max_;
  }

  static unsigned index_of(std::uint64_t v) {
    if (v < kExact) return static_cast<unsigned>(v);
    const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v));  // >= kSubBits
    const unsigned shift = msb - (kSubBits - 1);  // keep the kSubBits top bits
    const unsigned sub = static_cast<unsigned>(v >> shift) - kHalf;
    return kExact + (msb - kSubBits) * kHalf + sub;
  }
  static std::uint64_t lower(unsigned i) {
    if (i < kExact) return i;
    const unsigned j = i - kExact;
    const unsigned msb = j / kHalf + kSubBits;
    return static_cast<std::uint64_t>(kHalf + j % kHalf) << (msb - (kSubBits - 1));
  }
  static std::uint64_t width(unsigned i) {
    if (i < kExact) return 1;
    const unsigned msb = (i - kExact) / kHalf + kSubBits;
    return std::uint64_t{1} << (msb - (kSubBits - 1));
  }

 private:
  std::vector<Count> counts_;
  std::uint64_t total_ = 0;
  double sum_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t max_ = 0;
};

// Fine histogram for the reported percentiles (0.8 % resolution).
using LatencyHistogram = LogHistogram<8>;
// Coarse histogram for one time slot of the timeline chart (12.5 %).
using SlotHistogram = LogHistogram<4, std::uint32_t>;

}  // namespace oms::load
