// IdSet: a sorted vector with a hash-set fallback (see id_set.h).
#include "load-tests/driver/id_set.h"

#include <algorithm>

namespace oms::load {

bool IdSet::insert(std::uint64_t id) {
  if (sorted_.empty() || id > sorted_.back()) {
    sorted_.push_back(id);
    return true;
  }
  if (std::binary_search(sorted_.begin(), sorted_.end(), id)) return false;
  return odd_.insert(id).second;
}

bool IdSet::contains(std::uint64_t id) const {
  return std::binary_search(sorted_.begin(), sorted_.end(), id) || odd_.count(id) != 0;
}

void IdSet::append_to(std::vector<std::uint64_t>& out) const {
  out.insert(out.end(), sorted_.begin(), sorted_.end());
  out.insert(out.end(), odd_.begin(), odd_.end());
}

}  // namespace oms::load
