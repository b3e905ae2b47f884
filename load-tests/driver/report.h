// What a scenario reports: a human table on stdout, every figure as JSON
// (--json FILE) and a throughput/latency-over-time chart beside the JSON
// (PNG via gnuplot when it is installed, else an SVG drawn here).
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "load-tests/driver/histogram.h"
#include "load-tests/driver/options.h"
#include "load-tests/driver/stats.h"
#include "load-tests/driver/verify.h"

namespace oms::load {

class Report {
 public:
  explicit Report(const Options& opt);

  // Human table: rows grouped under section titles.
  void section(std::string title);
  void row(std::string label, std::string value);

  // JSON: root[group][key] = value (group "" = the root).
  void set(std::string_view group, std::string_view key, boost::json::value v);
  // A figure in both: the table row "label  value unit" and root[group][key].
  void figure(std::string_view group, std::string_view key, std::string label, double value,
              std::string_view unit, int decimals = 0);
  void count(std::string_view group, std::string_view key, std::string label, std::uint64_t value);
  // p50/p90/p99/p99.9/max/mean in ms (JSON) and one table row.
  void latency(std::string_view key, std::string label, const LatencyHistogram& h);

  void add_verdict(const Verdict& v, const WorkerStats& stats);
  void add_errors(const WorkerStats& stats);
  // Receipts received, by state, and their checks (JSON "receipts").
  void add_receipts(const Verdict& v, const WorkerStats& stats);
  // Per-slot throughput and latency percentiles (JSON "timeline").
  void add_timeline(const WorkerStats& stats, const Options& opt, std::string latency_label);

  void fail(std::string why) { failures_.push_back(std::move(why)); }
  bool ok() const { return failures_.empty(); }
  const std::vector<std::string>& failures() const { return failures_; }

  void print(std::FILE* out) const;
  // Writes the JSON and the chart beside it; false with `error` on failure.
  bool write(const Options& opt, std::string& error);

 private:
  struct Section {
    std::string title;
    std::vector<std::pair<std::string, std::string>> rows;
  };
  std::vector<Section> sections_;
  boost::json::object root_;
  std::vector<std::string> failures_;
  std::string latency_label_;
};

std::string fmt_rate(double per_s);   // "123,456/s"
std::string fmt_count(std::uint64_t n);  // "1,234,567"
std::string fmt_ms(std::uint64_t ns);   // "1.234 ms"

}  // namespace oms::load
