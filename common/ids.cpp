#include "common/ids.h"

#include <fmt/format.h>

namespace oms {
namespace {

bool is_user_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '@' || c == '+' || c == '-';
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

std::optional<std::string> normalize_user_id(std::string_view raw) {
  if (raw.empty() || raw.size() > kMaxUserIdBytes) return std::nullopt;
  for (char c : raw)
    if (!is_user_id_char(c)) return std::nullopt;
  return lower_ascii(raw);
}

std::string format_message_id(std::uint64_t seq) { return fmt::format("{:016x}", seq); }

std::optional<std::uint64_t> parse_message_id(std::string_view id) {
  if (id.size() != 16) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : id) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return std::nullopt;
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return v;
}

bool is_valid_policy_identity(std::string_view identity) {
  if (identity.empty() || identity.size() > kMaxPolicyIdentityBytes) return false;
  for (char c : identity) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace oms
