// What the test support library (tests/support) expects from a test
// program: doctest's implementation (it reports through doctest; these
// programs have their own main(), not doctest's runner) and the paths of the
// binaries under test.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <string>

#include "tests/support/omsd_process.h"

namespace oms::test {
std::string omsd_binary_path() { return binary_from_env("OMS_TEST_OMSD", OMSD_PATH); }
std::string omsctl_binary_path() { return ""; }
}  // namespace oms::test
