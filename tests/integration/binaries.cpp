// The paths of the binaries under test, from the build (see
// tests/CMakeLists.txt); the support library asks for them through
// omsd_binary_path() / omsctl_binary_path(). OMS_TEST_OMSD and
// OMS_TEST_OMSCTL in the environment override them: CI's sanitizer phase
// runs these (release-built) tests against the sanitizer build's omsd.
#include "tests/support/omsd_process.h"

namespace oms::test {

std::string omsd_binary_path() { return binary_from_env("OMS_TEST_OMSD", OMSD_PATH); }
std::string omsctl_binary_path() { return binary_from_env("OMS_TEST_OMSCTL", OMSCTL_PATH); }

}  // namespace oms::test
