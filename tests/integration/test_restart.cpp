// Running it (protocol.md §3): SIGTERM/SIGINT close sessions with 1001 and
// exit 0; a `sent` message is durable, even across SIGKILL; the generated
// secrets are reused by later starts.
#include <doctest/doctest.h>

#include <signal.h>

#include <cstdio>
#include <set>

#include "tests/support/harness.h"
#include "tests/support/process.h"

using namespace oms::test;
using boost::json::array;
using boost::json::value;

TEST_CASE("restart: SIGTERM closes sessions with 1001 and exits 0") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  auto bob = sign_in(omsd, kBob);
  auto unauthenticated = connect_client(omsd);
  omsd.signal(SIGTERM);
  alice->expect_closed(1001);
  bob->expect_closed(1001);
  const int code = unauthenticated->expect_closed();
  MESSAGE("a connection that had not signed in was closed with " << code);
  CHECK(omsd.wait_exit() == 0);
}

TEST_CASE("restart: SIGINT closes sessions with 1001 and exits 0") {
  OmsdProcess omsd;
  auto alice = sign_in(omsd, kAlice);
  omsd.signal(SIGINT);
  alice->expect_closed(1001);
  CHECK(omsd.wait_exit() == 0);
}

TEST_CASE("restart: stored messages survive a clean restart") {
  OmsdProcess omsd;
  std::vector<std::string> ids;
  {
    auto alice = sign_in(omsd, kAlice);
    for (int i = 0; i < 3; ++i) {
      const Json r = alice->send(kBob, "kept " + std::to_string(i));
      OMS_CHECK_SENT(r, "stored");
      ids.push_back(str_of(r, "id"));
    }
  }
  CHECK(omsd.stop() == 0);
  omsd.restart();
  auto bob = sign_in(omsd, kBob);
  CHECK(int_of(obj_of(bob->welcome(), "mailbox"), "count") == 3);
  const auto msgs = bob->receive_messages(3);
  CHECK(ids_of(msgs) == ids);
  CHECK(bodies_of(msgs) == std::vector<std::string>{"kept 0", "kept 1", "kept 2"});
  bob->take("mailbox.drained");
}

TEST_CASE("restart: every message that got sent is delivered after SIGKILL") {
  OmsdProcess omsd;
  constexpr int kSends = 400;
  auto send_frame = [](int i) {
    return Json{{"type", "send"},
                {"rid", i},
                {"to", kBob},
                {"body", std::to_string(i)},
                {"client_msg_id", "k-" + std::to_string(i)}};
  };
  std::map<std::string, int> sent;  // id -> index, acknowledged before the crash
  {
    auto alice = sign_in(omsd, kAlice);
    alice->take("mailbox.drained");
    // Pipeline many sends and kill the server while they are in flight.
    for (int i = 0; i < kSends; ++i) alice->send_json(send_frame(i));
    auto collect = [&] {
      for (const auto& r : alice->take_all("sent"))
        sent[str_of(r, "id")] = static_cast<int>(int_of(r, "rid"));
    };
    wait_until(
        [&] {
          collect();
          return sent.size() >= 50;
        },
        std::chrono::seconds(10), std::chrono::milliseconds(1));
    omsd.kill();
    collect();  // replies that were already on the wire count too
    for (const auto& e : alice->take_all("error")) FAIL_CHECK("unexpected error: " << to_text(e));
  }
  REQUIRE(sent.size() >= 50);
  MESSAGE(sent.size() << " of " << kSends << " sends were acknowledged before SIGKILL");

  omsd.restart();
  {
    // Every acknowledged message is there.
    const std::int64_t waiting = mailbox_count(omsd, kBob);
    CHECK(waiting >= static_cast<std::int64_t>(sent.size()));
  }
  // A careful client resends everything it has no reply for, with the same
  // client_msg_id; it resends the acknowledged ones too here: they must come
  // back with their first id and store nothing new.
  {
    std::map<int, std::string> first_id;  // index -> id acknowledged before the crash
    for (const auto& [id, idx] : sent) first_id[idx] = id;
    auto alice = sign_in(omsd, kAlice);
    for (int i = 0; i < kSends; ++i) {
      const Json r = alice->request(send_frame(i));
      INFO("resend #" << i << ": " << to_text(r));
      REQUIRE(type_of(r) == "sent");
      const auto it = first_id.find(i);
      if (it != first_id.end()) CHECK(str_of(r, "id") == it->second);
    }
  }
  CHECK(mailbox_count(omsd, kBob) == kSends);

  auto bob = sign_in(omsd, kBob);
  CHECK(int_of(obj_of(bob->welcome(), "mailbox"), "count") == kSends);
  const auto msgs = bob->receive_messages(kSends, true, std::chrono::seconds(30));
  std::set<std::string> delivered;
  std::vector<std::string> bodies;
  for (const auto& m : msgs) {
    delivered.insert(str_of(m, "id"));
    bodies.push_back(str_of(m, "body"));
  }
  std::vector<std::string> expected;
  for (int i = 0; i < kSends; ++i) expected.push_back(std::to_string(i));
  CHECK(bodies == expected);
  CHECK(delivered.size() == msgs.size());
  std::size_t missing = 0;
  for (const auto& [id, idx] : sent) {
    if (!delivered.count(id)) {
      ++missing;
      if (missing <= 5) FAIL_CHECK("acknowledged message #" << idx << " (id " << id << ") was lost");
    }
  }
  CHECK(missing == 0);
  bob->take("mailbox.drained");
}

TEST_CASE("restart: a delivered but unacked message is delivered again after a crash") {
  OmsdProcess omsd;
  std::string id;
  {
    auto alice = sign_in(omsd, kAlice);
    auto bob = sign_in(omsd, kBob);
    const Json r = alice->send(kBob, "seen but not acked");
    OMS_CHECK_SENT(r, "delivered");
    id = str_of(r, "id");
    CHECK(str_of(bob->take("message"), "id") == id);
    omsd.kill();
    bob->expect_closed();
  }
  omsd.restart();
  auto bob = sign_in(omsd, kBob);
  const Json m = bob->take("message");
  CHECK(str_of(m, "id") == id);
  CHECK(str_of(m, "body") == "seen but not acked");
}

TEST_CASE("restart: the generated secrets are kept and reused by later starts") {
  OmsdProcess omsd;
  const std::string secret = omsd.jwt_secret();
  const std::string admin_token = omsd.admin_token();
  CHECK(!secret.empty());
  CHECK(!admin_token.empty());
  const std::string token = omsd.token(kBob);
  const auto mode_of = [&](const char* name) {
    return std::filesystem::status(omsd.data_dir() / name).permissions();
  };
  using std::filesystem::perms;
  CHECK((mode_of("jwt.secret") & (perms::group_all | perms::others_all)) == perms::none);
  CHECK((mode_of("admin.token") & (perms::group_all | perms::others_all)) == perms::none);

  CHECK(omsd.stop() == 0);
  omsd.restart();
  CHECK(omsd.jwt_secret() == secret);
  CHECK(omsd.admin_token() == admin_token);
  auto bob = connect_client(omsd);
  CHECK(str_of(bob->hello(token), "user") == kBob);  // minted before the restart
  OMS_CHECK_HTTP(AdminClient(omsd.admin_port(), admin_token).get("/v1/policies"), 200);
}

TEST_CASE("restart: secret files given by flag are used instead of generated ones") {
  TempDir dir("omsd-secrets");
  const auto secret_file = dir.path() / "secret";
  const auto token_file = dir.path() / "token";
  write_config_file(secret_file, "my-test-jwt-secret-0123456789abcdef\n");
  write_config_file(token_file, "my-admin-token-0123456789abcdef0123456789\n");
  OmsdProcess omsd(with_args({"--jwt-secret-file", secret_file.string(), "--admin-token-file",
                                   token_file.string()}));
  AdminClient admin(omsd.admin_port(), "my-admin-token-0123456789abcdef0123456789");
  OMS_CHECK_HTTP(admin.get("/v1/policies"), 200);
  auto bob = connect_client(omsd);
  CHECK(str_of(bob->hello(mint_token("my-test-jwt-secret-0123456789abcdef", kBob)), "user") == kBob);
}

TEST_CASE("restart: command-line flags override the config file") {
  // The config file names listen addresses that cannot be bound here
  // (TEST-NET-1); the harness's --listen/--admin-listen flags must win.
  OmsdProcess omsd(with_config(
      "[server]\nlisten = \"192.0.2.1:8080\"\nadmin_listen = \"192.0.2.1:8081\"\n"
      "[mailbox]\nmax_messages = 2\n"));
  auto alice = sign_in(omsd, kAlice);
  // The rest of the file still applies.
  OMS_CHECK_SENT(alice->send(kBob, "1"), "stored");
  OMS_CHECK_SENT(alice->send(kBob, "2"), "stored");
  OMS_CHECK_ERROR(alice->send(kBob, "3"), "mailbox_full");
}

TEST_CASE("restart: an invalid config value stops omsd at start") {
  TempDir dir("omsd-badconfig");
  const auto cfg = write_config_file(dir.path() / "omsd.toml", "[mailbox]\nmax_messages = \"lots\"\n");
  std::filesystem::create_directories(dir.path() / "data");
  const CommandResult r = run_command({omsd_binary_path(), "--data-dir", (dir.path() / "data").string(),
                                       "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                                       "--config", cfg.string()},
                                      std::chrono::seconds(10));
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(!r.timed_out);
  CHECK(r.exit_code > 0);
  WARN_MESSAGE((r.err + r.out).find("max_messages") != std::string::npos,
               "the error does not name the key");
  CHECK(!std::filesystem::exists(dir.path() / "data" / "ports.json"));
}

TEST_CASE("restart: a resend with the same client_msg_id after a crash stores nothing new") {
  OmsdProcess omsd;
  std::string id;
  {
    auto alice = sign_in(omsd, kAlice);
    const Json r = alice->send(kBob, "exactly once", std::string("retry-me"));
    OMS_CHECK_SENT(r, "stored");
    id = str_of(r, "id");
  }
  omsd.kill();
  omsd.restart();
  auto alice = sign_in(omsd, kAlice);
  const Json again = alice->send(kBob, "exactly once", std::string("retry-me"));
  OMS_CHECK_SENT(again, "stored");
  CHECK(str_of(again, "id") == id);
  CHECK(mailbox_count(omsd, kBob) == 1);
}

TEST_CASE("restart: a secret file shorter than 32 bytes is a clear start error") {
  TempDir dir;
  const auto secret_file = dir.path() / "secret";
  write_config_file(secret_file, "only-16-bytes-ok\n");
  const auto bin = omsd_binary_path();
  // (timeout: an omsd that wrongly starts is stopped after 10 s.)
  const std::string cmd = "timeout 10 " + bin + " --data-dir " + (dir.path() / "data").string() +
                          " --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --jwt-secret-file " +
                          secret_file.string() + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int rc = ::pclose(p);
  CHECK(rc != 0);
  INFO(out);
  CHECK(out.find("at least 32") != std::string::npos);
}
