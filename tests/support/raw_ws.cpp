#include "tests/support/raw_ws.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <array>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/serialize.hpp>

namespace oms::test {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

namespace {
// RFC 6455 §1.3's example key and the accept value it must produce.
constexpr const char* kKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr const char* kAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
}  // namespace

int RawFrame::close_code() const {
  if (payload.size() < 2) return -1;
  return (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
}

void RawWs::set_receive_buffer(int bytes) {
  ::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

RawWs::RawWs(std::uint16_t port, std::string_view target, ms timeout)
    : sock_(ioc_), rng_(std::random_device{}()) {
  sock_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  http::request<http::empty_body> req{http::verb::get, std::string(target), 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.set(http::field::upgrade, "websocket");
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::sec_websocket_key, kKey);
  req.set(http::field::sec_websocket_version, "13");
  http::write(sock_, req);

  boost::beast::flat_buffer b;
  http::response_parser<http::string_body> parser;
  parser.skip(true);  // a 101 has no body; do not wait for one
  http::read_header(sock_, b, parser);
  const auto& res = parser.get();
  if (res.result() != http::status::switching_protocols)
    throw TestError("upgrade refused: HTTP " + std::to_string(res.result_int()));
  if (res[http::field::sec_websocket_accept] != kAccept)
    throw TestError("wrong Sec-WebSocket-Accept: " + std::string(res[http::field::sec_websocket_accept]));
  const auto rest = b.data();
  buf_.assign(static_cast<const char*>(rest.data()), rest.size());
}

RawWs::~RawWs() {
  boost::system::error_code ec;
  sock_.close(ec);
}

std::string RawWs::encode(std::uint8_t opcode, std::string_view payload, FrameOptions opts) {
  std::string out;
  out.push_back(static_cast<char>((opts.fin ? 0x80 : 0) | ((opts.rsv & 7) << 4) | (opcode & 0x0f)));
  const std::uint8_t mask_bit = opts.mask ? 0x80 : 0;
  const std::size_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(mask_bit | n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  }
  if (!opts.mask) {
    out.append(payload);
    return out;
  }
  std::array<char, 4> key{};
  const std::uint32_t k = rng_();
  for (int i = 0; i < 4; ++i) key[i] = static_cast<char>((k >> (8 * i)) & 0xff);
  out.append(key.data(), key.size());
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(payload[i] ^ key[i % 4]));
  return out;
}

void RawWs::send_frame(std::uint8_t opcode, std::string_view payload, FrameOptions opts) {
  send_bytes(encode(opcode, payload, opts));
}

void RawWs::send_bytes(std::string_view bytes) { net::write(sock_, net::buffer(bytes.data(), bytes.size())); }

void RawWs::send_close(int code, std::string_view reason) {
  std::string p;
  if (code >= 0) {
    p.push_back(static_cast<char>((code >> 8) & 0xff));
    p.push_back(static_cast<char>(code & 0xff));
    p.append(reason);
  }
  send_frame(ws_op::kClose, p);
}

bool RawWs::read_some_into_buffer() {
  std::array<char, 16384> tmp{};
  boost::system::error_code ec;
  const std::size_t n = sock_.read_some(net::buffer(tmp), ec);
  if (ec == net::error::eof || ec == net::error::connection_reset) return false;
  if (ec == net::error::would_block || ec == net::error::try_again)
    throw TestError("raw websocket: no data from the server within the deadline");
  if (ec) throw TestError("raw websocket read: " + ec.message());
  buf_.append(tmp.data(), n);
  return true;
}

void RawWs::read_exact(char* out, std::size_t n) {
  while (buf_.size() < n)
    if (!read_some_into_buffer()) throw TestError("raw websocket: connection ended inside a frame");
  std::copy_n(buf_.data(), n, out);
  buf_.erase(0, n);
}

std::optional<RawFrame> RawWs::read_frame() {
  if (buf_.empty() && !read_some_into_buffer()) return std::nullopt;
  std::array<char, 2> h{};
  read_exact(h.data(), 2);
  RawFrame f;
  const auto b0 = static_cast<unsigned char>(h[0]);
  const auto b1 = static_cast<unsigned char>(h[1]);
  f.fin = (b0 & 0x80) != 0;
  f.rsv = static_cast<std::uint8_t>((b0 >> 4) & 7);
  f.opcode = static_cast<std::uint8_t>(b0 & 0x0f);
  f.masked = (b1 & 0x80) != 0;
  std::uint64_t len = b1 & 0x7f;
  if (len == 126 || len == 127) {
    std::array<char, 8> ext{};
    const std::size_t m = len == 126 ? 2 : 8;
    read_exact(ext.data(), m);
    len = 0;
    for (std::size_t i = 0; i < m; ++i) len = (len << 8) | static_cast<unsigned char>(ext[i]);
  }
  if (len > (64u << 20)) throw TestError("raw websocket: absurd frame length from the server");
  std::array<char, 4> key{};
  if (f.masked) read_exact(key.data(), 4);
  f.payload.resize(len);
  if (len) read_exact(f.payload.data(), len);
  if (f.masked)
    for (std::size_t i = 0; i < len; ++i) f.payload[i] = static_cast<char>(f.payload[i] ^ key[i % 4]);
  return f;
}

Json RawWs::read_json() {
  for (;;) {
    auto f = read_frame();
    if (!f) throw TestError("raw websocket: closed while waiting for a text frame");
    if (f->opcode == ws_op::kPing) {
      send_frame(ws_op::kPong, f->payload);
      continue;
    }
    if (f->opcode == ws_op::kPong) continue;
    if (f->opcode == ws_op::kClose)
      throw TestError("raw websocket: close " + std::to_string(f->close_code()) + " while waiting for text");
    if (f->opcode != ws_op::kText) throw TestError("raw websocket: unexpected opcode " + std::to_string(f->opcode));
    boost::system::error_code ec;
    auto v = boost::json::parse(f->payload, ec);
    if (ec || !v.is_object()) throw TestError("raw websocket: not a JSON object: " + f->payload);
    return v.as_object();
  }
}

int RawWs::expect_close() {
  int code = -1;
  for (;;) {
    auto f = read_frame();
    if (!f) return code;
    if (f->opcode == ws_op::kClose) {
      code = f->close_code();
      // Complete the closing handshake as a client must; the server may
      // already have dropped the connection after a protocol failure.
      boost::system::error_code ec;
      const std::string reply = encode(ws_op::kClose, f->payload.substr(0, 2));
      net::write(sock_, net::buffer(reply), ec);
      if (!wait_eof()) throw TestError("raw websocket: server sent close but kept the connection open");
      return code;
    }
  }
}

bool RawWs::wait_eof() {
  try {
    while (read_frame()) {
    }
    return true;
  } catch (const TestError&) {
    return false;
  }
}

std::string RawWs::hello_text(std::string_view token, int rid) {
  boost::json::object o{{"type", "hello"},
                        {"rid", rid},
                        {"token", token},
                        {"client", {{"name", "raw"}, {"version", "1"}, {"features", {"offline-messages"}}}}};
  return boost::json::serialize(o);
}

}  // namespace oms::test
