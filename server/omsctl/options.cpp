#include "server/omsctl/options.h"

#include <charconv>
#include <cstdlib>
#include <system_error>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "common/ids.h"
#include "server/omsctl/cli.h"

namespace oms::omsctl {

namespace json = boost::json;

namespace {

constexpr std::string_view kDefaultAdminUrl = "http://127.0.0.1:8081";
// Token lifetimes beyond ten years are almost certainly a typo.
constexpr std::int64_t kMaxTtlS = 3650LL * 24 * 3600;

std::optional<std::string> getenv_nonempty(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

std::optional<bool> parse_bool(std::string_view s) {
  std::string l = oms::lower_ascii(s);
  if (l == "true" || l == "$true") return true;
  if (l == "false" || l == "$false") return false;
  return std::nullopt;
}

// Splits "--name=value" / "--name value". Returns true when args[i] is the
// option `name`; `value` then holds its value and `i` points at the last
// argument consumed.
bool take_option(const std::vector<std::string>& args, std::size_t& i, std::string_view name,
                 std::string& value) {
  const std::string& a = args[i];
  if (a == name) {
    if (i + 1 >= args.size()) usage_error(std::string(name) + " needs a value");
    value = args[++i];
    return true;
  }
  if (a.size() > name.size() && a.compare(0, name.size(), name) == 0 && a[name.size()] == '=') {
    value = a.substr(name.size() + 1);
    return true;
  }
  return false;
}

// The admin port omsd wrote to DIR/ports.json, if the file is there and sane.
std::optional<std::string> admin_url_from_ports_file(const std::string& dir) {
  std::string why;
  auto text = read_file(join_path(dir, "ports.json"), why);
  if (!text) return std::nullopt;
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::value* admin = v.as_object().if_contains("admin");
  if (admin == nullptr) return std::nullopt;
  auto port = admin->to_number<std::int64_t>(ec);
  if (ec || port <= 0 || port > 65535) return std::nullopt;
  const json::value* tls = v.as_object().if_contains("admin_tls");
  const bool https = tls != nullptr && tls->is_bool() && tls->get_bool();
  return (https ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port);
}

std::string resolve_admin_url(const GlobalOptions& g) {
  if (g.admin_url) return *g.admin_url;
  if (g.data_dir) {
    if (auto u = admin_url_from_ports_file(*g.data_dir)) return *u;
  }
  if (auto env = getenv_nonempty("OMS_ADMIN_URL")) return *env;
  if (!g.data_dir) {
    if (auto u = admin_url_from_ports_file(std::string(kDefaultDataDir))) return *u;
  }
  return std::string(kDefaultAdminUrl);
}

std::string read_token_file(const std::string& path) {
  std::string why;
  auto text = read_file(path, why);
  if (!text) config_error("cannot read admin token file " + path + ": " + why);
  std::string token = trim(*text);
  if (token.empty()) config_error("admin token file " + path + " is empty");
  return token;
}

}  // namespace

std::vector<std::string> parse_global_options(const std::vector<std::string>& args,
                                              GlobalOptions& g, bool& help) {
  std::vector<std::string> rest;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string v;
    if (a == "--") {  // everything after is positional
      rest.insert(rest.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
      break;
    }
    if (a == "-h" || a == "--help") {
      help = true;
    } else if (a == "--json") {
      g.json = true;
    } else if (a == "--insecure") {
      g.insecure = true;
    } else if (take_option(args, i, "--cacert", v)) {
      if (v.empty()) value_error("--cacert needs a file");
      g.cacert = v;
    } else if (take_option(args, i, "--admin", v)) {
      g.admin_url = v;
    } else if (take_option(args, i, "--data-dir", v)) {
      if (v.empty()) value_error("--data-dir needs a directory");
      g.data_dir = v;
    } else if (take_option(args, i, "--token-file", v)) {
      g.token_file = v;
    } else if (take_option(args, i, "--jwt-secret-file", v)) {
      g.jwt_secret_file = v;
    } else if (take_option(args, i, "--timeout", v)) {
      int t = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), t);
      if (ec != std::errc() || end != v.data() + v.size() || t <= 0 || t > 3600)
        value_error("--timeout needs a number of seconds (1-3600), got '" + v + "'");
      g.timeout_s = t;
    } else {
      rest.push_back(a);
    }
  }
  return rest;
}

CommandArgs parse_command_args(const std::vector<std::string>& args, std::size_t first,
                               const std::string& command, const std::set<std::string>& valued,
                               const std::set<std::string>& flags) {
  CommandArgs out;
  bool options_done = false;
  for (std::size_t i = first; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (options_done || a.size() < 2 || a[0] != '-' || a[1] != '-') {
      out.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    bool matched = false;
    for (const auto& name : valued) {
      std::string v;
      if (take_option(args, i, name, v)) {
        if (out.options.count(name)) value_error(command + ": " + name + " given twice");
        out.options[name] = v;
        matched = true;
        break;
      }
    }
    if (!matched && flags.count(a)) {
      out.options[a] = "";
      matched = true;
    }
    if (!matched) usage_error(command + ": unknown option '" + a + "'");
  }
  return out;
}

void expect_positionals(const CommandArgs& ca, const std::string& command, std::size_t min,
                        std::size_t max, std::string_view shape) {
  if (ca.positional.size() < min || ca.positional.size() > max)
    usage_error("usage: omsctl " + command + " " + std::string(shape));
}

bool bool_option(const CommandArgs& ca, const std::string& name) {
  auto v = ca.get(name);
  auto b = parse_bool(*v);
  if (!b) value_error(name + " takes true or false, got '" + *v + "'");
  return *b;
}

std::optional<std::int64_t> parse_duration_s(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::int64_t mult = 1;
  switch (s.back()) {
    case 's': mult = 1; s.remove_suffix(1); break;
    case 'm': mult = 60; s.remove_suffix(1); break;
    case 'h': mult = 3600; s.remove_suffix(1); break;
    case 'd': mult = 86400; s.remove_suffix(1); break;
    default: break;
  }
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || n <= 0) return std::nullopt;
  if (n > kMaxTtlS / mult) return std::nullopt;
  return n * mult;
}

AdminEndpoint resolve_admin_endpoint(const GlobalOptions& g) {
  AdminEndpoint ep = parse_admin_url(resolve_admin_url(g));
  ep.cacert = g.cacert;
  ep.insecure = g.insecure;
  return ep;
}

std::string resolve_admin_token(const GlobalOptions& g) {
  if (g.token_file) return read_token_file(*g.token_file);
  std::string why;
  const std::string path = join_path(g.effective_data_dir(), "admin.token");
  const bool file_readable = read_file(path, why).has_value();
  if (g.data_dir && file_readable) return read_token_file(path);
  if (auto env = getenv_nonempty("OMS_ADMIN_TOKEN")) return trim(*env);
  if (!file_readable)
    config_error("no admin token: cannot read " + path + ": " + why +
                 " (pass --token-file FILE or --data-dir DIR, or set OMS_ADMIN_TOKEN)");
  return read_token_file(path);
}

}  // namespace oms::omsctl
