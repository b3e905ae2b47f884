// `omsd --version`: the build's RocksDB and the malloc the process runs on
// (CMakeLists.txt OMS_ROCKSDB, OMS_MALLOC). The malloc is asked of the
// running process, so a link that silently lost jemalloc fails here.
#include <doctest/doctest.h>

#include <cstdlib>
#include <regex>
#include <string>

#include "tests/support/omsd_process.h"
#include "tests/support/process.h"

using namespace oms::test;

TEST_CASE("version: omsd --version names its RocksDB build and the malloc it runs on") {
  const CommandResult r = run_command({omsd_binary_path(), "--version"});
  REQUIRE(r.exit_code == 0);
  const std::regex line(
      R"(omsd \S+ \(RocksDB (debian|release)-[0-9]+\.[0-9]+\.[0-9]+, malloc (jemalloc [0-9]+\.[0-9]+\.[0-9]+|glibc)\)\n)");
  CHECK_MESSAGE(std::regex_match(r.out, line), "got: " << r.out);
  // OMS_TEST_OMSD points the suite at another build's omsd (CI's sanitizer
  // phase): its malloc is that build's.
  if (std::getenv("OMS_TEST_OMSD") == nullptr) {
    const std::string want = std::string("malloc ") + OMS_TEST_EXPECT_MALLOC;
    CHECK_MESSAGE(r.out.find(want) != std::string::npos, "want '" << want << "', got: " << r.out);
  }
}
