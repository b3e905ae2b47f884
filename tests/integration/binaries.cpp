// The paths of the binaries under test, from the build (see
// tests/CMakeLists.txt); the support library asks for them through
// omsd_binary_path() / omsctl_binary_path().
#include "tests/support/omsd_process.h"

namespace oms::test {

std::string omsd_binary_path() { return OMSD_PATH; }
std::string omsctl_binary_path() { return OMSCTL_PATH; }

}  // namespace oms::test
