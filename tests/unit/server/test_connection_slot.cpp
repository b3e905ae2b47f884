#include "server/connection_slot.h"

#include <atomic>
#include <string>
#include <utility>

#include <doctest/doctest.h>

#include "server/metrics.h"

namespace oms::server {
namespace {

using Refusal = Admission::Refusal;

struct Fixture {
  Metrics metrics;
  std::atomic<bool> shutting_down{false};
  Admission admission{metrics, shutting_down};

  ConnectionSlot admit(const std::string& address, Admission::Limits limits, Refusal& why) {
    return admission.admit(address, limits, why);
  }
};

TEST_CASE("admission: the global cap, counted while a slot is held") {
  Fixture f;
  Refusal why{};
  ConnectionSlot a = f.admit("A", {2, 0}, why);
  CHECK(a.held());
  CHECK(why == Refusal::kNone);
  ConnectionSlot b = f.admit("B", {2, 0}, why);
  CHECK(b.held());
  ConnectionSlot c = f.admit("C", {2, 0}, why);
  CHECK_FALSE(c.held());
  CHECK(why == Refusal::kTooManyConnections);
  CHECK(f.metrics.connections_open.load() == 2);
  CHECK(f.metrics.connections_total.load() == 3);
  CHECK(f.metrics.connections_refused.load() == 1);
  a.release();
  CHECK_FALSE(a.held());
  CHECK(f.metrics.connections_open.load() == 1);
  ConnectionSlot d = f.admit("D", {2, 0}, why);
  CHECK(d.held());
}

TEST_CASE("admission: the per-address cap (0: no limit)") {
  Fixture f;
  Refusal why{};
  ConnectionSlot a1 = f.admit("A", {100, 1}, why);
  CHECK(a1.held());
  ConnectionSlot a2 = f.admit("A", {100, 1}, why);
  CHECK_FALSE(a2.held());
  CHECK(why == Refusal::kTooManyFromAddress);
  ConnectionSlot b = f.admit("B", {100, 1}, why);
  CHECK(b.held());
  { ConnectionSlot gone = std::move(a1); }  // destruction gives the count back
  CHECK_FALSE(a1.held());
  ConnectionSlot a3 = f.admit("A", {100, 1}, why);
  CHECK(a3.held());
  ConnectionSlot many[5];
  for (auto& s : many) {
    s = f.admit("C", {100, 0}, why);
    CHECK(s.held());
  }
  CHECK(f.metrics.connections_open.load() == 7);
}

TEST_CASE("admission: none while shutting down") {
  Fixture f;
  f.shutting_down = true;
  Refusal why{};
  ConnectionSlot s = f.admit("A", {100, 0}, why);
  CHECK_FALSE(s.held());
  CHECK(why == Refusal::kShuttingDown);
  CHECK(f.metrics.connections_open.load() == 0);
  CHECK(f.metrics.connections_refused.load() == 1);
}

TEST_CASE("admission: a moved-over slot releases what it held first") {
  Fixture f;
  Refusal why{};
  ConnectionSlot a = f.admit("A", {100, 1}, why);
  ConnectionSlot b = f.admit("B", {100, 1}, why);
  a = std::move(b);  // A's count is given back, B's moves
  CHECK(f.metrics.connections_open.load() == 1);
  CHECK(f.admit("A", {100, 1}, why).held());
  CHECK_FALSE(f.admit("B", {100, 1}, why).held());
}

}  // namespace
}  // namespace oms::server
