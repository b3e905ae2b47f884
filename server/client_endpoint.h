// The client endpoint (contract §1): admission (limits.max_connections,
// limits.max_connections_per_ip), the TLS handshake with tls.client, then
// one HTTP request: the WebSocket upgrade at /v1/ws starts a session
// (ws_session.h); anything else is answered by the web client's handler
// (web_client.h: the browser client, dev tokens, 404) and the connection
// closes.
#pragma once

#include "server/session_socket.h"

namespace oms::server {

struct ServerContext;

// Serves one accepted client connection (its socket on one I/O context) from
// then on. Thread-safe.
void serve_client_connection(ServerContext& ctx, SessionSocket socket);

}  // namespace oms::server
