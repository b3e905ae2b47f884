// Client policies, grants and the organisation IM configuration.
//
// Durable (each write is synced before it returns), kept in the same
// database as the mailboxes (a Store, store.h, hands out both), cached in
// memory for the hot path. The Global policy always exists (created with
// enable_im_auto_archiving = true at first open) and cannot be removed.
// Identities compare case-insensitively; the spelling given at creation is
// kept for display. Removing a policy removes the grants that name it, so
// those users fall back to Global.
//
// Thread-safe. Writes block on a synced write: call them off I/O threads.
// Reads are served from memory and are cheap.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace oms::storage {

inline constexpr std::string_view kGlobalPolicy = "Global";

struct ClientPolicy {
  std::string identity;
  bool enable_im_auto_archiving = true;
  // contract 4.2: the recipient's setting, read when a message is stored,
  // decides whether it makes a receipt.
  bool enable_delivery_receipts = true;
};

struct ImConfiguration {
  bool enable_offline_im = true;
};

struct EffectivePolicy {
  ClientPolicy policy;
  bool granted = false;  // false: it is Global (no grant)
};

class PolicyStore {
 public:
  virtual ~PolicyStore() = default;

  virtual std::vector<ClientPolicy> list() const = 0;  // Global first, then by identity
  virtual std::optional<ClientPolicy> get(std::string_view identity) const = 0;
  // already_exists if present; invalid_argument for a bad identity.
  virtual Status create(const ClientPolicy& policy) = 0;
  // not_found if absent. The identity's spelling is kept as created.
  virtual Status update(const ClientPolicy& policy) = 0;
  // failed_precondition for Global; not_found if absent.
  virtual Status remove(std::string_view identity) = 0;

  // Grant `policy` to `user` (normalised); nullopt reverts to Global.
  // not_found for an unknown policy.
  virtual Status grant(std::string_view user, std::optional<std::string_view> policy) = 0;
  virtual std::optional<std::string> granted_policy(std::string_view user) const = 0;
  virtual EffectivePolicy effective_policy_for(std::string_view user) const = 0;
  // effective_policy_for(user).policy.enable_delivery_receipts, without
  // copying the policy (read for every stored message).
  virtual bool delivery_receipts_for(std::string_view user) const = 0;
  // Users granted `identity` (for the admin view), sorted.
  virtual std::vector<std::string> users_granted(std::string_view identity) const = 0;

  virtual ImConfiguration im_configuration() const = 0;
  virtual Status set_im_configuration(const ImConfiguration& config) = 0;

  // Token revocation (contract 4.3): tokens of `user` issued (`iat`) before
  // `at_s` (seconds since the epoch), and tokens without `iat`, are refused.
  // A later revocation replaces an earlier one (the time only moves forward).
  virtual Status revoke_tokens(std::string_view user, std::int64_t at_s) = 0;
  // The user's revocation time, nullopt when never revoked.
  virtual std::optional<std::int64_t> revoked_at(std::string_view user) const = 0;
};

}  // namespace oms::storage
