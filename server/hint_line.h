// HintLine: the connection on which a cluster node publishes its live-delivery
// hints to Redis (server/cluster.h), written by the store's completion thread
// itself so that no other thread wakes between a COMMIT and Redis.
//
// The line sends `PING` once (a round trip: Redis accepted this client),
// then `CLIENT REPLY OFF`, after which Redis answers nothing on it; its
// socket is non-blocking. queue() appends a PUBLISH command; flush() writes
// what is queued with one send() (the completion thread calls it after each
// batch's callbacks). When the socket is full the rest waits for the owner
// thread (Cluster's publisher), which tend()s the line on each of its turns:
// it waits for room, writes, opens the line (again) with its own backoff when
// it is closed, a write failed, or Redis closed it or wrote on it, and sends
// a keepalive `PING` a heartbeat period (no idle-client `timeout` closes it).
// Up to kMaxQueuedBytes wait; beyond that, and while there is no line, hints
// are dropped and counted: a lost hint costs latency, never a message — and
// no more latency than until the line works again: then the line publishes
// this node's id on kRereadChannel, and every other node has its sessions
// read their mailboxes (what the lost hints would have pushed is there).
//
// Thread-safe: queue() and flush() from any thread; tend() and close() from
// the owner thread only.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "server/redis_client.h"

namespace oms::server {

inline constexpr std::string_view kRereadChannel = "oms:reread";

class HintLine {
 public:
  static constexpr std::size_t kMaxQueuedBytes = 16u << 20;

  // Where the line counts (the cluster's counters; they outlive the line).
  struct Counters {
    std::atomic<std::uint64_t>& published;  // hints written to the socket
    std::atomic<std::uint64_t>& dropped;    // hints dropped (no line, full queue, failed write)
    std::atomic<std::uint64_t>& errors;     // the line lost or not opened
  };
  // `wake_owner`: asks the owner thread for a turn (the socket was full, or a
  // write failed); called without the line's lock held.
  // `node`: this node's id (the payload of its re-read requests).
  HintLine(Counters counters, std::string node, std::function<void()> wake_owner);
  ~HintLine();
  HintLine(const HintLine&) = delete;
  HintLine& operator=(const HintLine&) = delete;

  // ---- any thread ----
  // A PUBLISH of `payload` on `channel`, written at the next flush(); dropped
  // (and counted) when there is no line or kMaxQueuedBytes wait already.
  void queue(std::string_view channel, std::string_view payload);
  void flush();

  // ---- the owner thread ----
  // `attention`: wake_owner was called since the last turn; `beat`: time
  // for the keepalive. May wait up to 200 ms for room in a full socket.
  void tend(const RedisAddress& addr, bool attention, bool beat);
  // Closes the line (hints queued and those to come are dropped until the
  // next tend() opens it).
  void close();

 private:
  Status open(const RedisAddress& addr);
  void drop_locked();
  bool write_locked();

  Counters counters_;
  const std::string node_;
  const std::function<void()> wake_owner_;

  // Owner thread only.
  RedisConnection conn_;
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_{100};

  std::mutex mu_;
  int fd_ = -1;                  // conn_'s socket while the line is open, else -1
  std::string out_;              // commands not written yet
  std::deque<std::size_t> ends_; // where each queued hint ends in out_
  bool stalled_ = false;         // the socket was full: the owner writes the rest
  bool broken_ = false;          // a write failed: the owner reopens the line
  bool reread_wanted_ = false;   // hints were dropped: ask the others to re-read
};

}  // namespace oms::server
