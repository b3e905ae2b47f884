// Admission of client connections: the global cap (limits.max_connections)
// and the per-source-address cap (limits.max_connections_per_ip), held as
// one RAII slot for the connection's whole life (upgrade, then session).
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace oms::server {

struct ServerContext;

// Open connections per source address. Thread-safe.
class PerAddressCounter {
 public:
  // Counts one more for `key` unless that would exceed `limit` (0 = none).
  bool try_acquire(const std::string& key, std::size_t limit);
  void release(const std::string& key);
  std::size_t addresses() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::size_t> counts_;
};

// One admitted connection; releasing it (destruction) gives both counts back.
class ConnectionSlot {
 public:
  enum class Refusal { kNone, kTooManyConnections, kTooManyFromAddress, kShuttingDown };

  ConnectionSlot() = default;
  ConnectionSlot(ConnectionSlot&& o) noexcept;
  ConnectionSlot& operator=(ConnectionSlot&& o) noexcept;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot() { release(); }

  // Admits a connection from `address_key` (the address's bytes) or says why
  // not; on refusal the returned slot is empty.
  static ConnectionSlot admit(ServerContext& ctx, std::string address_key, Refusal& why);

  bool held() const { return ctx_ != nullptr; }
  void release();

 private:
  ServerContext* ctx_ = nullptr;
  std::string key_;
};

}  // namespace oms::server
