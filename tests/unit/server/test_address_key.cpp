// address_key (server/connection_slot.h): what limits.max_connections_per_ip
// counts under. IPv6 keys on the /64.
#include <doctest/doctest.h>

#include <boost/asio/ip/address.hpp>

#include "server/connection_slot.h"

using boost::asio::ip::make_address;
using oms::server::address_key;

TEST_CASE("address_key: IPv6 addresses of one /64 share a key") {
  CHECK(address_key(make_address("2001:db8:1:2::1")) == address_key(make_address("2001:db8:1:2:ffff:ffff:ffff:ffff")));
  CHECK(address_key(make_address("2001:db8:1:2::1")) != address_key(make_address("2001:db8:1:3::1")));
  CHECK(address_key(make_address("::1")) == address_key(make_address("::2")));
}

TEST_CASE("address_key: IPv4 keys on the full address, mapped or not") {
  CHECK(address_key(make_address("192.0.2.1")) != address_key(make_address("192.0.2.2")));
  CHECK(address_key(make_address("::ffff:192.0.2.1")) == address_key(make_address("192.0.2.1")));
  CHECK(address_key(make_address("::ffff:192.0.2.1")) != address_key(make_address("::ffff:192.0.2.2")));
  // An IPv4 key never equals an IPv6 /64 key.
  CHECK(address_key(make_address("0.0.0.0")) != address_key(make_address("::")));
}
