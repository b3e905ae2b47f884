// The on-disk encoding of the mailbox store: column family names, keys and
// values. This file, keys.cpp and keys_devices.cpp are the ONLY place that
// knows the layout.
//
// THIS FORMAT IS ON DISK. Do not change a key or value layout without bumping
// kFormatVersion (stored under kFormatVersionKey in the default column
// family; open() upgrades a version it knows how to and refuses any other).
//
// Format version 3 (version 2, devices and receipts, contract 4.1/4.2,
// without the per-mailbox meta records: the store counts each mailbox's
// totals from its records when it opens, mailbox_totals.h):
//
//   CF "default"       store-wide meta
//     "format_version" -> fixed32_be(3)
//     "last_seq"       -> fixed64_be(highest sequence number ever assigned)
//   CF "messages"      one record per stored message
//     key   short(mailbox) fixed64_be(seq)
//     value fixed8(2) fixed8(kind) fixed64_be(sent_at_ms) short(from)
//           short(reason) fixed8(flags) short(client_msg_id) bytes32(body)
//           flags: bit 0 = the message makes a receipt for its sender
//     (a version-1 value, fixed8(1) kind sent_at from reason body, still
//     decodes: no receipt, no client_msg_id)
//   CF "mailbox_meta"  empty since version 3 (the upgrade deletes its records).
//     Versions 1 and 2 kept per-mailbox totals here, rewritten by every
//     batch: key short(mailbox), value fixed64_be(count) fixed64_be(body
//     bytes) [fixed64_be(receipts) fixed64_be(held acks), version 2 only]
//   CF "dedup"         idempotent sends
//     key   short(sender) client_msg_id
//     value fixed8(1) fixed64_be(seq) fixed64_be(sent_at_ms) short(mailbox)
//           fixed64_be(created_ms) bytes32(payload)
//   CF "receipts"      receipts waiting in the sender's mailbox
//     key   short(mailbox) fixed64_be(seq)
//     value fixed8(1) fixed8(state) fixed64_be(msg seq) fixed64_be(at_ms)
//           short(to) short(client_msg_id)
//   CF "acks"          acks kept per device while other active devices have
//                      not acked yet (the last one deletes the record instead)
//     key   short(mailbox) fixed64_be(seq) device   (device "" = the marker
//           "this message's delivered receipt was written")
//     value empty
//   CF "devices"       the devices of a user
//     key   short(user) device
//     value fixed8(1) fixed64_be(first_seen_ms) fixed64_be(last_seen_ms)
//           fixed8(flags: bit 0 = its last sign-in was capable)
//   CF "policies"      client policies
//     key   lower_ascii(identity)
//     value fixed8(2) short(identity as created) fixed8(enable_im_auto_archiving)
//           fixed8(enable_delivery_receipts)
//     (value version 1, written before receipts: no last byte; it reads as
//     enable_delivery_receipts = true, and is rewritten as 2 when changed)
//   CF "grants"        policy grants
//     key   user (normalised)
//     value fixed8(1) short(lower_ascii(policy identity))
//   CF "im_config"     organisation IM configuration
//     "im"             -> fixed8(1) fixed8(enable_offline_im)
//     "revoked/<user>" -> token revocation time (rocks_policy_store.cpp)
//
// short(s) is a 1-byte length then the bytes; every integer is big-endian
// so byte order is numeric order. Because the mailbox is length-prefixed, all
// keys of one mailbox form one contiguous range ordered by seq, and no two
// mailboxes interleave (not even "a" and "ab").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/protocol.h"

namespace oms::storage::keys {

inline constexpr std::uint32_t kFormatVersion = 3;
// The oldest version open() upgrades from.
inline constexpr std::uint32_t kOldestUpgradable = 1;

// Column families, looked up by name.
inline constexpr std::string_view kCfDefault = "default";
inline constexpr std::string_view kCfMessages = "messages";
inline constexpr std::string_view kCfMailboxMeta = "mailbox_meta";
inline constexpr std::string_view kCfDedup = "dedup";
inline constexpr std::string_view kCfPolicies = "policies";
inline constexpr std::string_view kCfGrants = "grants";
inline constexpr std::string_view kCfImConfig = "im_config";
inline constexpr std::string_view kCfReceipts = "receipts";
inline constexpr std::string_view kCfAcks = "acks";
inline constexpr std::string_view kCfDevices = "devices";

// Keys of the default column family.
inline constexpr std::string_view kFormatVersionKey = "format_version";
inline constexpr std::string_view kLastSeqKey = "last_seq";
// Key of the im_config column family.
inline constexpr std::string_view kImConfigKey = "im";

// Mailboxes, senders, reasons and policy identities are short fields.
inline constexpr std::size_t kMaxShortField = 255;

// ---- store-wide meta ----
std::string encode_format_version(std::uint32_t version);
std::optional<std::uint32_t> decode_format_version(std::string_view value);
std::string encode_last_seq(std::uint64_t seq);
std::optional<std::uint64_t> decode_last_seq(std::string_view value);

// ---- messages ----
// REQUIRES: mailbox.size() <= kMaxShortField (for every mailbox argument).
std::string message_key(std::string_view mailbox, std::uint64_t seq);
// short(mailbox): the common prefix of every key of the mailbox.
std::string mailbox_prefix(std::string_view mailbox);
// [mailbox_range_begin, mailbox_range_end) holds every message key of the
// mailbox: prefix + 8 x 0x00 and prefix + 8 x 0xFF. The end is exclusive, so
// it is meant for ReadOptions::iterate_upper_bound (seq UINT64_MAX is never
// assigned).
std::string mailbox_range_begin(std::string_view mailbox);
std::string mailbox_range_end(std::string_view mailbox);

struct MessageKey {
  std::string_view mailbox;  // points into the decoded key
  std::uint64_t seq = 0;
};
std::optional<MessageKey> decode_message_key(std::string_view key);

// A message value; the views point into the encoded value.
struct MessageView {
  proto::MessageKind kind = proto::MessageKind::kOffline;
  std::int64_t sent_at_ms = 0;
  std::string_view from;
  std::string_view reason;
  std::string_view body;
  bool want_receipt = false;
  std::string_view client_msg_id;
};
std::string encode_message_value(const MessageView& m);
// nullopt for a truncated, overlong or unknown-version value.
std::optional<MessageView> decode_message_value(std::string_view value);

// ---- mailbox totals (in memory since version 3: mailbox_totals.h) ----
struct MailboxMeta {
  std::uint64_t count = 0;     // messages
  std::uint64_t bytes = 0;     // their bodies
  std::uint64_t receipts = 0;  // receipts
  std::uint64_t held = 0;      // records in "acks" under this mailbox
  bool empty() const { return count == 0 && receipts == 0 && held == 0; }
};

// ---- dedup ----
// REQUIRES: sender.size() <= kMaxShortField.
std::string dedup_key(std::string_view sender, std::string_view client_msg_id);

struct DedupView {
  std::uint64_t seq = 0;
  std::int64_t sent_at_ms = 0;
  std::string_view mailbox;
  std::int64_t created_ms = 0;
  std::string_view payload;
};
std::string encode_dedup_value(const DedupView& d);
std::optional<DedupView> decode_dedup_value(std::string_view value);

// ---- receipts (keys_devices.cpp) ----
// Same key layout as messages (mailbox_range_begin/end bound a mailbox).
std::string receipt_key(std::string_view mailbox, std::uint64_t seq);
struct ReceiptView {
  proto::ReceiptState state = proto::ReceiptState::kDelivered;
  std::uint64_t msg_seq = 0;
  std::int64_t at_ms = 0;
  std::string_view to;
  std::string_view client_msg_id;
};
std::string encode_receipt_value(const ReceiptView& r);
std::optional<ReceiptView> decode_receipt_value(std::string_view value);

// ---- acks kept per device (keys_devices.cpp) ----
// REQUIRES: device.size() <= proto::kMaxDeviceBytes.
std::string ack_key(std::string_view mailbox, std::uint64_t seq, std::string_view device);
// Every ack key of (mailbox, seq) starts with this (= message_key).
std::string ack_seq_prefix(std::string_view mailbox, std::uint64_t seq);
struct AckKey {
  std::string_view mailbox;
  std::uint64_t seq = 0;
  std::string_view device;  // "" = the receipt marker
};
std::optional<AckKey> decode_ack_key(std::string_view key);

// ---- devices (keys_devices.cpp) ----
std::string device_key(std::string_view user, std::string_view device);
// short(user): the prefix of every device key of the user.
std::string devices_prefix(std::string_view user);
struct DeviceKey {
  std::string_view user;
  std::string_view device;
};
std::optional<DeviceKey> decode_device_key(std::string_view key);
struct DeviceValue {
  std::int64_t first_seen_ms = 0;
  std::int64_t last_seen_ms = 0;
  bool capable = false;
};
std::string encode_device_value(const DeviceValue& d);
std::optional<DeviceValue> decode_device_value(std::string_view value);

// ---- policies, grants, IM configuration ----
std::string policy_key(std::string_view identity);  // lower_ascii(identity)

struct PolicyRecord {
  std::string identity;  // the spelling given at creation
  bool enable_im_auto_archiving = true;
  bool enable_delivery_receipts = true;  // absent in value version 1: true
};
// Always writes the current policy value version (2).
std::string encode_policy_value(const PolicyRecord& p);
// Reads value versions 1 and 2; nullopt for anything else.
std::optional<PolicyRecord> decode_policy_value(std::string_view value);

std::string grant_key(std::string_view user);
// The value names the policy by its key (lower-case identity).
std::string encode_grant_value(std::string_view policy_key);
std::optional<std::string> decode_grant_value(std::string_view value);

std::string encode_im_config_value(bool enable_offline_im);
std::optional<bool> decode_im_config_value(std::string_view value);

}  // namespace oms::storage::keys
