// SendRateLimiter: the per-user token bucket, kept apart from sessions.
#include <doctest/doctest.h>

#include <string>

#include "server/send_rate.h"

using oms::server::SendRateLimiter;

TEST_CASE("send rate: a burst, then one token per 1/rate seconds") {
  SendRateLimiter r;
  for (int i = 0; i < 3; ++i) CHECK(r.take("alice", 1000, 1.0, 3.0));
  CHECK_FALSE(r.take("alice", 1000, 1.0, 3.0));
  CHECK_FALSE(r.take("alice", 1999, 1.0, 3.0));
  CHECK(r.take("alice", 2000, 1.0, 3.0));
  CHECK_FALSE(r.take("alice", 2000, 1.0, 3.0));
  // Other users have their own bucket.
  CHECK(r.take("bob", 2000, 1.0, 3.0));
}

TEST_CASE("send rate: a refused send costs nothing and the bucket never holds more than the burst") {
  SendRateLimiter r;
  for (int i = 0; i < 2; ++i) CHECK(r.take("alice", 0, 1.0, 2.0));
  for (int i = 0; i < 100; ++i) CHECK_FALSE(r.take("alice", 0, 1.0, 2.0));
  CHECK(r.take("alice", 1000, 1.0, 2.0));
  // A long pause refills to the burst, not beyond.
  for (int i = 0; i < 2; ++i) CHECK(r.take("alice", 1'000'000, 1.0, 2.0));
  CHECK_FALSE(r.take("alice", 1'000'000, 1.0, 2.0));
}

TEST_CASE("send rate: memory is bounded by the users who sent recently") {
  SendRateLimiter r;
  for (int i = 0; i < 100'000; ++i) CHECK(r.take("user" + std::to_string(i), 0, 1000.0, 10.0));
  CHECK(r.size() == 100'000);  // all sent within the last 10 ms: all still metered
  // Much later every bucket is full again: new senders sweep the old ones out.
  for (int i = 0; i < 100'000; ++i) CHECK(r.take("late" + std::to_string(i), 60'000, 1000.0, 10.0));
  CHECK(r.size() < 150'000);
  // A user whose bucket was dropped starts full, as one never seen.
  for (int i = 0; i < 10; ++i) CHECK(r.take("user1", 60'000, 1000.0, 10.0));
  CHECK_FALSE(r.take("user1", 60'000, 1000.0, 10.0));
}

TEST_CASE("send rate: a refunded token can be taken again, never beyond the burst") {
  SendRateLimiter r;
  CHECK(r.take("alice", 0, 0.001, 1.0));
  CHECK_FALSE(r.take("alice", 0, 0.001, 1.0));
  r.refund("alice", 1.0);
  CHECK(r.take("alice", 0, 0.001, 1.0));
  r.refund("alice", 1.0);
  r.refund("alice", 1.0);  // capped at the burst
  CHECK(r.take("alice", 0, 0.001, 1.0));
  CHECK_FALSE(r.take("alice", 0, 0.001, 1.0));
  r.refund("nobody", 1.0);  // no bucket: nothing to give back
  CHECK(r.size() == 1);
}

TEST_CASE("send rate: cost and charge (the request bucket: acks cost by ids, never refused)") {
  SendRateLimiter r;
  CHECK(r.take("u", 0, 10, 20, 15));
  CHECK_FALSE(r.take("u", 0, 10, 20, 15));  // 5 left
  CHECK(r.charge("u", 0, 10, 20, 5) == 0);  // exactly empty: no wait
  CHECK(r.charge("u", 0, 10, 20, 10) == 1000);  // 10 in debt at 10/s
  CHECK(r.charge("u", 0, 10, 20, 1000) == 2000);  // the debt is at most `burst` deep
  CHECK_FALSE(r.take("u", 1000, 10, 20));
  CHECK(r.take("u", 2100, 10, 20));
}
