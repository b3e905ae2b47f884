// Devices and receipts in the kill loop: see kill_loop_devices.h.
#include "tests/reliability/kill_loop_devices.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace oms::reliability {

using test::Json;
using namespace std::chrono_literals;

Json hello_as(test::WsClient& c, std::string_view token, std::string_view device) {
  const auto rid = c.next_rid();
  c.send_json(Json{{"type", "hello"},
                   {"rid", rid},
                   {"token", token},
                   {"client", Json{{"name", "oms-kill-loop"},
                                   {"version", "2.1.0"},
                                   {"device", device},
                                   {"features", test::str_array(test::kCapableFeatures)}}}});
  Json r = c.reply(rid);
  if (test::type_of(r) != "welcome") throw std::runtime_error("hello was not welcomed: " + test::to_text(r));
  return r;
}

namespace {
std::string& user_prefix() {
  static std::string prefix;
  return prefix;
}
}  // namespace

void set_user_prefix(std::string prefix) { user_prefix() = std::move(prefix); }
std::string sender_user(std::size_t i) { return fmt::format("{}sender{}@contoso.com", user_prefix(), i); }
std::string recipient_user(std::size_t j) { return fmt::format("{}rcpt{}@contoso.com", user_prefix(), j); }
std::size_t recipient_of(std::size_t i, std::uint64_t k, std::size_t recipients) {
  return (i + k) % recipients;
}
std::string body_of(std::size_t i, std::uint64_t k, std::size_t j) {
  std::string b = fmt::format("s{}:{}:{}|", i, k, j);
  const std::size_t pad = (k * 31 + i * 7) % 200;
  for (std::size_t p = 0; p < pad; ++p) b.push_back(static_cast<char>('a' + (k + p) % 26));
  return b;
}
std::string cmid_of(std::size_t i, std::uint64_t k) { return fmt::format("s{}-{}", i, k); }

bool parse_body(const std::string& body, std::size_t& i, std::uint64_t& k, std::size_t& j) {
  unsigned long long kk = 0;
  if (std::sscanf(body.c_str(), "s%zu:%llu:%zu|", &i, &kk, &j) != 3) return false;
  k = kk;
  return true;
}
bool parse_cmid(const std::string& cmid, std::size_t& i, std::uint64_t& k) {
  unsigned long long kk = 0;
  if (std::sscanf(cmid.c_str(), "s%zu-%llu", &i, &kk) != 2) return false;
  k = kk;
  return cmid == cmid_of(i, k);
}

ReceiptSeen receipt_of(const Json& f) {
  ReceiptSeen r;
  auto s = [&](std::string_view key) { return test::has(f, key) ? test::str_of(f, key) : std::string(); };
  r.id = s("id");
  r.msg = s("msg");
  r.client_msg_id = s("client_msg_id");
  r.to = s("to");
  r.state = s("state");
  return r;
}

namespace {

std::int64_t rid_of(const Json& f) {
  const auto* v = f.if_contains("rid");
  if (!v) return -1;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  return -1;
}

void note(DeviceLog& log, std::string line) {
  if (log.examples.size() < 10) log.examples.push_back(std::move(line));
}

}  // namespace

DeviceStream::DeviceStream(test::WsClient& c, DeviceLog* log, std::vector<ReceiptSeen>* receipts)
    : c_(c), log_(log), receipts_(receipts), last_frame_(Clock::now()) {
  if (log_) ++log_->sessions;
}

DeviceStream::Pumped DeviceStream::pump(std::chrono::milliseconds wait) {
  auto f = c_.try_recv(wait);
  if (!f) return c_.is_open() ? Pumped::kQuiet : Pumped::kGone;
  std::vector<Json> frames{std::move(*f)};
  c_.poll();
  while (auto g = c_.try_recv(0ms)) frames.push_back(std::move(*g));
  const auto now = Clock::now();
  last_frame_ = now;
  std::vector<std::string> to_ack;
  for (const Json& fr : frames) {
    const std::string type = test::type_of(fr);
    if (type == "message" && log_) {
      DeviceLog& log = *log_;
      Delivered d{test::str_of(fr, "id"), test::str_of(fr, "from"), test::str_of(fr, "body"), now};
      ++log.deliveries;
      if (log.ok.count(d.id)) {
        ++log.dup_after_ok;
        note(log, fmt::format("{}/{}: {} delivered again after its ack got ok",
                              recipient_user(log.recipient), log.device, d.id));
      }
      std::size_t i = 0, j = 0;
      std::uint64_t k = 0;
      if (!session_ids_.insert(d.id).second) {
        ++log.session_repeats;
        note(log, fmt::format("{}/{}: {} twice in one session", recipient_user(log.recipient),
                              log.device, d.id));
      } else if (parse_body(d.body, i, k, j)) {
        auto [pos, fresh] = session_last_k_.emplace(i, k);
        if (!fresh) {
          if (k <= pos->second) {
            ++log.session_reordered;
            note(log, fmt::format("{}/{}: in one session s{}-{} after s{}-{}",
                                  recipient_user(log.recipient), log.device, i, k, i, pos->second));
          }
          pos->second = k;
        }
      }
      if (log.seen.insert(d.id).second) log.first.push_back(d);
      else ++log.redelivered;
      to_ack.push_back(d.id);
    } else if (type == "receipt") {
      ReceiptSeen r = receipt_of(fr);
      to_ack.push_back(r.id);
      if (receipts_) receipts_->push_back(std::move(r));
    } else if (type == "ok" || type == "error") {
      auto it = pending_.find(rid_of(fr));
      if (it == pending_.end()) continue;
      if (type == "ok") {
        ++oks_;
        if (log_) {
          ++log_->oks;
          log_->ok.insert(it->second.begin(), it->second.end());
        }
      } else if (log_) {
        ++log_->ack_errors;
        note(*log_, "ack refused: " + test::to_text(fr));
      }
      pending_.erase(it);
    } else if (type == "mailbox.drained") {
      drained_ = true;
    }
  }
  if (!to_ack.empty()) {
    const auto rid = c_.next_rid();
    Json ack{{"type", "ack"}, {"rid", rid}, {"ids", test::str_array(to_ack)}};
    if (c_.try_send_text(boost::json::serialize(ack))) return Pumped::kGone;  // the connection is gone
    pending_[rid.as_int64()] = to_ack;
    if (log_) {
      ++log_->acks;
      log_->ack_sent.insert(to_ack.begin(), to_ack.end());
    }
  }
  return Pumped::kFrames;
}

DrainOutcome drain(test::WsClient& c, DeviceLog* log, std::vector<ReceiptSeen>* receipts,
                   std::uint64_t stop_after_oks, Clock::duration limit) {
  DrainOutcome out;
  DeviceStream s(c, log, receipts);
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (s.drained()) {
      out.drained = true;
      break;
    }
    if (s.oks() >= stop_after_oks) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    // Nothing for 10 s, the connection gone or an ack not written: done.
    if (s.pump(std::min<std::chrono::milliseconds>(left, 10s)) != DeviceStream::Pumped::kFrames) break;
  }
  out.oks = s.oks();
  return out;
}

DeliveryFigures check_deliveries(const std::vector<SenderLog>& senders,
                                 const std::vector<DeviceLog>& devices, std::size_t recipients) {
  DeliveryFigures f;
  auto example = [&](std::string line) {
    if (f.examples.size() < 20) f.examples.push_back(std::move(line));
  };
  std::map<std::pair<std::size_t, std::uint64_t>, std::string> id_of;  // (i,k) -> id delivered
  for (const DeviceLog& dev : devices) {
    const std::size_t j = dev.recipient;
    const std::string where = recipient_user(j) + "/" + dev.device;
    f.redelivered += dev.redelivered;
    f.dup_after_ok += dev.dup_after_ok;
    f.reordered += dev.session_reordered;
    f.session_repeats += dev.session_repeats;
    f.acks += dev.acks;
    f.oks += dev.oks;
    f.ack_errors += dev.ack_errors;
    f.sessions += dev.sessions;
    std::map<std::size_t, std::uint64_t> last_k;  // sender -> last k first-delivered here
    std::set<std::pair<std::size_t, std::uint64_t>> got;
    for (const Delivered& d : dev.first) {
      ++f.delivered;
      std::size_t i = 0, jj = 0;
      std::uint64_t k = 0;
      if (!parse_body(d.body, i, k, jj) || i >= senders.size() || jj != j ||
          d.from != sender_user(i) || d.body != body_of(i, k, j) ||
          k > senders[i].attempted_max || k == 0) {
        ++f.unexpected;
        example("unexpected at " + where + ": " + d.id + " " + d.body.substr(0, 40));
        continue;
      }
      auto ack = senders[i].acked.find(k);
      if (ack == senders[i].acked.end()) {
        ++f.indeterminate;  // sent, never confirmed (the run stopped first)
      } else if (ack->second.id != d.id) {
        ++f.unexpected;
        example(fmt::format("id differs: s{}-{} sent {} delivered {} at {}", i, k, ack->second.id,
                            d.id, where));
      }
      auto [pos, fresh] = id_of.emplace(std::make_pair(i, k), d.id);
      if (!fresh && pos->second != d.id) {
        ++f.duplicated;
        example(fmt::format("duplicated: s{}-{} as {} and {}", i, k, pos->second, d.id));
      }
      got.insert({i, k});
      auto [lk, first] = last_k.emplace(i, k);
      if (!first) {
        if (k <= lk->second) {
          ++f.reordered;
          example(fmt::format("reordered at {}: s{}-{} first delivered after s{}-{}", where, i, k, i,
                              lk->second));
        }
        lk->second = k;
      }
    }
    for (std::size_t i = 0; i < senders.size(); ++i)
      for (const auto& [k, rec] : senders[i].acked)
        if (recipient_of(i, k, recipients) == j && !got.count({i, k})) {
          ++f.lost;
          example(fmt::format("lost at {}: s{}-{} ({})", where, i, k, rec.id));
        }
    for (const auto& e : dev.examples) example(e);
  }
  return f;
}

ReceiptFigures check_receipts(const std::vector<SenderLog>& senders, std::size_t recipients,
                              const std::vector<std::vector<Clock::time_point>>& closes,
                              Clock::duration margin) {
  ReceiptFigures f;
  auto example = [&](std::string line) {
    if (f.examples.size() < 20) f.examples.push_back(std::move(line));
  };
  for (std::size_t i = 0; i < senders.size(); ++i) {
    const SenderLog& log = senders[i];
    std::map<std::string, ReceiptSeen> by_id;           // distinct receipts
    std::map<std::string, std::set<std::string>> by_msg;  // msg id -> receipt ids
    for (const ReceiptSeen& r : log.receipts) {
      ++f.frames;
      auto [pos, fresh] = by_id.emplace(r.id, r);
      if (!fresh) {
        ++f.repeated;
        if (pos->second.msg != r.msg || pos->second.state != r.state) {
          ++f.wrong;
          example(fmt::format("receipt {} came back changed: msg {} state {}, then msg {} state {}",
                              r.id, pos->second.msg, pos->second.state, r.msg, r.state));
        }
        continue;
      }
      by_msg[r.msg].insert(r.id);
    }
    f.distinct += by_id.size();
    std::map<std::string, std::uint64_t> k_of_id;
    for (const auto& [k, rec] : log.acked) k_of_id[rec.id] = k;
    for (const auto& [msg, ids] : by_msg) {
      if (ids.size() > 1) {
        f.duplicate += ids.size() - 1;
        example(fmt::format("{} receipts for message {} (sender{}): {}", ids.size(), msg, i,
                            fmt::join(ids, ", ")));
      }
      const ReceiptSeen& r = by_id.at(*ids.begin());
      std::size_t ri = 0;
      std::uint64_t rk = 0;
      if (!parse_cmid(r.client_msg_id, ri, rk) || ri != i) {
        ++f.wrong;
        example(fmt::format("receipt {} for msg {}: client_msg_id '{}' is not sender{}'s", r.id,
                            msg, r.client_msg_id, i));
        continue;
      }
      const auto rec = log.acked.find(rk);
      if (rec == log.acked.end()) {
        ++f.indeterminate;
        continue;
      }
      if (rec->second.id != msg || r.to != recipient_user(recipient_of(i, rk, recipients)) ||
          r.state != "delivered") {
        ++f.wrong;
        example(fmt::format("receipt {}: msg {} to {} state {}; sent {} to {}", r.id, msg, r.to,
                            r.state, rec->second.id, recipient_user(recipient_of(i, rk, recipients))));
      }
      if (rec->second.status == "delivered") {
        ++f.for_live;
        example(fmt::format("receipt {} for {} ({}), whose sent said delivered{}", r.id, msg,
                            cmid_of(i, rk), rec->second.duplicate ? " (a dedup answer to a resend)" : ""));
      }
    }
    for (const auto& entry : log.acked) {
      // (References, not a structured binding: clang 14's lambdas cannot capture those.)
      const auto& k = entry.first;
      const auto& rec = entry.second;
      if (rec.status != "stored" && rec.status != "missed") continue;
      ++f.expected;
      if (by_msg.count(rec.id)) continue;
      const std::size_t j = recipient_of(i, k, recipients);
      // The latest close inside the window (closes are in time order).
      const auto last = std::find_if(closes[j].rbegin(), closes[j].rend(), [&](Clock::time_point c) {
        return c <= rec.confirmed && c + margin >= rec.decided_from;
      });
      const auto close = last == closes[j].rend() ? closes[j].end() : std::prev(last.base());
      if (close != closes[j].end()) {
        ++f.excused;
        if (*close < rec.decided_from)
          f.excused_lead = std::max(f.excused_lead, rec.decided_from - *close);
        auto ms = [](Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
        if (f.excused <= 3)
          example(fmt::format("no receipt for {} ({}, sent said {}): a session of {} closed {} ms after "
                              "the try, {} ms before the `sent`",
                              rec.id, cmid_of(i, k), rec.status, recipient_user(j),
                              ms(*close - rec.decided_from), ms(rec.confirmed - *close)));
      } else {
        ++f.missing;
        example(fmt::format("no receipt for {} ({}, sent said {})", rec.id, cmid_of(i, k), rec.status));
      }
    }
  }
  return f;
}

}  // namespace oms::reliability
