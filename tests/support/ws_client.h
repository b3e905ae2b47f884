// A synchronous WebSocket client of the oms wire contract (protocol.md §1),
// on Beast over TCP, for tests.
//
// A read is always pending while the connection is open; every frame the
// server sends is parsed into a JSON object and queued in arrival order.
// recv() returns the oldest queued frame; reply(rid) / send() / request()
// take the reply matching a rid out of the queue and leave every other frame
// (messages, presence events, notices) queued for later recv() calls. Every
// wait has a deadline; a timeout throws TestError listing what was queued.
//
// Not thread-safe; not movable (pending handlers refer to the object).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>

#include "tests/support/json_util.h"
#include "tests/support/wait.h"

namespace oms::test {

inline const std::vector<std::string> kCapableFeatures = {"offline-messages"};

class WsClient {
 public:
  using ms = std::chrono::milliseconds;
  // `timeout`: the default deadline of every wait.
  explicit WsClient(ms timeout = std::chrono::seconds(5));
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // ---- connection --------------------------------------------------------

  // TCP connect + WebSocket upgrade to ws://127.0.0.1:port/path; throws on failure.
  void connect(std::uint16_t port, std::string_view path = "/v1/ws");

  struct Handshake {
    boost::system::error_code ec;  // websocket::error::upgrade_declined when not 101
    int http_status = 0;           // the upgrade response status (101 when upgraded)
    std::string body;
  };
  // The raw handshake: never throws for a refused upgrade, reports it.
  // When http_status == 101 the client is connected.
  Handshake try_connect(std::uint16_t port, std::string_view path = "/v1/ws");

  // SO_RCVBUF for the next connect (a slow reader with a small window);
  // 0 = the system default.
  void set_receive_buffer(int bytes) { rcvbuf_ = bytes; }

  bool is_open() const;
  // A normal close (1000 by default), waiting for the close handshake.
  void close(std::uint16_t code = 1000);
  // Drops the TCP connection without a close frame.
  void drop();

  // Waits until the server closes the connection (frames received before
  // the close stay queued). Returns the close code the server sent, or -1 if
  // the connection ended without a close frame. When `expected` is set, the
  // code is CHECKed against it.
  int expect_closed(std::optional<int> expected = std::nullopt, std::optional<ms> timeout = {});
  // The reason text of the server's close frame ("" before a close or without one).
  const std::string& close_reason() const { return close_text_; }

  // ---- sending -----------------------------------------------------------

  void send_json(const boost::json::object& frame);
  void send_text(std::string_view text);  // sent as-is, even invalid UTF-8
  void send_binary(std::string_view data);
  // Non-throwing variants: the write's error (the server may already have
  // closed the connection).
  boost::system::error_code try_send_text(std::string_view text);
  boost::system::error_code try_send_binary(std::string_view data);

  // ---- receiving ---------------------------------------------------------

  // The oldest queued frame, waiting up to the timeout; throws on timeout or
  // when the connection closes first.
  Json recv(std::optional<ms> timeout = {});
  // Like recv, but nullopt on timeout or close.
  std::optional<Json> try_recv(ms timeout);

  struct Until {
    Json frame;                 // the first frame of the wanted type
    std::vector<Json> skipped;  // everything before it, in order (consumed)
  };
  // Consumes frames until one of `type` arrives.
  Until recv_until(std::string_view type, std::optional<ms> timeout = {});

  // Takes the first frame of `type` out of the queue (waiting for it), leaving
  // frames of other types queued.
  Json take(std::string_view type, std::optional<ms> timeout = {});
  // Takes the first frame whose type is one of `types` (waiting for it),
  // leaving frames of other types queued (messages and receipts in stream order).
  Json take_any(const std::vector<std::string>& types, std::optional<ms> timeout = {});
  // Takes `n` frames of `type` (in arrival order), leaving others queued.
  std::vector<Json> take_n(std::string_view type, std::size_t n, std::optional<ms> timeout = {});
  // The reply whose rid equals `rid`, leaving other frames queued.
  Json reply(const boost::json::value& rid, std::optional<ms> timeout = {});

  // Processes whatever has already arrived, without waiting.
  void poll();
  // Frames received and not yet consumed (after poll()).
  const std::deque<Json>& queued();
  // Removes and returns every queued frame of `type` (after poll()).
  std::vector<Json> take_all(std::string_view type);
  // Ping/pong round trip: everything the server sent before the pong is then
  // queued. Other frames stay queued.
  void barrier();
  // CHECKs that no frame of `type` (any type when empty) arrives within
  // `quiet` (a negative check: the wait is the point), ended by a barrier.
  void expect_no(std::string_view type, ms quiet = ms(300));

  // ---- the protocol --------------------------------------------------------

  boost::json::value next_rid();

  // hello → the welcome frame (throws, showing the frame, on anything else).
  Json hello(std::string_view token, const std::vector<std::string>& features = kCapableFeatures,
             std::string_view name = "oms-tests", std::string_view version = "2.1.0");
  // An older client: no "offline-messages" feature.
  Json hello_older(std::string_view token) { return hello(token, {}, "legacy", "1.0.0"); }
  // Sends hello and returns whatever the server answered first.
  Json hello_raw(std::string_view token, const std::vector<std::string>& features = kCapableFeatures);
  // hello with client.device = `device` (protocol.md 4.1) → the welcome frame
  // (throws, showing the frame, on anything else).
  Json hello_device(std::string_view token, std::string_view device,
                    const std::vector<std::string>& features = kCapableFeatures);
  // hello with client.device = `device` (any JSON value, valid or not);
  // returns whatever the server answered first.
  Json hello_raw_device(std::string_view token, const boost::json::value& device,
                        const std::vector<std::string>& features = kCapableFeatures);
  const Json& welcome() const { return welcome_; }
  std::string user() const;
  std::string session() const;

  // Sends `frame` with a fresh rid (unless it has one) and returns the reply
  // with that rid.
  Json request(boost::json::object frame, std::optional<ms> timeout = {});

  // send → the `sent` or `error` reply. client_msg_id: nullopt = a fresh
  // unique id; "" = omit the field.
  Json send(std::string_view to, std::string_view body,
            std::optional<std::string> client_msg_id = std::nullopt);
  Json set_presence(std::string_view state);
  Json subscribe(const std::vector<std::string>& users);
  void ack(const std::vector<std::string>& ids);  // no rid, no reply
  // ack that reports a failed write instead of throwing (the server may
  // have closed the connection).
  boost::system::error_code try_ack(const std::vector<std::string>& ids);
  Json ack_with_rid(const std::vector<std::string>& ids);
  Json ping();

  // Receives stored/live messages until `n` message frames were taken,
  // acking each (unless !auto_ack). Other frames stay queued.
  std::vector<Json> receive_messages(std::size_t n, bool auto_ack = true,
                                     std::optional<ms> timeout = {});

  ms timeout() const { return timeout_; }

 private:
  void reset_stream();
  void start_read();
  // Runs the io_context until pred() or the deadline; true when pred() holds.
  template <class Pred>
  bool pump_until(Pred pred, SteadyClockTimePoint deadline);
  boost::system::error_code write(std::string_view data, bool binary);
  [[noreturn]] void fail_wait(const std::string& what) const;
  // A hello frame with a fresh rid; `device` is added as client.device when set.
  Json hello_frame(std::string_view token, const std::vector<std::string>& features,
                   std::string_view name, std::string_view version,
                   const boost::json::value* device);
  std::string describe_queue() const;
  SteadyClockTimePoint deadline_for(std::optional<ms> timeout) const;

  // The io_context, the Beast stream and the read buffer, in ws_client.cpp:
  // Beast stays out of the ~30 test files that include this header (its
  // headers were ~80 % of each one's compile time).
  struct Io;
  ms timeout_;
  std::unique_ptr<Io> io_;
  std::deque<Json> queue_;
  bool connected_ = false;
  bool reading_ = false;
  bool closed_ = false;  // the read loop ended
  boost::system::error_code read_ec_;
  int close_code_ = -1;
  std::string close_text_;
  std::int64_t rid_counter_ = 0;
  Json welcome_;
  std::uint64_t cmid_counter_ = 0;
  std::string cmid_prefix_;
  int rcvbuf_ = 0;
};

}  // namespace oms::test
