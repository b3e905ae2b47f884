// The admin API's routes (contract §2) as a table: a method and a path
// pattern lead to one handler. admin_api.cpp matches requests against the
// table; admin_routes.cpp holds the handlers and the table itself.
//
// Matching, in this order (AdminApi::handle):
//   1. The target's path is split on '/' (empty segments dropped, the query
//      ignored) and percent-decoded; a bad %-escape is a 400.
//   2. The path's route is the first one in the table whose pattern matches
//      it: literal segments compare exactly, a {name} segment takes any one
//      segment.
//   3. A route that is not public needs the admin token (else 401); a path
//      that no pattern matches is a 404, after the token check.
//   4. Path parameters with a syntax are checked: {user} must be a valid
//      user id (else 400) and is handed on normalised.
//   5. Among the routes with the matched pattern, the one for the request's
//      method runs ("*" takes any method); none is a 405.
//   6. The answer of a route with an audit action is written to the audit
//      log (who, what, result); reads are not audited.
//
// Internal to the admin API (and its tests): include admin_api.h otherwise.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/admin_message.h"

namespace oms::server {

struct ServerContext;

// One request on a matched route, as its handler sees it.
struct AdminCall {
  const AdminRequest& req;
  ServerContext& ctx;
  // The pattern's {name} segments, percent-decoded ({user} also normalised).
  std::vector<std::pair<std::string_view, std::string>> params;

  // The value of the {name} segment. REQUIRES: the route's pattern has it.
  const std::string& param(std::string_view name) const;
};

using AdminHandler = AdminResponse (*)(const AdminCall& call);

enum class AdminAccess { kPublic, kAdminToken };

struct AdminRoute {
  std::string_view method;   // "GET", "POST", ... (case-sensitive); "*" any
  std::string_view pattern;  // e.g. "/v1/policies/{identity}"
  AdminAccess access;
  std::string_view audit_action;  // e.g. "policy.new"; empty: not audited
  AdminHandler handler;
};

// Every route, in match order.
std::span<const AdminRoute> admin_routes();

// {"error":{"code":..,"message":..}} with `status`; the message may quote
// request bytes (ill-formed UTF-8 is replaced).
AdminResponse admin_error(unsigned status, std::string_view code, std::string_view message);

// The 404 for a target no route serves.
AdminResponse no_such_endpoint(std::string_view target);

}  // namespace oms::server
