// The per-user send rate limit (limits.send_rate_per_second, send_burst): a
// token bucket per user that lives apart from the user's sessions, so that
// signing out and in again does not buy a fresh burst.
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
  bool take(const std::string& user, std::int64_t now_ms, double rate, double burst);

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
  std::array<Shard, kShards> shards_;
};

}  // namespace oms::server
