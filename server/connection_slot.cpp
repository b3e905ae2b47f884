#include "server/connection_slot.h"

#include <utility>

#include "server/context.h"

namespace oms::server {

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

std::size_t PerAddressCounter::addresses() const {
  std::lock_guard lock(mu_);
  return counts_.size();
}

ConnectionSlot::ConnectionSlot(ConnectionSlot&& o) noexcept
    : ctx_(std::exchange(o.ctx_, nullptr)), key_(std::move(o.key_)) {}

ConnectionSlot& ConnectionSlot::operator=(ConnectionSlot&& o) noexcept {
  if (this != &o) {
    release();
    ctx_ = std::exchange(o.ctx_, nullptr);
    key_ = std::move(o.key_);
  }
  return *this;
}

ConnectionSlot ConnectionSlot::admit(ServerContext& ctx, std::string address_key, Refusal& why) {
  ctx.metrics.connections_total.fetch_add(1, std::memory_order_relaxed);
  why = Refusal::kNone;
  if (ctx.shutting_down.load()) why = Refusal::kShuttingDown;
  const auto open = ctx.metrics.connections_open.fetch_add(1, std::memory_order_relaxed) + 1;
  if (why == Refusal::kNone && static_cast<std::size_t>(open) > ctx.config.max_connections)
    why = Refusal::kTooManyConnections;
  if (why == Refusal::kNone && !ctx.connections_per_address.try_acquire(address_key, ctx.config.max_connections_per_ip))
    why = Refusal::kTooManyFromAddress;
  if (why != Refusal::kNone) {
    ctx.metrics.connections_open.fetch_sub(1, std::memory_order_relaxed);
    ctx.metrics.connections_refused.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  ConnectionSlot slot;
  slot.ctx_ = &ctx;
  slot.key_ = std::move(address_key);
  return slot;
}

void ConnectionSlot::release() {
  if (!ctx_) return;
  ctx_->connections_per_address.release(key_);
  ctx_->metrics.connections_open.fetch_sub(1, std::memory_order_relaxed);
  ctx_ = nullptr;
}

}  // namespace oms::server
