#include "server/omsctl/http_client.h"

#include <charconv>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "server/omsctl/cli.h"

namespace oms::omsctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

namespace {

// The admin API answers small JSON documents; anything near this is broken.
constexpr std::uint64_t kMaxReplyBytes = 16u << 20;

http::verb verb_of(HttpMethod m) {
  switch (m) {
    case HttpMethod::kGet: return http::verb::get;
    case HttpMethod::kPost: return http::verb::post;
    case HttpMethod::kPut: return http::verb::put;
    case HttpMethod::kPatch: return http::verb::patch;
    case HttpMethod::kDelete: return http::verb::delete_;
  }
  return http::verb::get;
}

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

}  // namespace

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

Reply http_call(const AdminEndpoint& ep, int timeout_s, HttpMethod method, const std::string& path,
                const std::optional<std::string>& token, const std::optional<std::string>& body) {
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

  http::request<http::string_body> req{verb_of(method), ep.base_path + path, 11};
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

}  // namespace oms::omsctl
