#include "load-tests/driver/report.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>

namespace oms::load {

namespace json = boost::json;

namespace {

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }
double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

std::string thousands(std::uint64_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

bool on_path(const char* prog) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    if (::access((dir + "/" + prog).c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

// The timeline as plain series (shared by the JSON, gnuplot and SVG).
struct Series {
  double slot_s = 0.2;
  std::vector<double> t, sent, received, errors, signins, p50, p99, pmax;
};

Series series_from(const json::object& root) {
  Series s;
  const auto* tl = root.if_contains("timeline");
  if (!tl || !tl->is_object()) return s;
  const auto& o = tl->as_object();
  auto arr = [&](const char* k, std::vector<double>& out) {
    if (const auto* a = o.if_contains(k); a && a->is_array())
      for (const auto& x : a->as_array()) out.push_back(x.is_number() ? x.to_number<double>() : NAN);
  };
  if (const auto* v = o.if_contains("slot_ms"); v && v->is_number()) s.slot_s = v->to_number<double>() / 1000.0;
  arr("t_s", s.t);
  arr("sent_per_s", s.sent);
  arr("received_per_s", s.received);
  arr("errors_per_s", s.errors);
  arr("signins_per_s", s.signins);
  arr("latency_p50_ms", s.p50);
  arr("latency_p99_ms", s.p99);
  arr("latency_max_ms", s.pmax);
  return s;
}

std::string nice_num(double v) {
  if (v >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.0f}k", v / 1e3);
  if (v >= 10) return fmt::format("{:.0f}", v);
  return fmt::format("{:.2g}", v);
}

// A simple two-panel SVG: throughput (linear) over latency percentiles (log).
std::string svg_chart(const Series& s, const std::string& title, const std::string& lat_label) {
  const double W = 960, H = 640, L = 80, R = 160, top1 = 50, bot1 = 300, top2 = 360, bot2 = 590;
  const double tmax = s.t.empty() ? 1.0 : std::max(1e-9, s.t.back() + s.slot_s);
  auto X = [&](double t) { return L + (W - L - R) * t / tmax; };
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" "
      "font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"24\" font-size=\"16\">{}</text>\n",
      W, H, L, xml_escape(title));
  auto frame = [&](double top, double bot, const char* ylabel) {
    out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n",
                       L, top, W - L - R, bot - top);
    out += fmt::format("<text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">{}</text>\n",
                       (top + bot) / 2, (top + bot) / 2, ylabel);
    for (int i = 0; i <= 10; ++i) {
      const double t = tmax * i / 10;
      out += fmt::format("<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#ddd\"/>"
                         "<text x=\"{0}\" y=\"{3}\" text-anchor=\"middle\">{4:.1f}</text>\n",
                         X(t), top, bot, bot + 14, t);
    }
  };
  auto polyline = [&](const std::vector<double>& ys, auto Y, const char* color) {
    std::string pts;
    for (std::size_t i = 0; i < ys.size() && i < s.t.size(); ++i) {
      if (std::isnan(ys[i])) continue;
      pts += fmt::format("{:.1f},{:.1f} ", X(s.t[i] + s.slot_s / 2), Y(ys[i]));
    }
    if (!pts.empty())
      out += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n", color, pts);
  };
  auto legend = [&](double y, const char* color, const std::string& name) {
    out += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"{3}\" stroke-width=\"3\"/>"
                       "<text x=\"{4}\" y=\"{5}\">{6}</text>\n",
                       W - R + 10, W - R + 30, y, color, W - R + 36, y + 4, xml_escape(name));
  };
  // A panel's curves with their legend (in the order given, from `top`); the
  // curves are drawn in `draw_order` (a permutation of 0..2: the last on top).
  struct Curve {
    const std::vector<double>& ys;
    const char* color;
    const char* name;
  };
  auto curves = [&](const Curve (&cs)[3], auto Y, double top, const int (&draw_order)[3]) {
    for (int i : draw_order) polyline(cs[i].ys, Y, cs[i].color);
    for (int i = 0; i < 3; ++i) legend(top + 10 + 20 * i, cs[i].color, cs[i].name);
  };

  // Panel 1: throughput.
  frame(top1, bot1, "messages / s");
  double ymax = 1;
  for (const auto* v : {&s.sent, &s.received, &s.signins})
    for (double x : *v) ymax = std::max(ymax, x);
  ymax *= 1.1;
  auto Y1 = [&](double y) { return bot1 - (bot1 - top1) * y / ymax; };
  for (int i = 0; i <= 4; ++i) {
    const double y = ymax * i / 4;
    out += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"#eee\"/>"
                       "<text x=\"{3}\" y=\"{4}\" text-anchor=\"end\">{5}</text>\n",
                       L, W - R, Y1(y), L - 4, Y1(y) + 4, nice_num(y));
  }
  curves({{s.sent, "#1f77b4", "sent (acked) / s"},
          {s.received, "#2ca02c", "received / s"},
          {s.signins, "#ff7f0e", "sign-ins / s"}},
         Y1, top1, {0, 1, 2});

  // Panel 2: latency, log scale.
  frame(top2, bot2, (lat_label + " (ms, log)").c_str());
  double lo = 1e18, hi = 0;
  for (const auto* v : {&s.p50, &s.p99, &s.pmax})
    for (double x : *v)
      if (x > 0 && !std::isnan(x)) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
  if (hi <= 0) {
    lo = 0.01;
    hi = 1;
  }
  const double dlo = std::floor(std::log10(lo)), dhi = std::max(dlo + 1, std::ceil(std::log10(hi)));
  auto Y2 = [&](double y) {
    const double l = std::log10(std::max(y, std::pow(10.0, dlo)));
    return bot2 - (bot2 - top2) * (l - dlo) / (dhi - dlo);
  };
  for (double d = dlo; d <= dhi; d += 1) {
    const double y = std::pow(10.0, d);
    out += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"#eee\"/>"
                       "<text x=\"{3}\" y=\"{4}\" text-anchor=\"end\">{5:g}</text>\n",
                       L, W - R, Y2(y), L - 4, Y2(y) + 4, y);
  }
  // p50 drawn last, on top.
  curves({{s.p50, "#1f77b4", "p50"}, {s.p99, "#d62728", "p99"}, {s.pmax, "#999999", "max"}}, Y2, top2,
         {2, 1, 0});
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">time since start (s)</text>\n",
                     (L + W - R) / 2, H - 12);
  out += "</svg>\n";
  return out;
}

bool write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  return static_cast<bool>(f);
}

// PNG through gnuplot; false when gnuplot is missing or fails.
bool gnuplot_chart(const Series& s, const std::string& base, const std::string& title,
                   const std::string& lat_label) {
  if (!on_path("gnuplot") || s.t.empty()) return false;
  std::string dat;
  for (std::size_t i = 0; i < s.t.size(); ++i) {
    auto at = [&](const std::vector<double>& v) { return i < v.size() && !std::isnan(v[i]) ? v[i] : NAN; };
    dat += fmt::format("{} {} {} {} {} {} {}\n", s.t[i], at(s.sent), at(s.received), at(s.signins),
                       at(s.p50), at(s.p99), at(s.pmax));
  }
  if (!write_file(base + ".dat", dat)) return false;
  const std::string gp = fmt::format(
      "set terminal pngcairo size 1000,700\nset output '{0}.png'\nset datafile missing 'nan'\n"
      "set multiplot layout 2,1 title '{1}'\nset grid\nset ylabel 'messages/s'\n"
      "plot '{0}.dat' u 1:2 w l t 'sent/s', '' u 1:3 w l t 'received/s', '' u 1:4 w l t 'sign-ins/s'\n"
      "set logscale y\nset ylabel '{2} (ms)'\nset xlabel 'time since start (s)'\n"
      "plot '{0}.dat' u 1:5 w l t 'p50', '' u 1:6 w l t 'p99', '' u 1:7 w l t 'max'\nunset multiplot\n",
      base, title, lat_label);
  if (!write_file(base + ".gp", gp)) return false;
  const std::string cmd = fmt::format("gnuplot '{}.gp' >/dev/null 2>&1", base);
  const int rc = std::system(cmd.c_str());
  std::remove((base + ".gp").c_str());
  return rc == 0 && ::access((base + ".png").c_str(), R_OK) == 0;
}

}  // namespace

std::string fmt_rate(double per_s) { return thousands(static_cast<std::uint64_t>(std::llround(per_s))) + "/s"; }
std::string fmt_count(std::uint64_t n) { return thousands(n); }
std::string fmt_ms(std::uint64_t ns) { return fmt::format("{:.3f} ms", ms(ns)); }

Report::Report(const Options& opt) {
  root_["scenario"] = opt.scenario;
  json::object params;
  params["url"] = opt.url;
  params["users"] = opt.users;
  params["senders"] = opt.senders;
  params["messages"] = opt.messages;
  params["queued"] = opt.queued;
  params["body_bytes"] = opt.body_bytes;
  params["window"] = opt.window;
  params["duration_s"] = opt.duration_s;
  params["rate"] = opt.rate;
  params["churn_ms"] = opt.churn_ms;
  params["threads"] = opt.threads;
  params["ack_batch"] = opt.ack_batch;
  params["ack_delay_ms"] = opt.ack_delay_ms;
  params["connect_concurrency"] = opt.connect_concurrency;
  params["source_addrs"] = opt.source_addrs;
  params["user_prefix"] = opt.user_prefix;
  params["devices"] = opt.devices;
  params["device_names"] = opt.named_devices();
  params["receipts"] = opt.receipts;
  root_["params"] = std::move(params);
}

void Report::section(std::string title) { sections_.push_back({std::move(title), {}}); }

void Report::row(std::string label, std::string value) {
  if (sections_.empty()) section("");
  sections_.back().rows.emplace_back(std::move(label), std::move(value));
}

void Report::set(std::string_view group, std::string_view key, json::value v) {
  if (group.empty()) {
    root_[key] = std::move(v);
    return;
  }
  auto& g = root_[group];
  if (!g.is_object()) g = json::object();
  g.as_object()[key] = std::move(v);
}

void Report::figure(std::string_view group, std::string_view key, std::string label, double value,
                    std::string_view unit, int decimals) {
  set(group, key, std::isfinite(value) ? json::value(round3(value)) : json::value(nullptr));
  std::string v = decimals == 0 ? thousands(static_cast<std::uint64_t>(std::llround(std::max(0.0, value))))
                                : fmt::format("{:.{}f}", value, decimals);
  if (!unit.empty()) v += std::string(unit == "/s" ? "" : " ") + std::string(unit);
  row(std::move(label), std::move(v));
}

void Report::count(std::string_view group, std::string_view key, std::string label, std::uint64_t value) {
  set(group, key, value);
  row(std::move(label), thousands(value));
}

void Report::latency(std::string_view key, std::string label, const LatencyHistogram& h) {
  json::object o;
  o["count"] = h.count();
  o["p50_ms"] = round3(ms(h.quantile(0.50)));
  o["p90_ms"] = round3(ms(h.quantile(0.90)));
  o["p99_ms"] = round3(ms(h.quantile(0.99)));
  o["p999_ms"] = round3(ms(h.quantile(0.999)));
  o["max_ms"] = round3(ms(h.max()));
  o["mean_ms"] = round3(h.mean() / 1e6);
  set("latency", key, std::move(o));
  if (h.count() == 0) {
    row(std::move(label), "(none)");
    return;
  }
  row(std::move(label),
      fmt::format("p50 {:.3f} / p90 {:.3f} / p99 {:.3f} / p99.9 {:.3f} / max {:.3f} ms  (n={})",
                  ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(h.quantile(0.999)),
                  ms(h.max()), thousands(h.count())));
}

void Report::add_errors(const WorkerStats& stats) {
  json::object errs;
  std::string line;
  for (const auto& [code, n] : stats.errors) {
    errs[code] = n;
    if (!line.empty()) line += ", ";
    line += fmt::format("{} {}", code, thousands(n));
  }
  set("", "errors", std::move(errs));
  json::object st;
  for (const auto& [code, n] : stats.statuses) st[code] = n;
  set("", "statuses", std::move(st));
  row("errors by code", line.empty() ? "none" : line);
}

void Report::add_verdict(const Verdict& v, const WorkerStats& stats) {
  section("verification");
  count("checks", "sent_ok", "sent (acknowledged)", v.sent_ok);
  count("checks", "received", "received (distinct)", v.received);
  count("checks", "lost", "lost", v.lost);
  if (v.undelivered)
    count("checks", "undelivered", "not delivered yet when the run stopped early", v.undelivered);
  count("checks", "duplicates", "duplicates (same session, or after ack ok)", v.duplicates);
  count("checks", "reordered", "reordered", v.reordered);
  count("checks", "redelivered", "redelivered in a later session", v.redelivered);
  count("checks", "unanswered", "sends without reply", v.unanswered);
  count("checks", "corrupt", "corrupt / misrouted", v.corrupt);
  count("checks", "kind_mismatch", "kind does not fit status", v.kind_mismatch);
  count("checks", "status_inconsistent", "status does not fit recipient", v.status_inconsistent);
  if (v.presence_checked) count("checks", "presence_violation", "status vs presence history", v.presence_violation);
  count("checks", "missed_without_notice", "missed without notice", v.missed_without_notice);
  count("checks", "welcome_mismatch", "welcome count mismatch", v.welcome_mismatch);
  count("checks", "unconfirmed", "received without sent reply", v.unconfirmed);
  count("checks", "receipts_missing", "receipts missing", v.receipts_missing);
  count("checks", "receipts_extra", "receipts extra (second, unknown or misaddressed)", v.receipts_extra);
  count("checks", "receipt_duplicates", "receipt duplicates", v.receipt_duplicates);
  set("checks", "missed_notices", stats.notices);
  set("checks", "missed_summaries", stats.summaries);
  json::array ex;
  for (const auto& e : v.examples) ex.emplace_back(e);
  set("checks", "examples", std::move(ex));
  add_errors(stats);
  add_receipts(v, stats);
  if (!v.ok()) {
    fail(fmt::format("verification failed: lost {}, duplicates {}, reordered {}, corrupt {}, unanswered {}, "
                     "kind {}, status {}, presence {}, notices {}, welcome {}, receipts missing {} extra {} "
                     "duplicates {}",
                     v.lost, v.duplicates, v.reordered, v.corrupt, v.unanswered, v.kind_mismatch,
                     v.status_inconsistent, v.presence_violation, v.missed_without_notice, v.welcome_mismatch,
                     v.receipts_missing, v.receipts_extra, v.receipt_duplicates));
  }
}

void Report::add_receipts(const Verdict& v, const WorkerStats& stats) {
  section("receipts");
  set("receipts", "expected", v.receipts_expected);
  row("expected (--receipts)", v.receipts_expected ? "yes: one per stored/missed message and sender device"
                                                   : "no: counted, not required");
  count("receipts", "received", "receipts received (distinct, per device)", v.receipts);
  json::object by_state;
  std::string line;
  for (const char* st : {"delivered", "expired", "purged"}) {
    const auto it = v.receipts_by_state.find(st);
    const std::uint64_t n = it == v.receipts_by_state.end() ? 0 : it->second;
    by_state[st] = n;
    line += fmt::format("{}{} {}", line.empty() ? "" : ", ", st, thousands(n));
  }
  set("receipts", "by_state", std::move(by_state));
  row("receipts by state", line);
  if (v.receipts_expected) {
    count("receipts", "due", "receipts due (stored/missed x sender devices)", v.receipts_due);
    count("receipts", "missing", "receipts missing", v.receipts_missing);
    if (v.receipts_undelivered)
      count("receipts", "undelivered", "receipts not come yet when the run stopped early", v.receipts_undelivered);
  }
  count("receipts", "extra", "receipts extra", v.receipts_extra);
  count("receipts", "duplicates", "receipt duplicates (same session, or after ack ok)", v.receipt_duplicates);
  count("receipts", "redelivered", "receipts redelivered in a later session", v.receipts_redelivered);
  set("receipts", "acks_ok", stats.acks_ok);
}

void Report::add_timeline(const WorkerStats& stats, const Options& opt, std::string latency_label) {
  latency_label_ = std::move(latency_label);
  const double slot_s = opt.slot_ms / 1000.0;
  std::size_t first = 0, last = 0;
  bool any = false;
  for (std::size_t i = 0; i < stats.timeline.size(); ++i) {
    const auto& s = stats.timeline[i];
    if (s.sent_ok || s.received || s.errors || s.signins) {
      if (!any) first = i;
      any = true;
      last = i;
    }
  }
  json::object tl;
  tl["slot_ms"] = opt.slot_ms;
  tl["latency"] = latency_label_;
  json::array t, sent, recv, errs, signins, p50, p99, pmax;
  if (any) {
    for (std::size_t i = first; i <= last; ++i) {
      const auto& s = stats.timeline[i];
      t.emplace_back(round3(static_cast<double>(i) * slot_s));
      sent.emplace_back(round3(s.sent_ok / slot_s));
      recv.emplace_back(round3(s.received / slot_s));
      errs.emplace_back(round3(s.errors / slot_s));
      signins.emplace_back(round3(s.signins / slot_s));
      if (s.latency.count()) {
        p50.emplace_back(round3(ms(s.latency.quantile(0.5))));
        p99.emplace_back(round3(ms(s.latency.quantile(0.99))));
        pmax.emplace_back(round3(ms(s.latency.max())));
      } else {
        p50.emplace_back(nullptr);
        p99.emplace_back(nullptr);
        pmax.emplace_back(nullptr);
      }
    }
  }
  tl["t_s"] = std::move(t);
  tl["sent_per_s"] = std::move(sent);
  tl["received_per_s"] = std::move(recv);
  tl["errors_per_s"] = std::move(errs);
  tl["signins_per_s"] = std::move(signins);
  tl["latency_p50_ms"] = std::move(p50);
  tl["latency_p99_ms"] = std::move(p99);
  tl["latency_max_ms"] = std::move(pmax);
  root_["timeline"] = std::move(tl);
}

void Report::print(std::FILE* out) const {
  std::size_t width = 0;
  for (const auto& s : sections_)
    for (const auto& r : s.rows) width = std::max(width, r.first.size());
  const auto* scen = root_.if_contains("scenario");
  std::fprintf(out, "\n== oms-load %s ==\n", scen && scen->is_string() ? scen->as_string().c_str() : "");
  for (const auto& s : sections_) {
    if (!s.title.empty()) std::fprintf(out, "\n-- %s --\n", s.title.c_str());
    for (const auto& [label, value] : s.rows)
      std::fprintf(out, "  %-*s  %s\n", static_cast<int>(width), label.c_str(), value.c_str());
  }
  std::fprintf(out, "\nresult: %s\n", failures_.empty() ? "PASS" : "FAIL");
  for (const auto& f : failures_) std::fprintf(out, "  - %s\n", f.c_str());
  std::fflush(out);
}

bool Report::write(const Options& opt, std::string& error) {
  json::array fails;
  for (const auto& f : failures_) fails.emplace_back(f);
  root_["ok"] = failures_.empty();
  root_["failures"] = std::move(fails);
  if (opt.json_file.empty()) return true;
  std::string base = opt.json_file;
  if (base.size() > 5 && base.ends_with(".json")) base.resize(base.size() - 5);
  if (opt.chart) {
    const Series s = series_from(root_);
    std::string title = fmt::format("oms-load {}", opt.scenario);
    if (gnuplot_chart(s, base, title, latency_label_)) {
      root_["chart"] = base + ".png";
    } else if (write_file(base + ".svg", svg_chart(s, title, latency_label_))) {
      root_["chart"] = base + ".svg";
    }
  }
  if (!write_file(opt.json_file, json::serialize(root_) + "\n")) {
    error = fmt::format("cannot write {}", opt.json_file);
    return false;
  }
  return true;
}

}  // namespace oms::load
