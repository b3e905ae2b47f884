#include "server/connection_slot.h"

#include <utility>

#include "server/metrics.h"

namespace oms::server {

std::string address_key(const boost::asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return address_key(boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()));
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    return std::string(b.begin(), b.end());
  }
  const auto b = a.to_v6().to_bytes();
  return std::string(b.begin(), b.begin() + 8) + "/64";
}

bool PerAddressCounter::try_acquire(const std::string& key, std::size_t limit) {
  std::lock_guard lock(mu_);
  std::size_t& n = counts_[key];
  if (limit != 0 && n >= limit) {
    if (n == 0) counts_.erase(key);
    return false;
  }
  ++n;
  return true;
}

void PerAddressCounter::release(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = counts_.find(key);
  if (it == counts_.end()) return;
  if (--it->second == 0) counts_.erase(it);
}

ConnectionSlot Admission::admit(std::string address_key, const Limits& limits, Refusal& why) {
  metrics_.connections_total.fetch_add(1, std::memory_order_relaxed);
  why = Refusal::kNone;
  if (shutting_down_.load()) why = Refusal::kShuttingDown;
  const auto open = metrics_.connections_open.fetch_add(1, std::memory_order_relaxed) + 1;
  if (why == Refusal::kNone && static_cast<std::size_t>(open) > limits.max_connections)
    why = Refusal::kTooManyConnections;
  if (why == Refusal::kNone && !per_address_.try_acquire(address_key, limits.max_per_address))
    why = Refusal::kTooManyFromAddress;
  if (why != Refusal::kNone) {
    metrics_.connections_open.fetch_sub(1, std::memory_order_relaxed);
    metrics_.connections_refused.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  ConnectionSlot slot;
  slot.admission_ = this;
  slot.key_ = std::move(address_key);
  return slot;
}

void Admission::release(const std::string& address_key) {
  per_address_.release(address_key);
  metrics_.connections_open.fetch_sub(1, std::memory_order_relaxed);
}

ConnectionSlot::ConnectionSlot(ConnectionSlot&& o) noexcept
    : admission_(std::exchange(o.admission_, nullptr)), key_(std::move(o.key_)) {}

ConnectionSlot& ConnectionSlot::operator=(ConnectionSlot&& o) noexcept {
  if (this != &o) {
    release();
    admission_ = std::exchange(o.admission_, nullptr);
    key_ = std::move(o.key_);
  }
  return *this;
}

void ConnectionSlot::release() {
  if (!admission_) return;
  admission_->release(key_);
  admission_ = nullptr;
}

}  // namespace oms::server
