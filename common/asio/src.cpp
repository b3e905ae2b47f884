// The one translation unit that compiles Boost.Asio, its SSL support and
// Boost.Beast (separate compilation keeps a clean build short on 2 cores).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
