// Status and Result<T>: how errors cross module boundaries (no exceptions).
//
// A Status carries a machine-readable code and a human message. The codes are
// the ones the wire contract uses where one applies (mailbox_full, too_large,
// bad_request, ...), so the server can answer a client without translating.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace oms {

enum class Code {
  kOk = 0,
  kNotFound,
  kAlreadyExists,
  kInvalidArgument,    // bad_request
  kUnauthenticated,    // unauthenticated
  kMailboxFull,        // mailbox_full
  kTooLarge,           // too_large
  kFailedPrecondition, // e.g. removing Global
  kIoError,            // the store could not read or write
  kUnavailable,        // shutting down, store closed
  kStoreFull,          // store_full: the disk is below its free-space watermark
  kTooManyDevices,     // too_many_devices: [devices] max_per_user active named devices
};

// The wire name of a code ("bad_request", "mailbox_full", ...).
std::string_view code_name(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status ok() { return {}; }
  static Status not_found(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status already_exists(std::string msg) { return {Code::kAlreadyExists, std::move(msg)}; }
  static Status invalid_argument(std::string msg) { return {Code::kInvalidArgument, std::move(msg)}; }
  static Status unauthenticated(std::string msg) { return {Code::kUnauthenticated, std::move(msg)}; }
  static Status mailbox_full(std::string msg) { return {Code::kMailboxFull, std::move(msg)}; }
  static Status too_large(std::string msg) { return {Code::kTooLarge, std::move(msg)}; }
  static Status failed_precondition(std::string msg) { return {Code::kFailedPrecondition, std::move(msg)}; }
  static Status io_error(std::string msg) { return {Code::kIoError, std::move(msg)}; }
  static Status unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
  static Status store_full(std::string msg) { return {Code::kStoreFull, std::move(msg)}; }
  static Status too_many_devices(std::string msg) { return {Code::kTooManyDevices, std::move(msg)}; }

  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  Status(Code c, std::string msg) : code_(c), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// Either a value or a non-OK Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.is_ok() && "a Result built from a Status must carry an error");
  }

  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }

  T& value() & { assert(value_); return *value_; }
  const T& value() const& { assert(value_); return *value_; }
  T&& value() && { assert(value_); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace oms
