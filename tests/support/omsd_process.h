// The real omsd binary (OMSD_PATH) as a child process on 127.0.0.1 port 0
// with its own temporary data dir.
//
// Start-up waits (with a deadline) for DATA_DIR/ports.json to appear and
// parse, then for GET /readyz == 200. The destructor kills the server if it
// is still running; when the current test case has failed it prints the tail
// of the server's stderr first. Not thread-safe (one test thread).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/admin_client.h"
#include "tests/support/temp_dir.h"

namespace oms::test {

// Paths of the binaries under test. Defined by the test executable (which is
// compiled with the OMSD_PATH and OMSCTL_PATH definitions), not by this
// library; omsctl's path is empty when it was not built.
std::string omsd_binary_path();
std::string omsctl_binary_path();
// The environment variable `name` when it is set and not empty, else
// `built`: how a test program lets OMS_TEST_OMSD / OMS_TEST_OMSCTL point it
// at another build's binaries (CI's sanitizer phase).
std::string binary_from_env(const char* name, const char* built);

struct OmsdOptions {
  // TOML written to <root>/omsd.toml and passed with --config when non-empty.
  std::string config_toml;
  // Appended after the standard arguments on every (re)start.
  std::vector<std::string> extra_args;
  std::chrono::milliseconds start_timeout = std::chrono::seconds(20);
  // The data dir (created when absent); empty = <root>/data. The hostile
  // full-disk test puts it on a small tmpfs.
  std::filesystem::path data_dir;
  // Start-up waits for GET /readyz == 200 (true) or only for ports.json and
  // an answering /readyz, whatever its status (false: an omsd started on a
  // full disk is up but not ready).
  bool wait_ready = true;
};

// Options with just a TOML config / just extra arguments.
OmsdOptions with_config(std::string toml);
OmsdOptions with_args(std::vector<std::string> args);

// Writes `toml` to `file` (a helper for --config files).
std::filesystem::path write_config_file(const std::filesystem::path& file, std::string_view toml);

// True once an assertion of the running doctest test case has failed.
bool current_test_failed();

class OmsdProcess {
 public:
  explicit OmsdProcess(OmsdOptions opts = {});
  ~OmsdProcess();
  OmsdProcess(const OmsdProcess&) = delete;
  OmsdProcess& operator=(const OmsdProcess&) = delete;

  std::uint16_t client_port() const { return client_port_; }
  std::uint16_t admin_port() const { return admin_port_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  const std::filesystem::path& root_dir() const { return root_.path(); }
  std::filesystem::path config_file() const;  // empty when no config was given
  pid_t pid() const { return pid_; }
  bool running();

  // DATA_DIR/jwt.secret and DATA_DIR/admin.token, trailing whitespace trimmed.
  std::string jwt_secret() const;
  std::string admin_token() const;
  std::string admin_url() const;  // http://127.0.0.1:PORT (https:// with tls.admin)
  bool admin_tls() const { return admin_tls_; }  // from ports.json

  // A valid client token for `user`, signed with the server's secret.
  std::string token(std::string_view user, std::chrono::seconds ttl = std::chrono::hours(1)) const;
  // An admin client with the server's admin token.
  AdminClient admin() const;

  // Sends `sig` (SIGTERM by default) and waits for the exit: the exit code,
  // or -signal. Kills with SIGKILL and throws if it does not exit in time.
  int stop(int sig = 15 /*SIGTERM*/, std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Just sends `sig` (the caller then talks to clients and calls wait_exit).
  void signal(int sig);
  int wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // SIGKILL and reap.
  void kill();
  // Starts again on the same data dir (stale ports.json removed first);
  // stops with SIGTERM first if still running. New ports are picked.
  void restart();

  // The last lines the server wrote to stderr/stdout (all starts).
  std::string stderr_tail(std::size_t max_lines = 60) const;
  void print_stderr_tail(std::size_t max_lines = 60) const;
  std::filesystem::path stderr_file() const;

 private:
  void start();

  OmsdOptions opts_;
  TempDir root_;
  std::filesystem::path data_dir_;
  std::filesystem::path config_file_;
  pid_t pid_ = -1;
  std::uint16_t client_port_ = 0;
  std::uint16_t admin_port_ = 0;
  bool admin_tls_ = false;
};

}  // namespace oms::test
