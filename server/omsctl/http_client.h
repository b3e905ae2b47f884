// omsctl's HTTP client for the admin endpoint: one HTTP/1.1 request per call
// over Beast, http:// or https://, each step (connect, TLS handshake, write,
// read) bounded by a timeout. Single-threaded and sequential.
//
// Beast and Asio stay in http_client.cpp: this header is plain C++.
#pragma once

#include <optional>
#include <string>

namespace oms::omsctl {

struct AdminEndpoint {
  std::string url;        // as shown to the operator
  bool tls = false;       // https://
  std::string host;       // without IPv6 brackets
  std::string port;
  std::string base_path;  // "" or "/prefix" (no trailing slash)
  std::optional<std::string> cacert;  // https: trust anchors (else the system store)
  bool insecure = false;              // https: no certificate verification
};

// http://HOST[:PORT][/PREFIX] or https://...; a URL without a scheme is
// http://. Anything else (user info, a query, a bad port) is a configuration
// error (CliExit).
AdminEndpoint parse_admin_url(const std::string& url);

enum class HttpMethod { kGet, kPost, kPut, kPatch, kDelete };

struct Reply {
  unsigned status = 0;
  std::string reason;
  std::string body;
};

// One request, one reply, connection closed. `token` goes out as
// `Authorization: Bearer`, `body` as application/json. Network failures and
// timeouts end the run with kExitUnreachable (CliExit); an unusable --cacert
// with kExitUsage.
Reply http_call(const AdminEndpoint& ep, int timeout_s, HttpMethod method, const std::string& path,
                const std::optional<std::string>& token,
                const std::optional<std::string>& body = std::nullopt);

}  // namespace oms::omsctl
