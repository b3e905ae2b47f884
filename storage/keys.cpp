// On-disk encoding, format version 2 (see keys.h before changing anything).
// Devices, acks and receipts: keys_devices.cpp.
#include "storage/keys.h"

#include <cassert>

#include "common/coding.h"
#include "common/ids.h"

namespace oms::storage::keys {
namespace {

// Every value layout starts with this byte (format version 1).
constexpr std::uint8_t kValueVersion = 1;

bool get_version(std::string_view& in) {
  std::uint8_t v = 0;
  return get_fixed8(in, v) && v == kValueVersion;
}

}  // namespace

std::string encode_format_version(std::uint32_t version) {
  std::string out;
  put_fixed32_be(out, version);
  return out;
}

std::optional<std::uint32_t> decode_format_version(std::string_view value) {
  std::uint32_t v = 0;
  if (!get_fixed32_be(value, v) || !value.empty()) return std::nullopt;
  return v;
}

std::string encode_last_seq(std::uint64_t seq) {
  std::string out;
  put_fixed64_be(out, seq);
  return out;
}

std::optional<std::uint64_t> decode_last_seq(std::string_view value) {
  std::uint64_t v = 0;
  if (!get_fixed64_be(value, v) || !value.empty()) return std::nullopt;
  return v;
}

std::string message_key(std::string_view mailbox, std::uint64_t seq) {
  assert(mailbox.size() <= kMaxShortField);
  std::string out;
  out.reserve(1 + mailbox.size() + 8);
  put_short_bytes(out, mailbox);
  put_fixed64_be(out, seq);
  return out;
}

std::string mailbox_prefix(std::string_view mailbox) {
  assert(mailbox.size() <= kMaxShortField);
  std::string out;
  put_short_bytes(out, mailbox);
  return out;
}

std::string mailbox_range_begin(std::string_view mailbox) {
  std::string out = mailbox_prefix(mailbox);
  out.append(8, '\x00');
  return out;
}

std::string mailbox_range_end(std::string_view mailbox) {
  std::string out = mailbox_prefix(mailbox);
  out.append(8, '\xff');
  return out;
}

std::optional<MessageKey> decode_message_key(std::string_view key) {
  MessageKey k;
  if (!get_short_bytes(key, k.mailbox) || !get_fixed64_be(key, k.seq) || !key.empty())
    return std::nullopt;
  return k;
}

// Message values carry their own version: 2 since format version 2, and
// version-1 values written before the upgrade are read as they are.
constexpr std::uint8_t kMessageValueVersion = 2;
constexpr std::uint8_t kMessageFlagReceipt = 1;

std::string encode_message_value(const MessageView& m) {
  assert(m.from.size() <= kMaxShortField && m.reason.size() <= kMaxShortField &&
         m.client_msg_id.size() <= kMaxShortField);
  std::string out;
  out.reserve(1 + 1 + 8 + 1 + m.from.size() + 1 + m.reason.size() + 1 + 1 + m.client_msg_id.size() + 4 +
              m.body.size());
  put_fixed8(out, kMessageValueVersion);
  put_fixed8(out, static_cast<std::uint8_t>(m.kind));
  put_int64_be(out, m.sent_at_ms);
  put_short_bytes(out, m.from);
  put_short_bytes(out, m.reason);
  put_fixed8(out, m.want_receipt ? kMessageFlagReceipt : 0);
  put_short_bytes(out, m.client_msg_id);
  put_bytes32(out, m.body);
  return out;
}

std::optional<MessageView> decode_message_value(std::string_view value) {
  MessageView m;
  std::uint8_t version = 0, kind = 0, flags = 0;
  if (!get_fixed8(value, version) || (version != 1 && version != kMessageValueVersion) ||
      !get_fixed8(value, kind) || !get_int64_be(value, m.sent_at_ms) || !get_short_bytes(value, m.from) ||
      !get_short_bytes(value, m.reason))
    return std::nullopt;
  if (version == kMessageValueVersion) {
    if (!get_fixed8(value, flags) || !get_short_bytes(value, m.client_msg_id)) return std::nullopt;
    m.want_receipt = (flags & kMessageFlagReceipt) != 0;
  }
  if (!get_bytes32(value, m.body) || !value.empty()) return std::nullopt;
  if (kind > static_cast<std::uint8_t>(proto::MessageKind::kMissed)) return std::nullopt;
  m.kind = static_cast<proto::MessageKind>(kind);
  return m;
}

std::string dedup_key(std::string_view sender, std::string_view client_msg_id) {
  assert(sender.size() <= kMaxShortField);
  std::string out;
  out.reserve(1 + sender.size() + client_msg_id.size());
  put_short_bytes(out, sender);
  out.append(client_msg_id);
  return out;
}

std::string encode_dedup_value(const DedupView& d) {
  assert(d.mailbox.size() <= kMaxShortField);
  std::string out;
  put_fixed8(out, kValueVersion);
  put_fixed64_be(out, d.seq);
  put_int64_be(out, d.sent_at_ms);
  put_short_bytes(out, d.mailbox);
  put_int64_be(out, d.created_ms);
  put_bytes32(out, d.payload);
  return out;
}

std::optional<DedupView> decode_dedup_value(std::string_view value) {
  DedupView d;
  if (!get_version(value) || !get_fixed64_be(value, d.seq) || !get_int64_be(value, d.sent_at_ms) ||
      !get_short_bytes(value, d.mailbox) || !get_int64_be(value, d.created_ms) ||
      !get_bytes32(value, d.payload) || !value.empty())
    return std::nullopt;
  return d;
}

std::string policy_key(std::string_view identity) { return lower_ascii(identity); }

// Policy values have their own version byte: 1 (identity, archiving) was
// written before receipts existed and is still read; 2 adds receipts.
constexpr std::uint8_t kPolicyValueVersionNoReceipts = 1;
constexpr std::uint8_t kPolicyValueVersion = 2;

std::string encode_policy_value(const PolicyRecord& p) {
  assert(p.identity.size() <= kMaxShortField);
  std::string out;
  put_fixed8(out, kPolicyValueVersion);
  put_short_bytes(out, p.identity);
  put_fixed8(out, p.enable_im_auto_archiving ? 1 : 0);
  put_fixed8(out, p.enable_delivery_receipts ? 1 : 0);
  return out;
}

std::optional<PolicyRecord> decode_policy_value(std::string_view value) {
  std::uint8_t version = 0;
  std::string_view identity;
  std::uint8_t archiving = 0;
  std::uint8_t receipts = 1;  // version 1 has no such byte: receipts on
  if (!get_fixed8(value, version) ||
      (version != kPolicyValueVersionNoReceipts && version != kPolicyValueVersion) ||
      !get_short_bytes(value, identity) || !get_fixed8(value, archiving) || archiving > 1)
    return std::nullopt;
  if (version == kPolicyValueVersion && (!get_fixed8(value, receipts) || receipts > 1))
    return std::nullopt;
  if (!value.empty()) return std::nullopt;
  return PolicyRecord{std::string(identity), archiving == 1, receipts == 1};
}

std::string grant_key(std::string_view user) { return std::string(user); }

std::string encode_grant_value(std::string_view policy_key) {
  assert(policy_key.size() <= kMaxShortField);
  std::string out;
  put_fixed8(out, kValueVersion);
  put_short_bytes(out, policy_key);
  return out;
}

std::optional<std::string> decode_grant_value(std::string_view value) {
  std::string_view policy;
  if (!get_version(value) || !get_short_bytes(value, policy) || !value.empty())
    return std::nullopt;
  return std::string(policy);
}

std::string encode_im_config_value(bool enable_offline_im) {
  std::string out;
  put_fixed8(out, kValueVersion);
  put_fixed8(out, enable_offline_im ? 1 : 0);
  return out;
}

std::optional<bool> decode_im_config_value(std::string_view value) {
  std::uint8_t flag = 0;
  if (!get_version(value) || !get_fixed8(value, flag) || flag > 1 || !value.empty())
    return std::nullopt;
  return flag == 1;
}

}  // namespace oms::storage::keys
