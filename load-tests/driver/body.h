// The body of every message oms-load sends: "<sender>:<seq>:<t_ns>:" padded
// with 'x' to the requested size. The receiver reads the sender, its per-
// sender sequence number (order check) and the intended send time (end-to-end
// latency) back out of it. Pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace oms::load {

std::string make_body(std::uint32_t sender, std::uint64_t seq, std::int64_t t_ns, std::size_t bytes);

struct BodyHeader {
  std::uint32_t sender = 0;
  std::uint64_t seq = 0;
  std::int64_t t_ns = 0;
};
// nullopt when the body does not start with the three fields.
std::optional<BodyHeader> parse_body(std::string_view body);

}  // namespace oms::load
