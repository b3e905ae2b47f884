// offline: omsd's offline-burst job for an MQTT broker. Recipients are
// persistent sessions (clean_session=0) subscribed at QoS 1 to their own
// topic, then disconnected; senders store M messages as QoS 1 publishes, S x
// W in flight; then every recipient reconnects at once and drains.
//
// store rate = messages PUBACKed / (last PUBACK - first PUBLISH written):
//   what any client measures, the same definition oms-load's store rate uses.
// drain rate = messages received / (last received - first reconnect started).
// Message i goes to recipient i % N and carries sender:i:send_ns: so every
// recipient checks loss, duplicates and each sender's order.
#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

#include "load-tests/peers/mqtt_bench.h"

namespace oms::peers {

namespace {

class Offline final : public MqttEvents {
 public:
  explicit Offline(Bench& b)
      : b_(b), o_(b.opt()), N_(o_.users), S_(o_.senders), acked_(o_.messages, 0), received_(o_.messages, 0),
        last_seq_(std::size_t{N_} * S_, 0), pids_(S_) {}

  bool run(boost::json::object& out) {
    // 1. Recipients: persistent session, QoS 1 subscription, disconnect.
    phase_ = Phase::kSetup;
    for (std::uint32_t r = 0; r < N_; ++r) conns_.push_back(b_.connect(*this, r, client_id(r), false));
    bool ok = b_.wait("recipients subscribe and go offline", [&] { return setup_done_ + failed_ >= N_; },
                      [&] { return setup_done_ + subscribed_; });
    if (ok && failed_ > 0) {
      b_.fail(fmt::format("setup: {} recipients failed", failed_));
      ok = false;
    }

    // 2. Store: S senders x W QoS 1 publishes in flight.
    if (ok) {
      phase_ = Phase::kStore;
      for (std::uint32_t s = 0; s < S_; ++s)
        conns_.push_back(b_.connect(*this, N_ + s, fmt::format("{}-s{}", o_.tag, s), true));
      ok = b_.wait(
          fmt::format("store {} messages", o_.messages),
          [&] { return acked_count_ >= o_.messages || senders_gone_ >= S_; }, [&] { return acked_count_; });
      if (ok && acked_count_ < o_.messages) {
        b_.fail("store: the senders' connections closed");
        ok = false;
      }
      for (std::uint32_t s = 0; s < S_; ++s)
        if (auto& c = conns_[N_ + s]) c->disconnect();
    }
    const double store_s = static_cast<double>(std::max<std::int64_t>(1, last_puback_ns_ - first_publish_ns_)) / 1e9;

    // 3. Every recipient reconnects at once (same client id, clean_session=0) and drains.
    std::int64_t drain0 = 0;
    if (ok) {
      phase_ = Phase::kDrain;
      drain0 = mono_ns();
      for (std::uint32_t r = 0; r < N_; ++r) conns_[r] = b_.connect(*this, r, client_id(r), false);
      ok = b_.wait("recipients reconnect and drain", [&] { return unique_received_ >= acked_count_; },
                   [&] { return received_count_; });
      for (std::uint32_t r = 0; r < N_; ++r)
        if (auto& c = conns_[r]) c->disconnect();
      // Setup closed N, the store S, the drain N connections.
      b_.wait("disconnect", [&] { return closed_ >= 2u * N_ + S_; }, [&] { return closed_; });
    }
    const double drain_s = static_cast<double>(std::max<std::int64_t>(1, last_received_ns_ - drain0)) / 1e9;

    for (std::uint64_t i = 0; i < o_.messages; ++i)
      if (acked_[i] && !received_[i]) ++checks_.lost;
    out["recipients"] = N_;
    out["senders"] = S_;
    out["window"] = o_.window;
    out["messages"] = o_.messages;
    out["store"] = {{"acked", acked_count_},
                    {"seconds", store_s},
                    {"rate_per_s", static_cast<double>(acked_count_) / store_s}};
    out["drain"] = {{"received", received_count_},
                    {"seconds", drain_s},
                    {"rate_per_s", static_cast<double>(received_count_) / drain_s},
                    {"session_not_present", session_missing_}};
    out["checks"] = checks_json(checks_);
    std::printf("mosquitto offline: stored %llu in %.3f s = %.0f msgs/s; drained %llu in %.3f s = %.0f msgs/s; "
                "lost %llu dup %llu reordered %llu\n",
                static_cast<unsigned long long>(acked_count_), store_s, static_cast<double>(acked_count_) / store_s,
                static_cast<unsigned long long>(received_count_), drain_s,
                static_cast<double>(received_count_) / drain_s, static_cast<unsigned long long>(checks_.lost),
                static_cast<unsigned long long>(checks_.duplicates),
                static_cast<unsigned long long>(checks_.reordered));
    return ok && checks_.lost == 0 && checks_.duplicates == 0 && checks_.reordered == 0 && checks_.corrupt == 0 &&
           session_missing_ == 0;
  }

  void on_connack(MqttConn& c, bool present, int code) override {
    b_.connect_done(c);
    if (code != 0) {
      ++failed_;
      b_.fail(fmt::format("CONNACK code {} for connection {}", code, c.index()));
      return;
    }
    if (c.index() < N_) {
      if (phase_ == Phase::kSetup) c.subscribe(topic(c.index()));
      else if (!present) ++session_missing_;
      return;
    }
    if (++senders_open_ == S_) {  // all senders up: start the clock
      first_publish_ns_ = mono_ns();
      for (std::uint32_t s = 0; s < S_; ++s)
        for (std::uint32_t w = 0; w < o_.window; ++w) publish_next(*conns_[N_ + s]);
    }
  }

  void on_suback(MqttConn& c, std::uint16_t) override {
    ++subscribed_;
    c.disconnect();
  }

  void on_puback(MqttConn& c, std::uint16_t pid) override {
    auto& m = pids_[c.index() - N_];
    auto it = m.find(pid);
    if (it == m.end()) return b_.fail(fmt::format("PUBACK for unknown packet id {}", pid));
    acked_[it->second] = 1;
    m.erase(it);
    ++acked_count_;
    last_puback_ns_ = mono_ns();
    publish_next(c);
  }

  void on_message(MqttConn& c, std::string_view topic_name, std::string_view payload, bool dup) override {
    PayloadHead h;
    const std::uint32_t r = c.index();
    if (!parse_payload(payload, h) || h.seq >= o_.messages || h.sender >= S_ || h.seq % N_ != r ||
        topic_name != topic(r)) {
      ++checks_.corrupt;
      return;
    }
    if (dup) ++checks_.dup_flag;
    ++received_count_;
    last_received_ns_ = mono_ns();
    if (received_[h.seq]++) {
      ++checks_.duplicates;
      return;
    }
    ++unique_received_;
    auto& last = last_seq_[std::size_t{r} * S_ + h.sender];
    if (h.seq + 1 < last) ++checks_.reordered;
    last = std::max(last, h.seq + 1);
  }

  void on_closed(MqttConn& c, bool clean, const std::string& why) override {
    ++closed_;
    if (clean && phase_ == Phase::kSetup) ++setup_done_;
    if (!clean) {
      if (phase_ == Phase::kSetup) ++failed_;
      b_.connect_done(c);
      if (c.index() >= N_) ++senders_gone_;
      b_.fail(fmt::format("connection {} closed: {}", c.index(), why));
    }
  }

 private:
  enum class Phase { kSetup, kStore, kDrain };

  std::string client_id(std::uint32_t r) const { return fmt::format("{}-r{}", o_.tag, r); }
  std::string topic(std::uint32_t r) const { return fmt::format("{}/mb/{}", o_.tag, r); }

  void publish_next(MqttConn& c) {
    if (next_ >= o_.messages || !c.open()) return;
    const std::uint64_t i = next_++;
    const std::uint16_t pid = c.publish(topic(static_cast<std::uint32_t>(i % N_)),
                                        make_payload(c.index() - N_, i, mono_ns(), o_.body_bytes));
    pids_[c.index() - N_][pid] = i;
  }

  Bench& b_;
  const BenchOptions& o_;
  const std::uint32_t N_, S_;
  Phase phase_ = Phase::kSetup;
  std::vector<std::shared_ptr<MqttConn>> conns_;  // recipients [0, N), senders [N, N+S)
  std::vector<std::uint8_t> acked_, received_;    // per message index
  std::vector<std::uint64_t> last_seq_;           // per (recipient, sender): highest index + 1
  std::vector<std::unordered_map<std::uint16_t, std::uint64_t>> pids_;  // per sender: packet id -> index
  std::uint64_t next_ = 0, acked_count_ = 0, received_count_ = 0, unique_received_ = 0;
  std::uint64_t setup_done_ = 0, subscribed_ = 0, failed_ = 0, closed_ = 0, session_missing_ = 0;
  std::uint32_t senders_open_ = 0, senders_gone_ = 0;
  std::int64_t first_publish_ns_ = 0, last_puback_ns_ = 0, last_received_ns_ = 0;
  Checks checks_;
};

}  // namespace

bool run_offline(Bench& b, boost::json::object& out) {
  Offline o(b);
  return o.run(out);
}

}  // namespace oms::peers
