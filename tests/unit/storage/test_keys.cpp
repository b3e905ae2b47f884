// RocksDB only: the on-disk encoding (storage/keys.h), key order and value
// round-trips.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "storage/keys.h"

namespace keys = oms::storage::keys;
using oms::proto::MessageKind;

TEST_SUITE("storage") {

TEST_CASE("keys: messages of one mailbox sort by seq, numerically") {
  const std::vector<std::uint64_t> seqs = {0, 1, 2, 255, 256, 65535, 65536, 1ull << 32,
                                           (1ull << 56) + 3, UINT64_MAX - 1};
  for (std::size_t i = 1; i < seqs.size(); ++i)
    CHECK(keys::message_key("bob", seqs[i - 1]) < keys::message_key("bob", seqs[i]));
}

TEST_CASE("keys: mailboxes do not interleave, even when one is a prefix of another") {
  const std::vector<std::string> boxes = {"a", "ab", "b", "a.b", "a@x", "aa", "abc", "b\xff"};
  struct Entry {
    std::string key;
    std::string mailbox;
    std::uint64_t seq;
  };
  std::vector<Entry> all;
  for (const auto& m : boxes)
    for (std::uint64_t seq : std::vector<std::uint64_t>{1, 2, 300, 1ull << 40, UINT64_MAX - 1})
      all.push_back({keys::message_key(m, seq), m, seq});
  std::sort(all.begin(), all.end(), [](const Entry& x, const Entry& y) { return x.key < y.key; });

  // Each mailbox is one contiguous run, ordered by seq within.
  std::vector<std::string> runs;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i == 0 || all[i].mailbox != all[i - 1].mailbox) {
      CHECK(std::find(runs.begin(), runs.end(), all[i].mailbox) == runs.end());
      runs.push_back(all[i].mailbox);
    } else {
      CHECK(all[i - 1].seq < all[i].seq);
    }
  }
  CHECK(runs.size() == boxes.size());

  // And every key lies inside its own mailbox's range bounds, none in another's.
  for (const auto& e : all)
    for (const auto& m : boxes) {
      const bool inside = e.key >= keys::mailbox_range_begin(m) && e.key < keys::mailbox_range_end(m);
      CHECK(inside == (m == e.mailbox));
    }
}

TEST_CASE("keys: range bounds and prefix") {
  CHECK(keys::mailbox_range_begin("ab") == keys::message_key("ab", 0));
  CHECK(keys::mailbox_range_end("ab") == keys::message_key("ab", UINT64_MAX));
  CHECK(keys::mailbox_prefix("ab") == std::string("\x02" "ab", 3));
  CHECK(keys::message_key("ab", 1).rfind(keys::mailbox_prefix("ab"), 0) == 0);
  CHECK(keys::message_key("ab", 0x0102030405060708ull) ==
        std::string("\x02" "ab" "\x01\x02\x03\x04\x05\x06\x07\x08", 11));
}

TEST_CASE("keys: message key round-trip and corrupt keys") {
  const std::string good = keys::message_key("carol@x", 42);
  auto k = keys::decode_message_key(good);  // views into `good`
  REQUIRE(k);
  CHECK(k->mailbox == "carol@x");
  CHECK(k->seq == 42);
  CHECK_FALSE(keys::decode_message_key(good.substr(0, good.size() - 1)));
  CHECK_FALSE(keys::decode_message_key(good + "x"));
  CHECK_FALSE(keys::decode_message_key(""));
  CHECK_FALSE(keys::decode_message_key(std::string("\x09" "ab", 3)));
}

TEST_CASE("keys: message value round-trip") {
  const std::string body(70000, 'z');  // longer than 16 bits of length
  keys::MessageView in{MessageKind::kMissed, 1'700'000'123'456, "alice@contoso.com", "dnd", body, true, "cmid-1"};
  const std::string enc = keys::encode_message_value(in);
  auto out = keys::decode_message_value(enc);
  REQUIRE(out);
  CHECK(out->kind == MessageKind::kMissed);
  CHECK(out->sent_at_ms == 1'700'000'123'456);
  CHECK(out->from == "alice@contoso.com");
  CHECK(out->reason == "dnd");
  CHECK(out->body == body);
  CHECK(out->want_receipt);
  CHECK(out->client_msg_id == "cmid-1");

  keys::MessageView empty{MessageKind::kOffline, -5, "", "", "", false, ""};
  const std::string empty_enc = keys::encode_message_value(empty);
  auto e = keys::decode_message_value(empty_enc);  // views into empty_enc
  REQUIRE(e);
  CHECK(e->sent_at_ms == -5);
  CHECK(e->from.empty());
  CHECK(e->body.empty());
}

TEST_CASE("keys: corrupt message values are refused, never misread") {
  const std::string enc =
      keys::encode_message_value({MessageKind::kOffline, 7, "alice", "", "hello", false, ""});
  for (std::size_t n = 0; n < enc.size(); ++n)
    CHECK_FALSE(keys::decode_message_value(enc.substr(0, n)));  // every truncation
  CHECK_FALSE(keys::decode_message_value(enc + "!"));           // trailing bytes
  std::string bad_version = enc;
  bad_version[0] = 3;
  CHECK_FALSE(keys::decode_message_value(bad_version));
  std::string bad_kind = enc;
  bad_kind[1] = 9;
  CHECK_FALSE(keys::decode_message_value(bad_kind));
  std::string long_body = enc;
  long_body[long_body.size() - 9] = 1;  // body length 0x01000005 > what is there
  CHECK_FALSE(keys::decode_message_value(long_body));
}

TEST_CASE("keys: dedup key and value") {
  // The sender is length-prefixed: ("ab","c") and ("a","bc") differ.
  CHECK(keys::dedup_key("ab", "c") != keys::dedup_key("a", "bc"));
  const std::string payload("\x00payload\xff", 9);
  keys::DedupView in{99, 1000, "bob", 1001, payload};
  const std::string enc = keys::encode_dedup_value(in);
  auto out = keys::decode_dedup_value(enc);  // views into enc
  REQUIRE(out);
  CHECK(out->seq == 99);
  CHECK(out->sent_at_ms == 1000);
  CHECK(out->mailbox == "bob");
  CHECK(out->created_ms == 1001);
  CHECK(out->payload == payload);
  for (std::size_t n = 0; n < enc.size(); ++n) CHECK_FALSE(keys::decode_dedup_value(enc.substr(0, n)));
  CHECK_FALSE(keys::decode_dedup_value(enc + "x"));
}

TEST_CASE("keys: policy, grant, IM configuration and store meta values") {
  CHECK(keys::policy_key("OfflineIM") == "offlineim");
  auto p = keys::decode_policy_value(keys::encode_policy_value({"OfflineIM", false}));
  REQUIRE(p);
  CHECK(p->identity == "OfflineIM");
  CHECK_FALSE(p->enable_im_auto_archiving);
  CHECK(p->enable_delivery_receipts);
  std::string bad = keys::encode_policy_value({"X", true});
  bad.back() = 7;
  CHECK_FALSE(keys::decode_policy_value(bad));

  auto g = keys::decode_grant_value(keys::encode_grant_value("offlineim"));
  REQUIRE(g);
  CHECK(*g == "offlineim");
  CHECK_FALSE(keys::decode_grant_value(""));

  CHECK(keys::decode_im_config_value(keys::encode_im_config_value(false)) == false);
  CHECK(keys::decode_im_config_value(keys::encode_im_config_value(true)) == true);
  CHECK_FALSE(keys::decode_im_config_value("\x01"));

  CHECK(keys::decode_format_version(keys::encode_format_version(1)) == 1u);
  CHECK_FALSE(keys::decode_format_version("\x01"));
  CHECK(keys::decode_last_seq(keys::encode_last_seq(1ull << 50)) == (1ull << 50));
  CHECK_FALSE(keys::decode_last_seq("1234567"));
}

}  // TEST_SUITE
