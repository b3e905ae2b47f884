// Hostile clients, all at once (issue 15 acceptance): eight signed-in
// accounts, each on a connection it never reads, pipelining every attack of
// the suite (pings with oversized rids, acks of 1024 ids, presence.subscribe
// of 1000 users, sends, reconnecting sign-ins on a full mailbox) while a
// bystander signs in and sends. Default config but the mailbox fill.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "tests/support/harness.h"
#include "tests/support/hostile.h"
#include "tests/support/sanitized.h"

using namespace oms::test;

namespace {

const bool kSanitized = oms::test::omsd_sanitized();

// A WebSocket client that never reads after the upgrade: a raw socket with a
// small receive buffer, frames written without blocking (what does not fit
// waits for the next turn).
class NonReader {
 public:
  NonReader(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int rcvbuf = 4096;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    timeval tv{2, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    const std::string req = fmt::format(
        "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        port);
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return;
    std::string head;
    char c;
    while (head.find("\r\n\r\n") == std::string::npos && ::recv(fd_, &c, 1, 0) == 1) head += c;
    ok_ = head.rfind("HTTP/1.1 101", 0) == 0;
  }
  ~NonReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return ok_; }
  // Queues a masked text frame (mask key 0: the payload goes as is).
  void frame(std::string_view payload) {
    std::string f;
    f += static_cast<char>(0x81);
    if (payload.size() < 126) {
      f += static_cast<char>(0x80 | payload.size());
    } else if (payload.size() < 65536) {
      f += static_cast<char>(0x80 | 126);
      f += static_cast<char>(payload.size() >> 8);
      f += static_cast<char>(payload.size() & 0xff);
    } else {
      f += static_cast<char>(0x80 | 127);
      for (int i = 7; i >= 0; --i) f += static_cast<char>((payload.size() >> (8 * i)) & 0xff);
    }
    f.append(4, '\0');
    f.append(payload);
    out_ += f;
  }
  // Writes what the socket takes now; false once the connection is gone.
  bool flush() {
    while (!out_.empty()) {
      const ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        out_.erase(0, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      return false;
    }
    return true;
  }
  std::size_t pending() const { return out_.size(); }

 private:
  int fd_ = -1;
  bool ok_ = false;
  std::string out_;
};

std::string hello_json(const std::string& token) {
  return boost::json::serialize(Json{
      {"type", "hello"}, {"rid", 1}, {"token", token},
      {"client", Json{{"name", "hostile"}, {"version", "1"}, {"features", boost::json::array{"offline-messages"}}}}});
}

}  // namespace

TEST_CASE("hostile: eight hostile accounts running every attack at once leave a bystander under 50 ms") {
  constexpr int kHostile = 8;
  constexpr auto kAttack = std::chrono::seconds(10);
  OmsdProcess omsd;
  // hostile-0's own mailbox is large: its reconnects each ask for a scan.
  const int filled = fill_mailbox(omsd, kAlice, "hostile-0@contoso.com", kSanitized ? 1000 : 2000, 2000);
  REQUIRE(filled > 0);
  const auto rss_before = rss_kib(omsd.pid());

  // The frames of the attack, each a full pipeline of one kind.
  const std::string big_rid_ping =
      boost::json::serialize(Json{{"type", "ping"}, {"rid", std::string(60000, 'r')}});
  boost::json::array ids, users;
  for (int i = 0; i < 1024; ++i) ids.emplace_back(fmt::format("{:016x}", 1000000 + i));
  for (int i = 0; i < 1000; ++i) users.emplace_back(fmt::format("watched-{}@contoso.com", i));
  const std::string ack = boost::json::serialize(Json{{"type", "ack"}, {"ids", ids}});
  const std::string subscribe =
      boost::json::serialize(Json{{"type", "presence.subscribe"}, {"rid", 7}, {"users", users}});

  std::atomic<bool> stop{false};
  std::atomic<long> frames{0}, reconnects{0};
  std::atomic<std::int64_t> rss_max{rss_before};
  std::vector<std::thread> attackers;
  // Six keep one connection each for the whole attack (reconnecting only
  // when the server closes it) and pipeline every kind of request; two loop
  // connect → hello → drop as hostile-0, whose mailbox is full.
  for (int h = 0; h < kHostile; ++h) {
    attackers.emplace_back([&, h] {
      const bool signin_loop = h >= 6;
      const std::string token = omsd.token(fmt::format("hostile-{}@contoso.com", signin_loop ? 0 : h));
      const auto deadline = SteadyClock::now() + kAttack + std::chrono::seconds(20);
      int round = 0;
      while (!stop && SteadyClock::now() < deadline) {
        NonReader c(omsd.client_port());
        reconnects.fetch_add(1);
        if (!c.ok()) continue;
        c.frame(hello_json(token));
        if (signin_loop) {
          c.flush();
          frames.fetch_add(1);
          continue;  // dropped: the scan it asked for is left behind
        }
        while (!stop && SteadyClock::now() < deadline) {
          if (c.pending() > (1 << 20)) {  // the server stopped reading: wait for room
            wait_until([&] { return stop.load(); }, std::chrono::milliseconds(5), std::chrono::milliseconds(5));
            if (!c.flush()) break;
            continue;
          }
          // hostile-4 and -5 send nothing but pings with 60 kB rids (the
          // memory-pinning attack alone); the others mix every kind.
          switch (h == 4 || h == 5 ? 0 : round++ % 5) {
            case 0: c.frame(big_rid_ping); break;
            case 1: c.frame(ack); break;
            case 2: c.frame(subscribe); break;
            case 3:
              c.frame(boost::json::serialize(Json{{"type", "send"}, {"rid", round}, {"to", "nobody@contoso.com"},
                                                  {"body", "spam"}, {"client_msg_id", fmt::format("h{}-{}", h, round)}}));
              break;
            default: c.frame(R"({"type":"ping","rid":1})"); break;
          }
          frames.fetch_add(1);
          if (!c.flush()) break;
        }
      }
    });
  }
  std::thread sampler([&] {
    while (!stop) {
      const auto r = rss_kib(omsd.pid());
      if (r > rss_max) rss_max = r;
      wait_until([&] { return stop.load(); }, std::chrono::milliseconds(100));
    }
  });

  REQUIRE(wait_until([&] { return frames.load() >= 2000; }, std::chrono::seconds(20)));
  Bystander bystander(omsd, {.max_time = kAttack});
  bystander.wait_rounds(1 << 30, kAttack + std::chrono::seconds(5));
  bystander.stop();
  stop = true;
  for (auto& t : attackers) t.join();
  sampler.join();

  const bool alive = omsd.running();
  const auto rss_peak_mib = rss_max.load() / 1024;
  INFO("bystander: " << bystander.summary());
  INFO("attack: " << frames.load() << " frames, " << reconnects.load() << " connections; RSS "
                  << rss_before / 1024 << " MiB before, peak " << rss_peak_mib << " MiB");
  for (const auto& e : bystander.signins().errors) INFO("sign-in error: " << e);
  for (const auto& e : bystander.sends().errors) INFO("send error: " << e);
  REQUIRE(alive);
  CHECK(bystander.signins().failures == 0);
  CHECK(bystander.sends().failures == 0);
  CHECK(bystander.signins().count() >= 10);
  // The acceptance figure is 50 ms, for the release build. A sanitizer
  // build runs 3–5x slower and CTest runs another test beside it: there the
  // test checks that the bystander never fails, with a loose latency bound.
  const double bound = kSanitized ? 1500 : 50;
  CHECK(bystander.signins().p99() < bound);
  CHECK(bystander.sends().p99() < bound);
  // README "Limits": the memory an attack can pin is bounded by the byte
  // limits of the session queues; 512 MiB with the defaults.
  // (ASan keeps freed memory in quarantine, 256 MiB by default, and adds its
  // shadow: RSS says little there.)
  CHECK(rss_peak_mib < (kSanitized ? 2048 : 512));
  // Everyone else's service went on: the store still answers the admin.
  CHECK(mailbox_count(omsd, "hostile-0@contoso.com") == filled);
  hostile_report("8 accounts at once, never reading: 60 kB-rid pings, acks of 1024 ids, subscribe 1000, sends, "
                 "reconnecting sign-ins on a full mailbox",
                 "every bound of the suite together; RSS < 512 MiB (default config)",
                 fmt::format("{} frames over {} connections in {} s; RSS {} → peak {} MiB", frames.load(),
                             reconnects.load(), kAttack.count(), rss_before / 1024, rss_peak_mib),
                 bystander.summary());
}
