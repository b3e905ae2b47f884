// Small accessors for the JSON frames tests look at. Each throws TestError
// naming the field and showing the object when the field is missing or has
// the wrong JSON type, so a failing test says what the server actually sent.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace oms::test {

// A failure of the test harness's expectations (timeouts, unexpected frames).
// doctest reports it with its message when it escapes a test case.
struct TestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using Json = boost::json::object;

std::string to_text(const boost::json::value& v);
std::string to_text(const Json& o);

bool has(const Json& o, std::string_view key);
std::string str_of(const Json& o, std::string_view key);
std::int64_t int_of(const Json& o, std::string_view key);
bool bool_of(const Json& o, std::string_view key);
const Json& obj_of(const Json& o, std::string_view key);
const boost::json::array& arr_of(const Json& o, std::string_view key);
// The "type" field, or "<no type>".
std::string type_of(const Json& o);

// An array of strings as a JSON array.
boost::json::array str_array(const std::vector<std::string>& v);

// "2026-11-23T10:00:00.000Z" shape (UTC, milliseconds).
bool is_iso8601_ms(std::string_view s);
// Milliseconds since the epoch of an is_iso8601_ms() string (nullopt if not).
std::optional<std::int64_t> parse_iso8601_ms(std::string_view s);
// Now, in milliseconds since the epoch.
std::int64_t unix_now_ms();

// Exactly 16 lower-case hex digits (the server's message id format).
bool is_message_id(std::string_view s);

}  // namespace oms::test
