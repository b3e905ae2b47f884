#include "tests/support/tls_client.h"

#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "tests/support/json_util.h"
#include "tests/support/process.h"

namespace oms::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace {

std::shared_ptr<ssl::context> client_context(const TlsTrust& trust) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  if (trust.tls12_only) SSL_CTX_set_max_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  if (trust.ca_file.empty()) {
    ctx->set_verify_mode(ssl::verify_none);
  } else {
    ctx->load_verify_file(trust.ca_file.string());
    ctx->set_verify_mode(ssl::verify_peer);
  }
  return ctx;
}

// Runs one asynchronous operation to completion within `timeout`; on
// timeout closes `socket` (completing the operation) and reports it.
template <class Start>
beast::error_code run_step(net::io_context& ioc, tcp::socket& socket, std::chrono::milliseconds timeout,
                           Start&& start) {
  std::optional<beast::error_code> result;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run_for(timeout);
  if (!result) {
    beast::error_code ignored;
    socket.close(ignored);
    ioc.restart();
    ioc.run();
    return beast::error::timeout;
  }
  return *result;
}

void check(const beast::error_code& ec, std::string_view what) {
  if (ec) throw TestError(std::string(what) + ": " + ec.message());
}

}  // namespace

SelfSignedPair make_self_signed(const std::filesystem::path& dir, std::string_view name) {
  SelfSignedPair p{dir / (std::string(name) + "-cert.pem"), dir / (std::string(name) + "-key.pem")};
  auto r = run_command({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=" + std::string(name),
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", p.key.string(), "-out",
                        p.cert.string()});
  if (r.exit_code != 0) throw TestError("openssl req -x509 failed: " + r.err);
  return p;
}

HttpsReply https_request(std::uint16_t port, std::string_view method, std::string_view target,
                         std::string_view bearer, const TlsTrust& trust, std::chrono::milliseconds timeout) {
  net::io_context ioc;
  auto ctx = client_context(trust);
  beast::ssl_stream<tcp::socket> stream(ioc, *ctx);
  if (!trust.ca_file.empty()) stream.set_verify_callback(ssl::host_name_verification("127.0.0.1"));
  tcp::socket& sock = stream.next_layer();
  const tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port);
  check(run_step(ioc, sock, timeout, [&](auto h) { sock.async_connect(ep, h); }), "connect");
  check(run_step(ioc, sock, timeout, [&](auto h) { stream.async_handshake(ssl::stream_base::client, h); }),
        "TLS handshake");
  http::request<http::string_body> req{http::string_to_verb(method), std::string(target), 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.set(http::field::connection, "close");
  if (!bearer.empty()) req.set(http::field::authorization, "Bearer " + std::string(bearer));
  req.prepare_payload();
  check(run_step(ioc, sock, timeout, [&](auto h) { http::async_write(stream, req, h); }), "write");
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  check(run_step(ioc, sock, timeout, [&](auto h) { http::async_read(stream, buffer, res, h); }), "read");
  beast::error_code ignored;
  sock.shutdown(tcp::socket::shutdown_both, ignored);
  return HttpsReply{static_cast<int>(res.result_int()), res.body()};
}

struct WssClient::Impl {
  net::io_context ioc;
  std::shared_ptr<ssl::context> ctx;
  std::optional<websocket::stream<beast::ssl_stream<tcp::socket>>> ws;
  std::chrono::milliseconds timeout{};
  beast::flat_buffer buffer;

  tcp::socket& socket() { return beast::get_lowest_layer(*ws); }
};

WssClient::WssClient(std::uint16_t port, const TlsTrust& trust, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->timeout = timeout;
  impl_->ctx = client_context(trust);
  impl_->ws.emplace(impl_->ioc, *impl_->ctx);
  auto& ws = *impl_->ws;
  if (!trust.ca_file.empty()) ws.next_layer().set_verify_callback(ssl::host_name_verification("127.0.0.1"));
  const tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port);
  auto& sock = impl_->socket();
  check(run_step(impl_->ioc, sock, timeout, [&](auto h) { sock.async_connect(ep, h); }), "connect");
  check(run_step(impl_->ioc, sock, timeout,
                 [&](auto h) { ws.next_layer().async_handshake(ssl::stream_base::client, h); }),
        "TLS handshake");
  check(run_step(impl_->ioc, sock, timeout,
                 [&](auto h) { ws.async_handshake("127.0.0.1:" + std::to_string(port), "/v1/ws", h); }),
        "WebSocket upgrade");
  ws.text(true);
}

WssClient::~WssClient() {
  if (!impl_->ws) return;
  beast::error_code ignored;
  impl_->socket().close(ignored);
}

void WssClient::send_text(const std::string& frame) {
  auto& ws = *impl_->ws;
  check(run_step(impl_->ioc, impl_->socket(), impl_->timeout,
                 [&](auto h) { ws.async_write(net::buffer(frame), h); }),
        "write");
}

std::string WssClient::read_text() {
  auto& ws = *impl_->ws;
  impl_->buffer.clear();
  check(run_step(impl_->ioc, impl_->socket(), impl_->timeout,
                 [&](auto h) { ws.async_read(impl_->buffer, h); }),
        "read");
  return beast::buffers_to_string(impl_->buffer.data());
}

int WssClient::read_until_closed() {
  auto& ws = *impl_->ws;
  for (;;) {
    impl_->buffer.clear();
    auto ec = run_step(impl_->ioc, impl_->socket(), impl_->timeout,
                       [&](auto h) { ws.async_read(impl_->buffer, h); });
    if (ec == websocket::error::closed) return ws.reason().code;
    if (ec == beast::error::timeout) throw TestError("the server did not close in time");
    if (ec) return 0;
  }
}

}  // namespace oms::test
