#include "tests/support/omsd_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>

#include <boost/json/parse.hpp>
#include <doctest/doctest.h>

#include "tests/support/json_util.h"
#include "tests/support/process.h"
#include "tests/support/tls_client.h"
#include "tests/support/tokens.h"
#include "tests/support/wait.h"

namespace oms::test {
namespace {

std::atomic<bool> g_test_failed{false};

// Tracks whether the running test case has a failed assertion, so server
// logs are printed exactly for failing tests.
struct FailureListener : doctest::IReporter {
  explicit FailureListener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override { g_test_failed = false; }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override { g_test_failed = true; }
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData& ad) override {
    if (ad.m_failed && !(ad.m_at & doctest::assertType::is_warn)) g_test_failed = true;
  }
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

std::string trim_right(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  return s;
}

struct Ports {
  int client = 0;
  int admin = 0;
  bool admin_tls = false;
};

std::optional<Ports> read_ports(const std::filesystem::path& file) {
  const std::string text = read_file(file);
  if (text.empty()) return std::nullopt;
  boost::system::error_code ec;
  const auto v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  const auto* c = o.if_contains("client");
  const auto* a = o.if_contains("admin");
  if (c == nullptr || a == nullptr || !c->is_number() || !a->is_number()) return std::nullopt;
  const int cp = static_cast<int>(c->to_number<std::int64_t>());
  const int ap = static_cast<int>(a->to_number<std::int64_t>());
  if (cp <= 0 || cp > 65535 || ap <= 0 || ap > 65535) return std::nullopt;
  const auto* tls = o.if_contains("admin_tls");
  return Ports{cp, ap, tls != nullptr && tls->is_bool() && tls->get_bool()};
}

}  // namespace
}  // namespace oms::test

DOCTEST_REGISTER_LISTENER("oms-failure-tracker", 1, oms::test::FailureListener);

namespace oms::test {

std::string binary_from_env(const char* name, const char* built) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : std::string(built);
}

OmsdOptions with_config(std::string toml) {
  OmsdOptions o;
  o.config_toml = std::move(toml);
  return o;
}

OmsdOptions with_args(std::vector<std::string> args) {
  OmsdOptions o;
  o.extra_args = std::move(args);
  return o;
}

bool current_test_failed() { return g_test_failed.load(); }

std::filesystem::path write_config_file(const std::filesystem::path& file, std::string_view toml) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << toml;
  if (!out) throw TestError("cannot write " + file.string());
  return file;
}

OmsdProcess::OmsdProcess(OmsdOptions opts) : opts_(std::move(opts)), root_("omsd-it") {
  ::signal(SIGPIPE, SIG_IGN);  // a write to a closed socket must fail, not kill the tests
  if (omsd_binary_path().empty()) throw TestError("the omsd binary path is empty");
  data_dir_ = opts_.data_dir.empty() ? root_.path() / "data" : opts_.data_dir;
  std::filesystem::create_directories(data_dir_);
  if (!opts_.config_toml.empty())
    config_file_ = write_config_file(root_.path() / "omsd.toml", opts_.config_toml);
  start();
}

OmsdProcess::~OmsdProcess() {
  if (current_test_failed() || std::uncaught_exceptions() > 0) print_stderr_tail();
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

std::filesystem::path OmsdProcess::config_file() const { return config_file_; }
std::filesystem::path OmsdProcess::stderr_file() const { return root_.path() / "omsd.stderr.log"; }

void OmsdProcess::start() {
  std::vector<std::string> argv = {omsd_binary_path(),      "--data-dir",     data_dir_.string(),
                                   "--listen",     "127.0.0.1:0",    "--admin-listen",
                                   "127.0.0.1:0"};
  if (!config_file_.empty()) {
    argv.push_back("--config");
    argv.push_back(config_file_.string());
  }
  argv.insert(argv.end(), opts_.extra_args.begin(), opts_.extra_args.end());

  const auto ports_file = data_dir_ / "ports.json";
  std::error_code ec;
  std::filesystem::remove(ports_file, ec);
  {
    std::ofstream marker(stderr_file(), std::ios::app);
    marker << "---- test harness: starting omsd (pid follows) ----\n";
  }
  pid_ = spawn_process(argv, stderr_file());
  client_port_ = admin_port_ = 0;

  std::optional<int> exited;
  std::optional<Ports> ports;
  const bool got_ports = wait_until(
      [&] {
        if ((exited = try_reap(pid_))) return true;
        return (ports = read_ports(ports_file)).has_value();
      },
      opts_.start_timeout);
  if (exited) {
    pid_ = -1;
    throw TestError("omsd exited with status " + std::to_string(*exited) +
                    " during start-up; its output:\n" + stderr_tail(40));
  }
  if (!got_ports)
    throw TestError("omsd did not write a valid " + ports_file.string() + " within " +
                    std::to_string(opts_.start_timeout.count()) + " ms; its output:\n" +
                    stderr_tail(40));
  client_port_ = static_cast<std::uint16_t>(ports->client);
  admin_port_ = static_cast<std::uint16_t>(ports->admin);
  admin_tls_ = ports->admin_tls;

  AdminClient probe(admin_port_, "", std::chrono::seconds(2));
  int last_status = 0;
  std::string last_error;
  const bool ready = wait_until(
      [&] {
        if ((exited = try_reap(pid_))) return true;
        try {
          // HTTPS admin listener (tls.admin): the probe checks no certificate.
          last_status = admin_tls_ ? https_request(admin_port_, "GET", "/readyz", "", TlsTrust{}).status
                                   : probe.get("/readyz", Auth::none()).status;
        } catch (const std::exception& e) {
          last_error = e.what();
          return false;
        }
        return last_status == 200 || (!opts_.wait_ready && last_status != 0);
      },
      opts_.start_timeout, milliseconds(10));
  if (exited) {
    pid_ = -1;
    throw TestError("omsd exited with status " + std::to_string(*exited) +
                    " before /readyz; its output:\n" + stderr_tail(40));
  }
  if (!ready)
    throw TestError("omsd /readyz not 200 within the deadline (last status " +
                    std::to_string(last_status) + ", " + last_error + "); output:\n" +
                    stderr_tail(40));
}

bool OmsdProcess::running() {
  if (pid_ <= 0) return false;
  if (try_reap(pid_)) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::string OmsdProcess::jwt_secret() const { return trim_right(read_file(data_dir_ / "jwt.secret")); }
std::string OmsdProcess::admin_token() const { return trim_right(read_file(data_dir_ / "admin.token")); }
std::string OmsdProcess::admin_url() const {
  return (admin_tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(admin_port_);
}

std::string OmsdProcess::token(std::string_view user, std::chrono::seconds ttl) const {
  return mint_token(jwt_secret(), user, ttl);
}

AdminClient OmsdProcess::admin() const { return AdminClient(admin_port_, admin_token()); }

void OmsdProcess::signal(int sig) {
  if (pid_ <= 0) throw TestError("omsd is not running");
  ::kill(pid_, sig);
}

int OmsdProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) throw TestError("omsd is not running");
  const auto status = oms::test::wait_exit(pid_, timeout);
  if (!status) {
    ::kill(pid_, SIGKILL);
    oms::test::wait_exit(pid_, std::chrono::seconds(5));
    pid_ = -1;
    throw TestError("omsd did not exit within " + std::to_string(timeout.count()) +
                    " ms (killed); output:\n" + stderr_tail(40));
  }
  pid_ = -1;
  return *status;
}

int OmsdProcess::stop(int sig, std::chrono::milliseconds timeout) {
  signal(sig);
  return wait_exit(timeout);
}

void OmsdProcess::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  oms::test::wait_exit(pid_, std::chrono::seconds(10));
  pid_ = -1;
}

void OmsdProcess::restart() {
  if (running()) stop(SIGTERM);
  start();
}

std::string OmsdProcess::stderr_tail(std::size_t max_lines) const {
  return file_tail(stderr_file(), max_lines);
}

void OmsdProcess::print_stderr_tail(std::size_t max_lines) const {
  std::cerr << "==== omsd output (last " << max_lines << " lines, " << stderr_file().string()
            << ") ====\n"
            << stderr_tail(max_lines) << "==== end of omsd output ====\n";
}

}  // namespace oms::test
