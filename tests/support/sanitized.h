// Whether the omsd under test (and the libraries) were built with ASan and
// UBSan: the sanitizer build's memory and latency bounds are looser (ASan's
// quarantine keeps freed memory resident; everything runs slower).
//
// Not __SANITIZE_ADDRESS__: the test clients themselves are built without
// instrumentation in that build (oms_test_client() in tests/CMakeLists.txt),
// so CMake says it with OMS_TEST_OMSD_SANITIZED on oms_test_support. And
// CI's sanitizer phase runs the release build's test programs against the
// sanitizer build's omsd (OMS_TEST_OMSD): OMS_TEST_OMSD_SANITIZED=1 in the
// environment says so at run time.
#pragma once

#include <cstdlib>
#include <string_view>

namespace oms::test {

inline bool omsd_sanitized() {
#if defined(OMS_TEST_OMSD_SANITIZED) || defined(__SANITIZE_ADDRESS__)
  return true;
#else
  const char* v = std::getenv("OMS_TEST_OMSD_SANITIZED");
  return v != nullptr && std::string_view(v) == "1";
#endif
}

}  // namespace oms::test
