// DiskGuard (storage/disk_guard.h) on the real filesystem of a temp dir: the
// marks are set far below or far above what is free there. (Hysteresis and
// the ballast on a filling disk: tests/integration/test_hostile_disk.cpp.)
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "storage/disk_guard.h"
#include "tests/support/temp_dir.h"

using oms::storage::DiskGuard;
using oms::storage::DiskGuardOptions;
using oms::storage::DiskState;
using oms::test::TempDir;

namespace {

DiskGuardOptions options(const TempDir& dir, std::uint64_t min_free) {
  DiskGuardOptions o;
  o.dir = dir.path().string();
  o.min_free_bytes = min_free;
  o.min_free_percent = 0;
  o.ballast_bytes = 1u << 20;
  o.interval = std::chrono::milliseconds(20);
  return o;
}

}  // namespace

TEST_CASE("disk guard: with room to spare, nothing is refused and the ballast is created") {
  TempDir dir("oms-disk-guard");
  std::vector<std::string> events;
  DiskGuard guard(options(dir, 1), [&](const DiskState&, const char* what) { events.emplace_back(what); });
  guard.start();
  const DiskState s = guard.state();
  CHECK_FALSE(guard.full());
  CHECK_FALSE(guard.refresh_if_older(std::chrono::milliseconds(0)));
  CHECK(s.available > 0);
  CHECK(s.low_mark == 1);
  CHECK(s.high_mark >= s.low_mark);
  if (s.total / 20 >= (1u << 20)) {  // (the cap: 5 % of the filesystem)
    CHECK(s.ballast_present);
    CHECK(std::filesystem::file_size(guard.ballast_path()) == (1u << 20));
    CHECK(events == std::vector<std::string>{"ballast recreated"});
  }
  guard.stop();
}

TEST_CASE("disk guard: below the low mark new messages are refused and the ballast is released") {
  TempDir dir("oms-disk-guard");
  {
    DiskGuard room(options(dir, 1), nullptr);
    room.start();  // leaves a ballast behind
  }
  const bool had_ballast = std::filesystem::exists(dir.path() / "ballast");
  std::vector<std::string> events;
  DiskGuard guard(options(dir, std::uint64_t{1} << 50),
                  [&](const DiskState&, const char* what) { events.emplace_back(what); });
  guard.start();
  CHECK(guard.full());
  const DiskState s = guard.state();
  CHECK(s.full);
  CHECK_FALSE(s.ballast_present);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "ballast"));
  if (had_ballast) CHECK(events == std::vector<std::string>{"ballast released", "full"});
  else CHECK(events == std::vector<std::string>{"full"});
  guard.count_refused();
  CHECK(guard.refused() == 1);
}
