#include "server/send_rate.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace oms::server {

namespace {

double refilled(double tokens, std::int64_t at_ms, std::int64_t now_ms, double rate, double burst) {
  const double elapsed = static_cast<double>(std::max<std::int64_t>(0, now_ms - at_ms)) / 1000.0;
  return std::min(burst, tokens + elapsed * rate);
}

}  // namespace

SendRateLimiter::Shard& SendRateLimiter::shard(std::string_view user) {
  return shards_[std::hash<std::string_view>{}(user) % kShards];
}

SendRateLimiter::Bucket& SendRateLimiter::bucket(Shard& sh, const std::string& user, std::int64_t now_ms,
                                                  double rate, double burst) {
  if (sh.users.size() >= 2 * sh.swept_at_size) {
    std::erase_if(sh.users, [&](const auto& kv) {
      return refilled(kv.second.tokens, kv.second.at_ms, now_ms, rate, burst) >= burst;
    });
    sh.swept_at_size = std::max<std::size_t>(64, sh.users.size());
  }
  auto [it, fresh] = sh.users.try_emplace(user);
  Bucket& b = it->second;
  b.tokens = fresh ? burst : refilled(b.tokens, b.at_ms, now_ms, rate, burst);
  b.at_ms = now_ms;
  return b;
}

bool SendRateLimiter::take(const std::string& user, std::int64_t now_ms, double rate, double burst, double cost) {
  Shard& sh = shard(user);
  std::lock_guard lock(sh.mu);
  Bucket& b = bucket(sh, user, now_ms, rate, burst);
  if (b.tokens < cost) return false;
  b.tokens -= cost;
  return true;
}

std::int64_t SendRateLimiter::charge(const std::string& user, std::int64_t now_ms, double rate, double burst,
                                     double cost) {
  Shard& sh = shard(user);
  std::lock_guard lock(sh.mu);
  Bucket& b = bucket(sh, user, now_ms, rate, burst);
  b.tokens = std::max(-burst, b.tokens - cost);
  if (b.tokens >= 0) return 0;
  return static_cast<std::int64_t>(std::ceil(-b.tokens / rate * 1000.0));
}

void SendRateLimiter::refund(const std::string& user, double burst) {
  Shard& sh = shard(user);
  std::lock_guard lock(sh.mu);
  if (auto it = sh.users.find(user); it != sh.users.end())
    it->second.tokens = std::min(burst, it->second.tokens + 1.0);
}

std::size_t SendRateLimiter::size() const {
  std::size_t n = 0;
  for (const Shard& sh : shards_) {
    std::lock_guard lock(sh.mu);
    n += sh.users.size();
  }
  return n;
}

}  // namespace oms::server
