// Everything the JSON codec used to offer in one header, kept so that the
// files still including it compile. New code includes what it uses:
// common/json_encode.h, common/json_decode.h, common/utf8.h.
#pragma once

#include "common/json_decode.h"
#include "common/json_encode.h"
#include "common/utf8.h"

namespace oms::proto {
// Callers still spell it proto::to_valid_utf8; it lives in namespace oms.
using oms::to_valid_utf8;
}  // namespace oms::proto
