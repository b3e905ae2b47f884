// The plain-HTTP side of the client listener: everything that is not the
// WebSocket upgrade at /v1/ws.
//
//   GET|HEAD /, /index.html, /app.js, /app.css   the browser client (files of
//                                                server/web/, embedded in the
//                                                binary at build time)
//   POST /v1/dev/token {"user":"..."}            a client JWT for that user,
//                                                only with auth.dev_tokens
//   GET /v1/dev/token                            {"dev_tokens":true} (then)
//   anything else                                404 JSON (405 for a known
//                                                path with another method)
//
// Every answer carries X-Content-Type-Options: nosniff; pages also a strict
// Content-Security-Policy (self only; WebSocket to this host). Pure
// functions of the request and the context: thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace oms::server {

struct ServerContext;

// Upper bound of a request body on the client listener (the dev token
// request is a few dozen bytes).
inline constexpr std::size_t kMaxClientHttpBodyBytes = 4096;
// Lifetime of a dev token: a working day.
inline constexpr std::int64_t kDevTokenTtlSeconds = 12 * 3600;

struct WebRequest {
  std::string_view method;  // "GET", "POST", ...
  std::string_view target;  // "/app.js?v=1"
  std::string_view host;    // the Host header ("" when absent)
  std::string_view body;
  std::string_view remote;  // peer address, for the log
};

struct WebResponse {
  int status = 200;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
  std::string_view static_body;  // an embedded file (outlives the response)
  std::string body;              // or a generated body (used when static_body is empty)

  std::string_view payload() const { return static_body.empty() ? std::string_view(body) : static_body; }
};

WebResponse handle_web_request(const ServerContext& ctx, const WebRequest& req);

// The answer when a request body exceeds kMaxClientHttpBodyBytes.
WebResponse web_body_too_large();

// 403 for a WebSocket upgrade whose Origin is not in auth.allowed_origins.
WebResponse web_forbidden_origin(std::string_view origin);

// One embedded file of server/web/ (generated web_assets.cpp).
struct WebAsset {
  std::string_view path;          // "/index.html"
  std::string_view content_type;  // "text/html; charset=utf-8"
  std::string_view body;
};
const std::vector<WebAsset>& web_assets();

}  // namespace oms::server
