// The executor and stream types of a client connection: every connection
// runs on one of the server's I/O contexts, an io_context that exactly one
// I/O thread runs (server.cpp), so its handlers never run concurrently: an
// implicit strand, in Asio's words ("the session's strand" in comments).
// Connections are dealt to the contexts in turn.
//
// Why not a strand of one io_context shared by every I/O thread, with Asio's
// default types (tcp::socket, beast::tcp_stream): every composed operation of
// Beast and Asio copies its executor, and a strand is a shared_ptr (atomic
// counts on a line both threads write) whose handlers run under a mutex;
// any_io_executor adds a function table on top. A closed-loop chat profile
// had ~6 % of omsd's samples in any_executor's copy/destroy/prefer and ~15 %
// of the I/O threads' in shared_ptr counts and the strand's mutex.
#pragma once

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace oms::server {

using SessionExecutor = boost::asio::io_context::executor_type;
using SessionSocket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, SessionExecutor>;

}  // namespace oms::server
