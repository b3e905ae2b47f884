// The WebSocket session of one client connection, after the upgrade: sign-in
// (hello → welcome), requests, the send queue and the delivery of stored
// messages (through its DeliveryWindow). It applies the delivery rules
// (server/delivery_rules.h); the router makes the decisions of a send.
//
// The session is a SessionInbox (server/session_inbox.h) for the rest of the
// server. It runs on one I/O thread's io_context (the stream's executor, an
// implicit strand: session_socket.h); every pending handler holds it
// (shared_ptr), so it lives while anything is pending.
#pragma once

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "server/connection_slot.h"
#include "server/session_socket.h"

namespace oms::server {

struct ServerContext;

using UpgradeRequest = boost::beast::http::request<boost::beast::http::string_body>;
using SessionStream = boost::beast::basic_stream<boost::asio::ip::tcp, SessionExecutor>;
using TlsStream = boost::beast::ssl_stream<SessionStream>;

// Accepts the WebSocket upgrade `req` on `stream` (ws:// or wss://, TLS
// handshake done) and serves the session until the connection is over; the
// connection's `slot` is given back then. Call on the stream's strand.
void start_ws_session(ServerContext& ctx, SessionStream&& stream, ConnectionSlot slot,
                      UpgradeRequest req);
void start_ws_session(ServerContext& ctx, TlsStream&& stream, ConnectionSlot slot, UpgradeRequest req);

}  // namespace oms::server
