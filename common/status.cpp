#include "common/status.h"

#include <fmt/format.h>

namespace oms {

std::string_view code_name(Code c) {
  switch (c) {
    case Code::kOk: return "ok";
    case Code::kNotFound: return "not_found";
    case Code::kAlreadyExists: return "already_exists";
    case Code::kInvalidArgument: return "bad_request";
    case Code::kUnauthenticated: return "unauthenticated";
    case Code::kMailboxFull: return "mailbox_full";
    case Code::kTooLarge: return "too_large";
    case Code::kFailedPrecondition: return "failed_precondition";
    case Code::kIoError: return "store_error";
    case Code::kUnavailable: return "unavailable";
    case Code::kStoreFull: return "store_full";
    case Code::kTooManyDevices: return "too_many_devices";
  }
  return "internal";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return fmt::format("{}: {}", code_name(code_), message_);
}

}  // namespace oms
