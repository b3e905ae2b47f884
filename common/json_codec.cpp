#include "common/json_codec.h"

#include <array>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include <boost/json.hpp>

#include "common/clock.h"
#include "common/ids.h"

namespace oms::proto {
namespace {

namespace json = boost::json;

// Untrusted values quoted in error messages are cut to this many bytes.
constexpr std::size_t kMaxQuotedBytes = 64;
// Parse scratch space on the stack; larger frames spill to the heap.
constexpr std::size_t kParseBufferBytes = 4096;

// ============================================================================
// UTF-8
// ============================================================================

// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF), or 0.
std::size_t utf8_sequence_length(std::string_view s) {
  auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  auto cont = [&](std::size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;  // continuation byte or overlong 2-byte lead
  if (c < 0xE0) return cont(1) ? 2 : 0;
  if (c < 0xF0) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c < 0xF5) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

bool is_valid_utf8(std::string_view s) {
  while (!s.empty()) {
    std::size_t n = utf8_sequence_length(s);
    if (n == 0) return false;
    s.remove_prefix(n);
  }
  return true;
}

// `s` cut to at most kMaxQuotedBytes without splitting a UTF-8 sequence.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  if (s.size() <= kMaxQuotedBytes) {
    out.append(s);
  } else {
    std::size_t n = kMaxQuotedBytes;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    out.append(s.substr(0, n)).append("...");
  }
  out.push_back('"');
  return out;
}

// ============================================================================
// Writing JSON text
// ============================================================================

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
  if (!c.name.empty() || !c.version.empty() || !c.features.empty()) {
    out.append(",\"client\":{\"name\":");
    append_string(out, c.name);
    out.append(",\"version\":");
    append_string(out, c.version);
    out.append(",\"features\":");
    append_string_array(out, c.features);
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

void append_frame(std::string& out, const Pong& f) {
  out.append("{\"type\":\"pong\"");
  append_rid(out, f.rid);
  out.push_back('}');
}

// ============================================================================
// Reading JSON text
// ============================================================================

std::string_view sv(const json::string& s) { return {s.data(), s.size()}; }

// "YYYY-MM-DDTHH:MM:SS[.fff…]Z" (UTC) → ms since the epoch; the inverse of
// format_iso8601_ms for years 0000–9999. Fraction digits past ms are dropped.
std::optional<std::int64_t> parse_iso8601_ms(std::string_view s) {
  auto digits = [&](std::size_t pos, std::size_t n, int& v) {
    if (pos + n > s.size()) return false;
    v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    return true;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (s.size() < 20 || !digits(0, 4, year) || s[4] != '-' || !digits(5, 2, month) || s[7] != '-' ||
      !digits(8, 2, day) || s[10] != 'T' || !digits(11, 2, hour) || s[13] != ':' ||
      !digits(14, 2, minute) || s[16] != ':' || !digits(17, 2, second)) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  int millis = 0;
  if (s[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (pos - start < 3) millis = millis * 10 + (s[pos] - '0');
      ++pos;
    }
    std::size_t n = pos - start;
    if (n == 0 || n > 9) return std::nullopt;
    for (std::size_t k = n; k < 3; ++k) millis *= 10;
  }
  if (pos + 1 != s.size() || s[pos] != 'Z') return std::nullopt;

  static constexpr int kDaysInMonth[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || month > 12 || day < 1 || day > kDaysInMonth[month - 1] ||
      (month == 2 && day == 29 && !leap) || hour > 23 || minute > 59 || second > 59) {
    return std::nullopt;
  }
  // Days from civil (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
  std::int64_t y = year - (month <= 2 ? 1 : 0);
  std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  std::int64_t yoe = y - era * 400;
  std::int64_t mp = month > 2 ? month - 3 : month + 9;
  std::int64_t doy = (153 * mp + 2) / 5 + day - 1;
  std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  std::int64_t days = era * 146097 + doe - 719468;
  return ((days * 24 + hour) * 60 + minute) * 60'000 + second * 1000 + millis;
}

// Field access with precise error messages. Each getter returns false and
// records the reason on failure; the caller turns it into a DecodeError.
class Fields {
 public:
  explicit Fields(const json::object& o) : o_(o) {}

  const std::string& error() const { return error_; }

  const json::value* find(std::string_view name) const { return o_.if_contains(name); }

  bool fail(std::string msg) {
    error_ = std::move(msg);
    return false;
  }

  bool missing(std::string_view name) { return fail("missing field \"" + std::string(name) + "\""); }
  bool wrong_type(std::string_view name, std::string_view what) {
    return fail("field \"" + std::string(name) + "\" must be " + std::string(what));
  }

  bool required_string(std::string_view name, std::string_view& out) {
    const json::value* v = find(name);
    if (v == nullptr) return missing(name);
    if (!v->is_string()) return wrong_type(name, "a string");
    out = sv(v->get_string());
    return true;
  }

  // Absent or null leaves `out` unchanged.
  bool optional_string(std::string_view name, std::string_view& out) {
    const json::value* v = find(name);
    if (v == nullptr || v->is_null()) return true;
    if (!v->is_string()) return wrong_type(name, "a string");
    out = sv(v->get_string());
    return true;
  }

  bool required_uint(std::string_view name, std::uint64_t& out) {
    const json::value* v = find(name);
    if (v == nullptr) return missing(name);
    return to_uint(*v, name, out);
  }

  bool to_uint(const json::value& v, std::string_view name, std::uint64_t& out) {
    if (v.is_uint64()) {
      out = v.get_uint64();
      return true;
    }
    if (v.is_int64() && v.get_int64() >= 0) {
      out = static_cast<std::uint64_t>(v.get_int64());
      return true;
    }
    return wrong_type(name, "a non-negative integer");
  }

  bool required_time(std::string_view name, std::int64_t& out) {
    std::string_view s;
    if (!required_string(name, s)) return false;
    auto ms = parse_iso8601_ms(s);
    if (!ms) return wrong_type(name, "an ISO-8601 UTC time");
    out = *ms;
    return true;
  }

  bool optional_bool(std::string_view name, bool& out) {
    const json::value* v = find(name);
    if (v == nullptr || v->is_null()) return true;
    if (!v->is_bool()) return wrong_type(name, "a boolean");
    out = v->get_bool();
    return true;
  }

 private:
  const json::object& o_;
  std::string error_;
};

// The top-level object of a frame, its rid and its type.
struct Envelope {
  const json::object* obj = nullptr;
  Rid rid;
  std::string_view type;
};

// Parses `text` into `storage` (with storage's memory resource) and checks
// the envelope every frame shares. On failure returns the DecodeError (with
// the rid when it was usable).
std::optional<DecodeError> open_envelope(std::string_view text, json::value& storage, Envelope& env) {
  json::error_code ec;
  // Same memory resource on both sides: the assignment moves, never copies.
  storage = json::parse(json::string_view(text.data(), text.size()), ec, storage.storage());
  if (ec) {
    // Boost.JSON refuses ill-formed UTF-8 inside strings; say so precisely.
    if (!is_valid_utf8(text)) return DecodeError{{}, "invalid UTF-8"};
    return DecodeError{{}, "not JSON: " + ec.message()};
  }
  if (!storage.is_object()) return DecodeError{{}, "not a JSON object"};
  env.obj = &storage.get_object();

  if (const json::value* rid = env.obj->if_contains("rid")) {
    if (rid->is_int64()) {
      env.rid = rid->get_int64();
    } else if (rid->is_string()) {
      env.rid = std::string(sv(rid->get_string()));
    } else {
      return DecodeError{{}, "field \"rid\" must be a string or an integer"};
    }
  }
  const json::value* type = env.obj->if_contains("type");
  if (type == nullptr) return DecodeError{env.rid, "missing field \"type\""};
  if (!type->is_string()) return DecodeError{env.rid, "field \"type\" must be a string"};
  env.type = sv(type->get_string());
  return std::nullopt;
}

template <class Frame>
Decoded<Frame> failed(Rid rid, std::string message) {
  return Decoded<Frame>{std::variant<Frame, DecodeError>(
      std::in_place_index<1>, DecodeError{std::move(rid), std::move(message)})};
}

template <class Frame, class Alternative>
Decoded<Frame> decoded(Alternative&& a) {
  return Decoded<Frame>{std::variant<Frame, DecodeError>(std::in_place_index<0>,
                                                         Frame(std::forward<Alternative>(a)))};
}

// ---- client frames ----------------------------------------------------------

bool read_hello(Fields& f, const DecodeLimits& limits, Hello& out) {
  std::string_view token;
  if (!f.required_string("token", token)) return false;
  if (token.size() > limits.max_token_bytes) return f.fail("token too long");
  out.token = std::string(token);

  const json::value* client = f.find("client");
  if (client == nullptr || client->is_null()) return true;  // an older client
  if (!client->is_object()) return f.wrong_type("client", "an object");
  Fields c(client->get_object());
  std::string_view name, version;
  if (!c.optional_string("name", name)) return f.wrong_type("client.name", "a string");
  if (!c.optional_string("version", version)) return f.wrong_type("client.version", "a string");
  out.client.name = std::string(name);
  out.client.version = std::string(version);

  const json::value* features = c.find("features");
  if (features == nullptr || features->is_null()) return true;
  if (!features->is_array()) return f.fail("field \"client.features\" must be an array of strings");
  const json::array& arr = features->get_array();
  if (arr.size() > limits.max_features)
    return f.fail("too many features (max " + std::to_string(limits.max_features) + ")");
  out.client.features.reserve(arr.size());
  for (const json::value& v : arr) {
    if (!v.is_string()) return f.fail("field \"client.features\" must be an array of strings");
    out.client.features.emplace_back(sv(v.get_string()));
  }
  return true;
}

bool read_presence_set(Fields& f, PresenceSet& out) {
  std::string_view state;
  if (!f.required_string("state", state)) return false;
  auto s = parse_settable_presence(state);
  if (!s) return f.fail("invalid presence state " + quoted(state));
  out.state = *s;
  return true;
}

bool read_presence_subscribe(Fields& f, const DecodeLimits& limits, PresenceSubscribe& out) {
  const json::value* users = f.find("users");
  if (users == nullptr) return f.missing("users");
  static const std::string kNotArray = "field \"users\" must be an array of user ids";
  if (!users->is_array()) return f.fail(kNotArray);
  const json::array& arr = users->get_array();
  if (arr.size() > limits.max_subscribe_users)
    return f.fail("too many users (max " + std::to_string(limits.max_subscribe_users) + ")");
  out.users.reserve(arr.size());
  for (const json::value& v : arr) {
    if (!v.is_string()) return f.fail(kNotArray);
    auto user = normalize_user_id(sv(v.get_string()));
    if (!user) return f.fail("invalid user id in \"users\": " + quoted(sv(v.get_string())));
    out.users.push_back(std::move(*user));
  }
  return true;
}

bool read_send(Fields& f, const DecodeLimits& limits, Send& out) {
  std::string_view to;
  if (!f.required_string("to", to)) return false;
  auto user = normalize_user_id(to);
  if (!user) return f.fail("invalid user id in \"to\": " + quoted(to));
  out.to = std::move(*user);

  std::string_view body;
  if (!f.required_string("body", body)) return false;
  if (body.empty()) return f.fail("field \"body\" must not be empty");
  if (body.size() > limits.max_body_bytes) return f.fail("body exceeds hard limit");

  out.body = std::string(body);

  // Optional; absent or null means "not idempotent".
  const json::value* cmid = f.find("client_msg_id");
  if (cmid == nullptr || cmid->is_null()) return true;
  if (!cmid->is_string()) return f.wrong_type("client_msg_id", "a string");
  if (cmid->get_string().empty() || cmid->get_string().size() > kMaxClientMsgIdBytes)
    return f.fail("field \"client_msg_id\" must be 1-64 bytes");
  out.client_msg_id = std::string(sv(cmid->get_string()));
  return true;
}

bool read_ack(Fields& f, const DecodeLimits& limits, Ack& out) {
  const json::value* ids = f.find("ids");
  if (ids == nullptr) return f.missing("ids");
  static const std::string kNotArray = "field \"ids\" must be an array of message ids";
  if (!ids->is_array()) return f.fail(kNotArray);
  const json::array& arr = ids->get_array();
  if (arr.size() > limits.max_ack_ids)
    return f.fail("too many ids (max " + std::to_string(limits.max_ack_ids) + ")");
  out.ids.reserve(arr.size());
  for (const json::value& v : arr) {
    if (!v.is_string()) return f.fail(kNotArray);
    auto id = parse_message_id(sv(v.get_string()));
    if (!id) return f.fail("invalid message id " + quoted(sv(v.get_string())));
    out.ids.push_back(*id);
  }
  return true;
}

Decoded<ClientFrame> decode_client_unchecked(std::string_view text, const DecodeLimits& limits) {
  unsigned char buffer[kParseBufferBytes];
  json::monotonic_resource mr(buffer, sizeof buffer);
  json::value storage(&mr);
  Envelope env;
  if (auto err = open_envelope(text, storage, env))
    return failed<ClientFrame>(std::move(err->rid), std::move(err->message));

  Fields f(*env.obj);
  auto finish = [&](bool ok, auto&& frame) {
    if (!ok) return failed<ClientFrame>(std::move(env.rid), f.error());
    frame.rid = std::move(env.rid);
    return decoded<ClientFrame>(std::move(frame));
  };
  if (env.type == "send") {
    Send s;
    bool ok = read_send(f, limits, s);
    return finish(ok, std::move(s));
  }
  if (env.type == "ack") {
    Ack a;
    bool ok = read_ack(f, limits, a);
    return finish(ok, std::move(a));
  }
  if (env.type == "ping") return finish(true, Ping{});
  if (env.type == "hello") {
    Hello h;
    bool ok = read_hello(f, limits, h);
    return finish(ok, std::move(h));
  }
  if (env.type == "presence.set") {
    PresenceSet p;
    bool ok = read_presence_set(f, p);
    return finish(ok, std::move(p));
  }
  if (env.type == "presence.subscribe") {
    PresenceSubscribe p;
    bool ok = read_presence_subscribe(f, limits, p);
    return finish(ok, std::move(p));
  }
  return failed<ClientFrame>(std::move(env.rid), "unknown type " + quoted(env.type));
}

// ---- server frames ----------------------------------------------------------

bool read_sender_counts(Fields& f, std::vector<SenderCount>& out) {
  const json::value* from = f.find("from");
  if (from == nullptr) return f.missing("from");
  static const std::string kBad = "field \"from\" must be an array of {user, count}";
  if (!from->is_array()) return f.fail(kBad);
  for (const json::value& v : from->get_array()) {
    if (!v.is_object()) return f.fail(kBad);
    Fields e(v.get_object());
    std::string_view user;
    SenderCount sc;
    if (!e.required_string("user", user) || !e.required_uint("count", sc.count))
      return f.fail(e.error() + " in \"from\"");
    sc.user = std::string(user);
    out.push_back(std::move(sc));
  }
  return true;
}

bool read_presence_field(Fields& f, std::string_view name, PresenceState& out) {
  std::string_view s;
  if (!f.required_string(name, s)) return false;
  auto state = parse_presence(s);
  if (!state) return f.fail("invalid presence state " + quoted(s));
  out = *state;
  return true;
}

bool read_welcome(Fields& f, Welcome& out) {
  std::string_view user, session;
  if (!f.required_string("user", user) || !f.required_string("session", session) ||
      !read_presence_field(f, "presence", out.presence)) {
    return false;
  }
  out.user = std::string(user);
  out.session = std::string(session);
  const json::value* mailbox = f.find("mailbox");
  if (mailbox == nullptr) return f.missing("mailbox");
  if (!mailbox->is_object()) return f.wrong_type("mailbox", "an object");
  Fields m(mailbox->get_object());
  MailboxNotice& n = out.mailbox;
  if (!m.required_uint("count", n.count) || !m.required_uint("missed", n.missed) ||
      !m.required_uint("bytes", n.bytes) || !read_sender_counts(m, n.from)) {
    return f.fail(m.error() + " in \"mailbox\"");
  }
  const json::value* oldest = m.find("oldest");
  if (oldest != nullptr && !oldest->is_null()) {
    std::int64_t ms = 0;
    if (!m.required_time("oldest", ms)) return f.fail(m.error() + " in \"mailbox\"");
    n.oldest_ms = ms;
  }
  return true;
}

bool read_error(Fields& f, Error& out) {
  std::string_view code, message;
  if (!f.required_string("code", code) || !f.optional_string("message", message)) return false;
  out.code = std::string(code);
  out.message = std::string(message);
  return true;
}

bool read_sent(Fields& f, Sent& out) {
  std::string_view id, status;
  if (!f.required_string("id", id) || !f.required_string("status", status) ||
      !read_presence_field(f, "recipient", out.recipient) ||
      !f.optional_bool("duplicate", out.duplicate)) {
    return false;
  }
  out.id = std::string(id);
  out.status = std::string(status);
  return true;
}

bool read_message(Fields& f, Message& out) {
  std::string_view id, from, body, kind;
  if (!f.required_string("id", id) || !f.required_string("from", from) ||
      !f.required_time("sent_at", out.sent_at_ms) || !f.required_string("body", body) ||
      !f.required_string("kind", kind)) {
    return false;
  }
  auto k = parse_message_kind(kind);
  if (!k) return f.fail("invalid message kind " + quoted(kind));
  out.id = std::string(id);
  out.from = std::string(from);
  out.body = std::string(body);
  out.kind = *k;
  return true;
}

bool read_missed(Fields& f, Missed& out) {
  std::string_view id, from, reason, preview;
  if (!f.required_string("id", id) || !f.required_string("from", from) ||
      !f.required_time("sent_at", out.sent_at_ms) || !f.required_string("reason", reason) ||
      !f.required_string("preview", preview)) {
    return false;
  }
  out.id = std::string(id);
  out.from = std::string(from);
  out.reason = std::string(reason);
  out.preview = std::string(preview);
  return true;
}

bool read_presence_event(Fields& f, PresenceEvent& out) {
  std::string_view user;
  if (!f.required_string("user", user) || !read_presence_field(f, "state", out.state)) return false;
  out.user = std::string(user);
  return true;
}

Decoded<ServerFrame> decode_server_unchecked(std::string_view text) {
  unsigned char buffer[kParseBufferBytes];
  json::monotonic_resource mr(buffer, sizeof buffer);
  json::value storage(&mr);
  Envelope env;
  if (auto err = open_envelope(text, storage, env))
    return failed<ServerFrame>(std::move(err->rid), std::move(err->message));

  Fields f(*env.obj);
  // Frames with a rid get it; the others ignore it.
  auto finish = [&](bool ok, auto&& frame) {
    if (!ok) return failed<ServerFrame>(std::move(env.rid), f.error());
    using F = std::decay_t<decltype(frame)>;
    if constexpr (requires { frame.rid; }) frame.rid = env.rid;
    return decoded<ServerFrame>(F(std::move(frame)));
  };
  const std::string_view t = env.type;
  if (t == "message") {
    Message m;
    bool ok = read_message(f, m);
    return finish(ok, std::move(m));
  }
  if (t == "sent") {
    Sent s;
    bool ok = read_sent(f, s);
    return finish(ok, std::move(s));
  }
  if (t == "missed") {
    Missed m;
    bool ok = read_missed(f, m);
    return finish(ok, std::move(m));
  }
  if (t == "presence") {
    PresenceEvent p;
    bool ok = read_presence_event(f, p);
    return finish(ok, std::move(p));
  }
  if (t == "ok") return finish(true, Ok{});
  if (t == "pong") return finish(true, Pong{});
  if (t == "error") {
    Error e;
    bool ok = read_error(f, e);
    return finish(ok, std::move(e));
  }
  if (t == "welcome") {
    Welcome w;
    bool ok = read_welcome(f, w);
    return finish(ok, std::move(w));
  }
  if (t == "missed.summary") {
    MissedSummary s;
    bool ok = f.required_uint("count", s.count) && read_sender_counts(f, s.from);
    return finish(ok, std::move(s));
  }
  if (t == "mailbox.drained") return finish(true, MailboxDrained{});
  return failed<ServerFrame>(std::move(env.rid), "unknown type " + quoted(t));
}

}  // namespace

Decoded<ClientFrame> decode_client_frame(std::string_view text, const DecodeLimits& limits) {
  try {
    return decode_client_unchecked(text, limits);
  } catch (const std::exception&) {  // bad_alloc: nothing else in here throws
    return failed<ClientFrame>({}, "request could not be decoded");
  }
}

Decoded<ServerFrame> decode_server_frame(std::string_view text) {
  try {
    return decode_server_unchecked(text);
  } catch (const std::exception&) {
    return failed<ServerFrame>({}, "frame could not be decoded");
  }
}

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

std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    const std::size_t n = utf8_sequence_length(s);
    if (n == 0) {
      out.append("\xEF\xBF\xBD");  // U+FFFD
      s.remove_prefix(1);
    } else {
      out.append(s.substr(0, n));
      s.remove_prefix(n);
    }
  }
  return out;
}

}  // namespace oms::proto
