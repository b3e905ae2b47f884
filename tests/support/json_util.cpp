#include "tests/support/json_util.h"

#include <chrono>
#include <ctime>
#include <regex>

#include <boost/json/serialize.hpp>

namespace oms::test {

std::string to_text(const boost::json::value& v) { return boost::json::serialize(v); }
std::string to_text(const Json& o) { return boost::json::serialize(o); }

bool has(const Json& o, std::string_view key) { return o.contains(key); }

namespace {
const boost::json::value& field(const Json& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  if (v == nullptr)
    throw TestError("field \"" + std::string(key) + "\" missing in " + to_text(o));
  return *v;
}
[[noreturn]] void wrong_type(const Json& o, std::string_view key, std::string_view want) {
  throw TestError("field \"" + std::string(key) + "\" is not " + std::string(want) + " in " +
                  to_text(o));
}
}  // namespace

std::string str_of(const Json& o, std::string_view key) {
  const auto& v = field(o, key);
  if (!v.is_string()) wrong_type(o, key, "a string");
  return std::string(v.get_string());
}

std::int64_t int_of(const Json& o, std::string_view key) {
  const auto& v = field(o, key);
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) return static_cast<std::int64_t>(v.get_uint64());
  wrong_type(o, key, "an integer");
}

bool bool_of(const Json& o, std::string_view key) {
  const auto& v = field(o, key);
  if (!v.is_bool()) wrong_type(o, key, "a bool");
  return v.get_bool();
}

const Json& obj_of(const Json& o, std::string_view key) {
  const auto& v = field(o, key);
  if (!v.is_object()) wrong_type(o, key, "an object");
  return v.get_object();
}

const boost::json::array& arr_of(const Json& o, std::string_view key) {
  const auto& v = field(o, key);
  if (!v.is_array()) wrong_type(o, key, "an array");
  return v.get_array();
}

std::string type_of(const Json& o) {
  const boost::json::value* v = o.if_contains("type");
  if (v == nullptr || !v->is_string()) return "<no type>";
  return std::string(v->get_string());
}

boost::json::array str_array(const std::vector<std::string>& v) {
  boost::json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

bool is_iso8601_ms(std::string_view s) {
  static const std::regex re(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");
  return std::regex_match(s.begin(), s.end(), re);
}

std::optional<std::int64_t> parse_iso8601_ms(std::string_view s) {
  if (!is_iso8601_ms(s)) return std::nullopt;
  auto num = [&](std::size_t pos, std::size_t len) {
    int v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) v = v * 10 + (s[i] - '0');
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  return static_cast<std::int64_t>(::timegm(&tm)) * 1000 + num(20, 3);
}

std::int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool is_message_id(std::string_view s) {
  if (s.size() != 16) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace oms::test
