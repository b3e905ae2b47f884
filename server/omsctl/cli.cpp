#include "server/omsctl/cli.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace oms::omsctl {

void usage_error(std::string message) {
  throw CliExit{kExitUsage, std::move(message), CliExit::Help::kSynopsis};
}
void value_error(std::string message) {
  throw CliExit{kExitUsage, std::move(message), CliExit::Help::kHint};
}
void config_error(std::string message) {
  throw CliExit{kExitUsage, std::move(message), CliExit::Help::kNone};
}

std::string trim_right(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

std::string trim(std::string s) {
  s = trim_right(std::move(s));
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::optional<std::string> read_file(const std::string& path, std::string& why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    why = "read error";
    return std::nullopt;
  }
  return ss.str();
}

std::string join_path(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (!out.empty() && out.back() != '/') out += '/';
  out += name;
  return out;
}

}  // namespace oms::omsctl
