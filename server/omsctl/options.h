// omsctl's command line, and where each setting comes from. A flag beats the
// environment, which beats the defaults in the data dir:
//   admin URL    --admin URL, else DIR/ports.json when --data-dir was given
//                and the file exists, else $OMS_ADMIN_URL, else ./oms-data/ports.json
//                ({"admin":PORT} -> http://127.0.0.1:PORT, https:// when
//                "admin_tls" is true), else http://127.0.0.1:8081
//   TLS          https:// URLs: the server certificate is verified against
//                --cacert FILE, else the system store; --insecure skips it
//   admin token  --token-file FILE, else DIR/admin.token when --data-dir was
//                given and the file exists, else $OMS_ADMIN_TOKEN, else
//                ./oms-data/admin.token
//   JWT secret   --jwt-secret-file FILE, else DATA_DIR/jwt.secret
//
// Errors end the run (CliExit, cli.h): a wrong shape is a usage error, a bad
// value a value error, an unreadable file a configuration error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "server/omsctl/http_client.h"

namespace oms::omsctl {

constexpr std::string_view kDefaultDataDir = "./oms-data";
constexpr int kDefaultTimeoutS = 10;

struct GlobalOptions {
  std::optional<std::string> admin_url;
  std::optional<std::string> data_dir;  // set only when given
  std::optional<std::string> token_file;
  std::optional<std::string> jwt_secret_file;
  int timeout_s = kDefaultTimeoutS;
  bool json = false;
  std::optional<std::string> cacert;  // --cacert FILE
  bool insecure = false;              // --insecure

  std::string effective_data_dir() const { return data_dir.value_or(std::string(kDefaultDataDir)); }
};

// Pulls the global options out of argv (they may appear anywhere); the rest,
// in order, is the command and its arguments. Sets `help` on -h/--help.
std::vector<std::string> parse_global_options(const std::vector<std::string>& args,
                                              GlobalOptions& g, bool& help);

// A command's own arguments: positionals and --options. `valued` options take
// a value, `flags` don't; any other --option is a usage error.
struct CommandArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;  // flags map to ""

  bool has(const std::string& name) const { return options.count(name) != 0; }
  std::optional<std::string> get(const std::string& name) const {
    auto it = options.find(name);
    if (it == options.end()) return std::nullopt;
    return it->second;
  }
};

CommandArgs parse_command_args(const std::vector<std::string>& args, std::size_t first,
                               const std::string& command, const std::set<std::string>& valued,
                               const std::set<std::string>& flags = {});

// A usage error unless there are min..max positionals; `shape` is the usage line.
void expect_positionals(const CommandArgs& ca, const std::string& command, std::size_t min,
                        std::size_t max, std::string_view shape);

// The value of option `name` (which must be present) as true or false.
bool bool_option(const CommandArgs& ca, const std::string& name);

// "30s", "15m", "12h", "7d", or plain seconds; at most ten years.
std::optional<std::int64_t> parse_duration_s(std::string_view s);

// The admin endpoint and its admin token, resolved as the file comment says.
AdminEndpoint resolve_admin_endpoint(const GlobalOptions& g);
std::string resolve_admin_token(const GlobalOptions& g);

}  // namespace oms::omsctl
