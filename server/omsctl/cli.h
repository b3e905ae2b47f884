// What every part of omsctl shares: how a run ends (exit codes and CliExit,
// caught in main()) and reading the small text files it is pointed at.
//
// Exit codes: 0 success; 1 the server answered with an error (or was not
// ready); 2 usage or local configuration error (bad arguments, unreadable
// token/secret file); 3 the admin endpoint could not be reached or did not
// answer in time.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace oms::omsctl {

constexpr int kExitOk = 0;
constexpr int kExitServerError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

// Ends the run with an exit code and a message for stderr. Thrown only
// inside omsctl and caught in main().
struct CliExit {
  enum class Help { kNone, kHint, kSynopsis };
  int code;
  std::string message;
  Help help = Help::kNone;
};

// The command line has the wrong shape: the message, then the commands.
[[noreturn]] void usage_error(std::string message);
// An argument has a bad value: the message says which and what is expected.
[[noreturn]] void value_error(std::string message);
// A local file or setting omsctl needs is missing or unusable.
[[noreturn]] void config_error(std::string message);

std::string trim_right(std::string s);
std::string trim(std::string s);

// The whole file, or nullopt with `why` set to the reason.
std::optional<std::string> read_file(const std::string& path, std::string& why);

// dir + '/' + name (no doubled '/').
std::string join_path(std::string_view dir, std::string_view name);

}  // namespace oms::omsctl
