// oms-mqtt-bench: an MQTT 3.1.1 broker doing omsd's jobs in omsd's shapes
// (see mqtt_bench.h; load-tests/bench --peers runs it against a private
// Mosquitto).
//
//   oms-mqtt-bench offline --port P [--users 1000] [--senders 8] [--window 16]
//                  [--messages 1000000] [--body-bytes 200] [--json FILE]
//   oms-mqtt-bench chat --port P [--users 1000] [--window 2] [--duration 20]
//                  [--rate R] [--json FILE]
//
// Exit status: 0 every check passed; 1 a check failed or a phase stalled;
// 2 usage; 3 the hard deadline (--timeout) passed.
#include "load-tests/peers/mqtt_bench.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>

#include <boost/json/serialize.hpp>
#include <fmt/format.h>

namespace oms::peers {

namespace net = boost::asio;

Bench::Bench(const BenchOptions& opt)
    : opt_(opt),
      broker_(net::ip::make_address_v4("127.0.0.1"), opt.port),
      deadline_ns_(mono_ns() + static_cast<std::int64_t>(opt.timeout_s * 1e9)) {}

std::shared_ptr<MqttConn> Bench::connect(MqttEvents& events, std::uint32_t index, std::string client_id,
                                         bool clean_session) {
  auto c = std::make_shared<MqttConn>(ioc_, events, index);
  queue_.push_back(Pending{c, std::move(client_id), clean_session});
  start_next();
  return c;
}

void Bench::connect_done(MqttConn&) {
  if (connecting_ > 0) --connecting_;
  start_next();
}

void Bench::start_next() {
  while (connecting_ < opt_.connect_concurrency && queue_head_ < queue_.size()) {
    Pending& p = queue_[queue_head_++];
    ++connecting_;
    p.conn->start(broker_, std::move(p.client_id), p.clean);
    p.conn.reset();
  }
  if (queue_head_ == queue_.size()) {
    queue_.clear();
    queue_head_ = 0;
  }
}

bool Bench::wait(std::string_view what, const std::function<bool()>& done,
                 const std::function<std::uint64_t()>& progress) {
  std::uint64_t last = progress();
  std::int64_t last_change = mono_ns();
  const auto stall_ns = static_cast<std::int64_t>(opt_.stall_s * 1e9);
  // Bounded: every pass runs the io_context for at most 2 ms, and the loop
  // ends at the stall limit or the hard deadline.
  while (!done()) {
    if (ioc_.stopped()) ioc_.restart();
    ioc_.run_for(std::chrono::milliseconds(2));
    const std::int64_t now = mono_ns();
    if (const std::uint64_t p = progress(); p != last) {
      last = p;
      last_change = now;
    }
    if (now - last_change > stall_ns) {
      fail(fmt::format("{}: no progress for {:.0f} s", what, opt_.stall_s));
      return false;
    }
    if (now > deadline_ns_) {
      fail(fmt::format("{}: hard deadline ({:.0f} s) passed", what, opt_.timeout_s));
      std::fflush(stdout);
      std::_Exit(3);
    }
  }
  return true;
}

void Bench::fail(std::string why) {
  std::fprintf(stderr, "oms-mqtt-bench: %s\n", why.c_str());
  failures_.push_back(std::move(why));
}

std::string make_payload(std::uint32_t sender, std::uint64_t seq, std::int64_t intended_ns, std::uint32_t bytes) {
  std::string s = fmt::format("{}:{}:{}:", sender, seq, intended_ns);
  if (s.size() < bytes) s.append(bytes - s.size(), 'x');
  return s;
}

bool parse_payload(std::string_view p, PayloadHead& out) {
  auto field = [&p](auto& v) {
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc{} || end == p.data() + p.size() || *end != ':') return false;
    p.remove_prefix(static_cast<std::size_t>(end - p.data()) + 1);
    return true;
  };
  return field(out.sender) && field(out.seq) && field(out.intended_ns);
}

boost::json::object latency_json(std::vector<std::int64_t>& ns) {
  boost::json::object o;
  o["count"] = ns.size();
  if (ns.empty()) return o;
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    const auto i = static_cast<std::size_t>(q * static_cast<double>(ns.size() - 1) + 0.5);
    return static_cast<double>(ns[std::min(i, ns.size() - 1)]) / 1e6;
  };
  o["p50_ms"] = at(0.50);
  o["p90_ms"] = at(0.90);
  o["p99_ms"] = at(0.99);
  o["p999_ms"] = at(0.999);
  o["max_ms"] = static_cast<double>(ns.back()) / 1e6;
  return o;
}

boost::json::object checks_json(const Checks& c) {
  return {{"lost", c.lost},
          {"duplicates", c.duplicates},
          {"reordered", c.reordered},
          {"corrupt", c.corrupt},
          {"dup_flag_redeliveries", c.dup_flag}};
}

namespace {

const char* kUsage = R"(usage: oms-mqtt-bench offline|chat --port P [options]

  offline   --users N recipients (persistent sessions, offline), --senders S x
            --window W QoS 1 publishes in flight, --messages M; then all N
            reconnect at once and drain
  chat      --users N online users in pairs, --window W publishes in flight each
            for --duration SEC (closed loop), or --rate R msgs/s over all of
            them (open loop; latency from the intended send time)

  --body-bytes B (200)  --timeout SEC (300)  --stall SEC (30)
  --connect-concurrency C (256)  --tag T (client id / topic prefix)  --json FILE
)";

bool parse_args(int argc, char** argv, BenchOptions& o, std::string& error) {
  if (argc < 2) return false;
  o.scenario = argv[1];
  if (o.scenario != "offline" && o.scenario != "chat") {
    error = "scenario is offline or chat";
    return false;
  }
  bool window_set = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      error = a + " needs a value";
      return false;
    }
    const std::string v = argv[++i];
    auto num = [&](auto& out) {
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
      if (ec != std::errc{} || end != v.data() + v.size()) error = fmt::format("{} {}: not a number", a, v);
    };
    if (a == "--port") num(o.port);
    else if (a == "--users") num(o.users);
    else if (a == "--senders") num(o.senders);
    else if (a == "--window") { num(o.window); window_set = true; }
    else if (a == "--messages") num(o.messages);
    else if (a == "--body-bytes") num(o.body_bytes);
    else if (a == "--duration") num(o.duration_s);
    else if (a == "--rate") num(o.rate);
    else if (a == "--timeout") num(o.timeout_s);
    else if (a == "--stall") num(o.stall_s);
    else if (a == "--connect-concurrency") num(o.connect_concurrency);
    else if (a == "--tag") o.tag = v;
    else if (a == "--json") o.json_file = v;
    else error = "unknown option " + a;
    if (!error.empty()) return false;
  }
  if (!window_set && o.scenario == "chat") o.window = 2;
  if (o.port == 0) error = "--port is required";
  else if (o.users < 2 || (o.scenario == "chat" && o.users % 2 != 0)) error = "--users: at least 2 (chat: even)";
  else if (o.window == 0 || o.window > 1000) error = "--window is 1..1000";
  else if (o.senders == 0 || o.connect_concurrency == 0) error = "--senders and --connect-concurrency are > 0";
  else if (o.body_bytes < 40 || o.body_bytes > 65536) error = "--body-bytes is 40..65536";
  else if (o.timeout_s <= 0 || o.stall_s <= 0 || o.duration_s <= 0) error = "durations are > 0";
  return error.empty();
}

}  // namespace

}  // namespace oms::peers

int main(int argc, char** argv) {
  using namespace oms::peers;
  BenchOptions opt;
  std::string error;
  if (!parse_args(argc, argv, opt, error)) {
    if (!error.empty()) std::fprintf(stderr, "oms-mqtt-bench: %s\n", error.c_str());
    std::fputs(kUsage, stderr);
    return 2;
  }
  Bench bench(opt);
  boost::json::object out;
  out["scenario"] = opt.scenario;
  out["port"] = opt.port;
  out["body_bytes"] = opt.body_bytes;
  bool ok = false;
  try {
    ok = opt.scenario == "offline" ? run_offline(bench, out) : run_chat(bench, out);
  } catch (const std::exception& e) {
    bench.fail(std::string("exception: ") + e.what());
  }
  boost::json::array failures;
  for (const auto& f : bench.failures()) failures.emplace_back(f);
  ok = ok && bench.failures().empty();
  out["failures"] = std::move(failures);
  out["ok"] = ok;
  const std::string text = boost::json::serialize(out);
  std::printf("%s\n", text.c_str());
  if (!opt.json_file.empty()) {
    std::ofstream f(opt.json_file);
    f << text << '\n';
    if (!f) {
      std::fprintf(stderr, "oms-mqtt-bench: cannot write %s\n", opt.json_file.c_str());
      return 1;
    }
  }
  return ok ? 0 : 1;
}
