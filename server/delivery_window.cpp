#include "server/delivery_window.h"

#include <cassert>

namespace oms::server {

std::size_t DeliveryWindow::begin(std::uint64_t signin_seq) {
  assert(state_ == ReadState::kBehind && cursor_ == 0);
  signin_seq_ = signin_seq;
  state_ = ReadState::kReading;
  read_limit_ = static_cast<std::uint32_t>(std::min<std::size_t>(kPageMessages, window_));
  return read_limit_;
}

std::optional<DeliveryWindow::PageRead> DeliveryWindow::next_read() {
  if (state_ != ReadState::kBehind) return std::nullopt;
  if (in_flight_.size() >= window_) return std::nullopt;
  state_ = ReadState::kReading;
  read_limit_ = static_cast<std::uint32_t>(std::min<std::size_t>(kPageMessages, window_ - in_flight_.size()));
  return PageRead{cursor_, read_limit_};
}

bool DeliveryWindow::page_done(std::size_t got) {
  assert(state_ == ReadState::kReading || state_ == ReadState::kReadingDirty);
  if (got >= read_limit_ || state_ == ReadState::kReadingDirty) {  // more may wait
    state_ = ReadState::kBehind;
    return true;
  }
  state_ = ReadState::kCaughtUp;
  if (drained_ == Drain::kBacklog) drained_ = Drain::kBacklogRead;
  return false;
}

DeliveryWindow::Arrived DeliveryWindow::on_stored(std::uint64_t seq, bool has_frame, bool ordered,
                                                  std::uint64_t mseq) {
  if (seq <= cursor_) return Arrived::kNone;
  switch (state_) {
    case ReadState::kCaughtUp:
      // Caught up: the mailbox holds nothing beyond the cursor that was
      // stored before the last read. mseqs have no gaps, so mseq + 1 is the
      // next message of the mailbox whoever appended it (an mseq of 1 with
      // the cursor at 0: the mailbox's first).
      if (has_frame && (ordered || (mseq != 0 && mseq == cursor_mseq_ + 1)) && in_flight_.size() < window_) {
        track(seq, mseq);
        return Arrived::kPush;
      }
      state_ = ReadState::kBehind;
      return Arrived::kRead;
    case ReadState::kReading:
    case ReadState::kReadingDirty:
      state_ = ReadState::kReadingDirty;
      return Arrived::kNone;
    case ReadState::kBehind:
      return Arrived::kRead;
  }
  return Arrived::kNone;
}

bool DeliveryWindow::take_drained() {
  if (drained_ != Drain::kBacklogRead || pending_ack_writes_ != 0) return false;
  // Messages pushed since sign-in may stay unacked: they are not the backlog.
  if (!in_flight_.empty() && in_flight_.front() <= signin_seq_) return false;
  drained_ = Drain::kSent;
  return true;
}

}  // namespace oms::server
