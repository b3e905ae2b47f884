// Whether the omsd under test (and the libraries) were built with ASan and
// UBSan: the sanitizer build's memory and latency bounds are looser (ASan's
// quarantine keeps freed memory resident; everything runs slower).
//
// Not __SANITIZE_ADDRESS__: the test clients themselves are built without
// instrumentation in that build (oms_test_client() in tests/CMakeLists.txt),
// so CMake says it with OMS_TEST_OMSD_SANITIZED on oms_test_support.
#pragma once

namespace oms::test {

#if defined(OMS_TEST_OMSD_SANITIZED) || defined(__SANITIZE_ADDRESS__)
inline constexpr bool kOmsdSanitized = true;
#else
inline constexpr bool kOmsdSanitized = false;
#endif

}  // namespace oms::test
