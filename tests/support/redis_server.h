// A real redis-server (Debian's) as a child process for cluster-mode tests:
// no TCP port (unix socket in a temp dir), no persistence. Killed with the
// test (spawn_process). Not thread-safe.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace oms::test {

class RedisServer {
 public:
  RedisServer();  // starts it and waits (with a deadline) until it answers PING
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::string url() const { return "unix://" + socket_.string(); }  // for [cluster] redis_url
  // redis-cli against it; its stdout.
  std::string cli(const std::vector<std::string>& args) const;
  void kill();     // SIGKILL, waits for it
  void restart();  // starts again (empty: no persistence)
  void pause();    // SIGSTOP: it keeps its connections and reads nothing
  void resume();   // SIGCONT
  bool running() const { return pid_ > 0; }

 private:
  void start();
  TempDir dir_;
  std::filesystem::path socket_;
  pid_t pid_ = -1;
};

}  // namespace oms::test
