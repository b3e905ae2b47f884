#include "load-tests/driver/options.h"

#include <charconv>
#include <cmath>
#include <set>
#include <thread>

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>

namespace oms::load {

namespace {

// More devices than the server's cap (default 10) is a test of the cap.
constexpr std::uint64_t kMaxDevices = 64;

const std::set<std::string, std::less<>> kScenarios = {
    "offline-burst", "chat", "presence-churn", "signin-storm", "idle", "mixed"};

bool parse_u64(std::string_view s, std::uint64_t& out) {
  // Accept 1e6 / 1_000_000 style for convenience.
  std::string clean;
  for (char c : s)
    if (c != '_' && c != ',') clean.push_back(c);
  if (clean.find_first_of("eE.") != std::string::npos) {
    double d = 0;
    auto [p, ec] = std::from_chars(clean.data(), clean.data() + clean.size(), d);
    if (ec != std::errc{} || p != clean.data() + clean.size() || d < 0 || d > 1e15 ||
        d != std::floor(d))
      return false;
    out = static_cast<std::uint64_t>(d);
    return true;
  }
  auto [p, ec] = std::from_chars(clean.data(), clean.data() + clean.size(), out);
  return ec == std::errc{} && p == clean.data() + clean.size() && !clean.empty();
}

bool parse_double(std::string_view s, double& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size() && !s.empty() && std::isfinite(out) &&
         out >= 0;
}

}  // namespace

std::string usage() {
  return R"(usage: oms-load SCENARIO --url ws://127.0.0.1:PORT/v1/ws --jwt-secret-file FILE [options]

Scenarios:
  offline-burst   N recipients stay offline; S senders x W in flight send M messages over
                  them; then every recipient signs in at once and drains with acks.
  chat            N online users in pairs; live messaging for --duration, W in flight
                  per user (closed loop) or --rate msgs/s over all of them (open loop).
  presence-churn  N recipients flip available/dnd/presenting while S senders message
                  them; every sent.status is checked against the presence at send time.
  signin-storm    N users with --queued Q messages each sign in at once and drain.
  idle            hold N signed-in sessions for --duration; --server-pid gives RSS/session.
  mixed           open-loop arrivals at --rate ops/s for --duration: sends, sign-ins,
                  sign-outs and presence changes; latency from the intended send time.

Options:
  --also-url URL        another node of the same cluster (repeatable): user i connects
                        to the (i mod n)-th of --url and these (chat pairs span nodes)
  --pairs-together      with --also-url: user i connects to the (i/2 mod n)-th (the
                        two users of a chat pair on one node, pairs spread over nodes)
  --pairs-mixed         with --also-url: even pairs together, odd pairs across nodes;
                        chat reports the latency of each group (one run, same load)
  --users N             users (recipients for offline-burst/presence-churn/signin-storm)
  --senders S           sending sessions (offline-burst, presence-churn, signin-storm)
  --messages M          total messages (offline-burst; cap for chat/presence-churn)
  --queued Q            signin-storm: messages queued per user
  --body-bytes B        body size, padded (default 200)
  --window W            sends in flight per sending session
  --duration SEC        chat, presence-churn, idle, mixed; offline-burst/signin-storm:
                        cap on the store phase (then what was stored is drained)
  --rate R              mixed: operations per second; offline-burst/signin-storm/chat:
                        send at R msgs/s open loop instead of W in flight
  --churn-ms MS         presence-churn: mean time between a user's presence changes
  --devices N           devices per user, each its own session d1..dN that drains and
                        acks for itself (offline-burst, signin-storm: the recipients;
                        chat: every user; presence-churn: the recipients); default 1
  --device-names        send the device names (and a rid with every ack) even with
                        --devices 1 (implied by --devices 2 or more)
  --receipts on|off     whether the run expects receipts: exactly one per stored or
                        missed message (offline-burst, signin-storm, presence-churn);
                        default on; off when the server's enable_delivery_receipts is
                        false or it has none. Receipts that come are acked and counted
  --server-pid PID      read the server's VmRSS from /proc/PID/status
  --json FILE           write every figure as JSON; a chart goes beside it
  --threads T           client threads, one io_context each (default: cores)
  --ack-batch K         ack after K unacked messages (default 64)
  --ack-delay-ms D      ...or D ms after the first unacked one (default 2)
  --connect-concurrency C   connects+upgrades in progress at once (default 512)
  --source-addrs N      spread connections over 127.0.0.2..127.0.0.(N+1) (default 253; 0 = off)
  --user-prefix P       user ids are P-u000123@load.test (default: scenario tag + pid)
  --timeout SEC         hard overall deadline (default: scenario dependent)
  --stall SEC           fail a phase that makes no progress for SEC (default 30)
  --slot-ms MS          timeline resolution (default 200)
  --framing raw|beast   WebSocket data framing after Beast's upgrade: raw (default)
                        coalesces queued frames into one write and reads 64 KiB at a
                        time; beast uses Beast's stream (one syscall per frame)
  --no-chart            do not write the chart
  --progress            progress lines on stderr

Exit status: 0 when every check passed; 1 when lost/duplicates/reordered (or another
check) is non-zero or a phase failed; 2 for usage errors; 3 when the hard deadline hit.
)";
}

std::optional<TargetUrl> parse_loopback_url(const std::string& url, std::string& error) {
  constexpr std::string_view kScheme = "ws://";
  if (url.rfind(kScheme, 0) != 0) {
    error = fmt::format("--url '{}': only ws:// URLs are supported", url);
    return std::nullopt;
  }
  std::string_view rest = std::string_view(url).substr(kScheme.size());
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  TargetUrl t;
  t.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  std::string_view host;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = fmt::format("--url '{}': unterminated [IPv6] host", url);
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') port = authority.substr(close + 2);
  } else {
    const auto colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  std::uint64_t p = 0;
  if (port.empty() || !parse_u64(port, p) || p == 0 || p > 65535) {
    error = fmt::format("--url '{}': needs an explicit port 1-65535", url);
    return std::nullopt;
  }
  t.port = static_cast<std::uint16_t>(p);
  t.host = std::string(host);

  std::string lowered;
  for (char c : host) lowered.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (lowered == "localhost") {
    t.address = "127.0.0.1";
  } else {
    boost::system::error_code ec;
    auto addr = boost::asio::ip::make_address(std::string(host), ec);
    if (ec) {
      error = fmt::format("--url '{}': host '{}' is not a loopback address (use 127.x.x.x, "
                          "localhost or [::1])", url, host);
      return std::nullopt;
    }
    if (!addr.is_loopback()) {
      error = fmt::format("--url '{}': refusing non-loopback target {}; oms-load only drives "
                          "servers on this machine (127.0.0.0/8, localhost, ::1)", url, host);
      return std::nullopt;
    }
    t.v6 = addr.is_v6();
    t.address = addr.to_string();
  }
  t.host_header = t.v6 ? fmt::format("[{}]:{}", t.address, t.port) : fmt::format("{}:{}", t.host, t.port);
  return t;
}

std::optional<Options> parse_options(int argc, char** argv, std::string& error, bool& help) {
  help = false;
  Options o;
  if (argc < 2) {
    help = true;
    return std::nullopt;
  }
  int i = 1;
  for (; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      help = true;
      return std::nullopt;
    }
    auto need = [&](std::string_view& v) {
      if (i + 1 >= argc) {
        error = fmt::format("{} needs a value", a);
        return false;
      }
      v = argv[++i];
      return true;
    };
    // A value parsed by `parse`; `what` names what it must be.
    auto number = [&](auto& out, auto parse, std::string_view what) {
      std::string_view v;
      if (!need(v)) return false;
      if (!parse(v, out)) {
        error = fmt::format("{} '{}': not a {}", a, v, what);
        return false;
      }
      return true;
    };
    auto u64 = [&](std::uint64_t& out) { return number(out, parse_u64, "non-negative integer"); };
    auto dbl = [&](double& out) { return number(out, parse_double, "non-negative number"); };
    // An integer capped at `max` (more is of no use).
    auto capped = [&](unsigned& out, std::uint64_t max) {
      std::uint64_t v = 0;
      const bool parsed = u64(v);
      out = static_cast<unsigned>(std::min(v, max));
      return parsed;
    };
    auto str = [&](std::string& out) {
      std::string_view v;
      if (!need(v)) return false;
      out = std::string(v);
      return true;
    };
    bool ok = true;
    std::uint64_t tmp = 0;
    if (!a.starts_with("--")) {
      if (!o.scenario.empty()) {
        error = fmt::format("unexpected argument '{}'", a);
        return std::nullopt;
      }
      o.scenario = std::string(a);
    } else if (a == "--url") ok = str(o.url);
    else if (a == "--also-url") {
      std::string u;
      ok = str(u);
      if (ok) o.also_urls.push_back(std::move(u));
    }
    else if (a == "--jwt-secret-file") ok = str(o.jwt_secret_file);
    else if (a == "--users") ok = u64(o.users);
    else if (a == "--senders") ok = u64(o.senders);
    else if (a == "--messages") ok = u64(o.messages);
    else if (a == "--queued") ok = u64(o.queued);
    else if (a == "--body-bytes") ok = u64(o.body_bytes);
    else if (a == "--window") ok = u64(o.window);
    else if (a == "--duration") ok = dbl(o.duration_s);
    else if (a == "--rate") ok = dbl(o.rate);
    else if (a == "--churn-ms") ok = dbl(o.churn_ms);
    else if (a == "--devices") {
      ok = u64(tmp);
      if (ok && (tmp < 1 || tmp > kMaxDevices)) {
        error = fmt::format("--devices is 1 to {}", kMaxDevices);
        return std::nullopt;
      }
      o.devices = static_cast<std::uint32_t>(tmp);
    } else if (a == "--device-names") o.device_names = true;
    else if (a == "--receipts") {
      std::string v;
      ok = str(v);
      if (ok && v != "on" && v != "off") {
        error = "--receipts is on or off";
        return std::nullopt;
      }
      o.receipts = v == "on";
    } else if (a == "--server-pid") {
      ok = u64(tmp);
      if (ok) o.server_pid = static_cast<long>(tmp);
    } else if (a == "--json") ok = str(o.json_file);
    else if (a == "--threads") ok = capped(o.threads, 64);
    else if (a == "--ack-batch") ok = u64(o.ack_batch);
    else if (a == "--ack-delay-ms") ok = dbl(o.ack_delay_ms);
    else if (a == "--connect-concurrency") ok = u64(o.connect_concurrency);
    else if (a == "--source-addrs") ok = capped(o.source_addrs, 253);
    else if (a == "--user-prefix") ok = str(o.user_prefix);
    else if (a == "--timeout") ok = dbl(o.timeout_s);
    else if (a == "--stall") ok = dbl(o.stall_s);
    else if (a == "--slot-ms") ok = dbl(o.slot_ms);
    else if (a == "--no-chart") o.chart = false;
    else if (a == "--pairs-together") o.pairs_together = true;
    else if (a == "--pairs-mixed") o.pairs_mixed = true;
    else if (a == "--framing") {
      std::string v;
      ok = str(v);
      if (ok && v != "raw" && v != "beast") {
        error = "--framing is raw or beast";
        return std::nullopt;
      }
      o.raw_framing = v == "raw";
    }
    else if (a == "--progress") o.progress = true;
    else {
      error = fmt::format("unknown option '{}'", a);
      return std::nullopt;
    }
    if (!ok) return std::nullopt;
  }
  if (o.scenario.empty()) {
    error = "missing SCENARIO";
    return std::nullopt;
  }
  if (!kScenarios.count(o.scenario)) {
    error = fmt::format("unknown scenario '{}'", o.scenario);
    return std::nullopt;
  }
  if (o.url.empty()) {
    error = "--url is required";
    return std::nullopt;
  }
  if (o.jwt_secret_file.empty()) {
    error = "--jwt-secret-file is required";
    return std::nullopt;
  }
  auto t = parse_loopback_url(o.url, error);
  if (!t) return std::nullopt;
  o.target = *t;
  o.targets.push_back(*t);
  for (const auto& u : o.also_urls) {
    auto more = parse_loopback_url(u, error);
    if (!more) return std::nullopt;
    o.targets.push_back(*more);
  }
  return o;
}

bool apply_scenario_defaults(Options& o, std::string& error) {
  auto def = [](auto& v, auto d) {
    if (v == 0) v = d;
  };
  const std::string& s = o.scenario;
  if (s == "offline-burst") {
    def(o.users, 1000u);
    def(o.senders, 8u);
    def(o.window, 16u);
    def(o.messages, 1'000'000u);
  } else if (s == "signin-storm") {
    def(o.users, 10'000u);
    def(o.senders, 8u);
    def(o.window, 16u);
    def(o.queued, 100u);
    o.messages = o.users * o.queued;
  } else if (s == "chat") {
    def(o.users, 1000u);
    def(o.window, 4u);
    def(o.duration_s, 20.0);
  } else if (s == "presence-churn") {
    def(o.users, 200u);
    def(o.senders, 20u);
    def(o.window, 4u);
    def(o.duration_s, 10.0);
    def(o.churn_ms, 100.0);
  } else if (s == "idle") {
    def(o.users, 10'000u);
    def(o.duration_s, 10.0);
  } else if (s == "mixed") {
    def(o.users, 2000u);
    def(o.rate, 20'000.0);
    def(o.duration_s, 30.0);
  }
  def(o.threads, std::max(1u, std::thread::hardware_concurrency()));
  def(o.timeout_s, 600.0);
  if (o.users == 0 || o.users > 1'000'000) {
    error = "--users must be between 1 and 1,000,000";
    return false;
  }
  if (s == "chat" && o.users % 2 != 0) ++o.users;  // pairs
  if (o.body_bytes > 1'000'000) {
    error = "--body-bytes is at most 1,000,000";
    return false;
  }
  if (o.window > 100'000) {
    error = "--window is at most 100,000";
    return false;
  }
  if (o.messages > 1'000'000'000) {
    error = "--messages is at most 1e9";
    return false;
  }
  if (o.devices > 1 && (s == "idle" || s == "mixed")) {
    error = "--devices applies to offline-burst, signin-storm, chat and presence-churn";
    return false;
  }
  if (o.ack_batch == 0) o.ack_batch = 1;
  if (o.slot_ms < 10) o.slot_ms = 10;
  if (o.stall_s < 1) o.stall_s = 1;
  if (o.connect_concurrency == 0) o.connect_concurrency = 1;
  return true;
}

}  // namespace oms::load
