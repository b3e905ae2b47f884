// Server: one omsd process. Owns the I/O contexts (one io_context per I/O
// thread), the two listeners, the blocking pool, the store and the shared
// context.
//
// start() opens the store, binds both listeners and writes ports.json;
// run() serves until SIGTERM/SIGINT (or shutdown()), then stops accepting,
// closes every session with 1001, drains the store's writer and returns.
#pragma once

#include <memory>

#include "common/status.h"
#include "server/config.h"

namespace oms::server {

class Server {
 public:
  explicit Server(Config config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status start();
  // Blocks until shut down. Returns the process exit code.
  int run();
  // Thread-safe: begins the graceful shutdown.
  void shutdown();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace oms::server
