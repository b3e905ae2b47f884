// Small helpers shared by the reliability programs: flag parsing, a
// deterministic random source, percentiles and the Markdown report fragment
// each program writes (tests/reliability/run joins them into REPORT.md).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace oms::reliability {

// --name=value flags (and --name for booleans). Unknown flags are an error.
class Flags {
 public:
  Flags(int argc, char** argv, std::map<std::string, std::string> defaults)
      : values_(std::move(defaults)) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) throw std::invalid_argument("unexpected argument: " + a);
      a = a.substr(2);
      std::string value = "true";
      if (auto eq = a.find('='); eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
      }
      if (!values_.count(a)) throw std::invalid_argument("unknown flag --" + a);
      values_[a] = value;
    }
  }
  std::string str(const std::string& k) const { return values_.at(k); }
  std::uint64_t num(const std::string& k) const { return std::stoull(values_.at(k)); }
  bool flag(const std::string& k) const {
    const auto& v = values_.at(k);
    return v == "true" || v == "1" || v == "yes";
  }
  std::string usage() const {
    std::string s;
    for (const auto& [k, v] : values_) s += "  --" + k + "=" + v + "\n";
    return s;
  }

 private:
  std::map<std::string, std::string> values_;
};

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

// A table of figures: (name, value, requirement) rows, printed to stdout and
// written as a Markdown fragment.
class Figures {
 public:
  explicit Figures(std::string title) : title_(std::move(title)) {}
  void add(std::string name, std::string value, std::string requirement = "") {
    rows_.push_back({std::move(name), std::move(value), std::move(requirement)});
  }
  void add(std::string name, std::uint64_t value, std::string requirement = "") {
    add(std::move(name), std::to_string(value), std::move(requirement));
  }
  void note(std::string line) { notes_.push_back(std::move(line)); }
  void verdict(bool pass) { pass_ = pass; }

  void print() const {
    std::cout << "== " << title_ << ": " << (pass_ ? "PASS" : "FAIL") << "\n";
    for (const auto& r : rows_)
      std::cout << "  " << r[0] << " = " << r[1] << (r[2].empty() ? "" : "   (" + r[2] + ")")
                << "\n";
    for (const auto& n : notes_) std::cout << "  note: " << n << "\n";
  }
  void write_markdown(const std::string& path) const {
    if (path.empty()) return;
    std::ofstream out(path, std::ios::trunc);
    out << "### " << title_ << " — " << (pass_ ? "PASS" : "**FAIL**") << "\n\n";
    out << "| figure | value | required |\n| --- | ---: | --- |\n";
    for (const auto& r : rows_) out << "| " << r[0] << " | " << r[1] << " | " << r[2] << " |\n";
    out << "\n";
    for (const auto& n : notes_) out << "- " << n << "\n";
    if (!notes_.empty()) out << "\n";
  }

 private:
  std::string title_;
  std::vector<std::array<std::string, 3>> rows_;
  std::vector<std::string> notes_;
  bool pass_ = false;
};

inline std::uint64_t default_seed() {
  if (const char* s = std::getenv("OMS_RELIABILITY_SEED")) return std::strtoull(s, nullptr, 10);
  return static_cast<std::uint64_t>(
      std::chrono::steady_clock::now().time_since_epoch().count());
}

}  // namespace oms::reliability
