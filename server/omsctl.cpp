// omsctl: the operator's command line over omsd's admin HTTP endpoint
// (contract §2 and §3), plus `token issue`, which mints a client JWT locally
// from the server's JWT secret.
//
// Exit codes: 0 success; 1 the server answered with an error (or was not
// ready); 2 usage or local configuration error (bad arguments, unreadable
// token/secret file); 3 the admin endpoint could not be reached or did not
// answer in time.
//
// Where things come from (a flag beats the environment, which beats the
// defaults in the data dir):
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
// Single-threaded and sequential: one HTTP/1.1 request per run over Beast,
// each step (connect, TLS handshake, write, read) bounded by --timeout.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/clock.h"
#include "common/ids.h"
#include "common/jwt.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;

constexpr int kExitOk = 0;
constexpr int kExitServerError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

constexpr std::string_view kDefaultDataDir = "./oms-data";
constexpr std::string_view kDefaultAdminUrl = "http://127.0.0.1:8081";
constexpr int kDefaultTimeoutS = 10;
// The admin API answers small JSON documents; anything near this is broken.
constexpr std::uint64_t kMaxReplyBytes = 16u << 20;
// Token lifetimes beyond ten years are almost certainly a typo.
constexpr std::int64_t kMaxTtlS = 3650LL * 24 * 3600;
constexpr std::int64_t kDefaultTtlS = 24 * 3600;

constexpr std::string_view kSynopsis = R"(usage: omsctl [GLOBAL OPTIONS] COMMAND [ARGS]

Commands:
  token issue USER [--ttl DURATION]     print a client JWT (HS256, sub=USER);
                                        DURATION like 30s, 15m, 12h, 7d
                                        (default 24h); needs the JWT secret
  policy get [IDENTITY]                 list client policies, or show one
  policy new IDENTITY [--enable-im-auto-archiving true|false]
  policy set IDENTITY --enable-im-auto-archiving true|false
  policy remove IDENTITY                users granted it revert to Global
  policy grant USER (IDENTITY | --global)
  im-config get
  im-config set --enable-offline-im true|false
  user show USER                        presence, sessions, policy, mailbox
  mailbox purge USER                    delete every stored message of USER
  health                                GET /readyz; exit 0 when ready
  metrics [--raw]                       counters and gauges of GET /metrics
                                        (--raw: the Prometheus text as is)
  backup [PATH]                         a consistent copy of the store (RocksDB
                                        checkpoint) into PATH, a directory on
                                        the server's machine that must not
                                        exist (default DATA_DIR/backups/<time>)
)";

constexpr std::string_view kOptions = R"(
Global options (anywhere on the line):
  --admin URL              admin endpoint, e.g. http://127.0.0.1:8081
                           (default: DATA_DIR/ports.json, $OMS_ADMIN_URL,
                           else http://127.0.0.1:8081)
  --data-dir DIR           omsd's data dir (default ./oms-data): admin.token,
                           jwt.secret and ports.json are read from it
  --token-file FILE        admin bearer token (default DATA_DIR/admin.token,
                           or $OMS_ADMIN_TOKEN)
  --jwt-secret-file FILE   JWT secret for `token issue` (default
                           DATA_DIR/jwt.secret)
  --timeout SECONDS        connect/read timeout (default 10)
  --cacert FILE            https:// only: trust the CA certificate(s) in FILE
                           (PEM) instead of the system store, e.g. the
                           server's own self-signed certificate
  --insecure               https:// only: do not verify the server
                           certificate (trials with a self-signed one)
  --json                   print the server's JSON instead of tables
  -h, --help               this text

Exit codes: 0 ok, 1 the server answered an error, 2 usage or local
configuration error, 3 cannot reach the admin endpoint.
)";

// Ends the run with an exit code and a message for stderr. Thrown only
// inside this file and caught in main().
struct CliExit {
  enum class Help { kNone, kHint, kSynopsis };
  int code;
  std::string message;
  Help help = Help::kNone;
};

// The command line has the wrong shape: the message, then the commands.
[[noreturn]] void usage_error(std::string message) {
  throw CliExit{kExitUsage, std::move(message), CliExit::Help::kSynopsis};
}
// An argument has a bad value: the message says which and what is expected.
[[noreturn]] void value_error(std::string message) {
  throw CliExit{kExitUsage, std::move(message), CliExit::Help::kHint};
}
// A local file or setting omsctl needs is missing or unusable.
[[noreturn]] void config_error(std::string message) {
  throw CliExit{kExitUsage, std::move(message), CliExit::Help::kNone};
}

// ---------------------------------------------------------------------------
// Small text helpers.

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

std::optional<std::string> getenv_nonempty(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

// Percent-encodes one path segment (RFC 3986): unreserved characters and the
// pchar sub-delimiters that user ids use ('@', '+') stay as they are.
std::string encode_path_segment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_' || c == '~' || c == '@' || c == '+';
    if (keep) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

std::optional<bool> parse_bool(std::string_view s) {
  std::string l = oms::lower_ascii(s);
  if (l == "true" || l == "$true") return true;
  if (l == "false" || l == "$false") return false;
  return std::nullopt;
}

// "30s", "15m", "12h", "7d", or plain seconds.
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

// ---------------------------------------------------------------------------
// Command line.

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

// Pulls the global options out of argv (they may appear anywhere); the rest,
// in order, is the command and its arguments. Sets `help` on -h/--help.
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
                               const std::set<std::string>& flags = {}) {
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

// ---------------------------------------------------------------------------
// The admin endpoint.

struct AdminEndpoint {
  std::string url;        // as shown to the operator
  bool tls = false;       // https://
  std::string host;       // without IPv6 brackets
  std::string port;
  std::string base_path;  // "" or "/prefix" (no trailing slash)
  std::optional<std::string> cacert;  // https: trust anchors (else the system store)
  bool insecure = false;              // https: no certificate verification
};

AdminEndpoint parse_admin_url(const std::string& url) {
  AdminEndpoint ep;
  ep.url = url;
  std::string_view rest = url;
  if (rest.substr(0, 7) == "http://") {
    rest.remove_prefix(7);
  } else if (rest.substr(0, 8) == "https://") {
    rest.remove_prefix(8);
    ep.tls = true;
  } else if (rest.find("://") != std::string_view::npos) {
    config_error("admin URL " + url + ": only http:// and https:// URLs are supported");
  } else {
    ep.url = "http://" + url;
  }
  std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (path.find_first_of("?#") != std::string_view::npos)
    config_error("admin URL " + url + ": a query or fragment is not allowed");
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  ep.base_path = std::string(path);
  if (authority.find('@') != std::string_view::npos)
    config_error("admin URL " + url + ": user info is not allowed (use --token-file)");

  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) config_error("admin URL " + url + ": unclosed '['");
    ep.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') config_error("admin URL " + url + ": bad host");
      port = after.substr(1);
    }
  } else {
    std::size_t colon = authority.rfind(':');
    ep.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (ep.host.empty()) config_error("admin URL " + url + ": no host");
  if (port.empty()) port = ep.tls ? "443" : "80";
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
    config_error("admin URL " + url + ": bad port '" + std::string(port) + "'");
  ep.port = std::string(port);
  return ep;
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

AdminEndpoint resolve_admin_endpoint(const GlobalOptions& g) {
  AdminEndpoint ep = parse_admin_url(resolve_admin_url(g));
  ep.cacert = g.cacert;
  ep.insecure = g.insecure;
  return ep;
}

std::string read_token_file(const std::string& path) {
  std::string why;
  auto text = read_file(path, why);
  if (!text) config_error("cannot read admin token file " + path + ": " + why);
  std::string token = trim(*text);
  if (token.empty()) config_error("admin token file " + path + " is empty");
  return token;
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

struct Reply {
  unsigned status = 0;
  std::string reason;
  std::string body;
};

// Runs one asynchronous operation of `ioc` to completion and returns its
// error code. Beast's tcp_stream enforces its deadline (expires_after) only
// on asynchronous operations, so each step of the otherwise sequential
// exchange is started asynchronously and waited for here.
template <class Start>
beast::error_code run_to_completion(asio::io_context& ioc, Start&& start) {
  beast::error_code result = asio::error::would_block;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

// The client side of https://: verification against --cacert (or the
// system store) and the URL's host name or address, unless --insecure.
asio::ssl::context make_client_tls_context(const AdminEndpoint& ep) {
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                  asio::ssl::context::no_compression);
  if (ep.insecure) {
    tls.set_verify_mode(asio::ssl::verify_none);
    return tls;
  }
  boost::system::error_code ec;
  if (ep.cacert) {
    std::string why;
    if (!read_file(*ep.cacert, why)) config_error("cannot read --cacert " + *ep.cacert + ": " + why);
    tls.load_verify_file(*ep.cacert, ec);
    if (ec) config_error("--cacert " + *ep.cacert + " holds no PEM certificate: " + ec.message());
  } else {
    tls.set_default_verify_paths(ec);
    if (ec) config_error("cannot load the system's CA certificates: " + ec.message());
  }
  tls.set_verify_mode(asio::ssl::verify_peer);
  return tls;
}

// One request, one reply, connection closed. Network failures and timeouts
// end the run with kExitUnreachable.
Reply http_call(const AdminEndpoint& ep, int timeout_s, http::verb verb, const std::string& path,
                const std::optional<std::string>& token,
                const std::optional<std::string>& body = std::nullopt) {
  const auto timeout = std::chrono::seconds(timeout_s);
  auto unreachable = [&](std::string_view what, const beast::error_code& ec) -> CliExit {
    std::string reason = ec == beast::error::timeout
                             ? "no answer within " + std::to_string(timeout_s) + " s"
                             : ec.message();
    return CliExit{kExitUnreachable,
                   "cannot " + std::string(what) + " the admin endpoint " + ep.url + ": " + reason};
  };

  asio::io_context ioc;
  beast::tcp_stream tcp(ioc);
  beast::error_code ec;

  // An IP literal (the usual case) needs no resolver; a name is looked up
  // synchronously (getaddrinfo has its own timeouts).
  std::vector<asio::ip::tcp::endpoint> endpoints;
  const auto port = static_cast<unsigned short>(std::stoi(ep.port));
  const bool ip_literal = [&] {
    auto addr = asio::ip::make_address(ep.host, ec);
    if (!ec) endpoints.emplace_back(addr, port);
    return !ec;
  }();
  if (!ip_literal) {
    asio::ip::tcp::resolver resolver(ioc);
    auto results = resolver.resolve(ep.host, ep.port, ec);
    if (ec) throw unreachable("resolve", ec);
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }

  tcp.expires_after(timeout);
  ec = run_to_completion(ioc, [&](auto handler) { tcp.async_connect(endpoints, handler); });
  if (ec) throw unreachable("connect to", ec);

  http::request<http::string_body> req{verb, ep.base_path + path, 11};
  const bool v6 = ep.host.find(':') != std::string::npos;
  req.set(http::field::host, (v6 ? "[" + ep.host + "]" : ep.host) + ":" + ep.port);
  req.set(http::field::user_agent, "omsctl/0.1");
  req.set(http::field::accept, "application/json");
  req.set(http::field::connection, "close");
  if (token) req.set(http::field::authorization, "Bearer " + *token);
  if (body) {
    req.set(http::field::content_type, "application/json");
    req.body() = *body;
  }
  req.prepare_payload();

  auto exchange = [&](auto& stream) {
    beast::get_lowest_layer(stream).expires_after(timeout);
    ec = run_to_completion(ioc, [&](auto handler) { http::async_write(stream, req, handler); });
    if (ec) throw unreachable("send a request to", ec);

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxReplyBytes);
    beast::get_lowest_layer(stream).expires_after(timeout);
    ec = run_to_completion(ioc, [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
    if (ec) throw unreachable("read the reply of", ec);

    // Best effort; the reply is complete (Content-Length), so no TLS close_notify is awaited.
    beast::get_lowest_layer(stream).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    auto res = parser.release();
    return Reply{res.result_int(), std::string(res.reason()), std::move(res.body())};
  };
  if (!ep.tls) return exchange(tcp);

  asio::ssl::context tls = make_client_tls_context(ep);
  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp), tls);
  // SNI for names (not for addresses, RFC 6066), and the name or address
  // the certificate must be for.
  if (!ip_literal) SSL_set_tlsext_host_name(stream.native_handle(), ep.host.c_str());
  if (!ep.insecure) stream.set_verify_callback(asio::ssl::host_name_verification(ep.host));
  beast::get_lowest_layer(stream).expires_after(timeout);
  ec = run_to_completion(ioc, [&](auto handler) { stream.async_handshake(asio::ssl::stream_base::client, handler); });
  if (ec) {
    std::string hint;
    const long verify = SSL_get_verify_result(stream.native_handle());
    if (verify != X509_V_OK) {
      hint = std::string(" (") + X509_verify_cert_error_string(verify) + "; pass --cacert FILE with the CA or the "
             "server's certificate, or --insecure to skip verification)";
    }
    throw CliExit{kExitUnreachable,
                  "cannot complete the TLS handshake with the admin endpoint " + ep.url + ": " +
                      (ec == beast::error::timeout ? "no answer within " + std::to_string(timeout_s) + " s"
                                                   : ec.message()) + hint};
  }
  return exchange(stream);
}

// ---------------------------------------------------------------------------
// Output.

// A JSON scalar as the operator reads it; "-" for missing/null.
std::string text_of(const json::value* v) {
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_bool()) return v->get_bool() ? "true" : "false";
  if (v->is_array()) {
    std::string out;
    for (const auto& e : v->get_array()) {
      if (!out.empty()) out += ",";
      out += text_of(&e);
    }
    return out.empty() ? "-" : out;
  }
  return json::serialize(*v);
}

const json::value* field(const json::value& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  return obj.get_object().if_contains(key);
}

std::int64_t int_field(const json::value& obj, std::string_view key) {
  const json::value* v = field(obj, key);
  if (v == nullptr) return 0;
  boost::system::error_code ec;
  auto n = v->to_number<std::int64_t>(ec);
  return ec ? 0 : n;
}

void print_table(const std::vector<std::vector<std::string>>& rows, std::string_view indent = "") {
  std::vector<std::size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line(indent);
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << trim_right(line) << '\n';
  }
}

void print_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::size_t w = 0;
  for (const auto& [k, v] : fields) w = std::max(w, k.size());
  for (const auto& [k, v] : fields)
    std::cout << k << ':' << std::string(w - k.size() + 1, ' ') << v << '\n';
}

void print_raw(const std::string& body) {
  std::cout << body;
  if (body.empty() || body.back() != '\n') std::cout << '\n';
}

// The parsed body of a successful reply; a non-2xx reply ends the run with
// kExitServerError and "error: <code>: <message>".
json::value expect_success(const Reply& r) {
  boost::system::error_code ec;
  json::value v = r.body.empty() ? json::value() : json::parse(r.body, ec);
  if (r.status >= 200 && r.status < 300) {
    if (ec)
      throw CliExit{kExitServerError, "error: bad_response: the server's reply is not JSON (" +
                                          ec.message() + ")"};
    return v;
  }
  const json::value* err = ec ? nullptr : field(v, "error");
  if (err != nullptr && err->is_object()) {
    throw CliExit{kExitServerError,
                  "error: " + text_of(field(*err, "code")) + ": " + text_of(field(*err, "message"))};
  }
  std::string snippet = trim(r.body.substr(0, 200));
  throw CliExit{kExitServerError, "error: http_" + std::to_string(r.status) + ": " + r.reason +
                                      (snippet.empty() ? "" : " (" + snippet + ")")};
}

// ---------------------------------------------------------------------------
// Commands.

struct Context {
  GlobalOptions g;
  std::vector<std::string> args;  // args[0] is the command word

  // Sends an authenticated request and returns the successful reply's JSON;
  // with --json the raw body has been printed already.
  json::value call(http::verb verb, const std::string& path,
                   const std::optional<json::value>& body = std::nullopt) const {
    std::string token = resolve_admin_token(g);
    AdminEndpoint ep = resolve_admin_endpoint(g);
    std::optional<std::string> payload;
    if (body) payload = json::serialize(*body);
    Reply r = http_call(ep, g.timeout_s, verb, path, token, payload);
    json::value v = expect_success(r);
    if (g.json) print_raw(r.body);
    return v;
  }
};

std::string policy_path(const std::string& identity) {
  return "/v1/policies/" + encode_path_segment(identity);
}
std::string user_path(const std::string& user) { return "/v1/users/" + encode_path_segment(user); }

void print_policies(const std::vector<const json::value*>& policies) {
  bool with_users = false;
  for (const auto* p : policies) with_users = with_users || field(*p, "users") != nullptr;
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"IDENTITY", "EnableIMAutoArchiving"});
  if (with_users) rows.back().push_back("USERS");
  for (const auto* p : policies) {
    rows.push_back({text_of(field(*p, "identity")), text_of(field(*p, "enable_im_auto_archiving"))});
    if (with_users) rows.back().push_back(text_of(field(*p, "users")));
  }
  print_table(rows);
}

int cmd_token(const Context& ctx) {
  if (ctx.args.size() < 2 || ctx.args[1] != "issue") usage_error("usage: omsctl token issue USER [--ttl DURATION]");
  auto ca = parse_command_args(ctx.args, 2, "token issue", {"--ttl"});
  expect_positionals(ca, "token issue", 1, 1, "USER [--ttl DURATION]");
  auto user = oms::normalize_user_id(ca.positional[0]);
  if (!user)
    value_error("token issue: '" + ca.positional[0] +
                "' is not a valid user id (1-128 bytes of A-Z a-z 0-9 . _ @ + -)");
  std::int64_t ttl = kDefaultTtlS;
  if (auto t = ca.get("--ttl")) {
    auto parsed = parse_duration_s(*t);
    if (!parsed) value_error("--ttl takes a duration like 30s, 15m, 12h, 7d (at most 3650d), got '" + *t + "'");
    ttl = *parsed;
  }

  std::string path = ctx.g.jwt_secret_file.value_or(join_path(ctx.g.effective_data_dir(), "jwt.secret"));
  std::string why;
  auto content = read_file(path, why);
  if (!content)
    config_error("cannot read the JWT secret " + path + ": " + why +
                 " (omsd creates it at first start; or pass --jwt-secret-file FILE)");
  std::string secret = trim_right(*content);
  if (secret.empty()) config_error("the JWT secret file " + path + " is empty");

  oms::JwtClaims claims;
  claims.sub = *user;
  claims.iat = oms::SystemClock::instance().now_s();
  claims.exp = *claims.iat + ttl;
  std::string token = oms::sign_jwt(claims, secret);
  if (ctx.g.json) {
    json::object o;
    o["token"] = token;
    o["user"] = claims.sub;
    o["iat"] = *claims.iat;
    o["exp"] = claims.exp;
    std::cout << json::serialize(o) << '\n';
  } else {
    std::cout << token << '\n';
  }
  return kExitOk;
}

int cmd_policy(const Context& ctx) {
  static constexpr std::string_view kShape =
      "policy get [IDENTITY] | new IDENTITY [--enable-im-auto-archiving true|false] | "
      "set IDENTITY --enable-im-auto-archiving true|false | remove IDENTITY | "
      "grant USER (IDENTITY | --global)";
  if (ctx.args.size() < 2) usage_error("usage: omsctl " + std::string(kShape));
  const std::string& sub = ctx.args[1];
  const std::string archiving = "--enable-im-auto-archiving";

  if (sub == "get") {
    auto ca = parse_command_args(ctx.args, 2, "policy get", {});
    expect_positionals(ca, "policy get", 0, 1, "[IDENTITY]");
    if (ca.positional.empty()) {
      json::value v = ctx.call(http::verb::get, "/v1/policies");
      if (ctx.g.json) return kExitOk;
      std::vector<const json::value*> list;
      if (const auto* ps = field(v, "policies"); ps != nullptr && ps->is_array())
        for (const auto& p : ps->get_array()) list.push_back(&p);
      print_policies(list);
    } else {
      json::value v = ctx.call(http::verb::get, policy_path(ca.positional[0]));
      if (!ctx.g.json) print_policies({&v});
    }
    return kExitOk;
  }
  if (sub == "new") {
    auto ca = parse_command_args(ctx.args, 2, "policy new", {archiving});
    expect_positionals(ca, "policy new", 1, 1, "IDENTITY [--enable-im-auto-archiving true|false]");
    json::object body;
    body["identity"] = ca.positional[0];
    if (ca.has(archiving)) body["enable_im_auto_archiving"] = bool_option(ca, archiving);
    json::value v = ctx.call(http::verb::post, "/v1/policies", json::value(std::move(body)));
    if (!ctx.g.json) print_policies({&v});
    return kExitOk;
  }
  if (sub == "set") {
    auto ca = parse_command_args(ctx.args, 2, "policy set", {archiving});
    expect_positionals(ca, "policy set", 1, 1, "IDENTITY --enable-im-auto-archiving true|false");
    if (!ca.has(archiving)) usage_error("policy set: nothing to change (--enable-im-auto-archiving true|false)");
    json::object body;
    body["enable_im_auto_archiving"] = bool_option(ca, archiving);
    json::value v = ctx.call(http::verb::patch, policy_path(ca.positional[0]), json::value(std::move(body)));
    if (!ctx.g.json) print_policies({&v});
    return kExitOk;
  }
  if (sub == "remove") {
    auto ca = parse_command_args(ctx.args, 2, "policy remove", {});
    expect_positionals(ca, "policy remove", 1, 1, "IDENTITY");
    json::value v = ctx.call(http::verb::delete_, policy_path(ca.positional[0]));
    if (!ctx.g.json) {
      const json::value* removed = field(v, "removed");
      std::cout << "removed policy " << (removed ? text_of(removed) : ca.positional[0]) << "; "
                << int_field(v, "users_reverted") << " user(s) reverted to Global\n";
    }
    return kExitOk;
  }
  if (sub == "grant") {
    auto ca = parse_command_args(ctx.args, 2, "policy grant", {}, {"--global"});
    const bool global = ca.has("--global");
    if (global) {
      expect_positionals(ca, "policy grant", 1, 1, "USER (IDENTITY | --global)");
    } else {
      expect_positionals(ca, "policy grant", 2, 2, "USER (IDENTITY | --global)");
    }
    json::object body;
    body["policy"] = global ? json::value(nullptr) : json::value(ca.positional[1]);
    json::value v =
        ctx.call(http::verb::put, user_path(ca.positional[0]) + "/policy", json::value(std::move(body)));
    if (!ctx.g.json) {
      const json::value* user = field(v, "user");
      std::string who = user ? text_of(user) : ca.positional[0];
      const json::value* policy = field(v, "policy");
      if (policy == nullptr || policy->is_null()) {
        std::cout << who << ": no policy granted; uses Global\n";
      } else {
        std::cout << who << ": granted policy " << text_of(policy) << '\n';
      }
    }
    return kExitOk;
  }
  usage_error("policy: unknown subcommand '" + sub + "'; usage: omsctl " + std::string(kShape));
}

int cmd_im_config(const Context& ctx) {
  const std::string offline = "--enable-offline-im";
  if (ctx.args.size() < 2) usage_error("usage: omsctl im-config get | im-config set --enable-offline-im true|false");
  const std::string& sub = ctx.args[1];
  json::value v;
  if (sub == "get") {
    auto ca = parse_command_args(ctx.args, 2, "im-config get", {});
    expect_positionals(ca, "im-config get", 0, 0, "");
    v = ctx.call(http::verb::get, "/v1/configuration/im");
  } else if (sub == "set") {
    auto ca = parse_command_args(ctx.args, 2, "im-config set", {offline});
    expect_positionals(ca, "im-config set", 0, 0, "--enable-offline-im true|false");
    if (!ca.has(offline)) usage_error("im-config set: nothing to change (--enable-offline-im true|false)");
    json::object body;
    body["enable_offline_im"] = bool_option(ca, offline);
    v = ctx.call(http::verb::patch, "/v1/configuration/im", json::value(std::move(body)));
  } else {
    usage_error("im-config: unknown subcommand '" + sub + "'; use get or set");
  }
  if (!ctx.g.json) print_fields({{"EnableOfflineIm", text_of(field(v, "enable_offline_im"))}});
  return kExitOk;
}

int cmd_user(const Context& ctx) {
  if (ctx.args.size() < 2 || ctx.args[1] != "show") usage_error("usage: omsctl user show USER");
  auto ca = parse_command_args(ctx.args, 2, "user show", {});
  expect_positionals(ca, "user show", 1, 1, "USER");
  json::value v = ctx.call(http::verb::get, user_path(ca.positional[0]));
  if (ctx.g.json) return kExitOk;

  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back("User", text_of(field(v, "user")));
  out.emplace_back("Presence", text_of(field(v, "presence")));
  if (const json::value* p = field(v, "policy"); p != nullptr && p->is_object()) {
    std::string source = text_of(field(*p, "source"));
    out.emplace_back("Policy", text_of(field(*p, "identity")) + (source == "-" ? "" : " (" + source + ")"));
    out.emplace_back("EnableIMAutoArchiving", text_of(field(*p, "enable_im_auto_archiving")));
  } else {
    out.emplace_back("Policy", text_of(p));
  }
  if (const json::value* m = field(v, "mailbox"); m != nullptr && m->is_object()) {
    out.emplace_back("Mailbox", std::to_string(int_field(*m, "count")) + " message(s), " +
                                    std::to_string(int_field(*m, "missed")) + " missed, " +
                                    std::to_string(int_field(*m, "bytes")) + " bytes");
    out.emplace_back("Oldest", text_of(field(*m, "oldest")));
  }
  const json::value* sessions = field(v, "sessions");
  std::size_t n = sessions != nullptr && sessions->is_array() ? sessions->get_array().size() : 0;
  out.emplace_back("Sessions", std::to_string(n));
  print_fields(out);
  if (n > 0) {
    std::vector<std::vector<std::string>> rows{{"SESSION", "CLIENT", "VERSION", "FEATURES", "CONNECTED"}};
    for (const auto& s : sessions->get_array()) {
      const json::value* client = field(s, "client");
      const json::value none;
      const json::value& c = client != nullptr ? *client : none;
      rows.push_back({text_of(field(s, "session")), text_of(field(c, "name")),
                      text_of(field(c, "version")), text_of(field(c, "features")),
                      text_of(field(s, "connected_at"))});
    }
    print_table(rows, "  ");
  }
  return kExitOk;
}

int cmd_mailbox(const Context& ctx) {
  if (ctx.args.size() < 2 || ctx.args[1] != "purge") usage_error("usage: omsctl mailbox purge USER");
  auto ca = parse_command_args(ctx.args, 2, "mailbox purge", {});
  expect_positionals(ca, "mailbox purge", 1, 1, "USER");
  json::value v = ctx.call(http::verb::delete_, user_path(ca.positional[0]) + "/mailbox");
  if (!ctx.g.json) {
    const json::value* user = field(v, "user");
    std::cout << "removed " << int_field(v, "removed") << " message(s) from the mailbox of "
              << (user ? text_of(user) : ca.positional[0]) << '\n';
  }
  return kExitOk;
}

int cmd_health(const Context& ctx) {
  auto ca = parse_command_args(ctx.args, 1, "health", {});
  expect_positionals(ca, "health", 0, 0, "");
  AdminEndpoint ep = resolve_admin_endpoint(ctx.g);
  Reply r = http_call(ep, ctx.g.timeout_s, http::verb::get, "/readyz", std::nullopt);
  if (ctx.g.json) {
    if (r.body.empty()) {
      json::object o;
      o["status"] = r.status;
      print_raw(json::serialize(o));
    } else {
      print_raw(r.body);
    }
  }
  if (r.status == 200) {
    if (!ctx.g.json) std::cout << "ready (" << ep.url << ")\n";
    return kExitOk;
  }
  std::string snippet = trim(r.body.substr(0, 200));
  std::cerr << "not ready: " << ep.url << " answered " << r.status << ' ' << r.reason
            << (snippet.empty() ? "" : ": " + snippet) << '\n';
  return kExitServerError;
}

int cmd_metrics(const Context& ctx) {
  auto ca = parse_command_args(ctx.args, 1, "metrics", {}, {"--raw"});
  expect_positionals(ca, "metrics", 0, 0, "[--raw]");
  AdminEndpoint ep = resolve_admin_endpoint(ctx.g);
  Reply r = http_call(ep, ctx.g.timeout_s, http::verb::get, "/metrics", resolve_admin_token(ctx.g));
  if (r.status != 200) expect_success(r);  // ends the run with the server's error
  if (ca.has("--raw")) {
    std::cout << r.body;
    return kExitOk;
  }
  // Samples without histogram buckets: NAME{LABELS} VALUE per line.
  std::vector<std::vector<std::string>> rows;
  json::object samples;
  std::istringstream in(r.body);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    auto sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    std::string name = line.substr(0, sp), value = line.substr(sp + 1);
    if (name.find("_bucket{") != std::string::npos) continue;
    rows.push_back({name, value});
    const char* const last = value.data() + value.size();
    std::int64_t n = 0;
    double d = 0;
    if (auto [end, ec] = std::from_chars(value.data(), last, n); ec == std::errc() && end == last) {
      samples[name] = n;
    } else if (auto [dend, dec] = std::from_chars(value.data(), last, d); dec == std::errc() && dend == last) {
      samples[name] = d;
    } else {
      samples[name] = value;
    }
  }
  if (ctx.g.json) print_raw(json::serialize(samples));
  else print_table(rows);
  return kExitOk;
}

int cmd_backup(const Context& ctx) {
  auto ca = parse_command_args(ctx.args, 1, "backup", {});
  expect_positionals(ca, "backup", 0, 1, "[PATH]");
  json::object body;
  if (!ca.positional.empty()) {
    std::error_code ec;
    auto path = std::filesystem::absolute(ca.positional[0], ec);
    if (ec) value_error("backup: cannot make '" + ca.positional[0] + "' absolute: " + ec.message());
    body["path"] = path.lexically_normal().string();
  }
  json::value v = ctx.call(http::verb::post, "/v1/backup", json::value(body));
  if (!ctx.g.json) {
    std::cout << "backup " << text_of(field(v, "path")) << ": " << int_field(v, "bytes") << " bytes in "
              << int_field(v, "files") << " files (" << int_field(v, "took_ms") << " ms)\n";
  }
  return kExitOk;
}

int run(const std::vector<std::string>& argv) {
  Context ctx;
  bool help = false;
  ctx.args = parse_global_options(argv, ctx.g, help);
  if (help || (!ctx.args.empty() && ctx.args[0] == "help")) {
    std::cout << kSynopsis << kOptions;
    return kExitOk;
  }
  if (ctx.args.empty()) usage_error("no command given");
  const std::string& cmd = ctx.args[0];
  if (cmd == "token") return cmd_token(ctx);
  if (cmd == "policy") return cmd_policy(ctx);
  if (cmd == "im-config") return cmd_im_config(ctx);
  if (cmd == "user") return cmd_user(ctx);
  if (cmd == "mailbox") return cmd_mailbox(ctx);
  if (cmd == "health") return cmd_health(ctx);
  if (cmd == "metrics") return cmd_metrics(ctx);
  if (cmd == "backup") return cmd_backup(ctx);
  usage_error("unknown command '" + cmd + "'");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    int rc = run(args);
    std::cout.flush();
    return rc;
  } catch (const CliExit& e) {
    std::cout.flush();
    const bool is_usage_line = e.message.rfind("usage: ", 0) == 0;
    if (!e.message.empty()) {
      const bool prefixed = is_usage_line || e.message.rfind("error: ", 0) == 0;
      std::cerr << (prefixed ? "" : "omsctl: ") << e.message << '\n';
    }
    // A command's own usage line is enough; otherwise show every command.
    if (e.help == CliExit::Help::kSynopsis && !is_usage_line) std::cerr << '\n' << kSynopsis;
    if (e.help != CliExit::Help::kNone) std::cerr << "(omsctl --help lists the global options)\n";
    return e.code;
  } catch (const std::exception& e) {
    std::cerr << "omsctl: " << e.what() << '\n';
    return kExitServerError;
  }
}
