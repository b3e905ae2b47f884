// MailboxTotals: the committed totals of every non-empty mailbox (messages,
// body bytes, receipts, kept acks), in memory only.
//
// Format version 3 keeps no per-mailbox meta record on disk: the totals are
// what the messages, receipts and acks column families hold, counted once
// when the store opens (RocksMailboxStore::load) and kept here from then on
// by the writer thread, which publishes a batch's totals only after its
// write succeeded. So a batch costs no meta write, and the totals can never
// disagree with the records after a crash.
//
// Thread-safe: the writer sets, any thread reads. Sharded by mailbox hash so
// that readers (the scan pool) seldom meet the writer on one lock.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "storage/keys.h"

namespace oms::storage {

class MailboxTotals {
 public:
  // The mailbox's totals (all zero when it holds nothing).
  keys::MailboxMeta get(std::string_view mailbox) const {
    const Shard& s = shard(mailbox);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(mailbox);
    return it == s.map.end() ? keys::MailboxMeta{} : it->second;
  }
  // Sets the totals (an empty meta removes the entry).
  void set(const std::string& mailbox, const keys::MailboxMeta& meta) {
    Shard& s = shard(mailbox);
    std::lock_guard lock(s.mu);
    if (meta.empty()) {
      if (auto it = s.map.find(std::string_view(mailbox)); it != s.map.end()) s.map.erase(it);
    } else {
      s.map.insert_or_assign(mailbox, meta);
    }
  }
  // Adds to the totals while the store opens (before any other thread runs).
  keys::MailboxMeta& at_load(std::string_view mailbox) {
    Shard& s = shard(mailbox);
    auto it = s.map.find(mailbox);
    if (it == s.map.end()) it = s.map.emplace(std::string(mailbox), keys::MailboxMeta{}).first;
    return it->second;
  }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, keys::MailboxMeta, Hash, std::equal_to<>> map;
  };
  static constexpr std::size_t kShards = 16;
  Shard& shard(std::string_view mailbox) { return shards_[Hash()(mailbox) % kShards]; }
  const Shard& shard(std::string_view mailbox) const { return shards_[Hash()(mailbox) % kShards]; }

  std::array<Shard, kShards> shards_;
};

}  // namespace oms::storage
