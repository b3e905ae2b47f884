// On-disk encoding of receipts, per-device acks and devices (format version
// 2; see keys.h before changing anything).
#include <cassert>

#include "common/coding.h"
#include "storage/keys.h"

namespace oms::storage::keys {
namespace {

constexpr std::uint8_t kValueVersion = 1;
constexpr std::uint8_t kDeviceFlagCapable = 1;

}  // namespace

std::string receipt_key(std::string_view mailbox, std::uint64_t seq) { return message_key(mailbox, seq); }

std::string encode_receipt_value(const ReceiptView& r) {
  assert(r.to.size() <= kMaxShortField && r.client_msg_id.size() <= kMaxShortField);
  std::string out;
  out.reserve(1 + 1 + 8 + 8 + 1 + r.to.size() + 1 + r.client_msg_id.size());
  put_fixed8(out, kValueVersion);
  put_fixed8(out, static_cast<std::uint8_t>(r.state));
  put_fixed64_be(out, r.msg_seq);
  put_int64_be(out, r.at_ms);
  put_short_bytes(out, r.to);
  put_short_bytes(out, r.client_msg_id);
  return out;
}

std::optional<ReceiptView> decode_receipt_value(std::string_view value) {
  ReceiptView r;
  std::uint8_t version = 0, state = 0;
  if (!get_fixed8(value, version) || version != kValueVersion || !get_fixed8(value, state) ||
      !get_fixed64_be(value, r.msg_seq) || !get_int64_be(value, r.at_ms) || !get_short_bytes(value, r.to) ||
      !get_short_bytes(value, r.client_msg_id) || !value.empty())
    return std::nullopt;
  if (state < static_cast<std::uint8_t>(proto::ReceiptState::kDelivered) ||
      state > static_cast<std::uint8_t>(proto::ReceiptState::kPurged))
    return std::nullopt;
  r.state = static_cast<proto::ReceiptState>(state);
  return r;
}

std::string ack_seq_prefix(std::string_view mailbox, std::uint64_t seq) { return message_key(mailbox, seq); }

std::string ack_key(std::string_view mailbox, std::uint64_t seq, std::string_view device) {
  assert(device.size() <= proto::kMaxDeviceBytes);
  std::string out = message_key(mailbox, seq);
  out.append(device);
  return out;
}

std::optional<AckKey> decode_ack_key(std::string_view key) {
  AckKey k;
  if (!get_short_bytes(key, k.mailbox) || !get_fixed64_be(key, k.seq) || key.size() > proto::kMaxDeviceBytes)
    return std::nullopt;
  k.device = key;
  return k;
}

std::string devices_prefix(std::string_view user) { return mailbox_prefix(user); }

std::string device_key(std::string_view user, std::string_view device) {
  std::string out = mailbox_prefix(user);
  out.append(device);
  return out;
}

std::optional<DeviceKey> decode_device_key(std::string_view key) {
  DeviceKey k;
  if (!get_short_bytes(key, k.user) || key.empty() || key.size() > proto::kMaxDeviceBytes) return std::nullopt;
  k.device = key;
  return k;
}

std::string encode_device_value(const DeviceValue& d) {
  std::string out;
  out.reserve(18);
  put_fixed8(out, kValueVersion);
  put_int64_be(out, d.first_seen_ms);
  put_int64_be(out, d.last_seen_ms);
  put_fixed8(out, d.capable ? kDeviceFlagCapable : 0);
  return out;
}

std::optional<DeviceValue> decode_device_value(std::string_view value) {
  DeviceValue d;
  std::uint8_t version = 0, flags = 0;
  if (!get_fixed8(value, version) || version != kValueVersion || !get_int64_be(value, d.first_seen_ms) ||
      !get_int64_be(value, d.last_seen_ms) || !get_fixed8(value, flags) || !value.empty())
    return std::nullopt;
  d.capable = (flags & kDeviceFlagCapable) != 0;
  return d;
}

}  // namespace oms::storage::keys
