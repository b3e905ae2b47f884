// The executor and stream types of a client connection: every client socket
// runs on its own strand of the server's io_context, and its types say so.
//
// Why not Asio's default (tcp::socket, beast::tcp_stream): those carry a
// type-erased any_io_executor, and every composed operation of Beast and
// Asio copies, converts and destroys it through a function table (a chat
// profile had ~6 % of omsd's samples in any_executor's copy_object,
// destroy_object and prefer_fn). With the concrete strand type the same
// copies are inline.
#pragma once

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>

namespace oms::server {

using SessionExecutor = boost::asio::strand<boost::asio::io_context::executor_type>;
using SessionSocket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, SessionExecutor>;

}  // namespace oms::server
