#include "server/omsctl/commands.h"

#include <charconv>
#include <cstdint>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "common/clock.h"
#include "common/ids.h"
#include "common/jwt.h"
#include "server/omsctl/cli.h"
#include "server/omsctl/http_client.h"
#include "server/omsctl/output.h"

namespace oms::omsctl {

namespace json = boost::json;

namespace {

constexpr std::int64_t kDefaultTtlS = 24 * 3600;

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

struct Context {
  GlobalOptions g;
  std::vector<std::string> args;  // args[0] is the command word

  // Sends an authenticated request and returns the successful reply's JSON;
  // with --json the raw body has been printed already.
  json::value call(HttpMethod method, const std::string& path,
                   const std::optional<json::value>& body = std::nullopt) const {
    std::string token = resolve_admin_token(g);
    AdminEndpoint ep = resolve_admin_endpoint(g);
    std::optional<std::string> payload;
    if (body) payload = json::serialize(*body);
    Reply r = http_call(ep, g.timeout_s, method, path, token, payload);
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
  rows.push_back({"IDENTITY", "EnableIMAutoArchiving", "EnableDeliveryReceipts"});
  if (with_users) rows.back().push_back("USERS");
  for (const auto* p : policies) {
    rows.push_back({text_of(field(*p, "identity")), text_of(field(*p, "enable_im_auto_archiving")),
                    text_of(field(*p, "enable_delivery_receipts"))});
    if (with_users) rows.back().push_back(text_of(field(*p, "users")));
  }
  print_table(rows);
}

// The policy settings given on a `policy new|set` line, as the admin API's
// JSON fields.
json::object policy_settings(const CommandArgs& ca) {
  json::object body;
  if (ca.has("--enable-im-auto-archiving"))
    body["enable_im_auto_archiving"] = bool_option(ca, "--enable-im-auto-archiving");
  if (ca.has("--enable-delivery-receipts"))
    body["enable_delivery_receipts"] = bool_option(ca, "--enable-delivery-receipts");
  return body;
}

// The devices of GET /v1/users/{user}[/devices], one row each.
void print_devices(const json::value* devices, std::string_view indent = "") {
  std::vector<std::vector<std::string>> rows{
      {"DEVICE", "ACTIVE", "SESSIONS", "UNACKED", "FIRST SEEN", "LAST SEEN"}};
  if (devices != nullptr && devices->is_array())
    for (const auto& d : devices->get_array())
      rows.push_back({text_of(field(d, "device")), text_of(field(d, "active")), text_of(field(d, "sessions")),
                      text_of(field(d, "unacked")), text_of(field(d, "first_seen")),
                      text_of(field(d, "last_seen"))});
  print_table(rows, indent);
}

std::size_t array_size(const json::value* v) { return v != nullptr && v->is_array() ? v->get_array().size() : 0; }

int cmd_token(const Context& ctx) {
  if (ctx.args.size() < 2 || ctx.args[1] != "issue") usage_error("usage: omsctl token issue USER [--ttl DURATION]");
  auto ca = parse_command_args(ctx.args, 2, "token issue", {"--ttl"});
  expect_positionals(ca, "token issue", 1, 1, "USER [--ttl DURATION]");
  auto user = normalize_user_id(ca.positional[0]);
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

  JwtClaims claims;
  claims.sub = *user;
  claims.iat = SystemClock::instance().now_s();
  claims.exp = *claims.iat + ttl;
  std::string token = sign_jwt(claims, secret);
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
      "policy get [IDENTITY] | new IDENTITY [SETTINGS] | set IDENTITY SETTINGS | "
      "remove IDENTITY | grant USER (IDENTITY | --global); SETTINGS: "
      "[--enable-im-auto-archiving true|false] [--enable-delivery-receipts true|false]";
  static constexpr std::string_view kSettings =
      "[--enable-im-auto-archiving true|false] [--enable-delivery-receipts true|false]";
  if (ctx.args.size() < 2) usage_error("usage: omsctl " + std::string(kShape));
  const std::string& sub = ctx.args[1];
  const std::set<std::string> settings = {"--enable-im-auto-archiving", "--enable-delivery-receipts"};

  if (sub == "get") {
    auto ca = parse_command_args(ctx.args, 2, "policy get", {});
    expect_positionals(ca, "policy get", 0, 1, "[IDENTITY]");
    if (ca.positional.empty()) {
      json::value v = ctx.call(HttpMethod::kGet, "/v1/policies");
      if (ctx.g.json) return kExitOk;
      std::vector<const json::value*> list;
      if (const auto* ps = field(v, "policies"); ps != nullptr && ps->is_array())
        for (const auto& p : ps->get_array()) list.push_back(&p);
      print_policies(list);
    } else {
      json::value v = ctx.call(HttpMethod::kGet, policy_path(ca.positional[0]));
      if (!ctx.g.json) print_policies({&v});
    }
    return kExitOk;
  }
  if (sub == "new") {
    auto ca = parse_command_args(ctx.args, 2, "policy new", settings);
    expect_positionals(ca, "policy new", 1, 1, "IDENTITY " + std::string(kSettings));
    json::object body = policy_settings(ca);
    body["identity"] = ca.positional[0];
    json::value v = ctx.call(HttpMethod::kPost, "/v1/policies", json::value(std::move(body)));
    if (!ctx.g.json) print_policies({&v});
    return kExitOk;
  }
  if (sub == "set") {
    auto ca = parse_command_args(ctx.args, 2, "policy set", settings);
    expect_positionals(ca, "policy set", 1, 1, "IDENTITY " + std::string(kSettings));
    json::object body = policy_settings(ca);
    if (body.empty()) usage_error("policy set: nothing to change " + std::string(kSettings));
    json::value v = ctx.call(HttpMethod::kPatch, policy_path(ca.positional[0]), json::value(std::move(body)));
    if (!ctx.g.json) print_policies({&v});
    return kExitOk;
  }
  if (sub == "remove") {
    auto ca = parse_command_args(ctx.args, 2, "policy remove", {});
    expect_positionals(ca, "policy remove", 1, 1, "IDENTITY");
    json::value v = ctx.call(HttpMethod::kDelete, policy_path(ca.positional[0]));
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
        ctx.call(HttpMethod::kPut, user_path(ca.positional[0]) + "/policy", json::value(std::move(body)));
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
    v = ctx.call(HttpMethod::kGet, "/v1/configuration/im");
  } else if (sub == "set") {
    auto ca = parse_command_args(ctx.args, 2, "im-config set", {offline});
    expect_positionals(ca, "im-config set", 0, 0, "--enable-offline-im true|false");
    if (!ca.has(offline)) usage_error("im-config set: nothing to change (--enable-offline-im true|false)");
    json::object body;
    body["enable_offline_im"] = bool_option(ca, offline);
    v = ctx.call(HttpMethod::kPatch, "/v1/configuration/im", json::value(std::move(body)));
  } else {
    usage_error("im-config: unknown subcommand '" + sub + "'; use get or set");
  }
  if (!ctx.g.json) print_fields({{"EnableOfflineIm", text_of(field(v, "enable_offline_im"))}});
  return kExitOk;
}

// user revoke USER / user kick USER: close the user's sessions (revoke
// also refuses every token issued until now).
int cmd_user_close(const Context& ctx, const std::string& sub) {
  auto ca = parse_command_args(ctx.args, 2, "user " + sub, {});
  expect_positionals(ca, "user " + sub, 1, 1, "USER");
  json::value v = sub == "revoke" ? ctx.call(HttpMethod::kPost, user_path(ca.positional[0]) + "/revoke")
                                  : ctx.call(HttpMethod::kDelete, user_path(ca.positional[0]) + "/sessions");
  if (!ctx.g.json) {
    const json::value* user = field(v, "user");
    std::cout << (sub == "revoke" ? "revoked the tokens of " : "kicked ")
              << (user ? text_of(user) : ca.positional[0]) << ": closed " << int_field(v, "sessions_closed")
              << " session(s)\n";
  }
  return kExitOk;
}

int cmd_user(const Context& ctx) {
  if (ctx.args.size() >= 2 && (ctx.args[1] == "revoke" || ctx.args[1] == "kick"))
    return cmd_user_close(ctx, ctx.args[1]);
  if (ctx.args.size() < 2 || ctx.args[1] != "show") usage_error("usage: omsctl user show|revoke|kick USER");
  auto ca = parse_command_args(ctx.args, 2, "user show", {});
  expect_positionals(ca, "user show", 1, 1, "USER");
  json::value v = ctx.call(HttpMethod::kGet, user_path(ca.positional[0]));
  if (ctx.g.json) return kExitOk;

  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back("User", text_of(field(v, "user")));
  out.emplace_back("Presence", text_of(field(v, "presence")));
  if (const json::value* p = field(v, "policy"); p != nullptr && p->is_object()) {
    std::string source = text_of(field(*p, "source"));
    out.emplace_back("Policy", text_of(field(*p, "identity")) + (source == "-" ? "" : " (" + source + ")"));
    out.emplace_back("EnableIMAutoArchiving", text_of(field(*p, "enable_im_auto_archiving")));
    out.emplace_back("EnableDeliveryReceipts", text_of(field(*p, "enable_delivery_receipts")));
  } else {
    out.emplace_back("Policy", text_of(p));
  }
  if (const json::value* m = field(v, "mailbox"); m != nullptr && m->is_object()) {
    out.emplace_back("Mailbox", std::to_string(int_field(*m, "count")) + " message(s), " +
                                    std::to_string(int_field(*m, "missed")) + " missed, " +
                                    std::to_string(int_field(*m, "bytes")) + " bytes");
    out.emplace_back("Oldest", text_of(field(*m, "oldest")));
    out.emplace_back("Receipts", std::to_string(int_field(*m, "receipts")) + " waiting");
  }
  const json::value* devices = field(v, "devices");
  const json::value* sessions = field(v, "sessions");
  std::size_t n = sessions != nullptr && sessions->is_array() ? sessions->get_array().size() : 0;
  out.emplace_back("Sessions", std::to_string(n));
  print_fields(out);
  if (n > 0) {
    std::vector<std::vector<std::string>> rows{{"SESSION", "DEVICE", "CLIENT", "VERSION", "FEATURES", "CONNECTED"}};
    for (const auto& s : sessions->get_array()) {
      const json::value* client = field(s, "client");
      const json::value none;
      const json::value& c = client != nullptr ? *client : none;
      rows.push_back({text_of(field(s, "session")), text_of(field(s, "device")), text_of(field(c, "name")),
                      text_of(field(c, "version")), text_of(field(c, "features")),
                      text_of(field(s, "connected_at"))});
    }
    print_table(rows, "  ");
  }
  if (devices != nullptr) {
    print_fields({{"Devices", std::to_string(array_size(devices))}});
    if (array_size(devices) > 0) print_devices(devices, "  ");
  }
  return kExitOk;
}

// device list USER / device remove USER DEVICE (contract 4.5).
int cmd_device(const Context& ctx) {
  static constexpr std::string_view kShape = "device list USER | device remove USER DEVICE";
  if (ctx.args.size() < 2) usage_error("usage: omsctl " + std::string(kShape));
  const std::string& sub = ctx.args[1];
  if (sub == "list") {
    auto ca = parse_command_args(ctx.args, 2, "device list", {});
    expect_positionals(ca, "device list", 1, 1, "USER");
    json::value v = ctx.call(HttpMethod::kGet, user_path(ca.positional[0]) + "/devices");
    if (ctx.g.json) return kExitOk;
    const json::value* devices = field(v, "devices");
    if (array_size(devices) == 0) {
      std::cout << "no devices\n";
    } else {
      print_devices(devices);
    }
    return kExitOk;
  }
  if (sub == "remove") {
    auto ca = parse_command_args(ctx.args, 2, "device remove", {});
    expect_positionals(ca, "device remove", 2, 2, "USER DEVICE");
    json::value v = ctx.call(HttpMethod::kDelete, user_path(ca.positional[0]) + "/devices/" +
                                                      encode_path_segment(ca.positional[1]));
    if (!ctx.g.json) {
      const json::value* user = field(v, "user");
      std::cout << "removed device " << ca.positional[1] << " of " << (user ? text_of(user) : ca.positional[0])
                << ": " << int_field(v, "released") << " message(s) released, " << int_field(v, "sessions_closed")
                << " session(s) closed\n";
    }
    return kExitOk;
  }
  usage_error("device: unknown subcommand '" + sub + "'; usage: omsctl " + std::string(kShape));
}

int cmd_mailbox(const Context& ctx) {
  if (ctx.args.size() < 2 || ctx.args[1] != "purge") usage_error("usage: omsctl mailbox purge USER");
  auto ca = parse_command_args(ctx.args, 2, "mailbox purge", {});
  expect_positionals(ca, "mailbox purge", 1, 1, "USER");
  json::value v = ctx.call(HttpMethod::kDelete, user_path(ca.positional[0]) + "/mailbox");
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
  Reply r = http_call(ep, ctx.g.timeout_s, HttpMethod::kGet, "/readyz", std::nullopt);
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
  Reply r = http_call(ep, ctx.g.timeout_s, HttpMethod::kGet, "/metrics", resolve_admin_token(ctx.g));
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
  expect_positionals(ca, "backup", 0, 1, "[NAME]");
  // The server writes under its [backup] dir only: a NAME, not a path.
  json::object body;
  if (!ca.positional.empty()) body["name"] = ca.positional[0];
  json::value v = ctx.call(HttpMethod::kPost, "/v1/backup", json::value(body));
  if (!ctx.g.json) {
    std::cout << "backup " << text_of(field(v, "path")) << ": " << int_field(v, "bytes") << " bytes in "
              << int_field(v, "files") << " files (" << int_field(v, "took_ms") << " ms)\n";
  }
  return kExitOk;
}

}  // namespace

int run_command(const GlobalOptions& g, const std::vector<std::string>& args) {
  const Context ctx{g, args};
  const std::string& cmd = ctx.args[0];
  if (cmd == "token") return cmd_token(ctx);
  if (cmd == "policy") return cmd_policy(ctx);
  if (cmd == "im-config") return cmd_im_config(ctx);
  if (cmd == "user") return cmd_user(ctx);
  if (cmd == "mailbox") return cmd_mailbox(ctx);
  if (cmd == "device") return cmd_device(ctx);
  if (cmd == "health") return cmd_health(ctx);
  if (cmd == "metrics") return cmd_metrics(ctx);
  if (cmd == "backup") return cmd_backup(ctx);
  usage_error("unknown command '" + cmd + "'");
}

}  // namespace oms::omsctl
