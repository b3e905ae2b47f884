// One MQTT 3.1.1 client connection over TCP (Boost.Asio), for the peer
// benchmark. Everything it writes while a write is in flight leaves in the
// next single write, and one read takes in up to 64 KiB of packets, as
// oms-load does with WebSocket frames (load-tests/README.md, "How it works"):
// the two load generators cost the machine alike per message.
//
// Incoming QoS 1 PUBLISHes are PUBACKed right after the handler ran.
// REQUIRES: one thread runs the io_context (no strands, no locks).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace oms::peers {

class MqttConn;

// What a connection reports. Every call is on the io_context's thread.
class MqttEvents {
 public:
  virtual ~MqttEvents() = default;
  virtual void on_connack(MqttConn& c, bool session_present, int code) = 0;
  virtual void on_suback(MqttConn& c, std::uint16_t pid) = 0;
  virtual void on_puback(MqttConn& c, std::uint16_t pid) = 0;
  virtual void on_message(MqttConn& c, std::string_view topic, std::string_view payload, bool dup) = 0;
  // The connection is gone: `clean` after our DISCONNECT, else the reason.
  virtual void on_closed(MqttConn& c, bool clean, const std::string& why) = 0;
};

class MqttConn : public std::enable_shared_from_this<MqttConn> {
 public:
  MqttConn(boost::asio::io_context& ioc, MqttEvents& events, std::uint32_t index);

  // TCP connect, then CONNECT; on_connack (or on_closed) follows.
  void start(const boost::asio::ip::tcp::endpoint& to, std::string client_id, bool clean_session);
  // QoS 1 PUBLISH; returns its packet id (1..65535, cycling).
  std::uint16_t publish(std::string_view topic, std::string_view payload);
  std::uint16_t subscribe(std::string_view filter);
  // DISCONNECT, then close once it is written (the broker closes too).
  void disconnect();

  std::uint32_t index() const { return index_; }
  bool open() const { return open_; }
  std::size_t unacked() const { return unacked_; }
  std::int64_t connect_started_ns() const { return connect_started_ns_; }

 private:
  void flush();
  void read();
  void consume();
  void close(bool clean, const std::string& why);
  std::uint16_t next_pid();

  boost::asio::ip::tcp::socket socket_;
  MqttEvents& events_;
  const std::uint32_t index_;
  std::string tx_pending_, tx_inflight_;
  std::vector<char> rx_chunk_;
  std::string rx_;
  std::uint16_t last_pid_ = 0;
  std::size_t unacked_ = 0;
  std::int64_t connect_started_ns_ = 0;
  bool connected_ = false;  // TCP connected: writes may start
  bool writing_ = false;
  bool open_ = false;
  bool closing_ = false;  // DISCONNECT queued
  bool closed_ = false;
};

// Monotonic nanoseconds (CLOCK_MONOTONIC: one clock for every process on
// this machine, so a timestamp in a payload is comparable at the receiver).
std::int64_t mono_ns();

}  // namespace oms::peers
