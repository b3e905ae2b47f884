#include "server/hint_line.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "server/log.h"

namespace oms::server {

namespace {
spdlog::logger& log() { return logger_for(LogComponent::kOmsd); }
}  // namespace

HintLine::HintLine(Counters counters, std::string node, std::function<void()> wake_owner)
    : counters_(counters), node_(std::move(node)), wake_owner_(std::move(wake_owner)) {}

HintLine::~HintLine() { close(); }

void HintLine::queue(std::string_view channel, std::string_view payload) {
  std::lock_guard lock(mu_);
  if (fd_ < 0 || out_.size() >= kMaxQueuedBytes || !append_redis_command(out_, {"PUBLISH", channel, payload})) {
    counters_.dropped.fetch_add(1, std::memory_order_relaxed);
    reread_wanted_ = true;
    return;
  }
  ends_.push_back(out_.size());
}

void HintLine::flush() {
  {
    std::lock_guard lock(mu_);
    if (fd_ < 0 || stalled_ || broken_ || out_.empty()) return;
    if (!write_locked()) return;
  }
  wake_owner_();
}

void HintLine::drop_locked() {
  counters_.dropped.fetch_add(ends_.size(), std::memory_order_relaxed);
  if (!ends_.empty()) reread_wanted_ = true;
  out_.clear();
  ends_.clear();
}

// Writes what is queued (a hint counts as published once all its bytes are
// in the socket); true when the owner must step in (the socket is full, or
// the write failed).
bool HintLine::write_locked() {
  std::size_t off = 0;
  bool stalled = false;
  while (off < out_.size()) {
    const ssize_t n = ::send(fd_, out_.data() + off, out_.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      stalled = true;
      break;
    }
    drop_locked();  // a partly written command dies with its connection
    broken_ = true;
    return true;
  }
  std::size_t done = 0;
  while (!ends_.empty() && ends_.front() <= off) {
    ends_.pop_front();
    ++done;
  }
  counters_.published.fetch_add(done, std::memory_order_relaxed);
  if (off == out_.size()) {
    out_.clear();  // (ends_ is empty: only a keepalive could have followed the last hint)
  } else {
    out_.erase(0, off);
    for (auto& e : ends_) e -= off;
  }
  stalled_ = stalled;
  return stalled;
}

Status HintLine::open(const RedisAddress& addr) {
  close();
  if (Status s = conn_.connect(addr, std::chrono::milliseconds(2000)); !s) return s;
  // A round trip first: Redis accepted this client (maxclients, ACLs).
  auto pong = conn_.command({"PING"});
  if (!pong) return pong.status();
  if (pong->type == RedisReply::Type::kError) {
    conn_.close();
    return Status::unavailable(fmt::format("redis: PING: {}", pong->str));
  }
  conn_.append({"CLIENT", "REPLY", "OFF"});
  if (Status s = conn_.flush(); !s) return s;
  const int fd = conn_.fd();
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    conn_.close();
    return Status::io_error("fcntl(O_NONBLOCK) failed");
  }
  std::lock_guard lock(mu_);
  fd_ = fd;
  stalled_ = broken_ = false;
  return Status::ok();
}

void HintLine::close() {
  {
    std::lock_guard lock(mu_);
    fd_ = -1;  // before the socket closes: no send() on a closed or reused descriptor
    drop_locked();
    stalled_ = broken_ = false;
  }
  conn_.close();
}

void HintLine::tend(const RedisAddress& addr, bool attention, bool beat) {
  // Redis never answers on the line: anything readable is an end or an error.
  bool broken = !conn_.connected();
  if (!broken) {
    pollfd p{conn_.fd(), POLLIN, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[256];
      const ssize_t n = ::recv(conn_.fd(), buf, sizeof buf, MSG_DONTWAIT);
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        if (n > 0)
          log().warn("cluster: redis wrote on the hint connection ({}); reopening it",
                     std::string_view(buf, static_cast<std::size_t>(n)).substr(0, 80));
        broken = true;
      }
    }
  }
  bool stalled = false;
  if (!broken && attention) {
    std::lock_guard lock(mu_);
    broken = broken_;
    stalled = stalled_;
  }
  if (broken) {
    if (conn_.connected()) {
      counters_.errors.fetch_add(1);
      log().warn("cluster: redis hint connection lost; reopening it");
      close();
    }
    const auto now = std::chrono::steady_clock::now();
    if (now < retry_at_) return;
    if (Status s = open(addr); !s) {
      counters_.errors.fetch_add(1);
      log().warn("cluster: no redis hint connection ({}); hints are dropped until it is back", s.message());
      conn_.close();
      retry_at_ = now + backoff_;
      backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(2000));
      return;
    }
    backoff_ = std::chrono::milliseconds(100);
  }
  {
    std::lock_guard lock(mu_);
    // Hints were lost: the other nodes' sessions read what they missed (a
    // hint itself: counted, and asked again if it is lost too).
    if (reread_wanted_ && fd_ >= 0 && out_.size() < kMaxQueuedBytes &&
        append_redis_command(out_, {"PUBLISH", kRereadChannel, node_})) {
      ends_.push_back(out_.size());
      reread_wanted_ = false;
      log().info("cluster: hints were dropped; asking the other nodes to re-read their sessions' mailboxes");
    }
    if (beat && fd_ >= 0 && out_.size() < kMaxQueuedBytes) append_redis_command(out_, {"PING"});
  }
  if (stalled) {
    // Redis is slow to read: wait (bounded) for room, then write.
    pollfd p{conn_.fd(), POLLOUT, 0};
    (void)::poll(&p, 1, 200);
    bool again = false;
    {
      std::lock_guard lock(mu_);
      if (fd_ >= 0) again = write_locked();
    }
    if (again) wake_owner_();
    return;
  }
  flush();  // the keepalive, and anything queued outside a batch's callbacks
}

}  // namespace oms::server
