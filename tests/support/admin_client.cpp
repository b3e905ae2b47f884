#include "tests/support/admin_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "tests/support/json_util.h"

namespace oms::test {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

std::string HttpResult::error_code() const {
  if (!json.is_object()) return "";
  const auto* e = json.get_object().if_contains("error");
  if (e == nullptr || !e->is_object()) return "";
  const auto* c = e->get_object().if_contains("code");
  if (c == nullptr || !c->is_string()) return "";
  return std::string(c->get_string());
}

std::string HttpResult::header(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (boost::beast::iequals(n, name)) return v;
  return "";
}

AdminClient::AdminClient(std::uint16_t port, std::string token, std::chrono::milliseconds timeout)
    : port_(port), token_(std::move(token)), timeout_(timeout) {}

HttpResult AdminClient::request(http::verb method, std::string_view target,
                                const std::optional<boost::json::value>& body, const Auth& auth) {
  if (body) return request_raw(method, target, boost::json::serialize(*body), "application/json", auth);
  return request_raw(method, target, std::string(), "", auth);
}

HttpResult AdminClient::request_raw(http::verb method, std::string_view target, std::string body,
                                    std::string_view content_type, const Auth& auth) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req{method, std::string(target), 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port_));
  req.set(http::field::user_agent, "oms-integration-tests");
  req.set(http::field::connection, "close");
  switch (auth.mode) {
    case Auth::Mode::kDefault: req.set(http::field::authorization, "Bearer " + token_); break;
    case Auth::Mode::kBearer: req.set(http::field::authorization, "Bearer " + auth.token); break;
    case Auth::Mode::kRawHeader: req.set(http::field::authorization, auth.token); break;
    case Auth::Mode::kNone: break;
  }
  if (!content_type.empty()) req.set(http::field::content_type, content_type);
  req.body() = std::move(body);
  req.prepare_payload();

  http::response_parser<http::string_body> parser;
  parser.body_limit(16 * 1024 * 1024);
  if (method == http::verb::head) parser.skip(true);  // a HEAD answer has no body
  beast::flat_buffer buf;
  boost::system::error_code result_ec;
  bool done = false;
  const std::string what = std::string(http::to_string(method)) + " " + std::string(target);

  stream.expires_after(timeout_);
  stream.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_),
                       [&](boost::system::error_code ec) {
    if (ec) { result_ec = ec; done = true; return; }
    http::async_write(stream, req, [&](boost::system::error_code ec2, std::size_t) {
      // A server may answer (413, 401) and close before reading all of a
      // large body: still try to read its response.
      (void)ec2;
      http::async_read(stream, buf, parser, [&](boost::system::error_code ec3, std::size_t) {
        result_ec = ec3;
        done = true;
      });
    });
  });
  ioc.run();
  if (!done) throw TestError("admin " + what + ": no completion");
  if (result_ec == beast::error::timeout)
    throw TestError("admin " + what + ": timed out after " + std::to_string(timeout_.count()) + " ms");
  if (result_ec) throw TestError("admin " + what + ": " + result_ec.message());

  http::response<http::string_body> res = parser.release();
  HttpResult out;
  for (const auto& f : res) out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  out.status = static_cast<int>(res.result_int());
  out.raw = res.body();
  out.content_type = std::string(res[http::field::content_type]);
  out.allow = std::string(res[http::field::allow]);
  boost::system::error_code pec;
  out.json = boost::json::parse(out.raw, pec);
  if (pec) out.json = nullptr;
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return out;
}

}  // namespace oms::test
