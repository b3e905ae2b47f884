// Backup and restore (deploy/OPERATIONS.md "Backup and restore"): POST /v1/backup takes a
// RocksDB checkpoint of the store while clients keep sending; a new omsd on
// a data dir whose store/ is that checkpoint delivers every message whose
// `sent` arrived before the backup was requested.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <unistd.h>

#include "tests/support/harness.h"

using namespace oms::test;
using boost::json::value;
namespace fs = std::filesystem;

namespace {

// One sender signed in on the main thread, then sending from its own thread
// (a WsClient is used by one thread at a time) to one offline recipient.
struct Sender {
  std::unique_ptr<WsClient> client;
  std::string recipient;
  // id -> when its `sent` had arrived (at the latest).
  std::vector<std::pair<std::string, SteadyClockTimePoint>> sent;
  std::string failure;  // first unexpected reply or exception
  std::atomic<std::size_t> count{0};
};

void send_until_stopped(Sender& s, const std::atomic<bool>& stop) {
  try {
    for (int i = 0; !stop.load(); ++i) {
      const Json r = s.client->send(s.recipient, "backup test " + std::to_string(i));
      const auto arrived = SteadyClock::now();
      if (type_of(r) != "sent" || str_of(r, "status") != "stored") {
        s.failure = "unexpected reply: " + to_text(r);
        return;
      }
      s.sent.emplace_back(str_of(r, "id"), arrived);
      s.count.store(s.sent.size());
    }
  } catch (const std::exception& e) {
    s.failure = e.what();
  }
}

void copy_file_over(const fs::path& from, const fs::path& to) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

}  // namespace

TEST_CASE("backup: a checkpoint taken under load restores every message sent before it") {
  OmsdProcess omsd;
  constexpr int kSenders = 3;
  std::vector<std::unique_ptr<Sender>> senders;
  for (int i = 0; i < kSenders; ++i) {
    auto s = std::make_unique<Sender>();
    s->client = sign_in(omsd, "sender" + std::to_string(i) + "@contoso.com");
    s->client->take("mailbox.drained");
    s->recipient = "offline" + std::to_string(i) + "@contoso.com";
    senders.push_back(std::move(s));
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (auto& s : senders) threads.emplace_back(send_until_stopped, std::ref(*s), std::cref(stop));
  auto counts_reach = [&](std::size_t n) {
    return wait_until(
        [&] {
          for (auto& s : senders)
            if (s->count.load() < n && s->failure.empty()) return false;
          return true;
        },
        std::chrono::seconds(30));
  };

  // Senders are busy; the backup is requested in the middle of their traffic.
  const bool warmed_up = counts_reach(30);
  const auto requested = SteadyClock::now();
  const fs::path backup_dir = fs::absolute(omsd.data_dir() / "backups" / "under-load").lexically_normal();
  const HttpResult res = omsd.admin().post("/v1/backup", boost::json::object{{"name", "under-load"}});
  std::vector<std::size_t> at_backup;
  for (auto& s : senders) at_backup.push_back(s->count.load());
  // ...and they keep sending after it.
  bool kept_sending = wait_until(
      [&] {
        for (std::size_t i = 0; i < senders.size(); ++i)
          if (senders[i]->count.load() < at_backup[i] + 20 && senders[i]->failure.empty()) return false;
        return true;
      },
      std::chrono::seconds(30));
  stop = true;
  for (auto& t : threads) t.join();
  for (auto& s : senders) {
    INFO("sender to " << s->recipient << ": " << s->failure);
    CHECK(s->failure.empty());
  }
  REQUIRE(warmed_up);
  CHECK(kept_sending);
  OMS_CHECK_HTTP(res, 200);
  REQUIRE(res.status == 200);
  CHECK(str_of(res.json.as_object(), "path") == backup_dir.string());
  CHECK(int_of(res.json.as_object(), "bytes") > 0);
  CHECK(int_of(res.json.as_object(), "files") > 0);
  CHECK(fs::is_directory(backup_dir));

  // The restore procedure: a stopped omsd whose store/ is replaced by the
  // checkpoint, with the original secrets (kept by the operator).
  OmsdProcess restored;
  CHECK(restored.stop() == 0);
  fs::remove_all(restored.data_dir() / "store");
  fs::copy(backup_dir, restored.data_dir() / "store", fs::copy_options::recursive);
  copy_file_over(omsd.data_dir() / "jwt.secret", restored.data_dir() / "jwt.secret");
  copy_file_over(omsd.data_dir() / "admin.token", restored.data_dir() / "admin.token");
  CHECK(omsd.stop() == 0);
  restored.restart();

  std::size_t before_total = 0, after_total = 0;
  for (auto& s : senders) {
    std::set<std::string> must_have, sent_after;
    for (const auto& [id, arrived] : s->sent) (arrived < requested ? must_have : sent_after).insert(id);
    before_total += must_have.size();
    after_total += sent_after.size();
    const std::int64_t waiting = mailbox_count(restored, s->recipient);
    CHECK(waiting >= static_cast<std::int64_t>(must_have.size()));
    CHECK(waiting <= static_cast<std::int64_t>(s->sent.size()));
    auto rcpt = sign_in(restored, s->recipient);
    const auto msgs = rcpt->receive_messages(static_cast<std::size_t>(waiting), true, std::chrono::seconds(30));
    std::set<std::string> delivered;
    for (const auto& m : msgs) delivered.insert(str_of(m, "id"));
    std::size_t missing = 0;
    for (const auto& id : must_have) {
      if (delivered.count(id)) continue;
      if (++missing <= 5)
        FAIL_CHECK("message " << id << " to " << s->recipient << " was sent before the backup but is not in it");
    }
    CHECK(missing == 0);
    rcpt->take("mailbox.drained");
  }
  MESSAGE(before_total << " messages sent before the backup request, " << after_total << " after");
  CHECK(before_total >= kSenders * 30);

  // The restored server keeps accepting: new ids do not collide with old ones.
  auto alice = sign_in(restored, kAlice);
  OMS_CHECK_SENT(alice->send(kBob, "after restore"), "stored");
}

TEST_CASE("backup: default name, refusals and the audit counter") {
  OmsdProcess omsd;
  auto admin = omsd.admin();
  const fs::path backups = fs::absolute(omsd.data_dir() / "backups").lexically_normal();

  SUBCASE("no body: a timestamped directory under DATA_DIR/backups, mode 0700") {
    const HttpResult r = admin.request(http::verb::post, "/v1/backup");
    OMS_CHECK_HTTP(r, 200);
    REQUIRE(r.json.is_object());
    const fs::path path = str_of(r.json.as_object(), "path");
    CHECK(path.parent_path() == backups);
    CHECK(fs::exists(path / "CURRENT"));
    CHECK((fs::status(backups).permissions() & fs::perms::all) == fs::perms::owner_all);
    CHECK((fs::status(path).permissions() & fs::perms::all) == fs::perms::owner_all);
    const HttpResult m = admin.get("/metrics");
    CHECK(m.raw.find("\noms_backups_total 1\n") != std::string::npos);
  }
  SUBCASE("an existing name: 409, nothing overwritten") {
    fs::create_directories(backups / "taken");
    const HttpResult r = admin.post("/v1/backup", boost::json::object{{"name", "taken"}});
    OMS_CHECK_HTTP(r, 409);
    CHECK(r.error_code() == "already_exists");
    CHECK(fs::is_empty(backups / "taken"));
  }
  SUBCASE("a path, a bad name or an unknown field: 400") {
    const HttpResult p = admin.post("/v1/backup", boost::json::object{{"path", "/tmp/x"}});
    OMS_CHECK_HTTP(p, 400);
    CHECK(p.error_code() == "path_not_allowed");
    for (const char* bad : {"", ".", "..", "../x", "a/b", "/abs", "sp ace", "\xc3\xa9"}) {
      INFO("name '" << bad << "'");
      const HttpResult r = admin.post("/v1/backup", boost::json::object{{"name", bad}});
      OMS_CHECK_HTTP(r, 400);
      CHECK(r.error_code() == "bad_backup_name");
    }
    OMS_CHECK_HTTP(admin.post("/v1/backup", boost::json::object{{"name", std::string(65, 'a')}}), 400);
    OMS_CHECK_HTTP(admin.post("/v1/backup", boost::json::object{{"name", 7}}), 400);
    OMS_CHECK_HTTP(admin.post("/v1/backup", boost::json::object{{"dir", "/tmp/x"}}), 400);
  }
  SUBCASE("no admin token: 401, no backup") {
    OMS_CHECK_HTTP(admin.post("/v1/backup", boost::json::object{{"name", "unauth"}}, Auth::none()), 401);
    CHECK(!fs::exists(backups / "unauth"));
  }
  SUBCASE("GET is not allowed") { OMS_CHECK_HTTP(admin.get("/v1/backup"), 405); }
}

TEST_CASE("backup: [backup] dir from the config") {
  const fs::path where = fs::temp_directory_path() / ("oms-backup-dir-" + std::to_string(::getpid()));
  fs::remove_all(where);
  OmsdProcess omsd(with_config("[backup]\ndir = \"" + where.string() + "\"\n"));
  const HttpResult r = omsd.admin().post("/v1/backup", boost::json::object{{"name", "configured"}});
  OMS_CHECK_HTTP(r, 200);
  CHECK(fs::exists(where / "configured" / "CURRENT"));
  CHECK(!fs::exists(omsd.data_dir() / "backups"));
  fs::remove_all(where);
}
