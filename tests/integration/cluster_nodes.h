// Cluster-mode tests (protocol.md §5): real omsd nodes on one real
// redis-server (tests/support/redis_server.h), with one JWT secret, and —
// for the tests of delivery across nodes — one PostgreSQL database of their
// own on the ctest run's test server (the pg/start fixture; OMS_TEST_PG_HOST).
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/support/harness.h"
#include "tests/support/redis_server.h"

namespace oms::test {

// A fresh database on the test server; its DSN.
inline std::string new_test_database() {
  const char* host = std::getenv("OMS_TEST_PG_HOST");
  if (!host || !*host)
    FAIL("OMS_TEST_PG_HOST is not set: run through ctest (the pg/start fixture starts the test server), or "
         "start one with tests/support/pg-test-server start DIR and set OMS_TEST_PG_HOST=DIR/socket");
  static int n = 0;
  const std::string name = fmt::format("oms_it_{}_{}_{}", ::getpid(), n++,
                                       std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
  auto r = run_command({"/usr/lib/postgresql/15/bin/psql", "-h", host, "-U", "postgres", "-d", "postgres", "-qAt",
                        "-c", "CREATE DATABASE " + name + " STRATEGY FILE_COPY"});
  REQUIRE_MESSAGE(r.exit_code == 0, "CREATE DATABASE failed: " << r.err);
  return fmt::format("host={} dbname={} user=postgres", host, name);
}

struct ClusterNodes {
  RedisServer redis;
  TempDir shared;
  std::string dsn;  // empty: each node keeps its own RocksDB store
  std::vector<std::unique_ptr<OmsdProcess>> nodes;

  // `postgres`: the nodes share one PostgreSQL database (real cluster mode).
  ClusterNodes(int count, bool postgres, int node_ttl_seconds = 15, std::string extra_toml = {}) {
    if (postgres) dsn = new_test_database();
    for (int i = 1; i <= count; ++i) nodes.push_back(start(fmt::format("node{}", i), node_ttl_seconds, extra_toml));
  }

  OmsdProcess& operator[](std::size_t i) { return *nodes.at(i); }

  // Each node's data dir gets the same jwt.secret before it starts.
  std::unique_ptr<OmsdProcess> start(const std::string& node, int ttl, const std::string& extra_toml) {
    const std::filesystem::path data = shared.path() / node;
    std::filesystem::create_directories(data);
    std::ofstream(data / "jwt.secret") << "cluster-test-secret-0123456789abcdef0123456789abcdef\n";
    std::filesystem::permissions(data / "jwt.secret",
                                 std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    std::string toml = extra_toml;
    if (!dsn.empty()) toml += fmt::format("[store]\nbackend = \"postgres\"\n[postgres]\ndsn = \"{}\"\n", dsn);
    toml += fmt::format("[cluster]\nredis_url = \"{}\"\nnode_id = \"{}\"\nnode_ttl_seconds = {}\n", redis.url(),
                        node, ttl);
    OmsdOptions o = with_config(toml);
    o.data_dir = data;
    return std::make_unique<OmsdProcess>(std::move(o));
  }
};

}  // namespace oms::test
