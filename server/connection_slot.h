// Admission of client connections: the global cap (limits.max_connections)
// and the per-source-address cap (limits.max_connections_per_ip), held as
// one RAII slot for the connection's whole life (upgrade, then session).
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

#include <boost/asio/ip/address.hpp>

namespace oms::server {

// The key limits.max_connections_per_ip counts under: an IPv4 address as
// is (also when it arrives IPv4-mapped on a dual-stack socket), an IPv6
// address by its /64 prefix (one host usually holds a whole /64: keying on
// the full address would let it open the cap 2^64 times).
std::string address_key(const boost::asio::ip::address& a);

class Metrics;
class ConnectionSlot;

// Open connections per source address. Thread-safe.
class PerAddressCounter {
 public:
  // Counts one more for `key` unless that would exceed `limit` (0 = none).
  bool try_acquire(const std::string& key, std::size_t limit);
  void release(const std::string& key);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::size_t> counts_;
};

// Admits client connections or says why not. The totals are the metrics'
// connection counters (connections_open is what shutdown waits on).
// Thread-safe; outlives every slot it hands out.
class Admission {
 public:
  enum class Refusal { kNone, kTooManyConnections, kTooManyFromAddress, kShuttingDown };
  struct Limits {
    std::size_t max_connections = 0;
    std::size_t max_per_address = 0;  // 0 = no limit
  };

  Admission(Metrics& metrics, const std::atomic<bool>& shutting_down)
      : metrics_(metrics), shutting_down_(shutting_down) {}

  // Admits a connection from `address_key` (the address's bytes) or says why
  // not; on refusal the returned slot is empty.
  ConnectionSlot admit(std::string address_key, const Limits& limits, Refusal& why);

 private:
  friend class ConnectionSlot;
  void release(const std::string& address_key);

  Metrics& metrics_;
  const std::atomic<bool>& shutting_down_;
  PerAddressCounter per_address_;
};

// One admitted connection; releasing it (destruction) gives both counts back.
class ConnectionSlot {
 public:
  ConnectionSlot() = default;
  ConnectionSlot(ConnectionSlot&& o) noexcept;
  ConnectionSlot& operator=(ConnectionSlot&& o) noexcept;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot() { release(); }

  bool held() const { return admission_ != nullptr; }
  void release();

 private:
  friend class Admission;
  Admission* admission_ = nullptr;
  std::string key_;
};

}  // namespace oms::server
