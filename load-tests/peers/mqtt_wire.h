// MQTT 3.1.1 on the wire (OASIS standard, section 2 and 3): the few packets
// the peer benchmark needs, encoded into a byte string and parsed from one.
// Only what a QoS 0/1 client sends and receives: CONNECT, CONNACK, PUBLISH,
// PUBACK, SUBSCRIBE, SUBACK, DISCONNECT, PINGRESP. Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace oms::peers::mqtt {

// Fixed-header packet types (the high nibble of the first byte).
enum class Type : std::uint8_t {
  kConnect = 1, kConnack = 2, kPublish = 3, kPuback = 4, kSubscribe = 8, kSuback = 9,
  kPingreq = 12, kPingresp = 13, kDisconnect = 14,
};

// Remaining length: at most 4 bytes of 7 bits (section 2.2.3).
constexpr std::uint32_t kMaxRemaining = 268'435'455;

inline void put_remaining(std::string& out, std::uint32_t n) {
  do {
    auto b = static_cast<std::uint8_t>(n % 128);
    n /= 128;
    if (n > 0) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (n > 0);
}

inline void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

inline void put_str(std::string& out, std::string_view s) {
  put_u16(out, static_cast<std::uint16_t>(s.size()));
  out.append(s);
}

// CONNECT with protocol level 4; keep-alive 0 (off: runs are short).
inline void append_connect(std::string& out, std::string_view client_id, bool clean_session) {
  const std::uint32_t len = 10 + 2 + static_cast<std::uint32_t>(client_id.size());
  out.push_back(static_cast<char>(0x10));
  put_remaining(out, len);
  put_str(out, "MQTT");
  out.push_back(4);                                         // protocol level 3.1.1
  out.push_back(static_cast<char>(clean_session ? 0x02 : 0x00));  // connect flags
  put_u16(out, 0);                                          // keep-alive
  put_str(out, client_id);
}

// PUBLISH at QoS 1 (packet id required).
inline void append_publish_qos1(std::string& out, std::string_view topic, std::uint16_t pid,
                                std::string_view payload) {
  out.push_back(static_cast<char>(0x32));
  put_remaining(out, static_cast<std::uint32_t>(2 + topic.size() + 2 + payload.size()));
  put_str(out, topic);
  put_u16(out, pid);
  out.append(payload);
}

inline void append_puback(std::string& out, std::uint16_t pid) {
  out.push_back(static_cast<char>(0x40));
  out.push_back(2);
  put_u16(out, pid);
}

inline void append_subscribe_qos1(std::string& out, std::uint16_t pid, std::string_view filter) {
  out.push_back(static_cast<char>(0x82));  // reserved flags 0010
  put_remaining(out, static_cast<std::uint32_t>(2 + 2 + filter.size() + 1));
  put_u16(out, pid);
  put_str(out, filter);
  out.push_back(1);  // requested QoS
}

inline void append_disconnect(std::string& out) {
  out.push_back(static_cast<char>(0xE0));
  out.push_back(0);
}

// One packet parsed in place: views into the caller's buffer.
struct Packet {
  Type type{};
  std::uint8_t flags = 0;      // low nibble of the first byte
  std::string_view body;       // variable header + payload
  std::size_t size = 0;        // bytes the whole packet took
};

enum class ParseResult { kPacket, kNeedMore, kMalformed };

// Parses the packet at the start of `in`.
inline ParseResult parse(std::string_view in, Packet& p) {
  if (in.size() < 2) return ParseResult::kNeedMore;
  std::uint32_t len = 0, mult = 1;
  std::size_t i = 1;
  for (;; ++i) {
    if (i >= in.size()) return ParseResult::kNeedMore;
    if (i > 4) return ParseResult::kMalformed;
    const auto b = static_cast<std::uint8_t>(in[i]);
    len += (b & 0x7fu) * mult;
    mult *= 128;
    if ((b & 0x80) == 0) break;
  }
  const std::size_t head = i + 1;
  if (in.size() < head + len) return ParseResult::kNeedMore;
  const auto b0 = static_cast<std::uint8_t>(in[0]);
  p.type = static_cast<Type>(b0 >> 4);
  p.flags = b0 & 0x0f;
  p.body = in.substr(head, len);
  p.size = head + len;
  return ParseResult::kPacket;
}

inline std::optional<std::uint16_t> get_u16(std::string_view s, std::size_t at) {
  if (s.size() < at + 2) return std::nullopt;
  return static_cast<std::uint16_t>((static_cast<std::uint8_t>(s[at]) << 8) | static_cast<std::uint8_t>(s[at + 1]));
}

// A PUBLISH's parts (QoS from the flags; the packet id only for QoS > 0).
struct Publish {
  std::string_view topic;
  std::string_view payload;
  std::uint16_t pid = 0;
  std::uint8_t qos = 0;
  bool dup = false;
};

inline std::optional<Publish> parse_publish(const Packet& p) {
  Publish out;
  out.qos = (p.flags >> 1) & 0x03;
  out.dup = (p.flags & 0x08) != 0;
  auto tlen = get_u16(p.body, 0);
  if (!tlen || p.body.size() < 2u + *tlen) return std::nullopt;
  out.topic = p.body.substr(2, *tlen);
  std::size_t at = 2u + *tlen;
  if (out.qos > 0) {
    auto pid = get_u16(p.body, at);
    if (!pid) return std::nullopt;
    out.pid = *pid;
    at += 2;
  }
  out.payload = p.body.substr(at);
  return out;
}

}  // namespace oms::peers::mqtt
