// Client policies, grants and the IM configuration (PolicyStore).
#include <doctest/doctest.h>

#include <rocksdb/db.h>

#include "storage/keys.h"
#include "storage/policy_store.h"
#include "tests/unit/storage/store_test_util.h"

using namespace oms;
using namespace oms::storage;
using namespace oms::storage::testing;

TEST_SUITE("storage") {

TEST_CASE("policies: Global exists from the first open and cannot be removed") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-policy-global");
    auto store = open_ok(backend.options_in(dir));
    PolicyStore& p = store->policies();
    auto global = p.get("global");
    REQUIRE(global);
    CHECK(global->identity == "Global");
    CHECK(global->enable_im_auto_archiving);
    REQUIRE(p.list().size() == 1);
    CHECK(p.remove("Global").code() == Code::kFailedPrecondition);
    CHECK(p.remove("GLOBAL").code() == Code::kFailedPrecondition);
    CHECK(p.create({"global", true}).code() == Code::kAlreadyExists);

    // Global can be changed, and the change is kept.
    REQUIRE(p.update({"global", false}).is_ok());
    CHECK_FALSE(p.get("Global")->enable_im_auto_archiving);
    CHECK(p.get("Global")->identity == "Global");
    store.reset();
    store = open_ok(backend.options_in(dir));
    CHECK_FALSE(store->policies().get("Global")->enable_im_auto_archiving);
    CHECK(store->policies().list().size() == 1);
  });
}

TEST_CASE("policies: create, get, update, list, remove, with case-insensitive identities") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-policy-crud");
    auto store = open_ok(backend.options_in(dir));
    PolicyStore& p = store->policies();
    REQUIRE(p.create({"OfflineIM", false}).is_ok());
    REQUIRE(p.create({"aaa", true}).is_ok());
    REQUIRE(p.create({"Zeta.Policy_1-x", true}).is_ok());
    CHECK(p.create({"offlineim", true}).code() == Code::kAlreadyExists);
    CHECK(p.create({"", true}).code() == Code::kInvalidArgument);
    CHECK(p.create({"bad identity", true}).code() == Code::kInvalidArgument);
    CHECK(p.create({std::string(65, 'x'), true}).code() == Code::kInvalidArgument);

    auto got = p.get("OFFLINEIM");
    REQUIRE(got);
    CHECK(got->identity == "OfflineIM");
    CHECK_FALSE(got->enable_im_auto_archiving);
    CHECK_FALSE(p.get("missing"));

    REQUIRE(p.update({"offlineIM", true}).is_ok());
    CHECK(p.get("OfflineIM")->enable_im_auto_archiving);
    CHECK(p.get("OfflineIM")->identity == "OfflineIM");  // spelling as created
    CHECK(p.update({"missing", true}).code() == Code::kNotFound);

    auto all = p.list();
    REQUIRE(all.size() == 4);
    CHECK(all[0].identity == "Global");
    CHECK(all[1].identity == "aaa");
    CHECK(all[2].identity == "OfflineIM");
    CHECK(all[3].identity == "Zeta.Policy_1-x");

    CHECK(p.remove("missing").code() == Code::kNotFound);
    REQUIRE(p.remove("AAA").is_ok());
    CHECK_FALSE(p.get("aaa"));
    CHECK(p.list().size() == 3);
  });
}

TEST_CASE("policies: grants, effective policy, and remove() reverting grants to Global") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-policy-grants");
    auto store = open_ok(backend.options_in(dir));
    PolicyStore& p = store->policies();
    REQUIRE(p.create({"OfflineIM", false}).is_ok());
    REQUIRE(p.create({"Other", true}).is_ok());

    CHECK(p.grant("bob", std::string_view("nope")).code() == Code::kNotFound);
    CHECK(p.grant("not a user", std::string_view("OfflineIM")).code() == Code::kInvalidArgument);
    REQUIRE(p.grant("bob", std::string_view("offlineim")).is_ok());
    REQUIRE(p.grant("Alice", std::string_view("OfflineIM")).is_ok());
    REQUIRE(p.grant("carol", std::string_view("Other")).is_ok());

    CHECK(p.granted_policy("bob") == "OfflineIM");
    CHECK(p.granted_policy("alice") == "OfflineIM");
    CHECK_FALSE(p.granted_policy("dave"));
    auto eff = p.effective_policy_for("bob");
    CHECK(eff.granted);
    CHECK(eff.policy.identity == "OfflineIM");
    CHECK_FALSE(eff.policy.enable_im_auto_archiving);
    auto dave = p.effective_policy_for("dave");
    CHECK_FALSE(dave.granted);
    CHECK(dave.policy.identity == "Global");
    CHECK(p.users_granted("OFFLINEIM") == std::vector<std::string>{"alice", "bob"});

    // A change to the policy shows in the effective policy at once.
    REQUIRE(p.update({"OfflineIM", true}).is_ok());
    CHECK(p.effective_policy_for("bob").policy.enable_im_auto_archiving);

    // Re-granting moves the user; nullopt (or Global) reverts.
    REQUIRE(p.grant("bob", std::string_view("Other")).is_ok());
    CHECK(p.users_granted("Other") == std::vector<std::string>{"bob", "carol"});
    REQUIRE(p.grant("bob", std::nullopt).is_ok());
    CHECK_FALSE(p.granted_policy("bob"));
    CHECK_FALSE(p.effective_policy_for("bob").granted);
    REQUIRE(p.grant("carol", std::string_view("global")).is_ok());
    CHECK_FALSE(p.granted_policy("carol"));
    REQUIRE(p.grant("nobody", std::nullopt).is_ok());  // reverting twice is fine

    // Removing a policy reverts its users to Global.
    REQUIRE(p.grant("carol", std::string_view("Other")).is_ok());
    REQUIRE(p.remove("OfflineIM").is_ok());
    CHECK_FALSE(p.granted_policy("alice"));
    CHECK(p.effective_policy_for("alice").policy.identity == "Global");
    CHECK(p.users_granted("OfflineIM").empty());
    CHECK(p.granted_policy("carol") == "Other");

    // A new policy with the removed name does not inherit its old users.
    REQUIRE(p.create({"OfflineIM", false}).is_ok());
    CHECK_FALSE(p.granted_policy("alice"));

    store.reset();
    store = open_ok(backend.options_in(dir));
    PolicyStore& q = store->policies();
    CHECK_FALSE(q.granted_policy("alice"));
    CHECK(q.granted_policy("carol") == "Other");
    CHECK(q.users_granted("other") == std::vector<std::string>{"carol"});
  });
}

TEST_CASE("policies: everything persists across reopen") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-policy-persist");
    {
      auto store = open_ok(backend.options_in(dir));
      PolicyStore& p = store->policies();
      REQUIRE(p.create({"OfflineIM", false}).is_ok());
      REQUIRE(p.create({"Archive", true}).is_ok());
      REQUIRE(p.grant("bob", std::string_view("OfflineIM")).is_ok());
      CHECK(p.im_configuration().enable_offline_im);
      REQUIRE(p.set_im_configuration({false}).is_ok());
      CHECK_FALSE(p.im_configuration().enable_offline_im);
    }
    {
      auto store = open_ok(backend.options_in(dir));
      PolicyStore& p = store->policies();
      auto all = p.list();
      REQUIRE(all.size() == 3);
      CHECK(all[0].identity == "Global");
      CHECK(all[1].identity == "Archive");
      CHECK(all[2].identity == "OfflineIM");
      CHECK_FALSE(all[2].enable_im_auto_archiving);
      CHECK(p.granted_policy("bob") == "OfflineIM");
      CHECK_FALSE(p.im_configuration().enable_offline_im);
      REQUIRE(p.set_im_configuration({true}).is_ok());
    }
    auto store = open_ok(backend.options_in(dir));
    CHECK(store->policies().im_configuration().enable_offline_im);
  });
}

TEST_CASE("policies: token revocations move forward only and persist across reopen") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-revocation");
    {
      auto store = open_ok(backend.options_in(dir));
      PolicyStore& p = store->policies();
      CHECK_FALSE(p.revoked_at("alice@contoso.com").has_value());
      REQUIRE(p.revoke_tokens("Alice@Contoso.com", 1000).is_ok());
      CHECK(p.revoked_at("alice@contoso.com") == 1000);
      REQUIRE(p.revoke_tokens("alice@contoso.com", 500).is_ok());  // earlier: no change
      CHECK(p.revoked_at("alice@contoso.com") == 1000);
      REQUIRE(p.revoke_tokens("alice@contoso.com", 2000).is_ok());
      CHECK_FALSE(p.revoked_at("bob@contoso.com").has_value());
      CHECK_FALSE(p.revoke_tokens("not a user id", 1).is_ok());
      REQUIRE(p.set_im_configuration({false}).is_ok());  // shares the column family
    }
    auto store = open_ok(backend.options_in(dir));
    CHECK(store->policies().revoked_at("alice@contoso.com") == 2000);
    CHECK_FALSE(store->policies().im_configuration().enable_offline_im);
  });
}

TEST_CASE("policies: enable_delivery_receipts defaults to true, changes and persists") {
  for_each_backend([](const BackendUnderTest& backend) {
    TempDir dir("oms-storage-policy-receipts");
    {
      auto store = open_ok(backend.options_in(dir));
      PolicyStore& p = store->policies();
      CHECK(p.get("Global")->enable_delivery_receipts);
      REQUIRE(p.create({"NoReceipts", true, false}).is_ok());
      REQUIRE(p.create({"Both", false, true}).is_ok());
      CHECK_FALSE(p.get("noreceipts")->enable_delivery_receipts);
      CHECK(p.get("noreceipts")->enable_im_auto_archiving);
      REQUIRE(p.grant("bob", std::string_view("NoReceipts")).is_ok());
      CHECK_FALSE(p.effective_policy_for("bob").policy.enable_delivery_receipts);
      CHECK(p.effective_policy_for("carol").policy.enable_delivery_receipts);

      // update() writes both settings.
      REQUIRE(p.update({"Global", true, false}).is_ok());
      CHECK_FALSE(p.effective_policy_for("carol").policy.enable_delivery_receipts);
      REQUIRE(p.update({"both", false, false}).is_ok());
      REQUIRE(p.update({"both", true, true}).is_ok());
      CHECK(p.get("Both")->enable_delivery_receipts);
      CHECK(p.get("Both")->enable_im_auto_archiving);
    }
    auto store = open_ok(backend.options_in(dir));
    PolicyStore& p = store->policies();
    CHECK_FALSE(p.get("Global")->enable_delivery_receipts);
    CHECK(p.get("Global")->enable_im_auto_archiving);
    CHECK_FALSE(p.get("NoReceipts")->enable_delivery_receipts);
    CHECK(p.get("NoReceipts")->enable_im_auto_archiving);
    CHECK(p.get("Both")->enable_delivery_receipts);
    CHECK_FALSE(p.effective_policy_for("bob").policy.enable_delivery_receipts);
  });
}

// A policy value as main wrote it before receipts existed (value version 1:
// version, short(identity), archiving byte).
static std::string policy_value_v1(std::string_view identity, bool archiving) {
  std::string v;
  v.push_back('\x01');
  v.push_back(static_cast<char>(identity.size()));
  v.append(identity);
  v.push_back(archiving ? '\x01' : '\x00');
  return v;
}

TEST_CASE("keys: a version-1 policy value decodes with receipts on, version 2 round-trips") {
  auto v1 = keys::decode_policy_value(policy_value_v1("OfflineIM", false));
  REQUIRE(v1);
  CHECK(v1->identity == "OfflineIM");
  CHECK_FALSE(v1->enable_im_auto_archiving);
  CHECK(v1->enable_delivery_receipts);
  CHECK_FALSE(keys::decode_policy_value(policy_value_v1("X", true) + "\x01"));  // v1 has no 4th byte

  for (bool archiving : {false, true})
    for (bool receipts : {false, true}) {
      const std::string enc = keys::encode_policy_value({"P", archiving, receipts});
      CHECK(enc[0] == '\x02');
      auto dec = keys::decode_policy_value(enc);
      REQUIRE(dec);
      CHECK(dec->identity == "P");
      CHECK(dec->enable_im_auto_archiving == archiving);
      CHECK(dec->enable_delivery_receipts == receipts);
      for (std::size_t n = 0; n < enc.size(); ++n) CHECK_FALSE(keys::decode_policy_value(enc.substr(0, n)));
      CHECK_FALSE(keys::decode_policy_value(enc + "x"));
    }
  std::string bad = keys::encode_policy_value({"X", true, true});
  bad.back() = 2;  // not a bool
  CHECK_FALSE(keys::decode_policy_value(bad));
  bad = keys::encode_policy_value({"X", true, true});
  bad[0] = 3;  // an unknown value version
  CHECK_FALSE(keys::decode_policy_value(bad));
}

// RocksDB only: policies written as version-1 values (by main before
// receipts) load with receipts on, and a change rewrites them as version 2.
TEST_CASE("policies: version-1 records on disk load with enable_delivery_receipts = true") {
  TempDir dir("oms-storage-policy-v1");
  { auto store = open_ok(rocks_options_in(dir)); }
  const auto put_raw = [&](const std::vector<std::pair<std::string, std::string>>& records) {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options o;
    std::vector<std::string> names;
    REQUIRE(rocksdb::DB::ListColumnFamilies(o, rocks_path(dir), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> desc;
    for (auto& n : names) desc.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    REQUIRE(rocksdb::DB::Open(o, rocks_path(dir), desc, &handles, &raw).ok());
    rocksdb::ColumnFamilyHandle* policies = nullptr;
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == keys::kCfPolicies) policies = handles[i];
    REQUIRE(policies != nullptr);
    for (const auto& [k, v] : records) CHECK(raw->Put(rocksdb::WriteOptions(), policies, k, v).ok());
    for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
    delete raw;
  };
  put_raw({{keys::policy_key("Global"), policy_value_v1("Global", true)},
           {keys::policy_key("OfflineIM"), policy_value_v1("OfflineIM", false)}});
  {
    auto store = open_ok(rocks_options_in(dir));
    PolicyStore& p = store->policies();
    REQUIRE(p.list().size() == 2);
    CHECK(p.get("Global")->enable_delivery_receipts);
    CHECK(p.get("Global")->enable_im_auto_archiving);
    CHECK(p.get("OfflineIM")->enable_delivery_receipts);
    CHECK_FALSE(p.get("OfflineIM")->enable_im_auto_archiving);
    REQUIRE(p.update({"OfflineIM", false, false}).is_ok());
  }
  auto store = open_ok(rocks_options_in(dir));
  CHECK_FALSE(store->policies().get("OfflineIM")->enable_delivery_receipts);
  CHECK_FALSE(store->policies().get("OfflineIM")->enable_im_auto_archiving);
  CHECK(store->policies().get("Global")->enable_delivery_receipts);
}

}  // TEST_SUITE
