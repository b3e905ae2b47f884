#include "server/log.h"

#include <algorithm>
#include <memory>

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common/utf8.h"

namespace oms::server {
namespace {

std::array<std::shared_ptr<spdlog::logger>, kLogComponents.size()> g_loggers;

// %* in a pattern: the message as a JSON string literal (escaped by Boost.JSON).
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    // Boost.JSON writes bytes as they are: ill-formed UTF-8 is replaced first
    // so every line stays valid JSON.
    const std::string text = to_valid_utf8(std::string_view(msg.payload.data(), msg.payload.size()));
    std::string quoted = boost::json::serialize(boost::json::string_view(text));
    dest.append(quoted.data(), quoted.data() + quoted.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessageFlag>(); }
};

}  // namespace

spdlog::logger& logger_for(LogComponent c) {
  const auto& l = g_loggers[static_cast<std::size_t>(c)];
  return l ? *l : *spdlog::default_logger_raw();
}

void setup_logging(std::string_view level_name, std::string_view format,
                   const std::map<std::string, std::string>& component_levels) {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  const auto default_level = spdlog::level::from_str(std::string(level_name));
  for (std::size_t i = 0; i < kLogComponents.size(); ++i) {
    const std::string name(kLogComponents[i]);
    auto logger = std::make_shared<spdlog::logger>(name, console);
    // The audit trail is kept unless log.levels.audit says otherwise.
    auto level = static_cast<LogComponent>(i) == LogComponent::kAudit ? spdlog::level::info : default_level;
    if (auto it = component_levels.find(name); it != component_levels.end())
      level = spdlog::level::from_str(it->second);
    logger->set_level(level);
    logger->flush_on(static_cast<LogComponent>(i) == LogComponent::kAudit ? spdlog::level::info
                                                                            : spdlog::level::warn);
    spdlog::drop(name);
    if (i == static_cast<std::size_t>(LogComponent::kOmsd)) spdlog::set_default_logger(logger);
    else spdlog::register_logger(logger);
    g_loggers[i] = std::move(logger);
  }
  if (format == "json") {
    // One JSON object per line (UTC timestamps).
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","logger":"%n","msg":%*})");
    spdlog::set_formatter(std::move(formatter));
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  }
}

std::string log_safe(std::string_view s, std::size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  const std::size_t n = std::min(s.size(), max_bytes);
  out.reserve(n + 8);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (s.size() > n) out += "...";
  return out;
}

}  // namespace oms::server
