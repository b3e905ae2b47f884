// log_safe (server/log.h): client-chosen text in a log line.
#include <doctest/doctest.h>

#include "server/log.h"

using oms::server::log_safe;

TEST_CASE("log_safe: control characters and newlines are escaped, length capped") {
  CHECK(log_safe("oms-web 1.2") == "oms-web 1.2");
  CHECK(log_safe("a\nb\r\tc") == "a\\x0ab\\x0d\\x09c");
  CHECK(log_safe("back\\slash") == "back\\x5cslash");
  CHECK(log_safe(std::string("\x1b[31m", 5)) == "\\x1b[31m");
  CHECK(log_safe("\xc3\xa9") == "\\xc3\\xa9");
  CHECK(log_safe(std::string(100, 'x'), 10) == std::string(10, 'x') + "...");
  CHECK(log_safe("").empty());
}
