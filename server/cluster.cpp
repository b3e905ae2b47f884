#include "server/cluster.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "server/context.h"
#include "server/log.h"
#include "server/cluster_redis.h"
#include "server/hint_line.h"
#include "server/hint_reader.h"
#include "server/redis_client.h"
#include "server/session_inbox.h"

namespace oms::server {

using proto::PresenceState;
using Clock = std::chrono::steady_clock;
using namespace cluster_redis;

struct Cluster::Impl {
  ServerContext& ctx;
  std::string url;
  RedisAddress addr;
  std::string node;
  std::int64_t ttl_ms;
  std::chrono::milliseconds beat;     // heartbeat and purge-check period
  std::int64_t key_ttl_ms;            // the heartbeat key's TTL
  ClusterCounters counters;
  Cluster::PresenceHooks hooks;
  std::atomic<std::uint64_t> epoch{1};

  // ---- publisher side (mu) ----
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  bool reload_wanted = false;  // the subscriber (re)subscribed to presence: load the others' view
  std::unordered_map<std::string, bool> dirty_users;     // user -> a presence.set among the changes
  std::unordered_map<std::string, std::int64_t> devices;  // "user\x1fdevice" -> open sessions here
  std::unordered_set<std::string> dirty_devices;
  bool hint_attention = false;  // the hint line asked for a turn (its socket was full, or a write failed)
  std::thread publisher;

  // The hints' own connection, written by the store's completion thread
  // (server/hint_line.h); the publisher thread tends it.
  HintLine hints{{counters.hints_published, counters.hints_dropped, counters.redis_errors}, node, [this] {
                   {
                     std::lock_guard lock(mu);
                     hint_attention = true;
                   }
                   cv.notify_all();
                 }};

  // ---- subscriber side (sub_mu) ----
  std::mutex sub_mu;
  std::unordered_set<std::string> local_users;   // users with sessions here (for a re-read)
  int wake_fd = -1;
  std::thread subscriber;
  // The I/O contexts' hint subscriptions (attach_io).
  std::vector<boost::asio::io_context*> io_contexts;
  std::unordered_map<const void*, std::shared_ptr<HintReader>> readers;  // made by start(), then fixed

  // ---- the other nodes' view (cache_mu) ----
  struct Remote {
    std::string node;
    std::uint32_t sessions = 0;
    PresenceState state = PresenceState::kOffline;
    std::uint64_t order = 0;  // arrival order: the latest state wins
  };
  mutable std::mutex cache_mu;
  std::unordered_map<std::string, std::vector<Remote>> remote;
  std::uint64_t order = 0;

  Impl(ServerContext& c, std::string u, std::string n, std::int64_t ttl_s)
      : ctx(c), url(std::move(u)), node(std::move(n)), ttl_ms(ttl_s * 1000) {
    beat = std::chrono::milliseconds(std::min<std::int64_t>(1000, ttl_ms / 4));
    key_ttl_ms = ttl_ms - 2 * beat.count();
  }

  spdlog::logger& log() { return logger_for(LogComponent::kOmsd); }

  void wake_subscriber() {
    if (wake_fd < 0) return;
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }

  std::optional<PresenceState> remote_state_locked(const std::string& user) const {
    auto it = remote.find(user);
    if (it == remote.end()) return std::nullopt;
    const Remote* best = nullptr;
    for (const auto& r : it->second)
      if (r.sessions > 0 && (!best || r.order > best->order)) best = &r;
    if (!best) return std::nullopt;
    return best->state;
  }

  // ---------------------------------------------------------------- publisher
  void run_publisher() {
    RedisConnection conn;
    auto backoff = std::chrono::milliseconds(100);
    bool first_connect = true;
    auto next_beat = Clock::now();
    for (;;) {
      {
        std::unique_lock lock(mu);
        if (stopping) break;
      }
      if (!conn.connected()) {
        if (Status s = conn.connect(addr, std::chrono::milliseconds(2000)); !s) {
          if (counters.connected.exchange(false) || first_connect)
            log().warn("cluster: redis {} unreachable ({}); presence is local only until it is back", url,
                       s.message());
          std::unique_lock lock(mu);
          cv.wait_for(lock, backoff, [&] { return stopping; });
          backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
          continue;
        }
        backoff = std::chrono::milliseconds(100);
        if (Status s = on_connected(conn, first_connect); !s) {
          counters.redis_errors.fetch_add(1);
          conn.close();
          continue;
        }
        first_connect = false;
        counters.connected = true;
        log().info("cluster: node {} registered in redis {}", node, url);
        next_beat = Clock::now();
      }
      // Wait for work or the next heartbeat.
      std::unordered_map<std::string, bool> users;
      std::vector<std::pair<std::string, std::int64_t>> devs;
      bool reload = false;
      bool attention = false;
      {
        std::unique_lock lock(mu);
        cv.wait_until(lock, next_beat, [&] {
          return stopping || reload_wanted || hint_attention || !dirty_users.empty() || !dirty_devices.empty();
        });
        if (stopping) break;
        users.swap(dirty_users);
        for (const auto& k : dirty_devices) {
          auto it = devices.find(k);
          devs.emplace_back(k, it == devices.end() ? 0 : it->second);
        }
        dirty_devices.clear();
        reload = std::exchange(reload_wanted, false);
        attention = std::exchange(hint_attention, false);
      }
      hints.tend(addr, attention, Clock::now() >= next_beat);
      Status s = publish(conn, users, devs);
      if (s && reload) s = load_remote(conn);
      if (s && Clock::now() >= next_beat) {
        s = heartbeat(conn);
        if (s) s = purge_dead(conn);
        next_beat = Clock::now() + beat;
      }
      if (!s) {
        counters.redis_errors.fetch_add(1);
        counters.connected = false;
        log().warn("cluster: redis connection lost: {}", s.message());
        conn.close();
        hints.close();
      }
    }
    hints.close();
    // A clean stop: this node's entries go now, not at the TTL.
    if (conn.connected()) {
      (void)conn.command({"EVAL", std::string(kPurgeScript), "0", node, "1", std::to_string(wall_ms())});
      (void)conn.command({"DEL", "oms:node:" + node});
    }
  }

  // After a (re)connect: clear this node's leftovers (the first time: an
  // earlier run of this node id), register, publish the whole local view.
  Status on_connected(RedisConnection& conn, bool first) {
    if (first) {
      auto r = conn.command({"EVAL", std::string(kPurgeScript), "0", node, "1", std::to_string(wall_ms())});
      if (!r) return r.status();
      sign_out_devices(*r);
      (void)conn.command({"DEL", "oms:purged:" + node});
    }
    if (Status s = heartbeat(conn); !s) return s;
    // Everything local is dirty: Redis may have restarted empty.
    std::lock_guard lock(mu);
    {
      std::lock_guard sub(sub_mu);
      for (const auto& u : local_users) dirty_users.emplace(u, false);
    }
    for (const auto& [k, _] : devices) dirty_devices.insert(k);
    return Status::ok();
  }

  Status publish(RedisConnection& conn, const std::unordered_map<std::string, bool>& users,
                 const std::vector<std::pair<std::string, std::int64_t>>& devs) {
    std::size_t n = 0;
    for (const auto& [user, set] : users) {
      const std::size_t sessions = ctx.registry.session_count(user);
      const PresenceState state = ctx.registry.state_of(user);
      if (sessions > 0) {
        conn.append({"HSET", "oms:pres:" + user, node, fmt::format("{}|{}", sessions, proto::presence_name(state))});
        conn.append({"SADD", "oms:nodeusers:" + node, user});
      } else {
        conn.append({"HDEL", "oms:pres:" + user, node});
        conn.append({"SREM", "oms:nodeusers:" + node, user});
      }
      conn.append({"PUBLISH", std::string(kPresenceChannel),
                   fmt::format("{}|{}|{}|{}|{}", user, node, sessions,
                               proto::presence_name(sessions > 0 ? state : PresenceState::kOffline), set ? 1 : 0)});
      n += 3;
    }
    for (const auto& [key, count] : devs) {
      if (count > 0) conn.append({"HSET", "oms:nodedev:" + node, key, std::to_string(count)});
      else conn.append({"HDEL", "oms:nodedev:" + node, key});
      ++n;
    }
    if (n == 0) return Status::ok();
    if (Status s = conn.flush(); !s) return s;
    for (std::size_t i = 0; i < n; ++i)
      if (auto r = conn.read_reply(); !r) return r.status();
    return Status::ok();
  }

  Status heartbeat(RedisConnection& conn) {
    conn.append({"SET", "oms:node:" + node, std::to_string(wall_ms()), "PX", std::to_string(key_ttl_ms)});
    conn.append({"SADD", "oms:nodes", node});
    conn.append({"GET", "oms:purged:" + node});
    if (Status s = conn.flush(); !s) return s;
    for (int i = 0; i < 2; ++i)
      if (auto r = conn.read_reply(); !r) return r.status();
    auto purged = conn.read_reply();
    if (!purged) return purged.status();
    if (purged->type == RedisReply::Type::kString) return rejoin(conn);
    return Status::ok();
  }

  // Another node purged this one (it was stopped, or cut off, longer than
  // the TTL): its device sessions were signed out and its presence is gone.
  // The sessions open here close (clients reconnect), and the node registers
  // afresh.
  Status rejoin(RedisConnection& conn) {
    counters.self_purges.fetch_add(1);
    epoch.fetch_add(1);
    log().warn("cluster: node {} was presumed dead by the others (purged); closing its sessions and registering again",
               node);
    {
      std::lock_guard lock(mu);
      devices.clear();  // signed out by the purge; their sessions skip the store's sign-out
      dirty_devices.clear();
    }
    if (auto r = conn.command({"DEL", "oms:purged:" + node}); !r) return r.status();
    for (const auto& s : ctx.open_sessions.snapshot()) s->post_close(1012, "node rejoining the cluster");
    return Status::ok();
  }

  Status purge_dead(RedisConnection& conn) {
    auto nodes = conn.command({"SMEMBERS", "oms:nodes"});
    if (!nodes) return nodes.status();
    for (const auto& n : nodes->elements) {
      if (n.str == node) continue;
      auto r = conn.command({"EVAL", std::string(kPurgeScript), "0", n.str, "0", std::to_string(wall_ms())});
      if (!r) return r.status();
      if (r->type != RedisReply::Type::kArray) continue;  // alive
      counters.nodes_purged.fetch_add(1);
      log().warn("cluster: node {} missed its heartbeat ({} ms): its sessions are gone", n.str, key_ttl_ms);
      sign_out_devices(*r);
    }
    return Status::ok();
  }

  void sign_out_devices(const RedisReply& flat) {
    for (std::size_t i = 0; i + 1 < flat.elements.size(); i += 2) {
      auto parts = split(flat.elements[i].str, kDeviceSep, 2);
      std::int64_t count = 0;
      if (parts.size() != 2 || !to_num(flat.elements[i + 1].str, count)) continue;
      for (std::int64_t k = 0; k < std::min<std::int64_t>(count, 1024); ++k)
        ctx.store->device_signed_out(std::string(parts[0]), std::string(parts[1]), {});
    }
  }

  // The other nodes' presence, as Redis holds it (after a (re)subscription).
  Status load_remote(RedisConnection& conn) {
    std::unordered_map<std::string, std::vector<Remote>> loaded;
    std::string cursor = "0";
    std::size_t rounds = 0;
    do {
      auto r = conn.command({"SCAN", cursor, "MATCH", "oms:pres:*", "COUNT", "1000"});
      if (!r) return r.status();
      if (r->type != RedisReply::Type::kArray || r->elements.size() != 2) break;
      cursor = r->elements[0].str;
      const auto& keys = r->elements[1].elements;
      for (const auto& k : keys) conn.append({"HGETALL", k.str});
      if (Status s = conn.flush(); !keys.empty() && !s) return s;
      for (const auto& k : keys) {
        auto h = conn.read_reply();
        if (!h) return h.status();
        const std::string user = k.str.substr(std::string_view("oms:pres:").size());
        for (std::size_t i = 0; i + 1 < h->elements.size(); i += 2) {
          if (h->elements[i].str == node) continue;
          auto parts = split(h->elements[i + 1].str, '|', 2);
          Remote e;
          e.node = h->elements[i].str;
          auto st = parts.size() == 2 ? proto::parse_presence(parts[1]) : std::nullopt;
          if (!st || !to_num(parts[0], e.sessions) || e.sessions == 0) continue;
          e.state = *st;
          loaded[user].push_back(std::move(e));
        }
      }
    } while (cursor != "0" && ++rounds < 100'000);
    std::lock_guard lock(cache_mu);
    for (auto& [user, entries] : loaded)
      for (auto& e : entries) e.order = ++order;
    remote.swap(loaded);
    return Status::ok();
  }

  // --------------------------------------------------------------- subscriber
  void run_subscriber() {
    RedisConnection conn;
    auto backoff = std::chrono::milliseconds(100);
    for (;;) {
      {
        std::lock_guard lock(mu);
        if (stopping) return;
      }
      if (!conn.connected()) {
        if (!conn.connect(addr, std::chrono::milliseconds(2000))) {
          std::unique_lock lock(mu);
          cv.wait_for(lock, backoff, [&] { return stopping; });
          backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
          continue;
        }
        backoff = std::chrono::milliseconds(100);
        conn.append({"SUBSCRIBE", std::string(kPresenceChannel), std::string(kRereadChannel)});
      }
      if (!conn.flush()) continue;
      pollfd fds[2] = {{conn.fd(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
      if (::poll(fds, 2, 1000) < 0) continue;
      if (fds[1].revents & POLLIN) {
        std::uint64_t v;
        [[maybe_unused]] auto n = ::read(wake_fd, &v, sizeof v);
      }
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        std::vector<RedisReply> replies;
        Status s = conn.read_available(replies);
        for (const auto& r : replies) on_pubsub(r);
        if (!s) {
          counters.redis_errors.fetch_add(1);
          conn.close();
        }
      }
    }
  }

  void on_pubsub(const RedisReply& r) {
    if (r.type != RedisReply::Type::kArray || r.elements.size() < 3) return;
    const std::string& kind = r.elements[0].str;
    const std::string& channel = r.elements[1].str;
    if (kind == "subscribe") {
      if (channel == kPresenceChannel) {
        std::lock_guard lock(mu);
        reload_wanted = true;
        cv.notify_all();
      } else if (channel == kRereadChannel) {
        // (Re)subscribed: an oms:reread published while this connection was
        // down was missed, so this node's sessions read their mailboxes now.
        reread_all();
      }
      return;
    }
    if (kind != "message" || r.elements.size() != 3) return;
    const std::string& payload = r.elements[2].str;
    if (channel == kPresenceChannel) return on_presence(payload);
    if (channel == kRereadChannel) return on_reread(payload);
  }

  // Has the user's sessions read their mailbox (those on the I/O context
  // `home` only, when not null).
  void poke(const std::string& user, const void* home = nullptr) {
    auto sessions = ctx.registry.sessions_of(user);
    if (sessions.empty()) return;
    auto d = std::make_shared<Delivery>();
    d->seq = std::numeric_limits<std::uint64_t>::max();  // "read your mailbox"; pushes nothing
    d->ordered = false;
    std::shared_ptr<const Delivery> shared = std::move(d);
    for (const auto& s : sessions)
      if (!home || s->home() == home) s->post_stored(shared);
  }

  void on_presence(std::string_view payload) {
    auto f = split(payload, '|', 5);
    if (f.size() != 5 || f[1] == node) return;
    std::uint32_t sessions = 0;
    auto state = proto::parse_presence(f[3]);
    if (!to_num(f[2], sessions) || !state) return;
    counters.presence_events.fetch_add(1, std::memory_order_relaxed);
    const std::string user(f[0]);
    std::optional<PresenceState> before, after;
    {
      std::lock_guard lock(cache_mu);
      before = remote_state_locked(user);
      auto& entries = remote[user];
      std::erase_if(entries, [&](const Remote& e) { return e.node == f[1]; });
      if (sessions > 0) entries.push_back(Remote{std::string(f[1]), sessions, *state, ++order});
      if (entries.empty()) remote.erase(user);
      after = remote_state_locked(user);
    }
    // The user's state for everyone (presence.set there): the sessions here
    // take it too.
    const bool local = ctx.registry.session_count(user) > 0;
    if (local && f[4] == "1") {
      auto change = ctx.registry.set_state(user, *state, ctx.store->last_seq());
      if (change.before != change.after && hooks.state_set)
        hooks.state_set(user, change.before, change.after, change.suppressed_since_seq);
      return;
    }
    if (local) return;  // what others see of the user is this node's state
    const PresenceState b = before.value_or(PresenceState::kOffline);
    const PresenceState a = after.value_or(PresenceState::kOffline);
    if (hooks.visible) hooks.visible(user, b, a);
  }

  // Another node lost hints (its hint line was down or Redis did not read):
  // every session here reads its mailbox.
  void on_reread(std::string_view from_node) {
    if (from_node == node) return;
    log().info("cluster: node {} lost hints; {} users' sessions here read their mailboxes", from_node, reread_all());
  }

  // Every session here reads its mailbox; returns the number of users.
  std::size_t reread_all() {
    std::vector<std::string> users;
    {
      std::lock_guard lock(sub_mu);
      users.assign(local_users.begin(), local_users.end());
    }
    for (const auto& u : users) poke(u);
    return users.size();
  }

  // A hint for `user`, read by the subscription of the I/O context `home`:
  // to the user's sessions on that context (server/hint_reader.h).
  void on_hint(const std::string& user, std::string_view payload, const void* home) {
    // "<node>|<seq>|<kind>|<receipt>|<mseq>|<len1>|<len2>|" frame1 frame2
    auto f = split(payload, '|', 8);
    if (f.size() != 8 || f[0] == node) return;
    std::uint64_t seq = 0, mseq = 0;
    unsigned kind = 0, receipt = 0;
    std::size_t l1 = 0, l2 = 0;
    if (!to_num(f[1], seq) || !to_num(f[2], kind) || kind > 2 || !to_num(f[3], receipt) || !to_num(f[4], mseq) ||
        !to_num(f[5], l1) || !to_num(f[6], l2) || f[7].size() != l1 + l2)
      return;
    counters.hints_received.fetch_add(1, std::memory_order_relaxed);
    auto sessions = ctx.registry.sessions_of(user);
    if (sessions.empty()) return;
    auto d = std::make_shared<Delivery>();
    d->seq = seq;
    d->mseq = mseq;
    d->kind = static_cast<proto::MessageKind>(kind);
    d->receipt = receipt != 0;
    d->ordered = false;
    if (l1) d->message_frame = std::make_shared<const std::string>(f[7].substr(0, l1));
    if (l2) d->missed_notice = std::make_shared<const std::string>(f[7].substr(l1, l2));
    std::shared_ptr<const Delivery> shared = std::move(d);
    for (const auto& s : sessions)
      if (s->home() == home) s->post_stored(shared);
  }
};

Cluster::Cluster(ServerContext& ctx, std::string redis_url, std::string node_id, std::int64_t node_ttl_seconds)
    : impl_(std::make_unique<Impl>(ctx, std::move(redis_url), std::move(node_id), node_ttl_seconds)) {}

Cluster::~Cluster() { stop(); }

Status Cluster::start() {
  auto addr = parse_redis_url(impl_->url);
  if (!addr) return addr.status();
  impl_->addr = std::move(*addr);
  impl_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl_->wake_fd < 0) return Status::io_error("cluster: eventfd failed");
  for (auto* ioc : impl_->io_contexts) {
    auto* impl = impl_.get();
    auto reader = HintReader::create(
        *ioc, impl->addr, fmt::format("{}/{}", impl->node, impl->readers.size()),
        {.hint = [impl, ioc](const std::string& u, std::string_view p) { impl->on_hint(u, p, ioc); },
         .subscribed = [impl, ioc](const std::string& u) { impl->poke(u, ioc); },
         .errors = &impl->counters.redis_errors,
         .connected = &impl->counters.hint_readers_connected});
    reader->start();
    impl->readers.emplace(ioc, std::move(reader));
  }
  impl_->publisher = std::thread([this] {
    pthread_setname_np(pthread_self(), "oms-cluster-pub");  // top -H, perf
    impl_->run_publisher();
  });
  impl_->subscriber = std::thread([this] {
    pthread_setname_np(pthread_self(), "oms-cluster-sub");
    impl_->run_subscriber();
  });
  return Status::ok();
}

void Cluster::attach_io(const std::vector<boost::asio::io_context*>& contexts) { impl_->io_contexts = contexts; }

void Cluster::close_readers() { for (auto& [_, r] : impl_->readers) r->close(); }

void Cluster::stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->wake_subscriber();
  close_readers();
  if (impl_->publisher.joinable()) impl_->publisher.join();
  if (impl_->subscriber.joinable()) impl_->subscriber.join();
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
  impl_->wake_fd = -1;
  // (The I/O threads are done: nothing reads `readers` any more. What the
  // readers still hold goes with the contexts' queued handlers.)
  impl_->readers.clear();
}

void Cluster::set_presence_hooks(PresenceHooks hooks) { impl_->hooks = std::move(hooks); }

const std::string& Cluster::node_id() const { return impl_->node; }
const ClusterCounters& Cluster::counters() const { return impl_->counters; }
std::int64_t Cluster::node_ttl_ms() const { return impl_->ttl_ms; }
std::uint64_t Cluster::epoch() const { return impl_->epoch.load(); }

void Cluster::local_presence_changed(const std::string& user, bool state_set) {
  {
    std::lock_guard lock(impl_->sub_mu);  // (the count under it: two sessions' changes land in order)
    const bool online = impl_->ctx.registry.session_count(user) > 0;
    if (online) impl_->local_users.insert(user);
    else impl_->local_users.erase(user);
  }
  {
    std::lock_guard lock(impl_->mu);
    impl_->dirty_users[user] |= state_set;
  }
  impl_->cv.notify_all();
}

void Cluster::local_session(const std::string& user, const void* home, bool open) {
  auto it = impl_->readers.find(home);
  if (it != impl_->readers.end()) it->second->want(user, open);
}

void Cluster::device_session(const std::string& user, const std::string& device, int delta) {
  std::string key = user;
  key += kDeviceSep;
  key += device;
  {
    std::lock_guard lock(impl_->mu);
    auto& n = impl_->devices[key];
    n = std::max<std::int64_t>(0, n + delta);
    if (n == 0) impl_->devices.erase(key);
    impl_->dirty_devices.insert(std::move(key));
  }
  impl_->cv.notify_all();
}

void Cluster::publish_delivery(const std::string& mailbox, const Delivery& d) {
  const std::size_t l1 = d.message_frame ? d.message_frame->size() : 0;
  const std::size_t l2 = d.missed_notice ? d.missed_notice->size() : 0;
  std::string payload = fmt::format("{}|{}|{}|{}|{}|{}|{}|", impl_->node, d.seq, static_cast<unsigned>(d.kind),
                                    d.receipt ? 1 : 0, d.mseq, l1, l2);
  if (l1) payload += *d.message_frame;
  if (l2) payload += *d.missed_notice;
  impl_->hints.queue("oms:u:" + mailbox, payload);
}

void Cluster::flush_hints() { impl_->hints.flush(); }

std::optional<PresenceState> Cluster::remote_state(const std::string& user) const {
  std::lock_guard lock(impl_->cache_mu);
  return impl_->remote_state_locked(user);
}

PresenceState Cluster::state_of(const std::string& user) const {
  if (impl_->ctx.registry.session_count(user) > 0) return impl_->ctx.registry.state_of(user);
  return remote_state(user).value_or(PresenceState::kOffline);
}

}  // namespace oms::server
