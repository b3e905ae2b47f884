// The open sessions per user and device that a MailboxStore counts in
// memory (they are not stored: a restart starts with none), and the changes
// a write batch made to them. Callers hold the store's lock of the map.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace oms::storage {

using OnlineSessions = std::unordered_map<std::string, std::unordered_map<std::string, std::uint32_t>>;
// (user, device, +1 a sign-in / -1 a sign-out), in the order applied.
using SessionDeltas = std::vector<std::tuple<std::string, std::string, int>>;

// One session of (user, device) fewer; false when none was counted.
inline bool end_session(OnlineSessions& online, const std::string& user, const std::string& device) {
  auto u = online.find(user);
  if (u == online.end()) return false;
  auto d = u->second.find(device);
  if (d == u->second.end() || d->second == 0) return false;
  if (--d->second == 0) u->second.erase(d);
  if (u->second.empty()) online.erase(u);
  return true;
}

// Takes back a batch's session changes, newest first. `keep_ended`: a
// sign-out stays applied (its session has ended whether or not its
// last_seen was written; put back, the device would count as active for
// good and hold messages back, since nobody signs that session out again);
// false when the batch runs again and applies them anew.
inline void undo_sessions(OnlineSessions& online, SessionDeltas& deltas, bool keep_ended) {
  for (auto it = deltas.rbegin(); it != deltas.rend(); ++it) {
    const auto& [user, device, delta] = *it;
    if (delta > 0) {
      end_session(online, user, device);
    } else if (!keep_ended) {
      ++online[user][device];
    }
  }
  deltas.clear();
}

}  // namespace oms::storage
