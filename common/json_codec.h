// JSON encoding/decoding of every frame of the contract, on Boost.JSON.
//
// Decoding never throws: malformed input yields a DecodeError whose message
// names the precise reason (not JSON, not an object, invalid UTF-8, unknown
// type, missing field, wrong JSON type, invalid user id, ...). The rid is
// recovered whenever the input was an object with a usable rid, so the error
// reply can echo it. Boost.JSON headers stay out of this header.
#pragma once

#include <string>
#include <string_view>

#include "common/protocol.h"

namespace oms::proto {

struct DecodeError {
  Rid rid;
  std::string message;  // human text; the wire code is always "bad_request"
};

// Limits the decoder enforces while parsing (the server passes its config).
struct DecodeLimits {
  std::size_t max_ack_ids = 1024;
  std::size_t max_subscribe_users = 1000;
  std::size_t max_features = 32;
  std::size_t max_token_bytes = 8192;
  std::size_t max_body_bytes = 1u << 20;  // hard ceiling; too_large is decided by the server
};

template <class Frame>
struct Decoded {
  std::variant<Frame, DecodeError> v;
  bool ok() const { return v.index() == 0; }
  Frame& frame() { return std::get<0>(v); }
  DecodeError& error() { return std::get<1>(v); }
};

// Server side: a text frame from a client.
Decoded<ClientFrame> decode_client_frame(std::string_view text, const DecodeLimits& limits = {});
// Client side (tests, oms-load): a text frame from the server.
Decoded<ServerFrame> decode_server_frame(std::string_view text);

std::string encode(const ClientFrame& f);
std::string encode(const ServerFrame& f);

// Hot-path shortcuts that skip building a variant.
std::string encode_message(const Message& m);
std::string encode_sent(const Sent& s);
std::string encode_error(const Rid& rid, std::string_view code, std::string_view message);

// `s` with every byte that is not part of well-formed UTF-8 (RFC 3629)
// replaced by U+FFFD: safe to put in a JSON string built by another encoder.
std::string to_valid_utf8(std::string_view s);

}  // namespace oms::proto
