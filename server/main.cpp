// omsd: the offline-message store-and-forward server.
#include <dlfcn.h>

#include <csignal>
#include <cstddef>
#include <cstdio>
#include <string>
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

namespace {

// The malloc this process runs on, asked of the process itself rather than
// of the build (OMS_MALLOC in CMakeLists.txt): jemalloc answers mallctl.
std::string malloc_in_use() {
  using Mallctl = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
  auto* mallctl = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"));
  if (mallctl == nullptr) return "glibc";
  const char* version = nullptr;
  std::size_t len = sizeof(version);
  if (mallctl("version", &version, &len, nullptr, 0) != 0 || version == nullptr) return "jemalloc";
  std::string_view v(version);  // "5.3.0-0-g54eaed1d..."
  return "jemalloc " + std::string(v.substr(0, v.find('-')));
}

}  // namespace

int main(int argc, char** argv) {
  // A write to a closed pipe (stderr piped into a logger that went away)
  // must come back as EPIPE, not kill the server. Sockets send with
  // MSG_NOSIGNAL already.
  std::signal(SIGPIPE, SIG_IGN);
  if (argc == 2 && std::string_view(argv[1]) == "--version") {
    std::printf("omsd %s (RocksDB %s, malloc %s)\n", OMS_VERSION, OMS_ROCKSDB_BUILD,
                malloc_in_use().c_str());
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
  spdlog::info("omsd {} (RocksDB {}, malloc {})", OMS_VERSION, OMS_ROCKSDB_BUILD, malloc_in_use());
  oms::server::Server server(std::move(*cfg));
  if (oms::Status s = server.start(); !s) {
    spdlog::critical("cannot start: {}", s.message());
    return 1;
  }
  return server.run();
}
