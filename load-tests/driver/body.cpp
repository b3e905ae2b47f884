// Message bodies: building and parsing "<sender>:<seq>:<t_ns>:" (see body.h).
#include "load-tests/driver/body.h"

#include <algorithm>
#include <charconv>
#include <iterator>

#include <fmt/format.h>

namespace oms::load {

std::string make_body(std::uint32_t sender, std::uint64_t seq, std::int64_t t_ns, std::size_t bytes) {
  std::string body;
  body.reserve(std::max<std::size_t>(bytes, 48));
  fmt::format_to(std::back_inserter(body), "{}:{}:{}:", sender, seq, t_ns);
  if (body.size() < bytes) body.append(bytes - body.size(), 'x');
  return body;
}

std::optional<BodyHeader> parse_body(std::string_view body) {
  BodyHeader h;
  const char* p = body.data();
  const char* end = body.data() + body.size();
  auto field = [&](auto& out) {
    auto [q, ec] = std::from_chars(p, end, out);
    if (ec != std::errc{} || q == end || *q != ':') return false;
    p = q + 1;
    return true;
  };
  if (!field(h.sender) || !field(h.seq) || !field(h.t_ns)) return std::nullopt;
  return h;
}

}  // namespace oms::load
