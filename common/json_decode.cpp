#include "common/json_decode.h"

#include <cstdint>
#include <optional>
#include <type_traits>

#include <boost/json.hpp>

#include "common/ids.h"
#include "common/iso8601.h"
#include "common/utf8.h"

namespace oms::proto {
namespace {

namespace json = boost::json;

// Untrusted values quoted in error messages are cut to this many bytes.
constexpr std::size_t kMaxQuotedBytes = 64;
// Parse scratch space on the stack; larger frames spill to the heap.
constexpr std::size_t kParseBufferBytes = 4096;

// `s` in quotes, cut to at most kMaxQuotedBytes without splitting a UTF-8
// sequence ("..." marks the cut).
std::string quoted(std::string_view s) {
  const std::string_view kept = utf8_prefix(s, kMaxQuotedBytes);
  std::string out = "\"";
  out.append(kept);
  if (kept.size() < s.size()) out.append("...");
  out.push_back('"');
  return out;
}

std::string_view sv(const json::string& s) { return {s.data(), s.size()}; }

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

  // Absent or null leaves `out` unchanged.
  bool optional_uint(std::string_view name, std::uint64_t& out) {
    const json::value* v = find(name);
    if (v == nullptr || v->is_null()) return true;
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
      // Protocol 4.4: at most kMaxRidBytes; a longer one is not echoed.
      if (rid->get_string().size() > kMaxRidBytes)
        return DecodeError{{}, "field \"rid\" is longer than " + std::to_string(kMaxRidBytes) + " bytes"};
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
  // (Checked by the server, which answers an invalid name with close 4400.)
  const json::value* device = c.find("device");
  if (device != nullptr && !device->is_null()) {
    // A non-string is an invalid name (empty): bad_request, close 4400.
    out.client.device = device->is_string() ? std::string(sv(device->get_string()).substr(0, kMaxDeviceBytes + 1))
                                            : std::string();
  }

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
  if (env.type == "auth.refresh") {
    AuthRefresh a;
    std::string_view token;
    bool ok = f.required_string("token", token);
    if (ok && token.size() > limits.max_token_bytes) ok = f.fail("token too long");
    if (ok) a.token = std::string(token);
    return finish(ok, std::move(a));
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
  if (!m.optional_uint("receipts", n.receipts)) return f.fail(m.error() + " in \"mailbox\"");
  return true;
}

bool read_receipt(Fields& f, Receipt& out) {
  std::string_view id, msg, cmid, to, state;
  if (!f.required_string("id", id) || !f.required_string("msg", msg) ||
      !f.optional_string("client_msg_id", cmid) || !f.required_string("to", to) ||
      !f.required_string("state", state) || !f.required_time("at", out.at_ms)) {
    return false;
  }
  auto st = parse_receipt_state(state);
  if (!st) return f.fail("invalid receipt state " + quoted(state));
  out.id = std::string(id);
  out.msg = std::string(msg);
  out.client_msg_id = std::string(cmid);
  out.to = std::string(to);
  out.state = *st;
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
  if (t == "receipt") {
    Receipt r;
    bool ok = read_receipt(f, r);
    return finish(ok, std::move(r));
  }
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

}  // namespace oms::proto
