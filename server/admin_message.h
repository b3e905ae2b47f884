// One admin request and its answer, free of any HTTP library: what the
// admin endpoint (admin_endpoint.cpp) hands to AdminApi (admin_api.h) and
// what the routes (admin_routes.h) answer. Plain data; the views of a
// request point into the HTTP parser's buffers and live as long as the call.
#pragma once

#include <string>
#include <string_view>

namespace oms::server {

struct AdminRequest {
  std::string_view method;
  std::string_view target;
  std::string_view authorization;
  std::string_view body;
  std::string_view remote;  // peer address, for the audit log
};

struct AdminResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
};

}  // namespace oms::server
