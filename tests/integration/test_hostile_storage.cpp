// Hostile suite, storage (issue 15 items 6 and 7): backups only by name
// under [backup] dir, private, with writes going on during the checkpoint;
// an expiry sweep of many expired entries beside a bystander's traffic.
//
// Both seed the store directly (storage API, omsd stopped) so that there is
// a lot to checkpoint or to sweep without sending it all over the wire.
// OMS_HOSTILE_SWEEP_ENTRIES overrides the sweep's entry count (default
// 100000; 1000000 for the figure, outside CI).
#include <doctest/doctest.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>

#include <fmt/format.h>

#include "common/clock.h"
#include "storage/store.h"
#include "tests/support/harness.h"
#include "tests/support/hostile.h"
#include "tests/support/wait.h"

using namespace oms::test;
namespace fs = std::filesystem;

namespace {

// Appends `n` messages of `body_bytes` to 1000 mailboxes (each with a dedup
// entry) into DATA_DIR/store of a stopped omsd, at `clock`'s time.
void seed_store(const OmsdProcess& omsd, std::size_t n, std::size_t body_bytes, const oms::Clock* clock) {
  oms::storage::StoreOptions so;
  so.path = (omsd.data_dir() / "store").string();
  so.sync = false;
  so.clock = clock;
  auto store = oms::storage::open_store(so);
  REQUIRE_MESSAGE(store.is_ok(), store.status().to_string());
  auto& mailboxes = (*store)->mailboxes();
  std::mutex mu;
  std::condition_variable cv;
  std::size_t done = 0, failed = 0;
  constexpr std::size_t kWave = 5000;
  for (std::size_t sent = 0; sent < n;) {
    const std::size_t wave = std::min(kWave, n - sent);
    for (std::size_t i = 0; i < wave; ++i, ++sent) {
      oms::storage::AppendRequest req;
      req.mailbox = fmt::format("seed{}@contoso.com", sent % 1000);
      req.from = "seeder@contoso.com";
      req.body = std::string(body_bytes, 'x');
      req.client_msg_id = fmt::format("seed-{}", sent);
      mailboxes.append(std::move(req), [&](oms::Result<oms::storage::AppendResult> r) {
        std::lock_guard<std::mutex> lock(mu);
        ++done;
        if (!r.is_ok()) ++failed;
        cv.notify_all();
      });
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == sent; });
  }
  REQUIRE(failed == 0);
}

// Everything under `root` (and root) private: no group or other bits.
std::string first_public(const fs::path& root) {
  constexpr auto kOthers = fs::perms::group_all | fs::perms::others_all;
  if ((fs::status(root).permissions() & kOthers) != fs::perms::none) return root.string();
  for (const auto& e : fs::recursive_directory_iterator(root))
    if ((e.symlink_status().permissions() & kOthers) != fs::perms::none) return e.path().string();
  return {};
}

std::string ms(double v) { return fmt::format("{:.1f} ms", v); }

}  // namespace

TEST_CASE("hostile: backups go only under [backup] dir, private, and writes go on during them") {
  OmsdProcess omsd;
  REQUIRE(omsd.stop() == 0);
  const oms::SystemClock& clock = oms::SystemClock::instance();
  seed_store(omsd, 40000, 1000, &clock);  // ~40 MB in the WAL and memtables to checkpoint
  omsd.restart();
  auto admin = omsd.admin();

  // The caller cannot choose where: a path (absolute or not) or a name that
  // climbs out is refused and nothing is written there.
  const fs::path evil = omsd.root_dir() / "evil";
  const HttpResult abs_path = admin.post("/v1/backup", boost::json::object{{"path", evil.string()}});
  const HttpResult rel_path = admin.post("/v1/backup", boost::json::object{{"path", "../../evil2"}});
  const HttpResult climb = admin.post("/v1/backup", boost::json::object{{"name", "../evil3"}});
  CHECK(abs_path.status == 400);
  CHECK(abs_path.error_code() == "path_not_allowed");
  CHECK(rel_path.status == 400);
  CHECK(climb.status == 400);
  CHECK(!fs::exists(evil));
  CHECK(!fs::exists(omsd.data_dir() / "evil3"));

  // Backups while a bystander sends: each must answer, be private, and not
  // stall the bystander's synced sends.
  Bystander quiet(omsd, {.user = "quiet@contoso.com", .max_rounds = 30});
  quiet.wait_rounds(30, std::chrono::seconds(60));
  quiet.stop();
  Bystander bystander(omsd, {});
  REQUIRE(bystander.wait_rounds(3));
  std::int64_t took_max = 0;
  constexpr int kBackups = 3;
  for (int i = 0; i < kBackups; ++i) {
    HttpResult r = admin.post("/v1/backup", boost::json::object{{"name", fmt::format("hostile-{}", i)}});
    OMS_CHECK_HTTP(r, 200);
    // An omsd without names (the baseline this test was shown failing on)
    // still takes a body-less backup: its effect on the bystander and the
    // modes of what it writes are measured all the same.
    if (r.status == 400) r = admin.request(http::verb::post, "/v1/backup");
    if (r.status == 200) {
      took_max = std::max<std::int64_t>(took_max, int_of(r.json.as_object(), "took_ms"));
    }
    const int at = bystander.rounds();
    CHECK(bystander.wait_rounds(at + 2));
  }
  bystander.stop();
  const fs::path backups = omsd.data_dir() / "backups";
  REQUIRE(fs::exists(backups));
  const std::string open_file = first_public(backups);
  CHECK_MESSAGE(open_file.empty(), open_file << " is readable by group or others");

  const Latencies& sends = bystander.sends();
  INFO(bystander.summary());
  CHECK(sends.failures == 0);
  CHECK(bystander.signins().failures == 0);
  CHECK(sends.p99() < 150.0);  // a checkpoint that blocks writes shows here (baseline: ~200 ms)
  hostile_report("backup: caller's path, '../' name; 3 checkpoints of a 40 MB store under traffic",
                 "400 path_not_allowed / bad_backup_name; dirs 0700, files 0600; writes not blocked",
                 fmt::format("path/name refused: {}/{}/{} (HTTP); checkpoint up to {} ms; private: {}",
                             abs_path.status, rel_path.status, climb.status, took_max,
                             open_file.empty() ? "yes" : "NO"),
                 fmt::format("quiet send p99 {}; during backups {}", ms(quiet.sends().p99()),
                             bystander.summary()));
}

TEST_CASE("hostile: an expiry sweep of many expired entries does not stall sends") {
  std::size_t entries = 100000;
  if (const char* e = std::getenv("OMS_HOSTILE_SWEEP_ENTRIES")) entries = std::strtoull(e, nullptr, 10);
  auto config = [](int sweep_interval) {
    // (max_messages: the bystander's peer mailbox fills during a long sweep;
    // the send rate: it sends as fast as the store answers, over the default
    // 1,000/s on a fast server.)
    return fmt::format("[mailbox]\nttl_seconds = 3600\ndedup_window_seconds = 3600\nsweep_interval_seconds = {}\n"
                       "max_messages = 1000000\n[limits]\nsend_rate_per_second = 1000000\nsend_burst = 1000000\n",
                       sweep_interval);
  };
  OmsdProcess omsd(with_config(config(86400)));

  // Seed `entries` messages and dedup entries two hours old (expired for
  // both the TTL and the dedup window) with omsd stopped and no sweep due.
  REQUIRE(omsd.stop() == 0);
  oms::ManualClock past;
  past.set_ms(oms::SystemClock::instance().now_ms() - 2 * 3600 * 1000);
  seed_store(omsd, entries, 100, &past);
  omsd.restart();

  // Quiet: the bystander on that store, nothing being swept.
  Bystander quiet(omsd, {.user = "quiet@contoso.com", .max_rounds = 200});
  quiet.wait_rounds(200, std::chrono::seconds(180));
  quiet.stop();

  // Again with a sweep 1 s after the start: it has every seeded entry to
  // remove while the bystander sends.
  write_config_file(omsd.config_file(), config(1));
  omsd.restart();
  Bystander bystander(omsd, {.max_time = std::chrono::seconds(300)});
  const auto t0 = std::chrono::steady_clock::now();
  const bool swept = wait_until([&] { return static_cast<std::int64_t>(metric(omsd, "oms_store_expired_total")) >=
                                             static_cast<std::int64_t>(entries); },
                                std::chrono::seconds(240));
  const double sweep_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bystander.stop();
  const auto removed = static_cast<std::int64_t>(metric(omsd, "oms_store_expired_total"));

  const Latencies& during = bystander.sends();
  const double quiet_p99 = quiet.sends().p99();
  INFO("quiet: " << quiet.summary() << "; during the sweep: " << bystander.summary());
  CHECK(swept);
  CHECK(removed == static_cast<std::int64_t>(entries));
  CHECK(during.failures == 0);
  CHECK(bystander.signins().failures == 0);
  // The bound is 2x the quiet p99; generous here for a loaded CI
  // machine (and ASan): 3x plus 20 ms. No send may wait behind the whole sweep.
  CHECK(during.p99() <= 3 * quiet_p99 + 20.0);
  CHECK(during.max() < 500.0);
  hostile_report(fmt::format("expiry sweep of {} expired messages + {} dedup entries", entries, entries),
                 "chunks of 500 deletes through the writer; send p99 <= 2x quiet (asserted 3x + 20 ms)",
                 fmt::format("{} removed in ~{:.1f} s (from restart)", removed, sweep_s),
                 fmt::format("send p99 quiet {} / during sweep {} (max {}), {} sends",
                             ms(quiet_p99), ms(during.p99()), ms(during.max()), during.count()));
}
