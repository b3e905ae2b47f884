// Decoding of every frame of the contract from JSON text, on Boost.JSON:
// client frames (the server's side) and server frames (tests, oms-load).
//
// Decoding never throws: malformed input yields a DecodeError whose message
// names the precise reason (not JSON, not an object, invalid UTF-8, unknown
// type, missing field, wrong JSON type, invalid user id, ...). The rid is
// recovered whenever the input was an object with a usable rid, so the error
// reply can echo it. Boost.JSON headers stay out of this header.
// Thread-safe (pure functions).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

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

}  // namespace oms::proto
