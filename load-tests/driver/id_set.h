// IdSet: the message ids a client has seen. Not thread-safe (each user's
// sets are touched only on its worker's thread).
#pragma once

#include <cstdint>
#include <unordered_set>
#include <vector>

namespace oms::load {

// A set of message ids that is a sorted vector while ids arrive in increasing
// order (the normal case: the server pushes a mailbox in sequence order) and
// falls back to a hash set for the rest.
class IdSet {
 public:
  bool insert(std::uint64_t id);  // true when id was not there yet
  bool contains(std::uint64_t id) const;
  std::size_t size() const { return sorted_.size() + odd_.size(); }
  void append_to(std::vector<std::uint64_t>& out) const;

 private:
  std::vector<std::uint64_t> sorted_;
  std::unordered_set<std::uint64_t> odd_;
};

}  // namespace oms::load
