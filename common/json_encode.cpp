#include "common/json_encode.h"

#include <array>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common/ids.h"
#include "common/iso8601.h"
#include "common/utf8.h"

namespace oms::proto {
namespace {

// Bytes copied verbatim inside a JSON string: printable ASCII but '"' and '\\'.
constexpr std::array<bool, 256> kPlainAscii = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
  return t;
}();

// How many of the 8 bytes at `p` are plain (kPlainAscii) before the first
// that is not: no byte >= 0x80, none < 0x20, none '"', none '\\'. Tested a
// word at a time: a byte is < n when (x - n) borrows into its top bit while
// its own top bit is clear (a zero byte likewise with n = 1). A borrow only
// runs upwards, from a byte that is < n, so the lowest flagged byte is always
// a true one and the bytes below it are plain. (Big-endian machines get 8 or
// 0: the byte loop takes over.)
unsigned plain_prefix(const char* p) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  auto has_zero = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const std::uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;
  const std::uint64_t flagged =
      (w & kHigh) | below_space | has_zero(w ^ (kOnes * '"')) | has_zero(w ^ (kOnes * '\\'));
  if (flagged == 0) return 8;
  if constexpr (std::endian::native == std::endian::little)
    return static_cast<unsigned>(std::countr_zero(flagged)) / 8;
  return 0;
}

// Appends `s` as a JSON string literal. Quotes, backslashes and control
// characters are escaped; well-formed UTF-8 passes through; a byte that is not
// part of well-formed UTF-8 becomes U+FFFD, so the output is always valid.
void append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the pending run of bytes copied verbatim
  std::size_t i = 0;
  auto flush = [&] {
    out.append(s.data() + run, i - run);
  };
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (kPlainAscii[c]) {
      ++i;
      // From the second plain byte in a row on, the run is skipped a word at
      // a time, up to the first byte that needs care. (Not from the first:
      // text that is mostly not ASCII, CJK or accented Latin, has short runs
      // and would pay for word tests that hardly skip anything.)
      if (s.size() - i >= 8 && kPlainAscii[static_cast<unsigned char>(s[i])]) {
        unsigned plain;
        do {
          plain = plain_prefix(s.data() + i);
          i += plain;
        } while (plain == 8 && s.size() - i >= 8);
      }
      continue;
    }
    if (c >= 0x80) {
      std::size_t n = utf8_sequence_length(s.substr(i));
      if (n != 0) {
        i += n;
        continue;
      }
      flush();
      out.append("\\ufffd");
      run = ++i;
      continue;
    }
    flush();
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out.append(esc, 6);
      }
    }
    run = ++i;
  }
  flush();
  out.push_back('"');
}

template <class Int>
void append_int(std::string& out, Int v) {
  static_assert(std::is_integral_v<Int>);
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// `,"rid":…` when the rid is present; nothing when it is absent.
void append_rid(std::string& out, const Rid& rid) {
  if (const auto* i = std::get_if<std::int64_t>(&rid)) {
    out.append(",\"rid\":");
    append_int(out, *i);
  } else if (const auto* s = std::get_if<std::string>(&rid)) {
    out.append(",\"rid\":");
    append_string(out, *s);
  }
}

void append_time(std::string& out, std::int64_t ms) { append_string(out, format_iso8601_ms(ms)); }

void append_sender_counts(std::string& out, const std::vector<SenderCount>& from) {
  out.push_back('[');
  bool first = true;
  for (const auto& sc : from) {
    if (!first) out.push_back(',');
    first = false;
    out.append("{\"user\":");
    append_string(out, sc.user);
    out.append(",\"count\":");
    append_int(out, sc.count);
    out.push_back('}');
  }
  out.push_back(']');
}

void append_string_array(std::string& out, const std::vector<std::string>& v) {
  out.push_back('[');
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_string(out, v[i]);
  }
  out.push_back(']');
}

// ---- client frames ----------------------------------------------------------

void append_frame(std::string& out, const Hello& f) {
  out.append("{\"type\":\"hello\"");
  append_rid(out, f.rid);
  out.append(",\"token\":");
  append_string(out, f.token);
  // An all-empty ClientInfo is an older client that sends no "client" at all.
  const ClientInfo& c = f.client;
  if (!c.name.empty() || !c.version.empty() || !c.features.empty() || c.device) {
    out.append(",\"client\":{\"name\":");
    append_string(out, c.name);
    out.append(",\"version\":");
    append_string(out, c.version);
    out.append(",\"features\":");
    append_string_array(out, c.features);
    if (c.device) {
      out.append(",\"device\":");
      append_string(out, *c.device);
    }
    out.push_back('}');
  }
  out.push_back('}');
}

void append_frame(std::string& out, const PresenceSet& f) {
  out.append("{\"type\":\"presence.set\"");
  append_rid(out, f.rid);
  out.append(",\"state\":");
  append_string(out, presence_name(f.state));
  out.push_back('}');
}

void append_frame(std::string& out, const PresenceSubscribe& f) {
  out.append("{\"type\":\"presence.subscribe\"");
  append_rid(out, f.rid);
  out.append(",\"users\":");
  append_string_array(out, f.users);
  out.push_back('}');
}

void append_frame(std::string& out, const Send& f) {
  out.append("{\"type\":\"send\"");
  append_rid(out, f.rid);
  out.append(",\"to\":");
  append_string(out, f.to);
  out.append(",\"body\":");
  append_string(out, f.body);
  if (!f.client_msg_id.empty()) {
    out.append(",\"client_msg_id\":");
    append_string(out, f.client_msg_id);
  }
  out.push_back('}');
}

void append_frame(std::string& out, const Ack& f) {
  out.append("{\"type\":\"ack\"");
  append_rid(out, f.rid);
  out.append(",\"ids\":[");
  for (std::size_t i = 0; i < f.ids.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_string(out, format_message_id(f.ids[i]));
  }
  out.append("]}");
}

void append_frame(std::string& out, const Ping& f) {
  out.append("{\"type\":\"ping\"");
  append_rid(out, f.rid);
  out.push_back('}');
}

void append_frame(std::string& out, const AuthRefresh& f) {
  out.append("{\"type\":\"auth.refresh\"");
  append_rid(out, f.rid);
  out.append(",\"token\":");
  append_string(out, f.token);
  out.push_back('}');
}

// ---- server frames ----------------------------------------------------------

void append_frame(std::string& out, const Welcome& f) {
  out.append("{\"type\":\"welcome\"");
  append_rid(out, f.rid);
  out.append(",\"user\":");
  append_string(out, f.user);
  out.append(",\"session\":");
  append_string(out, f.session);
  out.append(",\"presence\":");
  append_string(out, presence_name(f.presence));
  const MailboxNotice& m = f.mailbox;
  out.append(",\"mailbox\":{\"count\":");
  append_int(out, m.count);
  out.append(",\"missed\":");
  append_int(out, m.missed);
  out.append(",\"bytes\":");
  append_int(out, m.bytes);
  out.append(",\"from\":");
  append_sender_counts(out, m.from);
  out.append(",\"oldest\":");
  if (m.oldest_ms) append_time(out, *m.oldest_ms);
  else out.append("null");
  out.append(",\"receipts\":");
  append_int(out, m.receipts);
  out.append("}}");
}

void append_frame(std::string& out, const Ok& f) {
  out.append("{\"type\":\"ok\"");
  append_rid(out, f.rid);
  out.push_back('}');
}

void append_error(std::string& out, const Rid& rid, std::string_view code, std::string_view message) {
  out.append("{\"type\":\"error\"");
  append_rid(out, rid);
  out.append(",\"code\":");
  append_string(out, code);
  out.append(",\"message\":");
  append_string(out, message);
  out.push_back('}');
}

void append_frame(std::string& out, const Error& f) { append_error(out, f.rid, f.code, f.message); }

void append_frame(std::string& out, const Sent& f) {
  out.append("{\"type\":\"sent\"");
  append_rid(out, f.rid);
  out.append(",\"id\":");
  append_string(out, f.id);
  out.append(",\"status\":");
  append_string(out, f.status);
  out.append(",\"recipient\":");
  append_string(out, presence_name(f.recipient));
  if (f.duplicate) out.append(",\"duplicate\":true");
  out.push_back('}');
}

void append_frame(std::string& out, const Message& f) {
  out.append("{\"type\":\"message\",\"id\":");
  append_string(out, f.id);
  out.append(",\"from\":");
  append_string(out, f.from);
  out.append(",\"sent_at\":");
  append_time(out, f.sent_at_ms);
  out.append(",\"body\":");
  append_string(out, f.body);
  out.append(",\"kind\":");
  append_string(out, message_kind_name(f.kind));
  out.push_back('}');
}

void append_frame(std::string& out, const Missed& f) {
  out.append("{\"type\":\"missed\",\"id\":");
  append_string(out, f.id);
  out.append(",\"from\":");
  append_string(out, f.from);
  out.append(",\"sent_at\":");
  append_time(out, f.sent_at_ms);
  out.append(",\"reason\":");
  append_string(out, f.reason);
  out.append(",\"preview\":");
  append_string(out, f.preview);
  out.push_back('}');
}

void append_frame(std::string& out, const MissedSummary& f) {
  out.append("{\"type\":\"missed.summary\",\"count\":");
  append_int(out, f.count);
  out.append(",\"from\":");
  append_sender_counts(out, f.from);
  out.push_back('}');
}

void append_frame(std::string& out, const MailboxDrained&) { out.append("{\"type\":\"mailbox.drained\"}"); }

void append_frame(std::string& out, const PresenceEvent& f) {
  out.append("{\"type\":\"presence\",\"user\":");
  append_string(out, f.user);
  out.append(",\"state\":");
  append_string(out, presence_name(f.state));
  out.push_back('}');
}

void append_frame(std::string& out, const Receipt& f) {
  out.append("{\"type\":\"receipt\",\"id\":");
  append_string(out, f.id);
  out.append(",\"msg\":");
  append_string(out, f.msg);
  if (!f.client_msg_id.empty()) {
    out.append(",\"client_msg_id\":");
    append_string(out, f.client_msg_id);
  }
  out.append(",\"to\":");
  append_string(out, f.to);
  out.append(",\"state\":");
  append_string(out, receipt_state_name(f.state));
  out.append(",\"at\":");
  append_time(out, f.at_ms);
  out.push_back('}');
}

void append_frame(std::string& out, const Pong& f) {
  out.append("{\"type\":\"pong\"");
  append_rid(out, f.rid);
  out.push_back('}');
}

}  // namespace

std::string encode(const ClientFrame& f) {
  std::string out;
  std::visit([&](const auto& frame) { append_frame(out, frame); }, f);
  return out;
}

std::string encode(const ServerFrame& f) {
  std::string out;
  std::visit([&](const auto& frame) { append_frame(out, frame); }, f);
  return out;
}

std::string encode_message(const Message& m) {
  std::string out;
  out.reserve(m.body.size() + m.from.size() + 128);
  append_frame(out, m);
  return out;
}

std::string encode_receipt(const Receipt& r) {
  std::string out;
  out.reserve(r.to.size() + r.client_msg_id.size() + 160);
  append_frame(out, r);
  return out;
}

std::string encode_sent(const Sent& s) {
  std::string out;
  out.reserve(160);
  append_frame(out, s);
  return out;
}

std::string encode_error(const Rid& rid, std::string_view code, std::string_view message) {
  std::string out;
  out.reserve(code.size() + message.size() + 64);
  append_error(out, rid, code, message);
  return out;
}

}  // namespace oms::proto
