// TLS on both listeners (deploy/CONFIGURATION.md "TLS"): wss:// sign-in and sending, HTTPS on
// the admin API, what a plain or stalled client gets, omsctl over https, and
// the start-up refusals for bad [tls] files. The certificate is self-signed,
// made at test time by the openssl command line.
#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <csignal>
#include <functional>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>

#include "tests/support/harness.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_client.h"

using namespace oms::test;

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

std::string tls_config(const SelfSignedPair& p, std::string_view extra = "") {
  return "[tls]\ncert_file = \"" + p.cert.string() + "\"\nkey_file = \"" + p.key.string() + "\"\n" +
         std::string(extra);
}

Json parse_frame(const std::string& text) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) throw TestError("not a JSON object: " + text);
  return v.get_object();
}

// hello → welcome over wss://.
void wss_sign_in(WssClient& c, const OmsdProcess& omsd, std::string_view user) {
  Json hello{{"type", "hello"},
             {"rid", 1},
             {"token", omsd.token(user)},
             {"client", Json{{"name", "oms-tests"}, {"version", "2.1.0"},
                             {"features", str_array(kCapableFeatures)}}}};
  c.send_text(to_text(hello));
  const Json w = parse_frame(c.read_text());
  INFO("reply: " << to_text(w));
  REQUIRE(type_of(w) == "welcome");
  CHECK(str_of(w, "user") == user);
}

// Waits for the next frame of `type`, skipping others (presence, drained).
Json read_type(WssClient& c, std::string_view type) {
  for (int i = 0; i < 32; ++i) {
    Json f = parse_frame(c.read_text());
    if (type_of(f) == type) return f;
  }
  throw TestError("no \"" + std::string(type) + "\" frame");
}

struct RawOutcome {
  bool closed = false;  // the server ended the connection before the deadline
  std::string received;
  Clock::duration elapsed{};
};

// A plain TCP client: sends `bytes` (maybe none), then reads until the
// server closes or `deadline` passes.
RawOutcome raw_tcp(std::uint16_t port, std::string_view bytes, std::chrono::milliseconds deadline) {
  net::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  const auto start = Clock::now();
  if (!bytes.empty()) net::write(s, net::buffer(bytes.data(), bytes.size()));
  RawOutcome out;
  std::array<char, 4096> buf{};
  std::function<void()> read_more = [&] {
    s.async_read_some(net::buffer(buf), [&](boost::system::error_code ec, std::size_t n) {
      out.received.append(buf.data(), n);
      if (ec) {
        out.closed = true;
        out.elapsed = Clock::now() - start;
        return;
      }
      read_more();
    });
  };
  read_more();
  ioc.run_for(deadline);
  if (!out.closed) {
    boost::system::error_code ignored;
    s.close(ignored);
    ioc.restart();
    ioc.run();
    out.closed = false;
  }
  return out;
}

// omsd started on a config file that must be refused: exit code and stderr.
CommandResult omsd_refusing(const TempDir& dir, const std::string& toml) {
  const auto config = write_config_file(dir.path() / "omsd.toml", toml);
  return run_command({omsd_binary_path(), "--config", config.string(), "--data-dir",
                      (dir.path() / "data").string(), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"});
}

}  // namespace

TEST_CASE("tls: wss sign-in, a stored message and its delivery, the admin API over https, shutdown closes with 1001") {
  TempDir certs("oms-tls");
  const auto pair = make_self_signed(certs.path());
  OmsdProcess omsd(with_config(tls_config(pair)));
  REQUIRE(omsd.admin_tls());
  const TlsTrust trust{pair.cert};

  {
    WssClient alice(omsd.client_port(), trust);
    wss_sign_in(alice, omsd, kAlice);
    alice.send_text(to_text(Json{{"type", "send"}, {"rid", 2}, {"to", kBob}, {"body", "over TLS"},
                                 {"client_msg_id", "tls-1"}}));
    const Json sent = read_type(alice, "sent");
    OMS_CHECK_SENT(sent, "stored");
  }

  const HttpsReply ready = https_request(omsd.admin_port(), "GET", "/readyz", "", trust);
  CHECK(ready.status == 200);
  const HttpsReply policies = https_request(omsd.admin_port(), "GET", "/v1/policies", omsd.admin_token(), trust);
  INFO("body: " << policies.body);
  CHECK(policies.status == 200);
  CHECK(https_request(omsd.admin_port(), "GET", "/v1/policies", "", trust).status == 401);
  const HttpsReply bob_info =
      https_request(omsd.admin_port(), "GET", "/v1/users/bob@contoso.com", omsd.admin_token(), trust);
  REQUIRE(bob_info.status == 200);
  CHECK(int_of(obj_of(parse_frame(bob_info.body), "mailbox"), "count") == 1);

  WssClient bob(omsd.client_port(), trust);
  wss_sign_in(bob, omsd, kBob);
  const Json m = read_type(bob, "message");
  CHECK(str_of(m, "body") == "over TLS");
  CHECK(str_of(m, "from") == kAlice);

  omsd.signal(SIGTERM);
  CHECK(bob.read_until_closed() == 1001);
  CHECK(omsd.wait_exit() == 0);
}

TEST_CASE("tls: a plain TCP client of a TLS listener gets no service and is not kept waiting") {
  TempDir certs("oms-tls");
  const auto pair = make_self_signed(certs.path());
  OmsdProcess omsd(with_config(tls_config(pair)));
  const std::string upgrade =
      "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  const RawOutcome client = raw_tcp(omsd.client_port(), upgrade, std::chrono::seconds(5));
  CHECK(client.closed);
  CHECK(client.received.find("HTTP/") == std::string::npos);
  const RawOutcome admin = raw_tcp(omsd.admin_port(), "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", std::chrono::seconds(5));
  CHECK(admin.closed);
  CHECK(admin.received.find("HTTP/") == std::string::npos);
  // The TLS clients still get served afterwards.
  CHECK(https_request(omsd.admin_port(), "GET", "/readyz", "", TlsTrust{pair.cert}).status == 200);
}

TEST_CASE("tls: a client that never completes the TLS handshake is closed at the handshake deadline") {
  TempDir certs("oms-tls");
  const auto pair = make_self_signed(certs.path());
  OmsdProcess omsd(with_config(tls_config(pair) + "[limits]\nhandshake_timeout_seconds = 1\n"));
  for (std::uint16_t port : {omsd.client_port(), omsd.admin_port()}) {
    CAPTURE(port);
    // Connects and sends nothing; then a client that stops mid-ClientHello.
    for (std::string_view bytes : {std::string_view(), std::string_view("\x16\x03\x01\x00\xc8\x01", 6)}) {
      const RawOutcome r = raw_tcp(port, bytes, std::chrono::seconds(8));
      REQUIRE(r.closed);
      CHECK(r.elapsed >= std::chrono::milliseconds(900));
      CHECK(r.elapsed < std::chrono::seconds(5));
    }
  }
}

TEST_CASE("tls: only the listeners chosen by tls.client / tls.admin use TLS") {
  TempDir certs("oms-tls");
  const auto pair = make_self_signed(certs.path());
  OmsdProcess omsd(with_config(tls_config(pair, "admin = false\n")));
  CHECK(!omsd.admin_tls());
  CHECK(omsd.admin().get("/readyz", Auth::none()).status == 200);  // plain HTTP
  WssClient alice(omsd.client_port(), TlsTrust{pair.cert});
  wss_sign_in(alice, omsd, kAlice);
}

TEST_CASE("tls: tls.min_version = 1.3 refuses a TLS 1.2 client") {
  TempDir certs("oms-tls");
  const auto pair = make_self_signed(certs.path());
  OmsdProcess omsd(with_config(tls_config(pair, "min_version = \"1.3\"\n")));
  CHECK(https_request(omsd.admin_port(), "GET", "/readyz", "", TlsTrust{pair.cert}).status == 200);
  CHECK_THROWS_AS(https_request(omsd.admin_port(), "GET", "/readyz", "", TlsTrust{pair.cert, true}), TestError);
  // The default minimum (1.2) serves a TLS 1.2 client.
  OmsdProcess default_min(with_config(tls_config(pair)));
  CHECK(https_request(default_min.admin_port(), "GET", "/readyz", "", TlsTrust{pair.cert, true}).status == 200);
}

TEST_CASE("tls: omsctl over https verifies the server certificate with --cacert") {
  if (omsctl_binary_path().empty()) {
    MESSAGE("omsctl was not built: skipping this test");
    return;
  }
  TempDir certs("oms-tls");
  const auto pair = make_self_signed(certs.path());
  OmsdProcess omsd(with_config(tls_config(pair)));
  const std::string url = omsd.admin_url();
  REQUIRE(url.starts_with("https://"));
  auto omsctl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {omsctl_binary_path(), "--data-dir", omsd.data_dir().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = run_command(argv);
    INFO("omsctl " << args.back() << ": exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err);
    return r;
  };

  CommandResult ok = omsctl({"--admin", url, "--cacert", pair.cert.string(), "health"});
  CHECK(ok.exit_code == 0);
  CommandResult listed = omsctl({"--admin", url, "--cacert", pair.cert.string(), "--json", "policy", "get"});
  CHECK(listed.exit_code == 0);
  // ports.json says the admin listener is https: no --admin needed.
  CHECK(omsctl({"--cacert", pair.cert.string(), "health"}).exit_code == 0);

  CommandResult unverified = omsctl({"--admin", url, "health"});
  CHECK(unverified.exit_code == 3);
  CHECK(!unverified.timed_out);
  CHECK(unverified.err.find("certificate verify failed") != std::string::npos);
  CHECK(unverified.err.find("--cacert") != std::string::npos);

  // Another self-signed certificate does not vouch for this server.
  const auto other = make_self_signed(certs.path(), "other");
  CHECK(omsctl({"--admin", url, "--cacert", other.cert.string(), "health"}).exit_code == 3);

  CHECK(omsctl({"--admin", url, "--insecure", "health"}).exit_code == 0);
}

TEST_CASE("tls: omsd refuses to start on missing or mismatched certificate files, naming the key") {
  TempDir dir("oms-tls");
  const auto pair = make_self_signed(dir.path());
  const auto other = make_self_signed(dir.path(), "other");

  SUBCASE("missing certificate file") {
    SelfSignedPair missing{dir.path() / "nope.pem", pair.key};
    const CommandResult r = omsd_refusing(dir, tls_config(missing));
    INFO("stderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("tls.cert_file") != std::string::npos);
  }
  SUBCASE("a key that does not match the certificate") {
    SelfSignedPair mismatched{pair.cert, other.key};
    const CommandResult r = omsd_refusing(dir, tls_config(mismatched));
    INFO("stderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("tls.key_file") != std::string::npos);
  }
  SUBCASE("a certificate without a key") {
    const CommandResult r =
        omsd_refusing(dir, "[tls]\ncert_file = \"" + pair.cert.string() + "\"\n");
    INFO("stderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("tls.key_file") != std::string::npos);
  }
  SUBCASE("a certificate file that is not PEM") {
    SelfSignedPair garbage{dir.path() / "garbage.pem", pair.key};
    write_config_file(garbage.cert, "not a certificate\n");
    const CommandResult r = omsd_refusing(dir, tls_config(garbage));
    INFO("stderr: " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("tls.cert_file") != std::string::npos);
  }
  SUBCASE("tls.min_version") {
    const CommandResult r = omsd_refusing(dir, tls_config(pair, "min_version = \"1.1\"\n"));
    CHECK(r.exit_code != 0);
    CHECK(r.err.find("tls.min_version") != std::string::npos);
  }
}
