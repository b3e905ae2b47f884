// SessionInbox: a signed-in (or signing-in) client session as the rest of
// the server sees it: something to post frames and new messages to. The
// router and the presence registry hold sessions by this interface; the
// WebSocket session (ws_session.cpp) implements it.
//
// Thread-safety: every method may be called from any thread; the session
// handles the calls on its strand in the order they were made. A session is
// held by shared_ptr while anything is pending on it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/protocol.h"

namespace oms::server {

// A message that just became durable in a mailbox, for that mailbox's
// sessions. Built once per message and shared by all of them.
// A receipt (contract 4.2) travels the same way: `receipt` set, its frame in
// message_frame, kind kOffline (it goes through the window of capable
// sessions only).
struct Delivery {
  std::uint64_t seq = 0;
  proto::MessageKind kind = proto::MessageKind::kOffline;
  bool receipt = false;
  std::shared_ptr<const std::string> message_frame;  // {"type":"message",...} with `kind`
  std::shared_ptr<const std::string> missed_notice;  // {"type":"missed",...} or null
  // The frame may stand in for a mailbox read: no other message of the
  // mailbox can come between the last one delivered and this one. True on a
  // single node (completions come in seq order); false in cluster mode,
  // where other nodes commit to the same mailbox (the session reads, unless
  // mseq follows the last message it has: DeliveryWindow::on_stored).
  bool ordered = true;
  // The message's place in the mailbox (storage::StoredMessage::mseq; 0
  // where the back end keeps none).
  std::uint64_t mseq = 0;
};

class SessionInbox {
 public:
  virtual ~SessionInbox() = default;
  // Queue an already-encoded frame (presence events, digests, replies).
  virtual void post_frame(std::shared_ptr<const std::string> frame) = 0;
  // A new durable message in this session's mailbox (the session applies
  // the delivery rules to it: server/delivery_rules.h).
  virtual void post_stored(std::shared_ptr<const Delivery> d) = 0;
  // Close with a WebSocket close code (1001 at shutdown).
  virtual void post_close(std::uint16_t code, std::string reason) = 0;
  // The I/O context the session runs on, as an opaque key (cluster mode
  // reads a context's hints on its thread: server/hint_reader.h); null when
  // it runs on none.
  virtual const void* home() const { return nullptr; }
};

// Every open client session, for the close at shutdown. Thread-safe.
class OpenSessions {
 public:
  void add(const SessionInbox* key, std::weak_ptr<SessionInbox> session) {
    std::lock_guard lock(mu_);
    sessions_[key] = std::move(session);
  }
  void remove(const SessionInbox* key) {
    std::lock_guard lock(mu_);
    sessions_.erase(key);
  }
  // The sessions still alive (copied out under the lock).
  std::vector<std::shared_ptr<SessionInbox>> snapshot() const {
    std::vector<std::shared_ptr<SessionInbox>> out;
    std::lock_guard lock(mu_);
    for (const auto& [_, w] : sessions_)
      if (auto s = w.lock()) out.push_back(std::move(s));
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<const SessionInbox*, std::weak_ptr<SessionInbox>> sessions_;
};

}  // namespace oms::server
