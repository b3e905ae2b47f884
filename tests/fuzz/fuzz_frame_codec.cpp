// libFuzzer harness: the client and server frame decoders (common/json_decode).
//
// Oracle beyond "no crash": whatever decodes must re-encode to a frame that
// decodes again to the same encoding (encode ∘ decode is a fixed point), and
// every refusal carries a reason.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <string_view>

#include "common/json_decode.h"
#include "common/json_encode.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view a, std::string_view b) {
  std::fprintf(stderr, "fuzz_frame_codec: %s\n  first:  %.*s\n  second: %.*s\n", what, static_cast<int>(a.size()),
               a.data(), static_cast<int>(b.size()), b.data());
  std::abort();
}

template <class Decode>
void check_round_trip(std::string_view input, Decode decode) {
  auto first = decode(input);
  if (!first.ok()) {
    if (first.error().message.empty()) fail("refusal without a reason", input, "");
    return;
  }
  const std::string encoded = oms::proto::encode(first.frame());
  auto second = decode(encoded);
  if (!second.ok()) fail("re-encoded frame does not decode", encoded, second.error().message);
  const std::string again = oms::proto::encode(second.frame());
  if (again != encoded) fail("encoding is not stable", encoded, again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_round_trip(input, [](std::string_view s) { return oms::proto::decode_client_frame(s); });
  check_round_trip(input, [](std::string_view s) { return oms::proto::decode_server_frame(s); });
  return 0;
}
