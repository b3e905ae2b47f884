// omsd: the offline-message store-and-forward server.
#include <csignal>
#include <cstdio>
#include <string_view>

#include <spdlog/spdlog.h>

#include "server/config.h"
#include "server/log.h"
#include "server/server.h"

// Set by the top-level CMakeLists.txt: which RocksDB omsd links
// (deploy/ROCKSDB.md).
#ifndef OMS_ROCKSDB_BUILD
#define OMS_ROCKSDB_BUILD "unknown"
#endif
#ifndef OMS_VERSION
#define OMS_VERSION "unknown"
#endif

int main(int argc, char** argv) {
  // A write to a closed pipe (stderr piped into a logger that went away)
  // must come back as EPIPE, not kill the server. Sockets send with
  // MSG_NOSIGNAL already.
  std::signal(SIGPIPE, SIG_IGN);
  if (argc == 2 && std::string_view(argv[1]) == "--version") {
    std::printf("omsd %s (RocksDB %s)\n", OMS_VERSION, OMS_ROCKSDB_BUILD);
    return 0;
  }
  bool help = false;
  auto cfg = oms::server::load_config(argc, argv, help);
  if (help) {
    std::fputs(oms::server::usage().c_str(), stdout);
    return 0;
  }
  if (!cfg) {
    std::fprintf(stderr, "omsd: %s\n", cfg.status().message().c_str());
    return 2;
  }
  oms::server::setup_logging(cfg->log_level, cfg->log_format, cfg->log_levels);
  spdlog::info("omsd {} (RocksDB {})", OMS_VERSION, OMS_ROCKSDB_BUILD);
  oms::server::Server server(std::move(*cfg));
  if (oms::Status s = server.start(); !s) {
    spdlog::critical("cannot start: {}", s.message());
    return 1;
  }
  return server.run();
}
