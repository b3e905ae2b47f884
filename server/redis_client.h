// RedisConnection: one blocking connection to Redis (hiredis), for the
// cluster layer's own threads (server/cluster.h). Never used on an I/O
// thread. hiredis stays out of this header.
//
// Not thread-safe: one thread owns a connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace oms::server {

// A reply, flattened: what the cluster layer reads of Redis's answers.
struct RedisReply {
  enum class Type : std::uint8_t { kNil, kString, kInteger, kArray, kStatus, kError };
  Type type = Type::kNil;
  std::string str;          // kString, kStatus, kError
  std::int64_t integer = 0;  // kInteger
  std::vector<RedisReply> elements;  // kArray
};

// Where Redis listens: redis://HOST:PORT[/DB] or unix:///PATH[?db=N].
struct RedisAddress {
  std::string host;
  int port = 6379;
  std::string unix_path;
  int db = 0;
};
Result<RedisAddress> parse_redis_url(std::string_view url);

// One command in Redis's wire format (RESP), for a caller that writes it to
// a socket itself; appended to `out`.
// False (and `out` unchanged) when it could not be formatted (no memory).
bool append_redis_command(std::string& out, const std::vector<std::string_view>& argv);

// Redis's replies parsed from bytes a caller read from a socket itself
// (hiredis's reader): for a connection an I/O thread owns
// (server/hint_reader.h). Not thread-safe.
class RedisReplyReader {
 public:
  RedisReplyReader();
  ~RedisReplyReader();
  RedisReplyReader(const RedisReplyReader&) = delete;
  RedisReplyReader& operator=(const RedisReplyReader&) = delete;

  // Appends bytes read from the socket; false when out of memory.
  bool feed(const char* data, std::size_t n);
  // The next complete reply, nullopt while none is complete; an error
  // Status when the bytes are not RESP (the connection must go).
  Result<std::optional<RedisReply>> next();
  // Forgets what was fed (a new connection).
  void reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class RedisConnection {
 public:
  RedisConnection();
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Connects (SELECT db when not 0); `timeout` bounds the connect and, from
  // then on, every blocking read and write.
  Status connect(const RedisAddress& addr, std::chrono::milliseconds timeout);
  bool connected() const;
  void close();
  int fd() const;  // -1 when not connected

  // One command, waiting for its reply. An error reply is a RedisReply of
  // type kError (the connection stays usable); a lost connection is an
  // error Status (and the connection is closed).
  Result<RedisReply> command(const std::vector<std::string>& argv);
  // Pipelines: queue commands, then read their replies in order.
  void append(const std::vector<std::string>& argv);
  Status flush();  // writes what was appended
  Result<RedisReply> read_reply();

  // For a subscriber's poll loop: reads what the socket holds (the caller
  // saw it readable) and yields the replies complete so far.
  Status read_available(std::vector<RedisReply>& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace oms::server
