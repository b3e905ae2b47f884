// Child processes for tests: spawning with output to a file, running a
// command to completion with captured output, and waiting with deadlines.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace oms::test {

// Starts argv[0] with argv, stdin from /dev/null, stdout and stderr appended
// to `log_file`, no other inherited descriptors, and SIGKILL on the death of
// the calling thread (so a crashed test leaves no server behind).
pid_t spawn_process(const std::vector<std::string>& argv, const std::filesystem::path& log_file);

// Reaps `pid` if it has exited: the decoded status (exit code, or -signal),
// nullopt while it is still running.
std::optional<int> try_reap(pid_t pid);
// Waits up to `timeout` for `pid` to exit: the decoded status or nullopt.
std::optional<int> wait_exit(pid_t pid, std::chrono::milliseconds timeout);

struct CommandResult {
  int exit_code = -1;  // exit status, or -signal
  std::string out;
  std::string err;
  bool timed_out = false;
};

// Runs argv to completion (killed after `timeout`) and captures its output.
CommandResult run_command(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(20));

// The last `max_lines` lines of a text file ("" when it does not exist).
std::string file_tail(const std::filesystem::path& file, std::size_t max_lines);
// The whole file ("" when it does not exist).
std::string read_file(const std::filesystem::path& file);

}  // namespace oms::test
