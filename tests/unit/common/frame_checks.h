// Checks shared by the JSON codec's unit tests (test_json_*.cpp).
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include "common/json_decode.h"
#include "common/json_encode.h"

namespace oms::proto {

namespace json = boost::json;

// Every encoder's output must be a JSON object that Boost.JSON accepts.
inline json::object parse_json(const std::string& text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  REQUIRE_MESSAGE(!ec, text);
  REQUIRE_MESSAGE(v.is_object(), text);
  return v.as_object();
}

// The string value of a JSON value ("" when it is not a string).
inline std::string str(const json::value& v) {
  if (!v.is_string()) return {};
  return std::string(v.get_string().data(), v.get_string().size());
}

template <class F>
F decode_client_as(std::string_view text, const DecodeLimits& limits = {}) {
  auto d = decode_client_frame(text, limits);
  REQUIRE_MESSAGE(d.ok(), (d.ok() ? std::string() : d.error().message), " for ", text);
  REQUIRE_MESSAGE(std::holds_alternative<F>(d.frame()), text);
  return std::get<F>(d.frame());
}

template <class F>
F round_trip_client(const F& f) {
  std::string text = encode(ClientFrame{f});
  parse_json(text);
  return decode_client_as<F>(text);
}

template <class F>
F round_trip_server(const F& f) {
  std::string text = encode(ServerFrame{f});
  parse_json(text);
  auto d = decode_server_frame(text);
  REQUIRE_MESSAGE(d.ok(), (d.ok() ? std::string() : d.error().message), " for ", text);
  REQUIRE_MESSAGE(std::holds_alternative<F>(d.frame()), text);
  return std::get<F>(d.frame());
}

// Decoding `text` fails with exactly `message` and recovers `rid`.
inline void check_bad(std::string_view text, std::string_view message, const Rid& rid = {},
                      const DecodeLimits& limits = {}) {
  auto d = decode_client_frame(text, limits);
  REQUIRE_MESSAGE(!d.ok(), text);
  CHECK_MESSAGE(d.error().message == message, text, " -> ", d.error().message);
  CHECK_MESSAGE(d.error().rid == rid, text);
}

}  // namespace oms::proto
