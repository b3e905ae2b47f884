// DeliveryWindow: which stored messages one capable session pushes, and when
// it reads its mailbox.
//
// Contract (protocol.md §1.4): stored messages go out in sequence order,
// each once, with at most `window` of them pushed and not yet acked. The
// backlog is read in pages from the mailbox; a message that becomes durable
// while the session is caught up is pushed straight from the fan-out,
// without a read. `mailbox.drained` is due once the backlog of the sign-in
// was read and every message of it was acked (and those acks are durable).
//
// The reading side is a state machine:
//
//   from           event                                    to
//   (new)          begin(): the sign-in scan reads page 1    kReading
//   kBehind        next_read(), the window has room          kReading
//   kReading       on_stored(), or scan_returned() saw the   kReadingDirty
//                  store move
//   kReading*      page_done(): a full page, or dirty        kBehind (read again)
//   kReading       page_done(): a short page                 kCaughtUp
//   kCaughtUp      on_stored(): pushed from the fan-out      kCaughtUp
//   kCaughtUp      on_stored(): window full, or no frame     kBehind
//
// It decides and keeps count; the session does the I/O (reads, frames).
// REQUIRES: every call on the owning session's strand. Not thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "server/in_flight.h"

namespace oms::server {

class DeliveryWindow {
 public:
  // Stored messages read per page (also bounded by the window's free room).
  static constexpr std::size_t kPageMessages = 256;

  enum class ReadState : std::uint8_t {
    kBehind,        // more may be stored beyond the cursor; no read running
    kReading,       // a page read is running
    kReadingDirty,  // a page read is running and a message arrived meanwhile
    kCaughtUp,      // nothing stored beyond the cursor that we know of
  };

  // A page to read: up to `limit` messages with seq > `after`.
  struct PageRead {
    std::uint64_t after = 0;
    std::size_t limit = 0;
  };

  // `window`: delivery.window, the most messages in flight.
  explicit DeliveryWindow(std::size_t window) : window_(static_cast<std::uint32_t>(window)) {}

  // Sign-in: `signin_seq` is the store's last seq before the sign-in scan,
  // which reads the first page from the start, up to the limit returned
  // (the state is kReading).
  std::size_t begin(std::uint64_t signin_seq);
  // The store's last seq when the sign-in scan returned: a message stored
  // since `signin_seq` was missed by the scan, so one more read follows.
  void scan_returned(std::uint64_t store_last_seq) {
    if (store_last_seq != signin_seq_) state_ = ReadState::kReadingDirty;
  }

  // The next page to read now, if any (the state becomes kReading); nullopt
  // while a read runs, when caught up, or when the window is full.
  std::optional<PageRead> next_read();

  // A message of a page read: true when it is to be pushed (it is in flight
  // now); false for one pushed already.
  // `mseq`: its place in the mailbox (storage::StoredMessage::mseq), 0 if
  // the back end keeps none.
  bool take(std::uint64_t seq, std::uint64_t mseq = 0) {
    if (seq <= cursor_) return false;
    track(seq, mseq);
    return true;
  }
  // The page read ended with `got` messages. True: read again (next_read());
  // false: caught up (the backlog of the sign-in is read).
  bool page_done(std::size_t got);

  // A message that just became durable in the mailbox.
  enum class Arrived : std::uint8_t {
    kPush,  // push its frame now (it is in flight now)
    kRead,  // it waits in the mailbox: call next_read()
    kNone,  // pushed already, or the running read picks it up
  };
  // `has_frame`: the message's frame came with it. `ordered`: no other
  // message of the mailbox can come between the cursor and it (one node);
  // else `mseq` (cluster mode: other nodes append to the mailbox too) tells:
  // it may be pushed without a read when it is the cursor's mseq + 1.
  Arrived on_stored(std::uint64_t seq, bool has_frame, bool ordered = true, std::uint64_t mseq = 0);

  // An ack from the client; false when `seq` was not in flight.
  bool acked(std::uint64_t seq) { return in_flight_.erase(seq); }
  // Writes of acks whose outcome the session waits for.
  void ack_write_started() { ++pending_ack_writes_; }
  void ack_write_done() { --pending_ack_writes_; }

  // True once, when mailbox.drained is due now (it counts as sent then).
  bool take_drained();
  bool drained_sent() const { return drained_ == Drain::kSent; }

  std::uint64_t signin_seq() const { return signin_seq_; }
  std::uint64_t cursor() const { return cursor_; }
  std::size_t in_flight() const { return in_flight_.size(); }
  ReadState state() const { return state_; }

 private:
  enum class Drain : std::uint8_t {
    kBacklog,     // the backlog of the sign-in is still being read
    kBacklogRead, // it was read; waiting for its acks
    kSent,        // mailbox.drained went out
  };

  void track(std::uint64_t seq, std::uint64_t mseq) {
    in_flight_.insert(seq);
    cursor_ = seq;
    cursor_mseq_ = mseq;
  }

  std::uint32_t window_;          // (at most 65,536: config.cpp)
  std::uint32_t read_limit_ = 0;  // limit of the running read
  std::uint64_t signin_seq_ = 0;  // store's last seq at sign-in
  std::uint64_t cursor_ = 0;      // highest seq pushed
  std::uint64_t cursor_mseq_ = 0; // its mseq (0: none kept; before the first, 0)
  InFlight in_flight_;            // pushed, not yet acked
  std::size_t pending_ack_writes_ = 0;
  ReadState state_ = ReadState::kBehind;
  Drain drained_ = Drain::kBacklog;
};

}  // namespace oms::server
