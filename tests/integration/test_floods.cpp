// Floods and slow attackers: handshake deadlines on both listeners (a
// request that never completes, and one that trickles in forever), the
// connection cap, and that none of it disturbs a signed-in user.
#include <doctest/doctest.h>

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "tests/support/harness.h"
#include "tests/support/raw_ws.h"

using namespace oms::test;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// A plain TCP connection to 127.0.0.1:port, driven with raw syscalls.
class Tcp {
 public:
  explicit Tcp(std::uint16_t port, const char* source = nullptr) : sock_(ioc_) {
    if (source) {
      sock_.open(tcp::v4());
      sock_.bind(tcp::endpoint(net::ip::make_address(source), 0));
    }
    sock_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  }
  // Sends a WebSocket upgrade (with `extra` header lines) and returns the
  // response's status code (0 if the connection ended first).
  int upgrade(std::string_view extra = {}) {
    std::string req =
        "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    req.append(extra);
    req.append("\r\n");
    if (!write(req)) return 0;
    std::string got;
    const auto end = Clock::now() + std::chrono::seconds(5);
    while (got.find("\r\n") == std::string::npos && Clock::now() < end) {
      pollfd p{sock_.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[512];
      const ssize_t n = ::recv(sock_.native_handle(), buf, sizeof buf, 0);
      if (n <= 0) return 0;
      got.append(buf, static_cast<std::size_t>(n));
    }
    // "HTTP/1.1 101 Switching Protocols"
    return got.size() > 12 ? std::stoi(got.substr(9, 3)) : 0;
  }
  // False once the peer has closed.
  bool write(std::string_view s) {
    return ::send(sock_.native_handle(), s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  // True when the peer closed (EOF or reset) within `wait`; data the server
  // sends before closing (an error response) is skipped.
  bool closed_within(milliseconds wait) {
    const auto end = Clock::now() + wait;
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(end - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{sock_.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(sock_.native_handle(), buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) return true;
    }
  }

 private:
  net::io_context ioc_;
  tcp::socket sock_;
};

// An incomplete request: the server must close it at the handshake deadline.
void expect_stalled_request_closed(std::uint16_t port, int timeout_s) {
  Tcp t(port);
  const auto start = Clock::now();
  REQUIRE(t.write("GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"));
  CHECK(t.closed_within(milliseconds(timeout_s * 1000 + 3000)));
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  MESSAGE("stalled request closed after " << s << " s (deadline " << timeout_s << " s)");
  CHECK(s >= timeout_s - 0.5);
}

// A request trickling in a byte at a time forever: the deadline is for the
// whole request, not per byte.
void expect_trickle_closed(std::uint16_t port, int timeout_s) {
  Tcp t(port);
  const auto start = Clock::now();
  REQUIRE(t.write("GET /v1/ws HTTP/1.1\r\nX-Slow: "));
  const auto give_up = start + std::chrono::seconds(timeout_s + 4);
  bool closed = false;
  while (!closed && Clock::now() < give_up) {
    closed = !t.write("a") || t.closed_within(milliseconds(200));
  }
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  MESSAGE("trickling request closed after " << s << " s (deadline " << timeout_s << " s)");
  CHECK(closed);
  CHECK(s <= timeout_s + 2.0);
}

}  // namespace

TEST_CASE("floods: the client listener closes a stalled or trickling upgrade at the handshake deadline") {
  OmsdProcess omsd(with_config("[limits]\nhandshake_timeout_seconds = 1\n"));
  auto alice = sign_in(omsd, kAlice);
  expect_stalled_request_closed(omsd.client_port(), 1);
  expect_trickle_closed(omsd.client_port(), 1);
  // A signed-in session is not subject to the handshake deadline.
  CHECK(type_of(alice->request(Json{{"type", "ping"}})) == "pong");
}

TEST_CASE("floods: the admin listener closes a stalled or trickling request at the handshake deadline") {
  OmsdProcess omsd(with_config("[limits]\nhandshake_timeout_seconds = 1\n"));
  expect_stalled_request_closed(omsd.admin_port(), 1);
  expect_trickle_closed(omsd.admin_port(), 1);
  OMS_CHECK_HTTP(omsd.admin().get("/v1/policies"), 200);
}

TEST_CASE("floods: a WebSocket that never signs in is closed at the sign-in deadline") {
  OmsdProcess omsd(with_config("[auth]\nsignin_timeout_ms = 500\n"));
  RawWs ws(omsd.client_port());
  const auto start = Clock::now();
  // Pings keep the connection busy but are not a sign-in.
  ws.send_frame(ws_op::kPing, "still here");
  const int code = ws.expect_close();
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  CHECK(code == 4408);
  CHECK(s < 3.0);
}

TEST_CASE("floods: connections beyond limits.max_connections are closed at once, and the count recovers") {
  OmsdProcess omsd(with_config("[limits]\nmax_connections = 4\n"));
  std::vector<std::unique_ptr<RawWs>> held;
  for (int i = 0; i < 4; ++i) held.push_back(std::make_unique<RawWs>(omsd.client_port()));
  // The fifth is refused: closed without an upgrade.
  Tcp extra(omsd.client_port());
  (void)extra.write("GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  CHECK(extra.closed_within(milliseconds(3000)));
  // Free one slot: a new client gets in and can sign in.
  held.front()->send_close(1000);
  CHECK(held.front()->expect_close() == 1000);
  held.erase(held.begin());
  bool signed_in = false;
  wait_until(
      [&] {
        try {
          auto c = sign_in(omsd, kAlice);
          signed_in = true;
        } catch (const std::exception&) {
        }
        return signed_in;
      },
      std::chrono::seconds(5), std::chrono::milliseconds(50));
  CHECK(signed_in);
}

TEST_CASE("floods: limits.max_connections_per_ip caps one source address, not others") {
  OmsdProcess omsd(with_config("[limits]\nmax_connections_per_ip = 3\n"));
  std::vector<std::unique_ptr<Tcp>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<Tcp>(omsd.client_port(), "127.0.0.1"));
    CHECK(held.back()->upgrade() == 101);
  }
  Tcp fourth(omsd.client_port(), "127.0.0.1");
  CHECK(fourth.upgrade() == 0);  // closed without an answer
  // Another loopback address is counted on its own.
  Tcp other(omsd.client_port(), "127.0.0.2");
  CHECK(other.upgrade() == 101);
  // Closing one gives its slot back.
  held.pop_back();
  bool admitted = false;
  wait_until([&] { return admitted = Tcp(omsd.client_port(), "127.0.0.1").upgrade() == 101; },
             std::chrono::seconds(5), std::chrono::milliseconds(50));
  CHECK(admitted);
  const HttpResult m = omsd.admin().get("/metrics");
  CHECK(m.raw.find("oms_connections_refused_total") != std::string::npos);
}

TEST_CASE("floods: auth.allowed_origins refuses other browser origins with 403 before the upgrade") {
  OmsdProcess omsd(with_config("[auth]\nallowed_origins = [\"https://im.contoso.com\", \"http://127.0.0.1:8080\"]\n"));
  CHECK(Tcp(omsd.client_port()).upgrade("Origin: https://im.contoso.com\r\n") == 101);
  CHECK(Tcp(omsd.client_port()).upgrade("Origin: http://127.0.0.1:8080\r\n") == 101);
  CHECK(Tcp(omsd.client_port()).upgrade() == 101);  // no Origin: not a browser
  for (const char* evil : {"https://evil.example", "https://im.contoso.com.evil.example", "null",
                           "https://IM.contoso.com"}) {
    CAPTURE(evil);
    CHECK(Tcp(omsd.client_port()).upgrade(std::string("Origin: ") + evil + "\r\n") == 403);
  }
  // The default (no list) accepts any origin.
  OmsdProcess open_server;
  CHECK(Tcp(open_server.client_port()).upgrade("Origin: https://evil.example\r\n") == 101);
}
