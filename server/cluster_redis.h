// The cluster layer's Redis layout (keys and channels: server/cluster.h)
// and the small parsers its messages need. Internal to cluster.cpp.
#pragma once

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace oms::server::cluster_redis {

inline constexpr std::string_view kPresenceChannel = "oms:presence";
inline constexpr char kDeviceSep = '\x1f';

// Purges a node presumed dead (ARGV[1]); ARGV[2] = "1" purges even when its
// heartbeat is alive (a node clearing its own leftovers at start). Returns
// the node's device sessions (flat: key, count, ...) to sign out, or nil
// when the node is alive. Atomic: of several nodes purging at once, one
// gets the devices.
inline constexpr std::string_view kPurgeScript = R"lua(
local node = ARGV[1]
if ARGV[2] ~= '1' and redis.call('EXISTS', 'oms:node:' .. node) == 1 then return false end
local users = redis.call('SMEMBERS', 'oms:nodeusers:' .. node)
for _, u in ipairs(users) do
  redis.call('HDEL', 'oms:pres:' .. u, node)
  redis.call('PUBLISH', 'oms:presence', u .. '|' .. node .. '|0|offline|0')
end
local devs = redis.call('HGETALL', 'oms:nodedev:' .. node)
redis.call('DEL', 'oms:nodeusers:' .. node, 'oms:nodedev:' .. node)
redis.call('SREM', 'oms:nodes', node)
if ARGV[2] ~= '1' and (#users > 0 or #devs > 0) then
  redis.call('SET', 'oms:purged:' .. node, ARGV[3], 'EX', 86400)
end
return devs
)lua";

inline std::vector<std::string_view> split(std::string_view s, char sep, std::size_t max_parts) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < max_parts) {
    auto p = s.find(sep);
    if (p == std::string_view::npos) break;
    out.push_back(s.substr(0, p));
    s = s.substr(p + 1);
  }
  out.push_back(s);
  return out;
}

template <class T>
inline bool to_num(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

inline std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}


}  // namespace oms::server::cluster_redis
