// AdminApi::handle: matches a request against the route table
// (admin_routes.h says how) and runs its handler (admin_routes.cpp).
#include "server/admin_api.h"

#include <atomic>
#include <cassert>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/ids.h"
#include "common/utf8.h"
#include "common/jwt.h"
#include "server/admin_routes.h"
#include "server/context.h"
#include "server/log.h"

namespace oms::server {

namespace json = boost::json;

namespace {

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// The path split on '/', empty segments dropped. With `decode` each segment
// is percent-decoded (nullopt on a malformed escape) and the query string is
// ignored; without, the text is split as it is (route patterns).
std::optional<std::vector<std::string>> split_path(std::string_view target, bool decode) {
  if (decode) {
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  }
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < target.size()) {
    if (target[i] == '/') {
      ++i;
      continue;
    }
    std::size_t j = target.find('/', i);
    if (j == std::string_view::npos) j = target.size();
    std::string_view raw = target.substr(i, j - i);
    auto seg = decode ? percent_decode(raw) : std::optional<std::string>(raw);
    if (!seg) return std::nullopt;
    parts.push_back(std::move(*seg));
    i = j;
  }
  return parts;
}

// A route with its pattern split into segments once.
struct CompiledRoute {
  const AdminRoute* route;
  std::vector<std::string> segments;  // "policies" or "{identity}"
};

bool is_param(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

const std::vector<CompiledRoute>& compiled_routes() {
  static const std::vector<CompiledRoute> routes = [] {
    std::vector<CompiledRoute> out;
    for (const AdminRoute& r : admin_routes()) out.push_back({&r, *split_path(r.pattern, false)});
    return out;
  }();
  return routes;
}

bool matches(const CompiledRoute& r, const std::vector<std::string>& path) {
  if (r.segments.size() != path.size()) return false;
  for (std::size_t i = 0; i < path.size(); ++i)
    if (!is_param(r.segments[i]) && r.segments[i] != path[i]) return false;
  return true;
}

// The named segments of `path` under `r`, checked; an error response when
// one has a syntax the value does not meet.
std::optional<AdminResponse> bind_params(const CompiledRoute& r, std::vector<std::string>& path, AdminCall& call) {
  for (std::size_t i = 0; i < path.size(); ++i) {
    std::string_view seg = r.segments[i];
    if (!is_param(seg)) continue;
    std::string_view name = seg.substr(1, seg.size() - 2);
    if (name == "user") {
      auto user = normalize_user_id(path[i]);
      if (!user) return admin_error(400, "bad_request", fmt::format("'{}' is not a valid user id", path[i]));
      path[i] = std::move(*user);
    }
    call.params.emplace_back(name, std::move(path[i]));
  }
  return std::nullopt;
}

bool has_admin_token(const AdminRequest& req, const ServerContext& ctx) {
  constexpr std::string_view kBearer = "Bearer ";
  return req.authorization.starts_with(kBearer) &&
         constant_time_equal(req.authorization.substr(kBearer.size()), ctx.admin_token);
}

void audit(const AdminRequest& req, std::string_view action, const AdminResponse& res) {
  // Target and body are quoted as JSON strings: a newline or a quote in a
  // request cannot forge another audit line or field.
  logger_for(LogComponent::kAudit).info("who=admin-token remote={} action={} method={} target={} body={} status={}",
                             req.remote, action, req.method,
                             json::serialize(json::string(to_valid_utf8(req.target))),
                             req.body.empty() ? std::string("-")
                                              : json::serialize(json::string(to_valid_utf8(req.body))),
                             res.status);
}

}  // namespace

AdminResponse admin_error(unsigned status, std::string_view code, std::string_view message) {
  // Boost.JSON writes strings as they are, so ill-formed UTF-8 is replaced first.
  return {status, "application/json",
          json::serialize(json::object{
              {"error", json::object{{"code", code}, {"message", to_valid_utf8(message)}}}})};
}

AdminResponse no_such_endpoint(std::string_view target) {
  return admin_error(404, "not_found", fmt::format("no such endpoint: {}", target));
}

const std::string& AdminCall::param(std::string_view name) const {
  for (const auto& [n, v] : params)
    if (n == name) return v;
  assert(false && "the route's pattern has no such parameter");
  static const std::string kNone;
  return kNone;
}

namespace {

// A wrong or missing admin token is logged with the peer's address, at most
// one line a second (a guessing client cannot flood the log); the lines
// skipped meanwhile are counted in the next one. Every one is in
// oms_admin_unauthorized_total.
void log_unauthorized(const AdminRequest& req) {
  static std::atomic<std::int64_t> last_ms{0};
  static std::atomic<std::uint64_t> suppressed{0};
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t last = last_ms.load();
  if (now - last < 1000 || !last_ms.compare_exchange_strong(last, now)) {
    suppressed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  logger_for(LogComponent::kAdmin)
      .warn("admin request refused (missing or wrong admin token) from {}: {} {} ({} more since the last line)",
            log_safe(req.remote), log_safe(req.method, 16), log_safe(req.target, 128), suppressed.exchange(0));
}

}  // namespace

AdminResponse AdminApi::handle(const AdminRequest& req) {
  ctx_.metrics.admin_requests_total.fetch_add(1, std::memory_order_relaxed);
  auto path = split_path(req.target, true);
  if (!path) return admin_error(400, "bad_request", "malformed percent-encoding in the path");

  const auto& routes = compiled_routes();
  const CompiledRoute* match = nullptr;
  for (const auto& r : routes) {
    if (matches(r, *path)) {
      match = &r;
      break;
    }
  }
  if (!match || match->route->access != AdminAccess::kPublic) {
    if (!has_admin_token(req, ctx_)) {
      ctx_.metrics.admin_unauthorized_total.fetch_add(1, std::memory_order_relaxed);
      log_unauthorized(req);
      return admin_error(401, "unauthenticated", "missing or wrong admin token (Authorization: Bearer <token>)");
    }
  }
  if (!match) return no_such_endpoint(req.target);

  AdminCall call{req, ctx_, {}};
  if (auto bad = bind_params(*match, *path, call)) return *bad;

  for (const auto& r : routes) {
    const AdminRoute& route = *r.route;
    if (route.pattern != match->route->pattern) continue;
    if (route.method != "*" && route.method != req.method) continue;
    AdminResponse res = route.handler(call);
    if (!route.audit_action.empty()) audit(req, route.audit_action, res);
    return res;
  }
  return admin_error(405, "method_not_allowed", fmt::format("{} is not allowed on {}", req.method, req.target));
}

}  // namespace oms::server
