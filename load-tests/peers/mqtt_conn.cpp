// One MQTT client connection: coalesced writes, 64 KiB reads (see mqtt_conn.h).
#include "load-tests/peers/mqtt_conn.h"

#include <time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include "load-tests/peers/mqtt_wire.h"

namespace oms::peers {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {
constexpr std::size_t kReadChunk = 64 * 1024;
}  // namespace

std::int64_t mono_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

MqttConn::MqttConn(net::io_context& ioc, MqttEvents& events, std::uint32_t index)
    : socket_(ioc), events_(events), index_(index), rx_chunk_(kReadChunk) {}

void MqttConn::start(const tcp::endpoint& to, std::string client_id, bool clean_session) {
  connect_started_ns_ = mono_ns();
  mqtt::append_connect(tx_pending_, client_id, clean_session);
  socket_.async_connect(to, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec) return self->close(false, "connect: " + ec.message());
    boost::system::error_code ignored;
    self->socket_.set_option(tcp::no_delay(true), ignored);
    self->connected_ = true;
    self->flush();
    self->read();
  });
}

std::uint16_t MqttConn::next_pid() {
  if (++last_pid_ == 0) last_pid_ = 1;
  return last_pid_;
}

std::uint16_t MqttConn::publish(std::string_view topic, std::string_view payload) {
  const std::uint16_t pid = next_pid();
  mqtt::append_publish_qos1(tx_pending_, topic, pid, payload);
  ++unacked_;
  flush();
  return pid;
}

std::uint16_t MqttConn::subscribe(std::string_view filter) {
  const std::uint16_t pid = next_pid();
  mqtt::append_subscribe_qos1(tx_pending_, pid, filter);
  flush();
  return pid;
}

void MqttConn::disconnect() {
  if (closing_ || closed_) return;
  closing_ = true;
  mqtt::append_disconnect(tx_pending_);
  flush();
}

void MqttConn::flush() {
  if (writing_ || closed_ || !connected_ || tx_pending_.empty()) return;
  writing_ = true;
  tx_inflight_.swap(tx_pending_);
  net::async_write(socket_, net::buffer(tx_inflight_),
                   [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                     self->writing_ = false;
                     self->tx_inflight_.clear();
                     if (ec) return self->close(false, "write: " + ec.message());
                     if (!self->tx_pending_.empty()) return self->flush();
                     if (self->closing_) {
                       boost::system::error_code ignored;
                       self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
                     }
                   });
}

void MqttConn::read() {
  socket_.async_read_some(net::buffer(rx_chunk_),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                            if (ec) {
                              if (self->closing_) return self->close(true, "");
                              return self->close(false, "read: " + ec.message());
                            }
                            self->rx_.append(self->rx_chunk_.data(), n);
                            self->consume();
                            if (!self->closed_) self->read();
                          });
}

void MqttConn::consume() {
  std::size_t at = 0;
  std::string_view all(rx_);
  while (!closed_) {
    mqtt::Packet p;
    const auto r = mqtt::parse(all.substr(at), p);
    if (r == mqtt::ParseResult::kNeedMore) break;
    if (r == mqtt::ParseResult::kMalformed) return close(false, "malformed packet from the broker");
    at += p.size;
    switch (p.type) {
      case mqtt::Type::kConnack: {
        const bool present = p.body.size() >= 1 && (static_cast<std::uint8_t>(p.body[0]) & 1);
        const int code = p.body.size() >= 2 ? static_cast<std::uint8_t>(p.body[1]) : -1;
        open_ = code == 0;
        events_.on_connack(*this, present, code);
        break;
      }
      case mqtt::Type::kPuback:
        if (auto pid = mqtt::get_u16(p.body, 0)) {
          if (unacked_ > 0) --unacked_;
          events_.on_puback(*this, *pid);
        }
        break;
      case mqtt::Type::kSuback:
        if (auto pid = mqtt::get_u16(p.body, 0)) events_.on_suback(*this, *pid);
        break;
      case mqtt::Type::kPublish: {
        auto pub = mqtt::parse_publish(p);
        if (!pub) return close(false, "malformed PUBLISH from the broker");
        events_.on_message(*this, pub->topic, pub->payload, pub->dup);
        if (pub->qos == 1) mqtt::append_puback(tx_pending_, pub->pid);
        break;
      }
      default:
        break;  // PINGRESP and the rest: nothing to do
    }
  }
  rx_.erase(0, at);
  flush();
}

void MqttConn::close(bool clean, const std::string& why) {
  if (closed_) return;
  closed_ = true;
  open_ = false;
  boost::system::error_code ignored;
  socket_.close(ignored);
  events_.on_closed(*this, clean, why);
}

}  // namespace oms::peers
