#include "tests/support/hostile.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "tests/support/json_util.h"
#include "tests/support/wait.h"
#include "tests/support/ws_client.h"

namespace oms::test {

double Latencies::percentile(double p) const {
  if (ms.empty()) return 0;
  std::vector<double> v = ms;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

Bystander::Bystander(const OmsdProcess& omsd, Options opts)
    : port_(omsd.client_port()), token_(omsd.token(opts.user)), opts_(std::move(opts)) {
  thread_ = std::thread([this] { run(); });
}

Bystander::~Bystander() { stop(); }

void Bystander::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool Bystander::wait_rounds(int n, std::chrono::milliseconds timeout) const {
  return wait_until([&] { return rounds_.load() >= n; }, timeout, std::chrono::milliseconds(2));
}

namespace {
double since_ms(SteadyClockTimePoint t0) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
}
void note(Latencies& l, std::string what) {
  ++l.failures;
  if (l.errors.size() < 5) l.errors.push_back(std::move(what));
}
}  // namespace

void Bystander::run() {
  const auto deadline = SteadyClock::now() + opts_.max_time;
  for (int round = 0; round < opts_.max_rounds && !stop_ && SteadyClock::now() < deadline; ++round) {
    WsClient c(opts_.request_timeout);
    auto t0 = SteadyClock::now();
    try {
      c.connect(port_);
      c.hello(token_);
      signins_.ms.push_back(since_ms(t0));
    } catch (const std::exception& e) {
      note(signins_, e.what());
      rounds_.fetch_add(1);
      continue;
    }
    std::string to = opts_.to;
    if (opts_.peers > 1)
      if (const auto at = to.find('@'); at != std::string::npos)
        to.insert(at, fmt::format("-{}", 1 + round % opts_.peers));
    for (int i = 0; i < opts_.sends_per_round && !stop_; ++i) {
      t0 = SteadyClock::now();
      try {
        auto r = c.send(to, "bystander");
        if (type_of(r) == "sent") sends_.ms.push_back(since_ms(t0));
        else note(sends_, to_text(r));
      } catch (const std::exception& e) {
        note(sends_, e.what());
        break;
      }
    }
    try {
      c.close();
    } catch (const std::exception&) {
    }
    rounds_.fetch_add(1);
  }
}

std::string Bystander::summary() const {
  std::string s = fmt::format("sign-in p99 {:.1f} ms, send p99 {:.1f} ms, {} failed ({} sign-ins, {} sends)",
                              signins_.p99(), sends_.p99(), signins_.failures + sends_.failures,
                              signins_.count(), sends_.count());
  // The first failure says why (the report keeps only the counts).
  if (!signins_.errors.empty()) s += "; first sign-in failure: " + signins_.errors.front();
  if (!sends_.errors.empty()) s += "; first send failure: " + sends_.errors.front();
  return s;
}

int fill_mailbox(const OmsdProcess& omsd, std::string_view from, std::string_view to, int n,
                 std::size_t body_bytes, int in_flight) {
  WsClient c(std::chrono::seconds(60));
  c.connect(omsd.client_port());
  c.hello(omsd.token(from));
  const std::string body(body_bytes, 'f');
  std::deque<boost::json::value> rids;
  int next = 0, sent = 0;
  while (sent < n) {
    while (next < n && static_cast<int>(rids.size()) < in_flight) {
      const boost::json::value rid = c.next_rid();
      c.send_json(Json{{"type", "send"}, {"rid", rid}, {"to", to}, {"body", body},
                       {"client_msg_id", fmt::format("fill-{}", next)}});
      rids.push_back(rid);
      ++next;
    }
    const Json r = c.reply(rids.front());
    rids.pop_front();
    if (type_of(r) != "sent") break;
    ++sent;
  }
  c.close();
  return sent;
}

std::int64_t rss_kib(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoll(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

void hostile_report(const std::string& attack, const std::string& bound, const std::string& measured,
                    const std::string& bystander) {
  const std::string row = fmt::format("{}|{}|{}|{}", attack, bound, measured, bystander);
  std::cout << "[hostile] " << row << std::endl;
  if (const char* path = std::getenv("OMS_HOSTILE_REPORT"); path && *path) {
    std::ofstream(path, std::ios::app) << row << '\n';
  }
}

}  // namespace oms::test
