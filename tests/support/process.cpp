#include "tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/json_util.h"
#include "tests/support/wait.h"

namespace oms::test {
namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1000;
}

std::vector<char*> c_argv(std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (auto& a : argv) out.push_back(a.data());
  out.push_back(nullptr);
  return out;
}

// In the child, between fork and exec: async-signal-safe calls only.
void close_fds_from(int first) {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, static_cast<unsigned>(first), ~0u, 0) == 0) return;
#endif
  for (int fd = first; fd < 4096; ++fd) ::close(fd);
}

[[noreturn]] void exec_child(pid_t parent, char* const* argv, int in_fd, int out_fd, int err_fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  ::dup2(in_fd, 0);
  ::dup2(out_fd, 1);
  ::dup2(err_fd, 2);
  close_fds_from(3);
  ::execv(argv[0], argv);
  static const char msg[] = "exec failed\n";
  ssize_t ignored = ::write(2, msg, sizeof msg - 1);
  (void)ignored;
  ::_exit(127);
}

}  // namespace

pid_t spawn_process(const std::vector<std::string>& argv_in, const std::filesystem::path& log_file) {
  std::vector<std::string> argv = argv_in;
  std::vector<char*> cargv = c_argv(argv);
  const int log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw TestError("open " + log_file.string() + ": " + std::strerror(errno));
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) exec_child(parent, cargv.data(), null_fd, log_fd, log_fd);
  const int fork_errno = errno;
  ::close(log_fd);
  ::close(null_fd);
  if (pid < 0) throw TestError(std::string("fork: ") + std::strerror(fork_errno));
  return pid;
}

std::optional<int> try_reap(pid_t pid) {
  int status = 0;
  const pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid) return decode_status(status);
  if (r < 0 && errno == ECHILD) return -1000;  // not ours / already reaped
  return std::nullopt;
}

std::optional<int> wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  std::optional<int> status;
  wait_until([&] { return (status = try_reap(pid)).has_value(); }, timeout, milliseconds(2));
  return status;
}

CommandResult run_command(const std::vector<std::string>& argv_in, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = argv_in;
  std::vector<char*> cargv = c_argv(argv);
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
    throw TestError(std::string("pipe: ") + std::strerror(errno));
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) exec_child(parent, cargv.data(), null_fd, out_pipe[1], err_pipe[1]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(null_fd);
  if (pid < 0) throw TestError("fork failed");

  CommandResult res;
  const auto deadline = SteadyClock::now() + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&res.out, &res.err};
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) {
      res.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    const int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  res.exit_code = decode_status(status);
  return res;
}

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string file_tail(const std::filesystem::path& file, std::size_t max_lines) {
  const std::string all = read_file(file);
  std::size_t pos = all.size();
  std::size_t lines = 0;
  if (pos > 0 && all[pos - 1] == '\n') --pos;
  while (pos > 0) {
    if (all[pos - 1] == '\n' && ++lines == max_lines) break;
    --pos;
  }
  return all.substr(pos);
}

}  // namespace oms::test
