// The scenarios of oms-load. Each one runs against the server named by
// opt.url, prints its table, writes --json, and returns the exit status
// (0 = every check passed, 1 = a check or a phase failed).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "load-tests/driver/clock.h"
#include "load-tests/driver/connection.h"
#include "load-tests/driver/options.h"
#include "load-tests/driver/report.h"
#include "load-tests/driver/run.h"
#include "load-tests/driver/verify.h"

namespace oms::load {

int run_offline_burst(const Options& opt, const std::string& secret);  // also signin-storm
int run_chat(const Options& opt, const std::string& secret);
int run_presence_churn(const Options& opt, const std::string& secret);
int run_idle(const Options& opt, const std::string& secret);
int run_mixed(const Options& opt, const std::string& secret);

// ---- shared by the scenarios ----

// A copy of `o` whose user prefix, when none was given, is `tag` and the pid
// (so runs against one server do not share users).
Options with_user_prefix(const Options& o, std::string_view tag);

// VmRSS of a process in KiB (from /proc/PID/status).
std::optional<std::uint64_t> read_rss_kib(long pid);

// Waits until `count` sign-ins starting now have settled (welcomed or given up).
bool wait_signed_in(Run& run, std::string_view what, std::uint64_t target_signed_in);

// Stops the run, verifies, adds the common figures, prints the table and
// writes the JSON + chart. `extra` runs after the merge (for figures that need
// the merged statistics or the users). Returns the exit status.
int finish(Run& run, Report& rep, const VerifyOptions& vopts, const std::string& latency_label,
           const std::function<void(WorkerStats&)>& extra);

// Open-loop sending: the senders [first, first+count) together send at `rate`
// messages per second (evenly spaced, split over the workers), each to
// hooks->next_target(sender), until it returns nullopt. Latency counts from
// the intended time of each send. Returns a flag that is set when every
// worker has finished.
struct OpenLoop {
  std::atomic<std::size_t> finished{0};
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::int64_t> max_lag_ns{0};
  // Every pacer has stopped (seen the stop, or run out of sends): no send is
  // being made any more.
  bool stopped(const Run& run) const { return finished.load() >= run.worker_count(); }
};
std::shared_ptr<OpenLoop> start_open_loop(Run& run, std::uint32_t first, std::uint32_t count, double rate);

// Closed-loop sending: every signed-in sender of [first, first+count) keeps
// `window` sends in flight while hooks->next_target gives recipients.
void start_closed_loop(Run& run, std::uint32_t first, std::uint32_t count, std::size_t window);

// The senders [first, first+count) start: open loop at opt.rate when it is
// set (returns the pacers), else closed loop with opt.window (returns null).
std::shared_ptr<OpenLoop> start_sending(Run& run, std::uint32_t first, std::uint32_t count, const Options& opt);

// Waits until every send has had its reply and, with `deliveries`, every
// acknowledged message has reached its recipient. With `pacers`, it first
// waits until every pacer has seen the stop (one may be making a last send).
bool wait_all_answered(Run& run, std::string_view what, const OpenLoop* pacers, bool deliveries);

// With --receipts on: waits until every stored or missed message's receipt
// has reached every device of its sender (the senders must be signed in).
bool wait_receipts(Run& run, std::string_view what);

// Session figures: connect, hello->welcome, sign-in, drops.
void add_session_figures(Report& rep, const WorkerStats& stats);

}  // namespace oms::load
