// omsd: the offline-message store-and-forward server.
#include <csignal>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "server/config.h"
#include "server/log.h"
#include "server/server.h"

int main(int argc, char** argv) {
  // A write to a closed pipe (stderr piped into a logger that went away)
  // must come back as EPIPE, not kill the server. Sockets send with
  // MSG_NOSIGNAL already.
  std::signal(SIGPIPE, SIG_IGN);
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
  oms::server::Server server(std::move(*cfg));
  if (oms::Status s = server.start(); !s) {
    spdlog::critical("cannot start: {}", s.message());
    return 1;
  }
  return server.run();
}
