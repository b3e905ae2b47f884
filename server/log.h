// omsd's loggers: one spdlog logger per component, each with its own level
// (log.level is the default, log.levels overrides it per component), all
// writing text or JSON lines to stderr.
//
// Components:
//   omsd     start-up, listeners, shutdown, secrets
//   session  client connections and sessions (every line names the session id)
//   admin    admin HTTP connections (every line names the connection id)
//   audit    admin changes (who, what, result); info by default
//   store    store maintenance (expiry sweep, durability warnings)
//
// Thread-safety: setup_logging() runs once in main() before any thread
// starts; logger_for() is safe from any thread afterwards. Before setup (unit
// tests) logger_for() returns spdlog's default logger.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

namespace oms::server {

enum class LogComponent : std::size_t { kOmsd, kSession, kAdmin, kAudit, kStore };

// Indexed by LogComponent; these are the logger names and the keys of
// log.levels.
inline constexpr std::array<std::string_view, 5> kLogComponents = {"omsd", "session", "admin", "audit",
                                                                   "store"};

spdlog::logger& logger_for(LogComponent c);

// Text a client chose (client name, version), fit for a log line: control
// characters (newlines included), backslashes and bytes >= 0x7f escaped as
// \xNN, at most `max_bytes` of input kept (then "..."). No forged lines.
std::string log_safe(std::string_view s, std::size_t max_bytes = 64);

// Creates the loggers: `level` is log.level (the default), `format` log.format
// ("text" | "json"), `component_levels` log.levels (component name -> level).
// The values were validated by load_config.
void setup_logging(std::string_view level, std::string_view format,
                   const std::map<std::string, std::string>& component_levels);

}  // namespace oms::server
