// PolicyStore on the "policies", "grants" and "im_config" column families.
//
// Reads are served from an in-memory copy guarded by a shared_mutex. Writes
// are serialised by write_mu_: each checks against the copy, writes one synced
// WriteBatch, and only after that write returned OK updates the copy (under
// the exclusive lock, held only for the in-memory update, never across I/O).
#include "storage/rocks_policy_store.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <shared_mutex>

#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "common/ids.h"
#include "storage/keys.h"
#include "storage/rocks_status.h"
#include "storage/wal_watch.h"

namespace oms::storage {
namespace {

class RocksPolicyStore final : public PolicyStore {
 public:
  RocksPolicyStore(rocksdb::DB* db, PolicyColumnFamilies cfs, WalWatch* wal)
      : db_(db), cfs_(cfs), wal_(wal) {}

  Status load();

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
  Status write(rocksdb::WriteBatch& batch, std::string_view what);
  Status put_policy(const ClientPolicy& p);  // REQUIRES: write_mu_ held
  const ClientPolicy& global_locked() const;  // REQUIRES: mu_ held (any mode)

  rocksdb::DB* db_;
  PolicyColumnFamilies cfs_;
  WalWatch* wal_;

  std::mutex write_mu_;  // serialises writers (check + write + publish)
  mutable std::shared_mutex mu_;  // guards the three members below
  std::map<std::string, ClientPolicy> policies_;  // by policy_key (lower-case)
  std::map<std::string, std::string, std::less<>> grants_;  // user -> policy_key
  ImConfiguration im_;
  std::map<std::string, std::int64_t> revoked_;  // user -> revocation time (s)
};

// Revocations live in the "im_config" column family beside the IM
// configuration record, under their own prefix: "revoked/<user>" -> decimal
// seconds since the epoch.
constexpr std::string_view kRevokedPrefix = "revoked/";

Status RocksPolicyStore::write(rocksdb::WriteBatch& batch, std::string_view what) {
  rocksdb::WriteOptions wo;
  wo.sync = true;  // policies are rare and must survive a crash once answered
  // Not to a failed WAL, which would abort the process (see wal_watch.h).
  rocksdb::Status s = wal_ ? wal_->write(db_, wo, &batch) : db_->Write(wo, &batch);
  if (!s.ok()) return from_rocks(s, what);
  return Status::ok();
}

Status RocksPolicyStore::load() {
  rocksdb::ReadOptions ro;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_.policies));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto rec = keys::decode_policy_value(it->value().ToStringView());
      if (!rec || keys::policy_key(rec->identity) != it->key().ToStringView())
        return Status::io_error(fmt::format("corrupt policy record '{}'", it->key().ToString()));
      policies_[it->key().ToString()] =
          ClientPolicy{rec->identity, rec->enable_im_auto_archiving, rec->enable_delivery_receipts};
    }
    if (!it->status().ok()) return from_rocks(it->status(), "reading policies");
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_.grants));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto policy = keys::decode_grant_value(it->value().ToStringView());
      if (!policy)
        return Status::io_error(fmt::format("corrupt grant record '{}'", it->key().ToString()));
      grants_[it->key().ToString()] = std::move(*policy);
    }
    if (!it->status().ok()) return from_rocks(it->status(), "reading grants");
  }
  {
    std::string value;
    rocksdb::Status s = db_->Get(ro, cfs_.im_config, keys::kImConfigKey, &value);
    if (s.ok()) {
      auto enabled = keys::decode_im_config_value(value);
      if (!enabled) return Status::io_error("corrupt IM configuration record");
      im_.enable_offline_im = *enabled;
    } else if (!s.IsNotFound()) {
      return from_rocks(s, "reading IM configuration");
    }
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_.im_config));
    for (it->Seek(rocksdb::Slice(kRevokedPrefix.data(), kRevokedPrefix.size()));
         it->Valid() && it->key().starts_with(rocksdb::Slice(kRevokedPrefix.data(), kRevokedPrefix.size()));
         it->Next()) {
      std::string_view key = it->key().ToStringView();
      std::string value = it->value().ToString();
      char* end = nullptr;
      const long long at = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || end != value.c_str() + value.size())
        return Status::io_error(fmt::format("corrupt revocation record '{}'", key));
      revoked_[std::string(key.substr(kRevokedPrefix.size()))] = at;
    }
    if (!it->status().ok()) return from_rocks(it->status(), "reading revocations");
  }
  if (!policies_.count(keys::policy_key(kGlobalPolicy))) {
    ClientPolicy global{std::string(kGlobalPolicy), true, true};
    std::lock_guard<std::mutex> wl(write_mu_);
    Status st = put_policy(global);
    if (!st) return st;
  }
  return Status::ok();
}

Status RocksPolicyStore::put_policy(const ClientPolicy& p) {
  const std::string key = keys::policy_key(p.identity);
  rocksdb::WriteBatch batch;
  rocksdb::Status s = batch.Put(
      cfs_.policies, key,
      keys::encode_policy_value({p.identity, p.enable_im_auto_archiving, p.enable_delivery_receipts}));
  if (!s.ok()) return from_rocks(s, "writing policy");
  Status st = write(batch, "writing policy");
  if (!st) return st;
  std::unique_lock lock(mu_);
  policies_[key] = p;
  return Status::ok();
}

const ClientPolicy& RocksPolicyStore::global_locked() const {
  auto it = policies_.find(keys::policy_key(kGlobalPolicy));
  assert(it != policies_.end() && "Global always exists once the store is open");
  return it->second;
}

std::vector<ClientPolicy> RocksPolicyStore::list() const {
  std::shared_lock lock(mu_);
  std::vector<ClientPolicy> out;
  out.reserve(policies_.size());
  out.push_back(global_locked());
  const std::string global_key = keys::policy_key(kGlobalPolicy);
  for (const auto& [key, p] : policies_)  // by lower-case identity
    if (key != global_key) out.push_back(p);
  return out;
}

std::optional<ClientPolicy> RocksPolicyStore::get(std::string_view identity) const {
  std::shared_lock lock(mu_);
  auto it = policies_.find(keys::policy_key(identity));
  if (it == policies_.end()) return std::nullopt;
  return it->second;
}

Status RocksPolicyStore::create(const ClientPolicy& policy) {
  if (!is_valid_policy_identity(policy.identity))
    return Status::invalid_argument(
        fmt::format("invalid policy identity '{}' (1-64 of [A-Za-z0-9._-])", policy.identity));
  std::lock_guard<std::mutex> wl(write_mu_);
  {
    std::shared_lock lock(mu_);
    auto it = policies_.find(keys::policy_key(policy.identity));
    if (it != policies_.end())
      return Status::already_exists(
          fmt::format("policy '{}' already exists", it->second.identity));
  }
  return put_policy(policy);
}

Status RocksPolicyStore::update(const ClientPolicy& policy) {
  std::lock_guard<std::mutex> wl(write_mu_);
  ClientPolicy updated;
  {
    std::shared_lock lock(mu_);
    auto it = policies_.find(keys::policy_key(policy.identity));
    if (it == policies_.end())
      return Status::not_found(fmt::format("no policy '{}'", policy.identity));
    updated = it->second;  // keeps the spelling given at creation
  }
  updated.enable_im_auto_archiving = policy.enable_im_auto_archiving;
  updated.enable_delivery_receipts = policy.enable_delivery_receipts;
  return put_policy(updated);
}

Status RocksPolicyStore::remove(std::string_view identity) {
  const std::string key = keys::policy_key(identity);
  if (key == keys::policy_key(kGlobalPolicy))
    return Status::failed_precondition("the Global policy cannot be removed");
  std::lock_guard<std::mutex> wl(write_mu_);
  std::vector<std::string> users;
  {
    std::shared_lock lock(mu_);
    if (!policies_.count(key)) return Status::not_found(fmt::format("no policy '{}'", identity));
    for (const auto& [user, policy] : grants_)
      if (policy == key) users.push_back(user);
  }
  // The policy and every grant naming it go in one batch: users fall back to
  // Global atomically.
  rocksdb::WriteBatch batch;
  rocksdb::Status s = batch.Delete(cfs_.policies, key);
  for (const auto& user : users)
    if (s.ok()) s = batch.Delete(cfs_.grants, keys::grant_key(user));
  if (!s.ok()) return from_rocks(s, "removing policy");
  Status st = write(batch, "removing policy");
  if (!st) return st;
  std::unique_lock lock(mu_);
  policies_.erase(key);
  for (const auto& user : users) grants_.erase(user);
  return Status::ok();
}

Status RocksPolicyStore::grant(std::string_view raw_user, std::optional<std::string_view> policy) {
  auto user = normalize_user_id(raw_user);
  if (!user) return Status::invalid_argument(fmt::format("invalid user id '{}'", raw_user));
  std::lock_guard<std::mutex> wl(write_mu_);
  // Granting Global explicitly is the same as reverting to it: no grant.
  std::optional<std::string> key;
  if (policy && keys::policy_key(*policy) != keys::policy_key(kGlobalPolicy)) {
    key = keys::policy_key(*policy);
    std::shared_lock lock(mu_);
    if (!policies_.count(*key)) return Status::not_found(fmt::format("no policy '{}'", *policy));
  }
  rocksdb::WriteBatch batch;
  rocksdb::Status s = key ? batch.Put(cfs_.grants, keys::grant_key(*user),
                                      keys::encode_grant_value(*key))
                          : batch.Delete(cfs_.grants, keys::grant_key(*user));
  if (!s.ok()) return from_rocks(s, "writing grant");
  Status st = write(batch, "writing grant");
  if (!st) return st;
  std::unique_lock lock(mu_);
  if (key)
    grants_[*user] = *key;
  else
    grants_.erase(*user);
  return Status::ok();
}

std::optional<std::string> RocksPolicyStore::granted_policy(std::string_view user) const {
  const std::string u = lower_ascii(user);
  std::shared_lock lock(mu_);
  auto g = grants_.find(u);
  if (g == grants_.end()) return std::nullopt;
  auto p = policies_.find(g->second);
  if (p == policies_.end()) return std::nullopt;  // not reachable: remove() drops its grants
  return p->second.identity;
}

EffectivePolicy RocksPolicyStore::effective_policy_for(std::string_view user) const {
  const std::string u = lower_ascii(user);
  std::shared_lock lock(mu_);
  auto g = grants_.find(u);
  if (g != grants_.end()) {
    auto p = policies_.find(g->second);
    if (p != policies_.end()) return EffectivePolicy{p->second, true};
  }
  return EffectivePolicy{global_locked(), false};
}

bool RocksPolicyStore::delivery_receipts_for(std::string_view user) const {
  // Users reach here normalised (lower-case): no copy then.
  const bool lower = std::none_of(user.begin(), user.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
  std::string folded;
  if (!lower) folded = lower_ascii(user);
  const std::string_view u = lower ? user : std::string_view(folded);
  std::shared_lock lock(mu_);
  auto g = grants_.find(u);
  if (g != grants_.end()) {
    auto p = policies_.find(g->second);
    if (p != policies_.end()) return p->second.enable_delivery_receipts;
  }
  return global_locked().enable_delivery_receipts;
}

std::vector<std::string> RocksPolicyStore::users_granted(std::string_view identity) const {
  const std::string key = keys::policy_key(identity);
  std::shared_lock lock(mu_);
  std::vector<std::string> users;
  for (const auto& [user, policy] : grants_)  // std::map: already sorted
    if (policy == key) users.push_back(user);
  return users;
}

ImConfiguration RocksPolicyStore::im_configuration() const {
  std::shared_lock lock(mu_);
  return im_;
}

Status RocksPolicyStore::set_im_configuration(const ImConfiguration& config) {
  std::lock_guard<std::mutex> wl(write_mu_);
  rocksdb::WriteBatch batch;
  rocksdb::Status s = batch.Put(cfs_.im_config, keys::kImConfigKey,
                                keys::encode_im_config_value(config.enable_offline_im));
  if (!s.ok()) return from_rocks(s, "writing IM configuration");
  Status st = write(batch, "writing IM configuration");
  if (!st) return st;
  std::unique_lock lock(mu_);
  im_ = config;
  return Status::ok();
}

Status RocksPolicyStore::revoke_tokens(std::string_view raw_user, std::int64_t at_s) {
  auto user = normalize_user_id(raw_user);
  if (!user) return Status::invalid_argument(fmt::format("invalid user id '{}'", raw_user));
  std::lock_guard<std::mutex> wl(write_mu_);
  {
    std::shared_lock lock(mu_);
    auto it = revoked_.find(*user);
    if (it != revoked_.end() && it->second >= at_s) return Status::ok();
  }
  rocksdb::WriteBatch batch;
  rocksdb::Status s = batch.Put(cfs_.im_config, std::string(kRevokedPrefix) + *user, std::to_string(at_s));
  if (!s.ok()) return from_rocks(s, "writing revocation");
  Status st = write(batch, "writing revocation");
  if (!st) return st;
  std::unique_lock lock(mu_);
  revoked_[*user] = at_s;
  return Status::ok();
}

std::optional<std::int64_t> RocksPolicyStore::revoked_at(std::string_view raw_user) const {
  auto user = normalize_user_id(raw_user);
  if (!user) return std::nullopt;
  std::shared_lock lock(mu_);
  auto it = revoked_.find(*user);
  if (it == revoked_.end()) return std::nullopt;
  return it->second;
}

}  // namespace

Result<std::unique_ptr<PolicyStore>> open_rocks_policy_store(rocksdb::DB* db,
                                                             PolicyColumnFamilies cfs,
                                                             WalWatch* wal) {
  auto store = std::make_unique<RocksPolicyStore>(db, cfs, wal);
  Status st = store->load();
  if (!st) return st;
  return std::unique_ptr<PolicyStore>(std::move(store));
}

}  // namespace oms::storage
