// The test support library (tests/support) reports through doctest; the
// reliability programs have their own main(), so they only need doctest's
// implementation linked in, not its runner.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
