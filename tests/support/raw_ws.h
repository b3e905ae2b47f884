// A raw RFC 6455 client for conformance tests: the opening handshake goes
// through Beast's HTTP parser, then every frame is built and parsed here
// byte by byte, so tests can send what a correct client never would
// (unmasked frames, reserved bits and opcodes, bad fragmentation, invalid
// UTF-8, oversize control frames, bad close payloads).
//
// Blocking, one thread; every read has a deadline (SO_RCVTIMEO) and throws
// TestError when it passes.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "tests/support/json_util.h"

namespace oms::test {

namespace ws_op {
inline constexpr std::uint8_t kContinuation = 0x0;
inline constexpr std::uint8_t kText = 0x1;
inline constexpr std::uint8_t kBinary = 0x2;
inline constexpr std::uint8_t kClose = 0x8;
inline constexpr std::uint8_t kPing = 0x9;
inline constexpr std::uint8_t kPong = 0xA;
}  // namespace ws_op

struct RawFrame {
  bool fin = true;
  std::uint8_t rsv = 0;  // the three RSV bits, 0..7
  std::uint8_t opcode = 0;
  bool masked = false;
  std::string payload;  // unmasked

  // For close frames: the status code (-1 when the payload is empty).
  int close_code() const;
};

// How a frame is put on the wire; the defaults are a correct client frame.
struct FrameOptions {
  bool fin = true;
  bool mask = true;
  std::uint8_t rsv = 0;
};

class RawWs {
 public:
  using ms = std::chrono::milliseconds;
  // Connects to 127.0.0.1:port and upgrades on `target`; throws TestError
  // unless the server answers 101 with the RFC's Sec-WebSocket-Accept.
  explicit RawWs(std::uint16_t port, std::string_view target = "/v1/ws",
                 ms timeout = std::chrono::seconds(5));
  ~RawWs();
  RawWs(const RawWs&) = delete;
  RawWs& operator=(const RawWs&) = delete;

  // SO_RCVBUF on the connected socket (a client that reads slowly or not
  // at all keeps the server's writes waiting sooner).
  void set_receive_buffer(int bytes);
  // The socket's descriptor (for SO_* options in tests).
  int native_handle() { return sock_.native_handle(); }

  void send_frame(std::uint8_t opcode, std::string_view payload, FrameOptions opts = {});
  // Writes bytes as they are (for splitting one frame across TCP writes).
  void send_bytes(std::string_view bytes);
  // The bytes of one frame, as send_frame would write them.
  std::string encode(std::uint8_t opcode, std::string_view payload, FrameOptions opts = {});
  // A close frame with `code` and `reason` (no payload when code < 0).
  void send_close(int code, std::string_view reason = {});

  // The next frame, or nullopt when the server closed the TCP connection.
  std::optional<RawFrame> read_frame();
  // The next data frame's JSON (pings are answered, pongs skipped); throws on
  // close or a non-text frame.
  Json read_json();
  // Reads until the server's close frame (data frames before it are skipped)
  // and then until the TCP connection ends. Returns the close code, or -1 if
  // the connection ended without a close frame. Throws if the connection is
  // still open at the deadline.
  int expect_close();
  // True when the server has closed the TCP connection (reads to EOF,
  // discarding frames).
  bool wait_eof();

  // The hello frame of the contract for `token`, capable client.
  static std::string hello_text(std::string_view token, int rid = 1);

 private:
  void read_exact(char* out, std::size_t n);  // throws on EOF or timeout
  bool read_some_into_buffer();               // false on EOF

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket sock_;
  std::string buf_;  // received, not yet parsed
  std::mt19937 rng_;
};

}  // namespace oms::test
