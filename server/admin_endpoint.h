// The admin endpoint (contract §2): HTTP/1.1 (https:// with tls.admin) in
// front of AdminApi (admin_api.h).
#pragma once

#include <boost/asio/ip/tcp.hpp>

namespace oms::server {

struct ServerContext;
class AdminApi;

// Serves one accepted admin connection (its socket on one I/O context) until
// it closes. Thread-safe.
void serve_admin_connection(ServerContext& ctx, AdminApi& api, boost::asio::ip::tcp::socket socket);

}  // namespace oms::server
