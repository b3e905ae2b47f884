// Identifiers of the contract: user ids and message ids.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace oms {

// Contract §1.1: 1–128 bytes of [A-Za-z0-9._@+-], compared case-insensitively.
inline constexpr std::size_t kMaxUserIdBytes = 128;

// The lower-cased user id, or nullopt when `raw` is not a valid user id.
std::optional<std::string> normalize_user_id(std::string_view raw);

// Message ids on the wire: exactly 16 lower-case hex digits of the store's
// global sequence number (unique forever, ordered per mailbox).
std::string format_message_id(std::uint64_t seq);
std::optional<std::uint64_t> parse_message_id(std::string_view id);

// Client policy identities (Global, OfflineIM, ...): 1–64 bytes of
// [A-Za-z0-9._-], compared case-insensitively; the display spelling is kept.
inline constexpr std::size_t kMaxPolicyIdentityBytes = 64;
bool is_valid_policy_identity(std::string_view identity);
std::string lower_ascii(std::string_view s);

// client_msg_id: 1–64 bytes (any UTF-8).
inline constexpr std::size_t kMaxClientMsgIdBytes = 64;

}  // namespace oms
