// HintReader: one I/O context's subscription to the hints of its own
// sessions' users (channels oms:u:<user>, server/cluster.h), read by that
// context's I/O thread itself. A hint from another node then reaches the
// session's thread straight from Redis: no subscriber thread wakes in
// between and hands it over (the cross-node path is the same-node path plus
// Redis).
//
// One per I/O context, created by the cluster (Cluster::attach_io). Its
// own Redis connection, driven by Asio on that context: it subscribes to
// oms:u:<user> while a session of <user> lives on the context, reconnects
// with backoff (100 ms doubling to 2 s) and, after every subscription took
// effect, has the sessions read their mailbox (Hooks::subscribed), so a
// message committed while the channel was not subscribed (a new session,
// Redis restarted) does not wait for the next one.
//
// The node-wide channels (presence, reread) stay with the cluster's
// subscriber thread.
//
// Thread-safety: start(), want() and close() may be called from any thread
// (they post to the context); everything else runs on the context.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "server/redis_client.h"

namespace boost::asio {
class io_context;
}

namespace oms::server {

class HintReader {
 public:
  struct Hooks {
    // A message on oms:u:<user> (on the context's thread).
    std::function<void(const std::string& user, std::string_view payload)> hint;
    // The subscription to oms:u:<user> took effect (on the context's thread).
    std::function<void(const std::string& user)> subscribed;
    std::atomic<std::uint64_t>* errors = nullptr;  // lost connections (ClusterCounters::redis_errors)
    std::atomic<std::int64_t>* connected = nullptr;  // +1 while connected (ClusterCounters::hint_readers_connected)
  };
  // `name` for the log (the node and the context's number).
  static std::shared_ptr<HintReader> create(boost::asio::io_context& ioc, RedisAddress addr, std::string name,
                                            Hooks hooks);
  virtual ~HintReader() = default;

  // Connects (and keeps reconnecting until close()).
  virtual void start() = 0;
  // A session of `user` opened (true) or closed (false) on this context: the
  // channel is subscribed while at least one is open.
  virtual void want(const std::string& user, bool open) = 0;
  // Closes the connection for good (at shutdown: nothing is left pending on
  // the context, so its thread can finish).
  virtual void close() = 0;
};

}  // namespace oms::server
