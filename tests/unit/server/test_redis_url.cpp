// cluster.redis_url (server/redis_client.h): what omsd accepts, and the
// clear error for what it cannot use (checked at start-up, not when the
// first connection fails).
#include <doctest/doctest.h>

#include <string>

#include "server/redis_client.h"

using oms::server::parse_redis_url;

TEST_CASE("redis url: host, port and database") {
  auto a = parse_redis_url("redis://127.0.0.1:6380/2");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 6380);
  CHECK(a->db == 2);
  auto b = parse_redis_url("redis://localhost");
  REQUIRE(b);
  CHECK(b->host == "localhost");
  CHECK(b->port == 6379);
  CHECK(b->db == 0);
}

TEST_CASE("redis url: a unix socket, with a database") {
  auto a = parse_redis_url("unix:///run/redis/redis.sock?db=3");
  REQUIRE(a);
  CHECK(a->unix_path == "/run/redis/redis.sock");
  CHECK(a->db == 3);
}

TEST_CASE("redis url: what cannot be used is refused with the reason") {
  CHECK(parse_redis_url("http://127.0.0.1:6379").status().message().find("expected redis://") != std::string::npos);
  CHECK(parse_redis_url("redis://:secret@127.0.0.1").status().message().find("credentials") != std::string::npos);
  CHECK(parse_redis_url("redis://127.0.0.1:70000").status().message().find("bad port") != std::string::npos);
  CHECK(parse_redis_url("unix://relative.sock").status().message().find("unix:///") != std::string::npos);
  // A socket path must fit sockaddr_un (107 bytes and the NUL): a longer
  // one was accepted and then failed every connection.
  const std::string dir = "/tmp/" + std::string(120, 'r');
  CHECK(parse_redis_url("unix://" + dir + "/redis.sock").status().message().find("too long") != std::string::npos);
  CHECK(parse_redis_url("unix:///tmp/" + std::string(90, 'r') + ".sock"));
}
