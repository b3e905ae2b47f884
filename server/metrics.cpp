#include "server/metrics.h"

#include <fmt/format.h>

#include "server/log.h"

namespace oms::server {

Histogram::Histogram(std::initializer_list<double> bounds) {
  for (double b : bounds) {
    if (n_ == kMaxBuckets) break;
    bounds_[n_++] = b;
  }
}

void Histogram::observe(double v) {
  std::size_t i = 0;
  while (i < n_ && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micro_.fetch_add(static_cast<std::uint64_t>(v * 1e6), std::memory_order_relaxed);
}

void Histogram::render(std::string& out, std::string_view name, std::string_view help) const {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < n_; ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  cumulative += counts_[n_].load(std::memory_order_relaxed);
  fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"+Inf\"}} {}\n", name, cumulative);
  fmt::format_to(std::back_inserter(out), "{}_sum {}\n{}_count {}\n", name,
                 static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6, name,
                 count_.load(std::memory_order_relaxed));
}

Metrics::Metrics()
    : store_append_seconds{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
      store_batch_requests{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096},
      store_write_seconds{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1} {}

void Metrics::count_send_error(std::string_view code) {
  for (std::size_t i = 0; i < kSendErrorCodes.size(); ++i) {
    if (kSendErrorCodes[i] == code) {
      send_errors[i].fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  send_errors[kSendErrorCodes.size() - 2].fetch_add(1, std::memory_order_relaxed);  // internal
}

void Metrics::on_batch(std::size_t requests, std::int64_t write_micros, bool wrote,
                       const Status& result) {
  store_batch_requests.observe(static_cast<double>(requests));
  store_write_seconds.observe(static_cast<double>(write_micros) / 1e6);
  const bool failing = !result.is_ok();
  if (failing == batches_failing_ || (!failing && !wrote)) return;  // (nothing written: no news)
  batches_failing_ = failing;
  if (failing)
    logger_for(LogComponent::kStore)
        .error("store writes fail: {} (sends and acks get store_error until a write succeeds)",
               result.to_string());
  else
    logger_for(LogComponent::kStore).info("store writes succeed again");
}

namespace {
void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            double v) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name,
                 type, name, v);
}
}  // namespace

std::string Metrics::render(const storage::StoreCounters& s, bool store_writable) const {
  std::string out;
  out.reserve(8192);
  auto ld = [](const auto& a) { return static_cast<double>(a.load(std::memory_order_relaxed)); };
  metric(out, "oms_connections_open", "gauge", "Open client connections.", ld(connections_open));
  metric(out, "oms_connections_total", "counter", "Client connections accepted.", ld(connections_total));
  metric(out, "oms_connections_refused_total", "counter", "Connections refused at the limit.",
         ld(connections_refused));
  metric(out, "oms_sessions_open", "gauge", "Signed-in sessions.", ld(sessions_open));
  metric(out, "oms_signins_total", "counter", "Successful sign-ins.", ld(signins_total));
  metric(out, "oms_signin_failures_total", "counter", "Refused sign-ins.", ld(signin_failures_total));
  out += "# HELP oms_messages_total Messages accepted, by status of the sent reply.\n"
         "# TYPE oms_messages_total counter\n";
  fmt::format_to(std::back_inserter(out),
                 "oms_messages_total{{status=\"delivered\"}} {}\n"
                 "oms_messages_total{{status=\"stored\"}} {}\n"
                 "oms_messages_total{{status=\"missed\"}} {}\n",
                 ld(sent_delivered), ld(sent_stored), ld(sent_missed));
  metric(out, "oms_duplicate_sends_total", "counter", "Sends answered from the dedup index.",
         ld(sent_duplicate));
  out += "# HELP oms_send_errors_total Sends refused, by error code.\n"
         "# TYPE oms_send_errors_total counter\n";
  for (std::size_t i = 0; i < kSendErrorCodes.size(); ++i)
    fmt::format_to(std::back_inserter(out), "oms_send_errors_total{{code=\"{}\"}} {}\n",
                   kSendErrorCodes[i], ld(send_errors[i]));
  metric(out, "oms_messages_pushed_total", "counter", "Message frames pushed to sessions.",
         ld(pushed_total));
  metric(out, "oms_mailbox_reads_total", "counter",
         "Mailbox pages read for signed-in sessions (not counting the sign-in scan).", ld(mailbox_reads_total));
  metric(out, "oms_acks_total", "counter", "Message ids acknowledged by clients.", ld(acked_total));
  metric(out, "oms_slow_consumer_closes_total", "counter", "Sessions closed for a full send queue.",
         ld(slow_consumer_closes));
  metric(out, "oms_write_stall_closes_total", "counter",
         "Sessions closed for reading nothing while frames waited (limits.write_stall_seconds).",
         ld(write_stall_closes));
  metric(out, "oms_admin_requests_total", "counter", "Admin HTTP requests.", ld(admin_requests_total));
  metric(out, "oms_admin_unauthorized_total", "counter", "Admin requests refused with 401.",
         ld(admin_unauthorized_total));
  metric(out, "oms_backups_total", "counter", "Store checkpoints taken (POST /v1/backup).", ld(backups_total));
  metric(out, "oms_token_expired_closes_total", "counter", "Sessions closed when their token expired.",
         ld(token_expired_closes));
  metric(out, "oms_operator_session_closes_total", "counter", "Sessions closed by user revoke, user kick or device remove.",
         ld(operator_session_closes));
  metric(out, "oms_accept_backoffs_total", "counter", "Accept pauses for lack of file descriptors.",
         ld(accept_backoffs));
  metric(out, "oms_admin_connections_refused_total", "counter",
         "Admin connections refused or closed idle at limits.max_admin_connections.", ld(admin_connections_refused));
  metric(out, "oms_mailbox_messages", "gauge", "Messages waiting in all mailboxes.", ld(s.total_messages));
  metric(out, "oms_mailbox_bytes", "gauge", "Body bytes waiting in all mailboxes.", ld(s.total_bytes));
  metric(out, "oms_store_appended_total", "counter", "Messages durably appended.", ld(s.appended));
  metric(out, "oms_store_acked_total", "counter", "Messages deleted on ack.", ld(s.acked));
  metric(out, "oms_store_purged_total", "counter", "Messages deleted by purges.", ld(s.purged));
  metric(out, "oms_store_expired_total", "counter", "Expired messages removed.", ld(s.expired_removed));
  metric(out, "oms_store_refused_full_total", "counter", "Appends refused by quota.", ld(s.refused_full));
  metric(out, "oms_store_batches_total", "counter", "Group-commit batches written.", ld(s.batches));
  metric(out, "oms_store_write_errors_total", "counter", "Failed store writes.", ld(s.write_errors));
  metric(out, "oms_store_late_lock_batches_total", "counter",
         "PostgreSQL: append batches that locked their mailbox rows in their last round trip only.",
         ld(s.late_lock_batches));
  metric(out, "oms_store_late_lock_reruns_total", "counter",
         "PostgreSQL: such batches run again under early locks (a quota or dedup race).", ld(s.late_lock_reruns));
  metric(out, "oms_store_writable", "gauge", "1 while the store accepts writes.", store_writable ? 1 : 0);
  out += "# HELP oms_receipts_written_total Receipts written into senders' mailboxes, by state.\n"
         "# TYPE oms_receipts_written_total counter\n";
  fmt::format_to(std::back_inserter(out),
                 "oms_receipts_written_total{{state=\"delivered\"}} {}\n"
                 "oms_receipts_written_total{{state=\"expired\"}} {}\n"
                 "oms_receipts_written_total{{state=\"purged\"}} {}\n",
                 ld(s.receipts_delivered), ld(s.receipts_expired), ld(s.receipts_purged));
  metric(out, "oms_receipts_dropped_total", "counter",
         "Oldest receipts dropped over receipts.max_per_mailbox.", ld(s.receipts_dropped));
  metric(out, "oms_receipts_acked_total", "counter", "Receipts deleted once acked.", ld(s.receipts_acked));
  metric(out, "oms_device_acks_held_total", "counter",
         "Acks kept per device while other active devices had not acked.", ld(s.device_acks_held));
  metric(out, "oms_devices_forgotten_total", "counter", "Devices forgotten by an operator.",
         ld(s.devices_forgotten));
  metric(out, "oms_devices_released_total", "counter",
         "Messages and receipts deleted once no active device waited for them (idle or forgotten).",
         ld(s.devices_released));
  store_append_seconds.render(out, "oms_store_append_seconds", "Append to durable completion.");
  store_batch_requests.render(out, "oms_store_batch_requests", "Requests per group-commit batch.");
  store_write_seconds.render(out, "oms_store_write_seconds", "One synced WriteBatch.");
  return out;
}

void Metrics::render_sessions_by_device(std::string& out, std::uint64_t named, std::uint64_t legacy) {
  out += "# HELP oms_sessions_by_device Signed-in sessions, by kind of device (named or the shared legacy).\n"
         "# TYPE oms_sessions_by_device gauge\n";
  fmt::format_to(std::back_inserter(out),
                 "oms_sessions_by_device{{kind=\"named\"}} {}\n"
                 "oms_sessions_by_device{{kind=\"legacy\"}} {}\n",
                 named, legacy);
}

void Metrics::render_disk(std::string& out, const storage::DiskState& d, std::uint64_t refused) {
  auto u = [](std::uint64_t v) { return static_cast<double>(v); };
  metric(out, "oms_store_full", "gauge", "1 while new messages are refused for lack of disk space.",
         d.full ? 1 : 0);
  metric(out, "oms_disk_free_bytes", "gauge", "Bytes free on the data dir's filesystem.", u(d.available));
  metric(out, "oms_disk_usable_bytes", "gauge", "Free bytes minus the ballast not on disk.", u(d.usable));
  metric(out, "oms_disk_min_free_bytes", "gauge", "Refuse new messages below this (usable).", u(d.low_mark));
  metric(out, "oms_disk_resume_free_bytes", "gauge", "Accept again from this (usable).", u(d.high_mark));
  metric(out, "oms_disk_ballast_present", "gauge", "1 while DATA_DIR/ballast holds its reserve.",
         d.ballast_present ? 1 : 0);
  metric(out, "oms_store_full_refused_total", "counter", "New messages refused with store_full.",
         u(refused));
}

}  // namespace oms::server
