// chat: omsd's chat job for an MQTT broker, mirroring oms-load's chat
// (load-tests/scenarios/chat.cpp). N online users in pairs (2k <-> 2k+1),
// each subscribed at QoS 1 to its own topic and publishing at QoS 1 to its
// partner's.
//   closed loop (--window W): each user keeps W publishes in flight; one is
//     in flight until the broker's PUBACK, as a send in oms-load is until
//     omsd's `sent`. Rate = messages the partners received while sending /
//     the sending time (oms-load's "live delivery rate").
//   open loop (--rate R): R publishes per second over all users in turn,
//     whatever the PUBACKs do; latency from each publish's intended time.
// After the sending time both wait for the last PUBACKs and deliveries, and
// every PUBACKed message must have reached the partner once, in order.
#include <algorithm>
#include <unordered_map>

#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "load-tests/peers/mqtt_bench.h"

namespace oms::peers {

namespace {

// Open loop: publishes a user may have unacknowledged before the pacer skips
// it (counted as client_backlog, as oms-load does).
constexpr std::size_t kMaxUnacked = 1000;
constexpr auto kTick = std::chrono::microseconds(500);

class Chat final : public MqttEvents {
 public:
  explicit Chat(Bench& b) : b_(b), o_(b.opt()), N_(o_.users), users_(N_), timer_(b.ioc()) {}

  bool run(boost::json::object& out) {
    for (std::uint32_t u = 0; u < N_; ++u) users_[u].conn = b_.connect(*this, u, fmt::format("{}-c{}", o_.tag, u), true);
    bool ok = b_.wait("users connect and subscribe", [&] { return subscribed_ + failed_ >= N_; },
                      [&] { return subscribed_; });
    if (ok && failed_ > 0) {
      b_.fail(fmt::format("{} users failed to connect", failed_));
      ok = false;
    }
    const bool open_loop = o_.rate > 0;
    const std::uint64_t received_before = received_;
    t_start_ = mono_ns();
    std::int64_t t_stop = t_start_;
    std::uint64_t received_at_stop = received_before, acked_at_stop = 0;
    if (ok) {
      sending_ = true;
      if (open_loop) tick();
      else
        for (auto& u : users_) pump(u);
      const auto duration_ns = static_cast<std::int64_t>(o_.duration_s * 1e9);
      ok = b_.wait("chatting", [&] { return mono_ns() - t_start_ >= duration_ns; },
                   [&] { return acked_ + received_; });
      sending_ = false;
      timer_.cancel();
      t_stop = mono_ns();
      received_at_stop = received_;
      acked_at_stop = acked_;
      if (ok)
        ok = b_.wait("last PUBACKs and deliveries", [&] { return acked_ >= published_ && unique_ >= published_; },
                     [&] { return acked_ + received_; });
    }
    for (auto& u : users_)
      if (u.conn) u.conn->disconnect();
    b_.wait("disconnect", [&] { return closed_ >= N_; }, [&] { return closed_; });

    for (std::uint32_t s = 0; s < N_; ++s) {
      const auto& sender = users_[s];
      const auto& got = users_[s ^ 1u].got;  // what the partner received, by seq
      for (std::size_t q = 1; q < sender.acked.size(); ++q)
        if (sender.acked[q] && (q >= got.size() || got[q] == 0)) ++checks_.lost;
    }
    const double secs = static_cast<double>(std::max<std::int64_t>(1, t_stop - t_start_)) / 1e9;
    out["users"] = N_;
    if (open_loop) {
      out["target_rate"] = o_.rate;
      out["max_lag_ms"] = static_cast<double>(max_lag_ns_) / 1e6;
      out["client_backlog"] = backlog_;
    } else {
      out["window"] = o_.window;
    }
    out["seconds"] = secs;
    out["sent"] = acked_at_stop;
    out["sent_per_s"] = static_cast<double>(acked_at_stop) / secs;
    out["delivered_per_s"] = static_cast<double>(received_at_stop - received_before) / secs;
    out["published"] = published_;
    out["received"] = received_;
    boost::json::object e2e = latency_json(e2e_);
    auto ms = [&e2e](const char* k) { return e2e.contains(k) ? fmt::format("{:.3f}", e2e.at(k).as_double()) : "n/a"; };
    const std::string p50 = ms("p50_ms"), p99 = ms("p99_ms");
    out["end_to_end"] = std::move(e2e);
    out["checks"] = checks_json(checks_);
    std::printf("mosquitto chat (%s): delivered %.0f msgs/s over %.3f s, end-to-end p50 %s p99 %s ms; lost %llu "
                "dup %llu reordered %llu\n",
                open_loop ? fmt::format("open loop {:.0f}/s", o_.rate).c_str() : "closed loop",
                static_cast<double>(received_at_stop - received_before) / secs, secs,
                p50.c_str(), p99.c_str(),
                static_cast<unsigned long long>(checks_.lost), static_cast<unsigned long long>(checks_.duplicates),
                static_cast<unsigned long long>(checks_.reordered));
    return ok && checks_.lost == 0 && checks_.duplicates == 0 && checks_.reordered == 0 && checks_.corrupt == 0;
  }

  void on_connack(MqttConn& c, bool, int code) override {
    b_.connect_done(c);
    if (code != 0) {
      ++failed_;
      return b_.fail(fmt::format("CONNACK code {} for user {}", code, c.index()));
    }
    c.subscribe(fmt::format("{}/chat/{}", o_.tag, c.index()));
  }

  void on_suback(MqttConn&, std::uint16_t) override { ++subscribed_; }

  void on_puback(MqttConn& c, std::uint16_t pid) override {
    User& u = users_[c.index()];
    auto it = u.pids.find(pid);
    if (it == u.pids.end()) return b_.fail(fmt::format("PUBACK for unknown packet id {}", pid));
    u.acked[it->second] = 1;
    u.pids.erase(it);
    ++acked_;
    if (o_.rate <= 0) pump(u);
  }

  void on_message(MqttConn& c, std::string_view, std::string_view payload, bool dup) override {
    const std::int64_t now = mono_ns();
    PayloadHead h;
    const std::uint32_t r = c.index();
    if (!parse_payload(payload, h) || h.sender != (r ^ 1u) || h.seq == 0 || h.seq > users_[h.sender].seq) {
      ++checks_.corrupt;
      return;
    }
    if (dup) ++checks_.dup_flag;
    ++received_;
    User& u = users_[r];
    if (u.got.size() <= h.seq) u.got.resize(h.seq + 1 + h.seq / 2, 0);
    if (u.got[h.seq]++) {
      ++checks_.duplicates;
      return;
    }
    ++unique_;
    if (h.seq < u.last_seq) ++checks_.reordered;
    u.last_seq = std::max(u.last_seq, h.seq);
    e2e_.push_back(now - h.intended_ns);
  }

  void on_closed(MqttConn& c, bool clean, const std::string& why) override {
    ++closed_;
    if (!clean) {
      b_.connect_done(c);
      ++failed_;
      b_.fail(fmt::format("user {} connection closed: {}", c.index(), why));
    }
  }

 private:
  struct User {
    std::shared_ptr<MqttConn> conn;
    std::uint64_t seq = 0;                               // last seq published
    std::vector<std::uint8_t> acked;                     // by seq: PUBACKed
    std::unordered_map<std::uint16_t, std::uint64_t> pids;  // packet id -> seq
    std::vector<std::uint8_t> got;                       // by the partner's seq: times received
    std::uint64_t last_seq = 0;                          // highest seq received from the partner
  };

  bool send(std::uint32_t from, std::int64_t intended_ns) {
    User& u = users_[from];
    if (!u.conn || !u.conn->open()) return false;
    const std::uint64_t seq = ++u.seq;
    if (u.acked.size() <= seq) u.acked.resize(seq + 1 + seq / 2, 0);
    const std::uint16_t pid = u.conn->publish(fmt::format("{}/chat/{}", o_.tag, from ^ 1u),
                                              make_payload(from, seq, intended_ns, o_.body_bytes));
    u.pids[pid] = seq;
    ++published_;
    return true;
  }

  void pump(User& u) {
    if (!sending_ || !u.conn) return;
    while (u.pids.size() < o_.window)
      if (!send(u.conn->index(), mono_ns())) return;
  }

  // The open-loop pacer: the n-th publish is due at t_start + n / rate, from
  // user n % N; every 500 us it sends what is due.
  void tick() {
    const std::int64_t now = mono_ns();
    const double gap_ns = 1e9 / o_.rate;
    for (;;) {
      const auto intended = t_start_ + static_cast<std::int64_t>(static_cast<double>(n_) * gap_ns);
      if (intended > now) break;
      max_lag_ns_ = std::max(max_lag_ns_, now - intended);
      const auto from = static_cast<std::uint32_t>(n_ % N_);
      ++n_;
      const auto& c = users_[from].conn;
      if (c && c->unacked() >= kMaxUnacked) ++backlog_;
      else send(from, intended);
    }
    timer_.expires_after(kTick);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && sending_) tick();
    });
  }

  Bench& b_;
  const BenchOptions& o_;
  const std::uint32_t N_;
  std::vector<User> users_;
  boost::asio::steady_timer timer_;
  bool sending_ = false;
  std::int64_t t_start_ = 0, max_lag_ns_ = 0;
  std::uint64_t n_ = 0, published_ = 0, acked_ = 0, received_ = 0, unique_ = 0, backlog_ = 0;
  std::uint64_t subscribed_ = 0, failed_ = 0, closed_ = 0;
  std::vector<std::int64_t> e2e_;
  Checks checks_;
};

}  // namespace

bool run_chat(Bench& b, boost::json::object& out) {
  Chat c(b);
  return c.run(out);
}

}  // namespace oms::peers
