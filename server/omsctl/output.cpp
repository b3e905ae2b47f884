#include "server/omsctl/output.h"

#include <algorithm>
#include <iostream>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "server/omsctl/cli.h"

namespace oms::omsctl {

namespace json = boost::json;

std::string text_of(const json::value* v) {
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_bool()) return v->get_bool() ? "true" : "false";
  if (v->is_array()) {
    std::string out;
    for (const auto& e : v->get_array()) {
      if (!out.empty()) out += ",";
      out += text_of(&e);
    }
    return out.empty() ? "-" : out;
  }
  return json::serialize(*v);
}

const json::value* field(const json::value& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  return obj.get_object().if_contains(key);
}

std::int64_t int_field(const json::value& obj, std::string_view key) {
  const json::value* v = field(obj, key);
  if (v == nullptr) return 0;
  boost::system::error_code ec;
  auto n = v->to_number<std::int64_t>(ec);
  return ec ? 0 : n;
}

void print_table(const std::vector<std::vector<std::string>>& rows, std::string_view indent) {
  std::vector<std::size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line(indent);
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << trim_right(line) << '\n';
  }
}

void print_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::size_t w = 0;
  for (const auto& [k, v] : fields) w = std::max(w, k.size());
  for (const auto& [k, v] : fields)
    std::cout << k << ':' << std::string(w - k.size() + 1, ' ') << v << '\n';
}

void print_raw(const std::string& body) {
  std::cout << body;
  if (body.empty() || body.back() != '\n') std::cout << '\n';
}

json::value expect_success(const Reply& r) {
  boost::system::error_code ec;
  json::value v = r.body.empty() ? json::value() : json::parse(r.body, ec);
  if (r.status >= 200 && r.status < 300) {
    if (ec)
      throw CliExit{kExitServerError, "error: bad_response: the server's reply is not JSON (" +
                                          ec.message() + ")"};
    return v;
  }
  const json::value* err = ec ? nullptr : field(v, "error");
  if (err != nullptr && err->is_object()) {
    throw CliExit{kExitServerError,
                  "error: " + text_of(field(*err, "code")) + ": " + text_of(field(*err, "message"))};
  }
  std::string snippet = trim(r.body.substr(0, 200));
  throw CliExit{kExitServerError, "error: http_" + std::to_string(r.status) + ": " + r.reason +
                                      (snippet.empty() ? "" : " (" + snippet + ")")};
}

}  // namespace oms::omsctl
