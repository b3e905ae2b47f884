// What omsctl prints: the server's JSON read as the operator reads it,
// aligned tables and "Key: value" blocks on stdout, and a failed reply turned
// into the run's error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/fwd.hpp>

#include "server/omsctl/http_client.h"

namespace oms::omsctl {

// A JSON scalar as the operator reads it; "-" for missing/null; an array as
// its elements joined by ','.
std::string text_of(const boost::json::value* v);

// obj[key], or null when obj is not an object or has no such key.
const boost::json::value* field(const boost::json::value& obj, std::string_view key);

// obj[key] as an integer; 0 when it is missing or not a number.
std::int64_t int_field(const boost::json::value& obj, std::string_view key);

// Columns padded to the widest cell, two spaces apart; each line prefixed
// with `indent`.
void print_table(const std::vector<std::vector<std::string>>& rows, std::string_view indent = "");

// "Key: value" lines with the values aligned.
void print_fields(const std::vector<std::pair<std::string, std::string>>& fields);

// The body as it is, with a final newline.
void print_raw(const std::string& body);

// The parsed body of a successful reply; a non-2xx reply ends the run with
// kExitServerError and "error: <code>: <message>".
boost::json::value expect_success(const Reply& r);

}  // namespace oms::omsctl
