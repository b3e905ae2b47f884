// Router: applies the delivery decisions of the contract (§1.3–1.5).
//
// For a send it checks the size and rate limits, gathers the recipient's
// presence (and, for an offline recipient, the sender's effective policy),
// asks decide() (server/delivery_rules.h) for delivered / stored / missed /
// refused, appends durably, and only then fans the message out to the
// recipient's sessions and answers the sender. For presence changes it tells
// watchers and, on leaving dnd/presenting, sends the missed-message digest.
//
// Thread-safety: every method may be called from any thread. Store callbacks
// run on the store's completion thread and only post onto session strands.
#pragma once

#include <memory>
#include <string>

#include "common/protocol.h"
#include "server/presence.h"
#include "storage/mailbox_store.h"

namespace oms::server {

struct ServerContext;
class SessionInbox;

class Router {
 public:
  explicit Router(ServerContext& ctx) : ctx_(ctx) {}

  // `from` is the verified sender; `sender_capable` whether its client
  // supports offline messages. The reply (sent or error) goes to `sender`.
  void send(const std::shared_ptr<SessionInbox>& sender, const std::string& from, bool sender_capable,
            proto::Send&& req);

  // A user's state on this node changed (sign-in, sign-out, presence.set,
  // or in cluster mode a presence.set on another node): watchers hear of
  // what others see change (across the cluster), and leaving dnd/presenting
  // sends the missed-message digest to the sessions here.
  void presence_changed(const std::string& user, const PresenceRegistry::StateChange& change);
  // Watchers here get a presence event when the visible state differs.
  void notify_watchers(const std::string& user, proto::PresenceState before, proto::PresenceState after);

  // Receipts the store just made durable (its writer thread: posts only):
  // each goes to the sender's sessions, like a stored message.
  void receipts_written(const std::vector<storage::NewReceipt>& receipts);

 private:
  // Refuses a send, unless it is a resend of a known (sender, client_msg_id):
  // that gets the first result instead (protocol 4.4: dedup before any
  // other check). The lookup is a point read, on this refusal path only;
  // sends that pass the checks are deduplicated by the store's writer (and
  // have used a send token). `took_token`: the rate check passed, so a
  // resend gets its token back.
  void refuse_send(const std::shared_ptr<SessionInbox>& sender, const std::string& from,
                   const proto::Send& req, bool took_token, std::string_view code,
                   std::string_view message);
  void refuse(const std::shared_ptr<SessionInbox>& sender, const proto::Rid& rid, std::string_view code,
              std::string_view message);
  ServerContext& ctx_;
};

}  // namespace oms::server
