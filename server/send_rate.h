// The per-user rate limits: a token bucket per user that lives apart from
// the user's sessions, so that signing out and in again does not buy a fresh
// burst. Two instances: sends (limits.send_rate_per_second, send_burst) and
// every other request (limits.request_rate_per_second, request_burst).
//
// Memory is bounded by the users who sent recently: a bucket that has
// refilled to `burst` is the same as no bucket, so it is dropped (lazily,
// when its shard is swept), and a shard is swept whenever it has doubled
// since the last sweep.
//
// Thread-safe (sharded mutexes); take() is O(1) amortised.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace oms::server {

class SendRateLimiter {
 public:
  // One token for `user` at `now_ms`; false when the bucket is empty (the
  // send is refused and costs nothing). `rate` tokens per second, at most
  // `burst` saved.
  bool take(const std::string& user, std::int64_t now_ms, double rate, double burst, double cost = 1.0);

  // Takes `cost` tokens even when that leaves the bucket in debt (at most
  // `burst` deep) and returns how many milliseconds until it is out of debt
  // (0: none). For requests that must be applied but may be throttled (acks).
  std::int64_t charge(const std::string& user, std::int64_t now_ms, double rate, double burst, double cost);

  // Gives back the token of a send that turned out to be a resend (a
  // duplicate costs nothing: protocol 4.4). Never above `burst`.
  void refund(const std::string& user, double burst);

  // Buckets held now (for tests and metrics).
  std::size_t size() const;

 private:
  struct Bucket {
    double tokens = 0;
    std::int64_t at_ms = 0;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Bucket> users;
    std::size_t swept_at_size = 64;  // sweep when the map doubles past this
  };
  static constexpr std::size_t kShards = 32;
  Shard& shard(std::string_view user);
  Bucket& bucket(Shard& sh, const std::string& user, std::int64_t now_ms, double rate, double burst);
  std::array<Shard, kShards> shards_;
};

}  // namespace oms::server
