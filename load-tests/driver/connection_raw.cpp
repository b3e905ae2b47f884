// The raw-framing half of Connection (Options::raw_framing, the default;
// RFC 6455 §5). Beast did the upgrade; from then on the socket carries frames
// we write and parse here, so that many queued frames leave in one write and
// one read takes in up to 64 KiB of frames. Client frames are masked (§5.3);
// server frames are not. Control frames: ping -> pong, close -> close.
#include <cstdint>

#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "load-tests/driver/connection.h"
#include "load-tests/driver/worker.h"

namespace oms::load {

void Connection::raw_append(unsigned opcode, std::string_view payload) {
  const std::size_t n = payload.size();
  char hdr[14];
  std::size_t h = 0;
  hdr[h++] = static_cast<char>(0x80 | opcode);  // FIN + opcode
  if (n < 126) {
    hdr[h++] = static_cast<char>(0x80 | n);
  } else if (n <= 0xffff) {
    hdr[h++] = static_cast<char>(0x80 | 126);
    hdr[h++] = static_cast<char>(n >> 8);
    hdr[h++] = static_cast<char>(n & 0xff);
  } else {
    hdr[h++] = static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) hdr[h++] = static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xff);
  }
  for (int i = 0; i < 4; ++i) hdr[h++] = static_cast<char>(mask_[i]);
  tx_pending_.append(hdr, h);
  const std::size_t at = tx_pending_.size();
  tx_pending_.append(payload);
  char* p = tx_pending_.data() + at;
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<char>(p[i] ^ static_cast<char>(mask_[i & 3]));
  ++tx_frames_;
}

void Connection::raw_flush() {
  if (writing_ || tx_pending_.empty() || phase_ == Phase::kClosed) return;
  writing_ = true;
  w_.stats.frames_out += tx_frames_;
  tx_frames_ = 0;
  tx_inflight_.swap(tx_pending_);
  tx_pending_.clear();
  net::async_write(beast::get_lowest_layer(ws_).socket(), net::buffer(tx_inflight_),
                   [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
                     self->writing_ = false;
                     if (ec) return self->fail(ec, "write");
                     self->tx_inflight_.clear();
                     if (self->phase_ == Phase::kClosed) return;
                     if (!self->tx_pending_.empty()) return self->raw_flush();
                     if (self->phase_ == Phase::kClosing && !self->close_sent_) self->do_close();
                   });
}

void Connection::raw_read() {
  beast::get_lowest_layer(ws_).socket().async_read_some(
      rx_.prepare(kReadChunk),
      [self = shared_from_this()](const beast::error_code& ec, std::size_t n) { self->raw_on_read(ec, n); });
}

void Connection::raw_on_read(const beast::error_code& ec, std::size_t n) {
  if (ec) {
    if (ec == net::error::eof && close_wanted_) return finish(true);
    return fail(ec, "read");
  }
  rx_.commit(n);
  for (;;) {
    const auto data = rx_.data();
    const auto* p = static_cast<const std::uint8_t*>(data.data());
    const std::size_t avail = data.size();
    if (avail < 2) break;
    const bool fin = (p[0] & 0x80) != 0;
    const unsigned opcode = p[0] & 0x0f;
    const bool masked = (p[1] & 0x80) != 0;
    std::uint64_t len = p[1] & 0x7f;
    std::size_t hdr = 2;
    if (len == 126) {
      if (avail < 4) break;
      len = (std::uint64_t{p[2]} << 8) | p[3];
      hdr = 4;
    } else if (len == 127) {
      if (avail < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
      hdr = 10;
    }
    if (masked || len > kMaxMessageBytes || (p[0] & 0x70) != 0) {
      w_.count_error("bad_server_frame");
      return finish(false);
    }
    if (avail < hdr + len) break;
    raw_frame(fin, opcode, std::string_view(reinterpret_cast<const char*>(p + hdr), static_cast<std::size_t>(len)));
    rx_.consume(hdr + static_cast<std::size_t>(len));
    if (phase_ == Phase::kClosed) return;
  }
  raw_read();
}

void Connection::raw_frame(bool fin, unsigned opcode, std::string_view payload) {
  switch (opcode) {
    case 0x0:  // continuation
      fragments_.append(payload);
      if (fragments_.size() > kMaxMessageBytes) {
        w_.count_error("bad_server_frame");
        return finish(false);
      }
      if (fin) {
        std::string whole;
        whole.swap(fragments_);
        handle(whole);
      }
      return;
    case 0x1:  // text
    case 0x2:  // binary (not in the contract; decoding will count it)
      if (fin) return handle(payload);
      fragments_.assign(payload);
      return;
    case 0x8: {  // close
      const unsigned code = payload.size() >= 2
                                ? (static_cast<unsigned>(static_cast<std::uint8_t>(payload[0])) << 8) |
                                      static_cast<std::uint8_t>(payload[1])
                                : 1005;
      if (close_wanted_ && phase_ == Phase::kClosing) return finish(true);
      w_.count_error(fmt::format("server_close:{}", code));
      return finish(false);
    }
    case 0x9:  // ping
      if (!close_sent_) {
        raw_append(0xA, payload);
        raw_flush();
      }
      return;
    case 0xA:  // pong
      return;
    default:
      w_.count_error("bad_server_frame");
      return finish(false);
  }
}

}  // namespace oms::load
