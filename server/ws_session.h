// A signed-in (or signing-in) client connection, seen from the rest of the
// server. The implementation (Beast websocket, its strand, read loop, send
// queue and delivery window) lives in ws_session.cpp.
//
// Thread-safety: every method here may be called from any thread; they are
// handled on the session's strand in the order they were called (one inbox,
// drained by one post). A session is held by shared_ptr while anything is
// pending on it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/protocol.h"

namespace oms::server {

// A message that just became durable in a mailbox, for that mailbox's
// sessions. Built once per message and shared by all of them.
struct Delivery {
  std::uint64_t seq = 0;
  proto::MessageKind kind = proto::MessageKind::kOffline;
  std::shared_ptr<const std::string> message_frame;  // {"type":"message",...} with `kind`
  std::shared_ptr<const std::string> missed_notice;  // {"type":"missed",...} or null
};

class WsSession {
 public:
  virtual ~WsSession() = default;
  // Queue an already-encoded frame (presence events, digests, replies).
  virtual void post_frame(std::shared_ptr<const std::string> frame) = 0;
  // A new durable message in this session's mailbox (delivered in order,
  // within the window; or left for the next page read).
  virtual void post_stored(std::shared_ptr<const Delivery> d) = 0;
  // Close with a WebSocket close code (1001 at shutdown).
  virtual void post_close(std::uint16_t code, std::string reason) = 0;
};

}  // namespace oms::server
