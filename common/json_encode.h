// JSON text for every frame of the contract (both directions), written by
// hand into one std::string: no DOM, one allocation for a typical frame.
//
// The output is always valid JSON and valid UTF-8 whatever the strings hold:
// quotes, backslashes and control characters are escaped, and a byte that is
// not part of well-formed UTF-8 becomes U+FFFD. Fields appear in a fixed
// order; a rid is written only when present. Thread-safe (pure functions).
#pragma once

#include <string>
#include <string_view>

#include "common/protocol.h"

namespace oms::proto {

std::string encode(const ClientFrame& f);
std::string encode(const ServerFrame& f);

// Hot-path shortcuts that skip building a variant.
std::string encode_message(const Message& m);
std::string encode_sent(const Sent& s);
std::string encode_receipt(const Receipt& r);
std::string encode_error(const Rid& rid, std::string_view code, std::string_view message);

}  // namespace oms::proto
