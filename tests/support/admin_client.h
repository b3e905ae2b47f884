// A synchronous HTTP/1.1 client for omsd's admin endpoint (Beast), also used
// for the plain-HTTP side of the client listener (Auth::none()). One TCP
// connection per request; every request has a deadline. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/verb.hpp>
#include <boost/json/value.hpp>

namespace oms::test {

namespace http = boost::beast::http;

struct HttpResult {
  int status = 0;
  boost::json::value json;  // the parsed body; null when the body is not JSON
  std::string raw;          // the body as received
  std::string content_type;
  std::string allow;        // the Allow header, if any
  std::vector<std::pair<std::string, std::string>> headers;  // every response header, in order

  // The value of response header `name` (case-insensitive), or "".
  std::string header(std::string_view name) const;

  // The "error"."code" of an error body, or "" when there is none.
  std::string error_code() const;
};

// Which Authorization header a request carries.
struct Auth {
  enum class Mode { kDefault, kNone, kBearer, kRawHeader };
  Mode mode = Mode::kDefault;
  std::string token;
  static Auth none() { return {Mode::kNone, {}}; }
  static Auth bearer(std::string t) { return {Mode::kBearer, std::move(t)}; }
  // The Authorization header value verbatim ("Basic ...", "bearer x", ...).
  static Auth raw_header(std::string v) { return {Mode::kRawHeader, std::move(v)}; }
};

class AdminClient {
 public:
  AdminClient(std::uint16_t port, std::string token,
              std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // A JSON request: `body`, when present, is serialised with
  // Content-Type: application/json.
  HttpResult request(http::verb method, std::string_view target,
                     const std::optional<boost::json::value>& body = std::nullopt,
                     const Auth& auth = {});
  // Any body and content type (malformed JSON, oversized bodies...).
  HttpResult request_raw(http::verb method, std::string_view target, std::string body,
                         std::string_view content_type, const Auth& auth = {});

  HttpResult get(std::string_view target, const Auth& auth = {}) {
    return request(http::verb::get, target, std::nullopt, auth);
  }
  HttpResult post(std::string_view target, const boost::json::value& body, const Auth& auth = {}) {
    return request(http::verb::post, target, body, auth);
  }
  HttpResult patch(std::string_view target, const boost::json::value& body, const Auth& auth = {}) {
    return request(http::verb::patch, target, body, auth);
  }
  HttpResult put(std::string_view target, const boost::json::value& body, const Auth& auth = {}) {
    return request(http::verb::put, target, body, auth);
  }
  HttpResult del(std::string_view target, const Auth& auth = {}) {
    return request(http::verb::delete_, target, std::nullopt, auth);
  }

  std::uint16_t port() const { return port_; }
  const std::string& token() const { return token_; }

 private:
  std::uint16_t port_;
  std::string token_;
  std::chrono::milliseconds timeout_;
};

}  // namespace oms::test
