// Entry points from the accept loops into the two endpoints. Each takes an
// accepted socket (already on its own strand) and owns it from then on.
#pragma once

#include <boost/asio/ip/tcp.hpp>

namespace oms::server {

struct ServerContext;
class AdminApi;

// Client endpoint: HTTP upgrade to WebSocket at /v1/ws (contract §1).
void serve_client_connection(ServerContext& ctx, boost::asio::ip::tcp::socket socket);

// Admin endpoint: HTTP/1.1 JSON API (contract §2).
void serve_admin_connection(ServerContext& ctx, AdminApi& api, boost::asio::ip::tcp::socket socket);

}  // namespace oms::server
