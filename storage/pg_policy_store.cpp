#include "storage/pg_policy_store.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include <fmt/format.h>

#include "common/ids.h"
#include "storage/pg_connection.h"

namespace oms::storage {
namespace {

std::string policy_key(std::string_view identity) { return lower_ascii(identity); }

class PgPolicyStore final : public PolicyStore {
 public:
  explicit PgPolicyStore(std::unique_ptr<pg::Connection> c) : c_(std::move(c)) {}
  ~PgPolicyStore() override {
    {
      std::lock_guard lock(stop_mu_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    if (refresher_.joinable()) refresher_.join();
  }

  Status load();
  void start() { refresher_ = std::thread([this] { run_refresh(); }); }

  std::vector<ClientPolicy> list() const override;
  std::optional<ClientPolicy> get(std::string_view identity) const override;
  Status create(const ClientPolicy& policy) override;
  Status update(const ClientPolicy& policy) override;
  Status remove(std::string_view identity) override;
  Status grant(std::string_view user, std::optional<std::string_view> policy) override;
  std::optional<std::string> granted_policy(std::string_view user) const override;
  EffectivePolicy effective_policy_for(std::string_view user) const override;
  bool delivery_receipts_for(std::string_view user) const override;
  std::vector<std::string> users_granted(std::string_view identity) const override;
  ImConfiguration im_configuration() const override;
  Status set_im_configuration(const ImConfiguration& config) override;
  Status revoke_tokens(std::string_view user, std::int64_t at_s) override;
  std::optional<std::int64_t> revoked_at(std::string_view user) const override;

 private:
  // Runs `sql` on the write connection (reconnecting a broken one first);
  // REQUIRES: write_mu_ held.
  Result<pg::Rows> run(const std::string& sql, const pg::Params& p) {
    if (!c_->ok())
      if (Status s = c_->reset(); !s) return s;
    return c_->exec(sql, p);
  }
  const ClientPolicy& global_locked() const {
    auto it = policies_.find("global");
    assert(it != policies_.end() && "Global always exists once the store is open");
    return it->second;
  }
  void run_refresh();

  std::mutex write_mu_;  // the connection; serialises writers (check + write + publish)
  std::unique_ptr<pg::Connection> c_;
  mutable std::shared_mutex mu_;  // guards the four members below
  std::map<std::string, ClientPolicy> policies_;           // by policy_key (lower-case)
  std::map<std::string, std::string, std::less<>> grants_;  // user -> policy_key
  ImConfiguration im_;
  std::map<std::string, std::int64_t, std::less<>> revoked_;  // user -> seconds

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread refresher_;
};

Status PgPolicyStore::load() {
  std::map<std::string, ClientPolicy> policies;
  std::map<std::string, std::string, std::less<>> grants;
  ImConfiguration im;
  std::map<std::string, std::int64_t, std::less<>> revoked;
  {
    std::lock_guard wl(write_mu_);
    if (!c_->ok())
      if (Status s = c_->reset(); !s) return s;
    if (Status s = c_->command("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !s) return s;
    auto p = run("SELECT policy_key, identity, auto_archiving, delivery_receipts FROM policies", {});
    auto g = run("SELECT user_id, policy_key FROM grants", {});
    auto i = run("SELECT enable_offline_im FROM im_configuration", {});
    auto r = run("SELECT user_id, revoked_at_s FROM token_revocations", {});
    (void)c_->command("COMMIT");
    for (auto* x : {&p, &g, &i, &r})
      if (!*x) return x->status();
    for (int k = 0; k < p->size(); ++k)
      policies[std::string(p->str(k, 0))] =
          ClientPolicy{std::string(p->str(k, 1)), p->boolean(k, 2), p->boolean(k, 3)};
    for (int k = 0; k < g->size(); ++k) grants[std::string(g->str(k, 0))] = std::string(g->str(k, 1));
    if (i->size() > 0) im.enable_offline_im = i->boolean(0, 0);
    for (int k = 0; k < r->size(); ++k) revoked[std::string(r->str(k, 0))] = r->i64(k, 1);
  }
  if (!policies.count("global")) return Status::io_error("postgres: the Global policy row is missing");
  std::unique_lock lock(mu_);
  policies_ = std::move(policies);
  grants_ = std::move(grants);
  im_ = im;
  revoked_ = std::move(revoked);
  return Status::ok();
}

void PgPolicyStore::run_refresh() {
  std::unique_lock lock(stop_mu_);
  while (!stop_cv_.wait_for(lock, std::chrono::milliseconds(kPolicyRefreshMs), [&] { return stopping_; })) {
    lock.unlock();
    (void)load();  // a failed reload keeps the copy (reads never fail)
    lock.lock();
  }
}

std::vector<ClientPolicy> PgPolicyStore::list() const {
  std::shared_lock lock(mu_);
  std::vector<ClientPolicy> out;
  out.push_back(global_locked());
  for (const auto& [key, p] : policies_)
    if (key != "global") out.push_back(p);
  return out;
}

std::optional<ClientPolicy> PgPolicyStore::get(std::string_view identity) const {
  std::shared_lock lock(mu_);
  auto it = policies_.find(policy_key(identity));
  if (it == policies_.end()) return std::nullopt;
  return it->second;
}

Status PgPolicyStore::create(const ClientPolicy& policy) {
  if (!is_valid_policy_identity(policy.identity))
    return Status::invalid_argument(
        fmt::format("invalid policy identity '{}' (1-64 of [A-Za-z0-9._-])", policy.identity));
  std::lock_guard wl(write_mu_);
  pg::Params p;
  p.text(policy_key(policy.identity)).text(policy.identity).boolean(policy.enable_im_auto_archiving)
      .boolean(policy.enable_delivery_receipts);
  auto r = run("INSERT INTO policies VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING identity", p);
  if (!r) return r.status();
  if (r->size() == 0) {
    auto existing = get(policy.identity);
    return Status::already_exists(
        fmt::format("policy '{}' already exists", existing ? existing->identity : policy.identity));
  }
  std::unique_lock lock(mu_);
  policies_[policy_key(policy.identity)] = policy;
  return Status::ok();
}

Status PgPolicyStore::update(const ClientPolicy& policy) {
  std::lock_guard wl(write_mu_);
  pg::Params p;
  p.text(policy_key(policy.identity)).boolean(policy.enable_im_auto_archiving).boolean(policy.enable_delivery_receipts);
  auto r = run("UPDATE policies SET auto_archiving = $2, delivery_receipts = $3 WHERE policy_key = $1 "
               "RETURNING identity",
               p);
  if (!r) return r.status();
  if (r->size() == 0) return Status::not_found(fmt::format("no policy '{}'", policy.identity));
  ClientPolicy updated{std::string(r->str(0, 0)), policy.enable_im_auto_archiving, policy.enable_delivery_receipts};
  std::unique_lock lock(mu_);
  policies_[policy_key(policy.identity)] = std::move(updated);
  return Status::ok();
}

Status PgPolicyStore::remove(std::string_view identity) {
  const std::string key = policy_key(identity);
  if (key == "global") return Status::failed_precondition("the Global policy cannot be removed");
  std::lock_guard wl(write_mu_);
  pg::Params p;
  p.text(key);
  // The grants naming it go with it (ON DELETE CASCADE): atomically.
  auto r = run("DELETE FROM policies WHERE policy_key = $1", p);
  if (!r) return r.status();
  if (r->affected() == 0) return Status::not_found(fmt::format("no policy '{}'", identity));
  std::unique_lock lock(mu_);
  policies_.erase(key);
  for (auto it = grants_.begin(); it != grants_.end();) it = it->second == key ? grants_.erase(it) : std::next(it);
  return Status::ok();
}

Status PgPolicyStore::grant(std::string_view raw_user, std::optional<std::string_view> policy) {
  auto user = normalize_user_id(raw_user);
  if (!user) return Status::invalid_argument(fmt::format("invalid user id '{}'", raw_user));
  std::lock_guard wl(write_mu_);
  std::optional<std::string> key;
  if (policy && policy_key(*policy) != "global") key = policy_key(*policy);
  pg::Params p;
  p.text(*user);
  if (key) {
    p.text(*key);
    // (Not there: no row inserted, whatever another node does meanwhile.)
    auto r = run("INSERT INTO grants SELECT $1, policy_key FROM policies WHERE policy_key = $2 "
                 "ON CONFLICT (user_id) DO UPDATE SET policy_key = EXCLUDED.policy_key RETURNING 1",
                 p);
    if (!r) return r.status();
    if (r->size() == 0) return Status::not_found(fmt::format("no policy '{}'", *policy));
  } else if (auto r = run("DELETE FROM grants WHERE user_id = $1", p); !r) {
    return r.status();
  }
  std::unique_lock lock(mu_);
  if (key) grants_[*user] = *key;
  else grants_.erase(*user);
  return Status::ok();
}

std::optional<std::string> PgPolicyStore::granted_policy(std::string_view user) const {
  const std::string u = lower_ascii(user);
  std::shared_lock lock(mu_);
  auto g = grants_.find(u);
  if (g == grants_.end()) return std::nullopt;
  auto p = policies_.find(g->second);
  if (p == policies_.end()) return std::nullopt;
  return p->second.identity;
}

EffectivePolicy PgPolicyStore::effective_policy_for(std::string_view user) const {
  const std::string u = lower_ascii(user);
  std::shared_lock lock(mu_);
  if (auto g = grants_.find(u); g != grants_.end())
    if (auto p = policies_.find(g->second); p != policies_.end()) return EffectivePolicy{p->second, true};
  return EffectivePolicy{global_locked(), false};
}

bool PgPolicyStore::delivery_receipts_for(std::string_view user) const {
  const std::string u = lower_ascii(user);
  std::shared_lock lock(mu_);
  if (auto g = grants_.find(u); g != grants_.end())
    if (auto p = policies_.find(g->second); p != policies_.end()) return p->second.enable_delivery_receipts;
  return global_locked().enable_delivery_receipts;
}

std::vector<std::string> PgPolicyStore::users_granted(std::string_view identity) const {
  const std::string key = policy_key(identity);
  std::shared_lock lock(mu_);
  std::vector<std::string> users;
  for (const auto& [user, policy] : grants_)
    if (policy == key) users.push_back(user);
  return users;
}

ImConfiguration PgPolicyStore::im_configuration() const {
  std::shared_lock lock(mu_);
  return im_;
}

Status PgPolicyStore::set_im_configuration(const ImConfiguration& config) {
  std::lock_guard wl(write_mu_);
  pg::Params p;
  p.boolean(config.enable_offline_im);
  auto r = run("INSERT INTO im_configuration VALUES (1, $1) ON CONFLICT (id) DO UPDATE "
               "SET enable_offline_im = EXCLUDED.enable_offline_im",
               p);
  if (!r) return r.status();
  std::unique_lock lock(mu_);
  im_ = config;
  return Status::ok();
}

Status PgPolicyStore::revoke_tokens(std::string_view raw_user, std::int64_t at_s) {
  auto user = normalize_user_id(raw_user);
  if (!user) return Status::invalid_argument(fmt::format("invalid user id '{}'", raw_user));
  std::lock_guard wl(write_mu_);
  pg::Params p;
  p.text(*user).i64(at_s);
  // The time only moves forward, whichever node writes.
  auto r = run("INSERT INTO token_revocations VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE "
               "SET revoked_at_s = GREATEST(token_revocations.revoked_at_s, EXCLUDED.revoked_at_s) "
               "RETURNING revoked_at_s",
               p);
  if (!r) return r.status();
  std::unique_lock lock(mu_);
  revoked_[*user] = r->size() > 0 ? r->i64(0, 0) : at_s;
  return Status::ok();
}

std::optional<std::int64_t> PgPolicyStore::revoked_at(std::string_view raw_user) const {
  auto user = normalize_user_id(raw_user);
  if (!user) return std::nullopt;
  std::shared_lock lock(mu_);
  auto it = revoked_.find(*user);
  if (it == revoked_.end()) return std::nullopt;
  return it->second;
}

}  // namespace

Result<std::unique_ptr<PolicyStore>> open_pg_policy_store(const std::string& dsn) {
  auto c = pg::Connection::open(dsn);
  if (!c) return c.status();
  auto store = std::make_unique<PgPolicyStore>(std::move(c).value());
  if (Status s = store->load(); !s) return s;
  store->start();
  return std::unique_ptr<PolicyStore>(std::move(store));
}

}  // namespace oms::storage
