// TLS clients for the tests of wss:// and https:// (OpenSSL via Beast), and a
// self-signed certificate made with the openssl command line.
//
// Each client is blocking with a deadline per step, on its own io_context,
// and connects to 127.0.0.1. Failures throw TestError. Not thread-safe (one
// test thread per client).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace oms::test {

// A self-signed certificate for 127.0.0.1 / localhost and its key, in `dir`
// (cert.pem, key.pem), made by /usr/bin/openssl (req -x509, EC P-256).
struct SelfSignedPair {
  std::filesystem::path cert;
  std::filesystem::path key;
};
SelfSignedPair make_self_signed(const std::filesystem::path& dir, std::string_view name = "oms-test");

// What a client trusts: the certificate (or CA) in `ca_file`, or nothing
// checked at all when `ca_file` is empty.
struct TlsTrust {
  std::filesystem::path ca_file;
  bool tls12_only = false;  // offer nothing newer than TLS 1.2 (tls.min_version tests)
};

struct HttpsReply {
  int status = 0;
  std::string body;
};

// One HTTPS request (Connection: close) to 127.0.0.1:port. `bearer` empty:
// no Authorization header.
HttpsReply https_request(std::uint16_t port, std::string_view method, std::string_view target,
                         std::string_view bearer, const TlsTrust& trust,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

// A wss:// client at /v1/ws: TLS handshake, WebSocket upgrade, text frames.
class WssClient {
 public:
  WssClient(std::uint16_t port, const TlsTrust& trust,
            std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~WssClient();
  WssClient(const WssClient&) = delete;
  WssClient& operator=(const WssClient&) = delete;

  void send_text(const std::string& frame);
  // The next text frame; throws on a close or when nothing comes in time.
  std::string read_text();
  // Reads until the server closes: its close code (0 when the connection
  // ended without a close frame). Throws when it does not close in time.
  int read_until_closed();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace oms::test
