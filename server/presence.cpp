#include "server/presence.h"

#include <algorithm>
#include <functional>

namespace oms::server {

using proto::PresenceState;

PresenceRegistry::Shard& PresenceRegistry::shard(std::string_view user) const {
  return shards_[std::hash<std::string_view>{}(user) % kShards];
}

PresenceState PresenceRegistry::visible(PresenceState s) {
  return s == PresenceState::kAppearOffline ? PresenceState::kOffline : s;
}

std::optional<PresenceRegistry::Added> PresenceRegistry::add_session(const std::string& user,
                                                                    const SessionPtr& s,
                                                                    SessionInfo info,
                                                                    std::size_t max_sessions,
                                                                    PresenceState first_state) {
  Shard& sh = shard(user);
  std::lock_guard lock(sh.mu);
  Entry& e = sh.users[user];
  // Drop sessions that died without unregistering (defensive; normally none).
  std::erase_if(e.sessions, [](const Entry::Member& m) { return m.session.expired(); });
  Added added;
  if (!info.device.empty() && info.device != proto::kLegacyDevice) {
    for (const auto& m : e.sessions)
      if (m.info.device == info.device)
        if (auto old = m.session.lock()) added.replaced.push_back(std::move(old));
  }
  if (e.sessions.size() - added.replaced.size() >= max_sessions) {
    if (e.idle()) sh.users.erase(user);
    return std::nullopt;
  }
  added.first = e.sessions.empty();
  if (added.first)
    e.state = first_state == PresenceState::kOffline ? PresenceState::kAvailable : first_state;
  e.sessions.push_back({s.get(), s, std::move(info)});
  added.state = e.state;
  return added;
}

std::optional<PresenceState> PresenceRegistry::remove_session(const std::string& user,
                                                              const SessionInbox* s) {
  Shard& sh = shard(user);
  std::lock_guard lock(sh.mu);
  auto it = sh.users.find(user);
  if (it == sh.users.end()) return std::nullopt;
  Entry& e = it->second;
  if (e.sessions.empty()) return std::nullopt;
  std::erase_if(e.sessions, [s](const Entry::Member& m) { return m.key == s || m.session.expired(); });
  if (!e.sessions.empty()) return std::nullopt;
  PresenceState before = e.state;
  e.state = PresenceState::kOffline;
  e.suppressed_since_seq = 0;
  if (e.idle()) sh.users.erase(it);
  return before;
}

PresenceState PresenceRegistry::state_of(const std::string& user) const {
  Shard& sh = shard(user);
  std::lock_guard lock(sh.mu);
  auto it = sh.users.find(user);
  if (it == sh.users.end() || it->second.sessions.empty()) return PresenceState::kOffline;
  return it->second.state;
}

std::size_t PresenceRegistry::session_count(const std::string& user) const {
  Shard& sh = shard(user);
  std::lock_guard lock(sh.mu);
  auto it = sh.users.find(user);
  return it == sh.users.end() ? 0 : it->second.sessions.size();
}

std::vector<PresenceRegistry::SessionPtr> PresenceRegistry::sessions_of(const std::string& user) const {
  std::vector<SessionPtr> out;
  Shard& sh = shard(user);
  std::lock_guard lock(sh.mu);
  auto it = sh.users.find(user);
  if (it == sh.users.end()) return out;
  out.reserve(it->second.sessions.size());
  for (const auto& m : it->second.sessions)
    if (auto p = m.session.lock()) out.push_back(std::move(p));
  return out;
}

std::vector<SessionInfo> PresenceRegistry::session_infos(const std::string& user) const {
  std::vector<SessionInfo> out;
  Shard& sh = shard(user);
  std::lock_guard lock(sh.mu);
  auto it = sh.users.find(user);
  if (it == sh.users.end()) return out;
  for (const auto& m : it->second.sessions)
    if (!m.session.expired()) out.push_back(m.info);
  return out;
}

PresenceRegistry::StateChange PresenceRegistry::set_state(const std::string& user, PresenceState s,
                                                          std::uint64_t current_seq) {
  StateChange c;
  Shard& sh = shard(user);
  std::lock_guard lock(sh.mu);
  auto it = sh.users.find(user);
  if (it == sh.users.end() || it->second.sessions.empty()) return c;
  Entry& e = it->second;
  c.before = e.state;
  c.after = s;
  if (proto::suppresses_interruptions(c.before) && !proto::suppresses_interruptions(s)) {
    c.suppressed_since_seq = e.suppressed_since_seq;
  }
  if (!proto::suppresses_interruptions(c.before) && proto::suppresses_interruptions(s)) {
    e.suppressed_since_seq = current_seq;
  }
  e.state = s;
  return c;
}

bool PresenceRegistry::subscribe(const std::string& user, const SessionPtr& watcher) {
  Shard& sh = shard(user);
  std::lock_guard lock(sh.mu);
  Entry& e = sh.users[user];
  for (const auto& w : e.watchers)
    if (w.first == watcher.get()) return false;
  e.watchers.emplace_back(watcher.get(), watcher);
  return true;
}

void PresenceRegistry::unsubscribe(const std::string& user, const SessionInbox* watcher) {
  Shard& sh = shard(user);
  std::lock_guard lock(sh.mu);
  auto it = sh.users.find(user);
  if (it == sh.users.end()) return;
  std::erase_if(it->second.watchers, [watcher](const auto& w) { return w.first == watcher || w.second.expired(); });
  if (it->second.idle()) sh.users.erase(it);
}

std::vector<PresenceRegistry::SessionPtr> PresenceRegistry::watchers_of(const std::string& user) const {
  std::vector<SessionPtr> out;
  Shard& sh = shard(user);
  std::lock_guard lock(sh.mu);
  auto it = sh.users.find(user);
  if (it == sh.users.end()) return out;
  for (const auto& w : it->second.watchers)
    if (auto p = w.second.lock()) out.push_back(std::move(p));
  return out;
}

// ---- devices (contract 4.5) ----

namespace {
// A session's device; one registered without a name is the legacy one.
std::string_view device_of(const SessionInfo& info) {
  return info.device.empty() ? proto::kLegacyDevice : std::string_view(info.device);
}
}  // namespace

std::vector<PresenceRegistry::SessionPtr> PresenceRegistry::sessions_of_device(const std::string& user,
                                                                                std::string_view device) const {
  std::vector<SessionPtr> out;
  Shard& sh = shard(user);
  std::lock_guard lock(sh.mu);
  auto it = sh.users.find(user);
  if (it == sh.users.end()) return out;
  for (const auto& m : it->second.sessions)
    if (device_of(m.info) == device)
      if (auto p = m.session.lock()) out.push_back(std::move(p));
  return out;
}

PresenceRegistry::SessionsByDevice PresenceRegistry::sessions_by_device() const {
  SessionsByDevice n;
  for (const Shard& sh : shards_) {
    std::lock_guard lock(sh.mu);
    for (const auto& [user, e] : sh.users)
      for (const auto& m : e.sessions) {
        if (m.session.expired()) continue;
        if (device_of(m.info) == proto::kLegacyDevice)
          ++n.legacy;
        else
          ++n.named;
      }
  }
  return n;
}

}  // namespace oms::server
