#include "tests/support/redis_server.h"

#include <signal.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "tests/support/process.h"

namespace oms::test {

RedisServer::RedisServer() : socket_(dir_.path() / "redis.sock") { start(); }

RedisServer::~RedisServer() { kill(); }

void RedisServer::start() {
  pid_ = spawn_process({"/usr/bin/redis-server", "--port", "0", "--unixsocket", socket_.string(), "--save", "",
                        "--appendonly", "no", "--dir", dir_.path().string()},
                       dir_.path() / "redis.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (try_reap(pid_)) {
      pid_ = -1;
      throw std::runtime_error("redis-server exited at start: " + file_tail(dir_.path() / "redis.log", 20));
    }
    if (cli({"PING"}).find("PONG") != std::string::npos) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // (a poll with a deadline)
  }
  throw std::runtime_error("redis-server did not answer PING in 20 s");
}

std::string RedisServer::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"/usr/bin/redis-cli", "-s", socket_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, std::chrono::seconds(10)).out;
}

void RedisServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  wait_exit(pid_, std::chrono::seconds(10));
  pid_ = -1;
}

void RedisServer::pause() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void RedisServer::resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
}

void RedisServer::restart() {
  kill();
  std::filesystem::remove(socket_);
  start();
}

}  // namespace oms::test
