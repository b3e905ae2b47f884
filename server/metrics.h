// Process metrics, rendered in the Prometheus text format at /metrics.
//
// Counters and gauges are relaxed atomics: cheap on hot paths, thread-safe.
// Histograms have fixed buckets chosen per quantity.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "storage/disk_guard.h"
#include "storage/mailbox_store.h"

namespace oms::server {

class Histogram {
 public:
  // Upper bounds (inclusive), increasing; +Inf is implicit.
  static constexpr std::size_t kMaxBuckets = 16;
  Histogram(std::initializer_list<double> bounds);
  void observe(double v);
  void render(std::string& out, std::string_view name, std::string_view help) const;

 private:
  std::array<double, kMaxBuckets> bounds_{};
  std::size_t n_ = 0;
  std::array<std::atomic<std::uint64_t>, kMaxBuckets + 1> counts_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_micro_{0};  // sum * 1e6
};

// The error codes a send can be refused with (labels of oms_send_errors_total).
inline constexpr std::array<std::string_view, 11> kSendErrorCodes = {
    "offline_disabled", "client_unsupported", "mailbox_full", "too_large", "bad_request",
    "rate_limited", "unavailable", "store_full", "store_error", "internal", "unauthenticated"};

class Metrics final : public storage::BatchObserver {
 public:
  Metrics();

  std::atomic<std::int64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> connections_refused{0};
  std::atomic<std::int64_t> sessions_open{0};
  std::atomic<std::uint64_t> signins_total{0};
  std::atomic<std::uint64_t> signin_failures_total{0};
  std::atomic<std::uint64_t> sent_delivered{0};
  std::atomic<std::uint64_t> sent_stored{0};
  std::atomic<std::uint64_t> sent_missed{0};
  std::atomic<std::uint64_t> sent_duplicate{0};
  std::atomic<std::uint64_t> pushed_total{0};
  std::atomic<std::uint64_t> mailbox_reads_total{0};  // pages read by signed-in sessions
  std::atomic<std::uint64_t> acked_total{0};
  std::atomic<std::uint64_t> slow_consumer_closes{0};  // a send queue (frames or bytes) or the inbox full
  std::atomic<std::uint64_t> write_stall_closes{0};    // frames waiting, the peer read nothing (4.4)
  std::atomic<std::uint64_t> admin_requests_total{0};
  std::atomic<std::uint64_t> admin_unauthorized_total{0};
  std::atomic<std::uint64_t> backups_total{0};  // checkpoints taken by POST /v1/backup
  std::atomic<std::uint64_t> token_expired_closes{0};     // sessions closed at their token's exp
  std::atomic<std::uint64_t> operator_session_closes{0};  // sessions closed by revoke / kick / device remove
  std::atomic<std::uint64_t> accept_backoffs{0};          // accept() out of descriptors: paused
  std::atomic<std::uint64_t> admin_connections_refused{0};  // [limits] max_admin_connections
  std::atomic<std::int64_t> admin_connections_open{0};
  std::array<std::atomic<std::uint64_t>, kSendErrorCodes.size()> send_errors{};

  Histogram store_append_seconds;  // append → durable callback
  Histogram store_batch_requests;  // requests per group-commit batch
  Histogram store_write_seconds;   // one synced WriteBatch

  void count_send_error(std::string_view code);
  // Also logs when batches start failing and when a write succeeds again
  // (one line each way, not one per batch).
  void on_batch(std::size_t requests, std::int64_t write_micros, bool wrote,
                const Status& result) override;

  std::string render(const storage::StoreCounters& store, bool store_writable) const;
  // The open sessions by kind of device (PresenceRegistry::sessions_by_device),
  // appended to `out`.
  static void render_sessions_by_device(std::string& out, std::uint64_t named, std::uint64_t legacy);
  // The free-space watermarks' lines (storage/disk_guard.h), appended to `out`.
  static void render_disk(std::string& out, const storage::DiskState& disk, std::uint64_t refused);

 private:
  bool batches_failing_ = false;  // writer thread only (on_batch)
};

}  // namespace oms::server
