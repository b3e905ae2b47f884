// omsd: the offline-message store-and-forward server.
#include <cstdio>

#include <boost/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "server/config.h"
#include "server/server.h"

namespace {

// %* in a pattern: the message as a JSON string literal (escaped by Boost.JSON).
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string quoted = boost::json::serialize(boost::json::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(quoted.data(), quoted.data() + quoted.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessageFlag>(); }
};

void setup_logging(const oms::server::Config& cfg) {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto main_logger = std::make_shared<spdlog::logger>("omsd", console);
  auto audit = std::make_shared<spdlog::logger>("audit", console);
  spdlog::set_default_logger(main_logger);
  spdlog::register_logger(audit);
  if (cfg.log_format == "json") {
    // One JSON object per line (UTC timestamps).
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"%n","msg":%*})");
    spdlog::set_formatter(std::move(formatter));
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  }
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  audit->set_level(spdlog::level::info);
  spdlog::flush_on(spdlog::level::warn);
  audit->flush_on(spdlog::level::info);
}

}  // namespace

int main(int argc, char** argv) {
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
  setup_logging(*cfg);
  oms::server::Server server(std::move(*cfg));
  if (oms::Status s = server.start(); !s) {
    spdlog::critical("cannot start: {}", s.message());
    return 1;
  }
  return server.run();
}
