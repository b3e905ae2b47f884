#include "server/redis_client.h"

#include <charconv>
#include <sys/time.h>
#include <sys/un.h>

#include <fmt/format.h>
#include <hiredis.h>

namespace oms::server {

namespace {

RedisReply flatten(const redisReply* r) {
  RedisReply out;
  if (!r) return out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::kString; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::kStatus; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::kError; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::kInteger; out.integer = r->integer; break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(flatten(r->element[i]));
      break;
    default: break;  // nil
  }
  return out;
}

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

bool parse_int(std::string_view s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

Result<RedisAddress> parse_redis_url(std::string_view url) {
  RedisAddress a;
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument(fmt::format("cluster.redis_url '{}': {}", url, why));
  };
  if (url.starts_with("unix://")) {
    std::string_view rest = url.substr(7);
    if (auto q = rest.find("?db="); q != std::string_view::npos) {
      if (!parse_int(rest.substr(q + 4), a.db) || a.db < 0) return bad("bad db number");
      rest = rest.substr(0, q);
    }
    if (rest.empty() || rest.front() != '/') return bad("expected unix:///path/to/redis.sock");
    if (rest.size() >= sizeof(sockaddr_un::sun_path)) return bad("the socket path is too long");
    a.unix_path = std::string(rest);
    return a;
  }
  if (!url.starts_with("redis://")) return bad("expected redis://HOST:PORT[/DB] or unix:///PATH");
  std::string_view rest = url.substr(8);
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && (!parse_int(db, a.db) || a.db < 0)) return bad("bad db number");
    rest = rest.substr(0, slash);
  }
  if (rest.find('@') != std::string_view::npos) return bad("credentials in the URL are not supported");
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) {
    a.host = std::string(rest);
  } else {
    a.host = std::string(rest.substr(0, colon));
    if (!parse_int(rest.substr(colon + 1), a.port) || a.port <= 0 || a.port > 65535) return bad("bad port");
  }
  if (a.host.empty()) return bad("no host");
  return a;
}

namespace {

// hiredis's argv form of a command: pointers and lengths.
struct Argv {
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  template <class Strings>
  explicit Argv(const Strings& argv) {
    ptrs.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
  }
  int count() const { return static_cast<int>(ptrs.size()); }
};

}  // namespace

bool append_redis_command(std::string& out, const std::vector<std::string_view>& argv) {
  Argv a(argv);
  char* cmd = nullptr;
  const int n = redisFormatCommandArgv(&cmd, a.count(), a.ptrs.data(), a.lens.data());
  const bool ok = n > 0 && cmd;
  if (ok) out.append(cmd, static_cast<std::size_t>(n));
  redisFreeCommand(cmd);
  return ok;
}

struct RedisReplyReader::Impl {
  redisReader* reader = nullptr;
  Impl() : reader(redisReaderCreate()) {}
  ~Impl() {
    if (reader) redisReaderFree(reader);
  }
};

RedisReplyReader::RedisReplyReader() : impl_(std::make_unique<Impl>()) {}
RedisReplyReader::~RedisReplyReader() = default;

bool RedisReplyReader::feed(const char* data, std::size_t n) {
  return impl_->reader && redisReaderFeed(impl_->reader, data, n) == REDIS_OK;
}

Result<std::optional<RedisReply>> RedisReplyReader::next() {
  if (!impl_->reader) return Status::unavailable("redis: out of memory");
  void* raw = nullptr;
  if (redisReaderGetReply(impl_->reader, &raw) != REDIS_OK)
    return Status::unavailable(fmt::format("redis: bad reply: {}", impl_->reader->errstr));
  if (!raw) return std::optional<RedisReply>{};
  RedisReply out = flatten(static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  return std::optional<RedisReply>{std::move(out)};
}

void RedisReplyReader::reset() {
  if (impl_->reader) redisReaderFree(impl_->reader);
  impl_->reader = redisReaderCreate();
}

struct RedisConnection::Impl {
  redisContext* ctx = nullptr;
  void drop() {
    if (ctx) redisFree(ctx);
    ctx = nullptr;
  }
  Status lost(std::string_view what) {
    std::string why = ctx && ctx->err ? std::string(ctx->errstr) : std::string("connection closed");
    drop();
    return Status::unavailable(fmt::format("redis: {}: {}", what, why));
  }
};

RedisConnection::RedisConnection() : impl_(std::make_unique<Impl>()) {}
RedisConnection::~RedisConnection() { impl_->drop(); }

Status RedisConnection::connect(const RedisAddress& addr, std::chrono::milliseconds timeout) {
  impl_->drop();
  const timeval tv = to_timeval(timeout);
  impl_->ctx = addr.unix_path.empty() ? redisConnectWithTimeout(addr.host.c_str(), addr.port, tv)
                                      : redisConnectUnixWithTimeout(addr.unix_path.c_str(), tv);
  if (!impl_->ctx) return Status::unavailable("redis: out of memory");
  if (impl_->ctx->err) return impl_->lost("connect");
  if (redisSetTimeout(impl_->ctx, tv) != REDIS_OK) return impl_->lost("set timeout");
  if (addr.unix_path.empty()) redisEnableKeepAlive(impl_->ctx);
  if (addr.db != 0) {
    auto r = command({"SELECT", std::to_string(addr.db)});
    if (!r) return r.status();
    if (r->type == RedisReply::Type::kError) {
      impl_->drop();
      return Status::unavailable(fmt::format("redis: SELECT {}: {}", addr.db, r->str));
    }
  }
  return Status::ok();
}

bool RedisConnection::connected() const { return impl_->ctx != nullptr; }
void RedisConnection::close() { impl_->drop(); }
int RedisConnection::fd() const { return impl_->ctx ? impl_->ctx->fd : -1; }

void RedisConnection::append(const std::vector<std::string>& argv) {
  if (!impl_->ctx) return;
  Argv a(argv);
  redisAppendCommandArgv(impl_->ctx, a.count(), a.ptrs.data(), a.lens.data());
}

Status RedisConnection::flush() {
  if (!impl_->ctx) return Status::unavailable("redis: not connected");
  int done = 0;
  do {
    if (redisBufferWrite(impl_->ctx, &done) != REDIS_OK) return impl_->lost("write");
  } while (!done);
  return Status::ok();
}

Result<RedisReply> RedisConnection::read_reply() {
  if (!impl_->ctx) return Status::unavailable("redis: not connected");
  void* raw = nullptr;
  if (redisGetReply(impl_->ctx, &raw) != REDIS_OK || !raw) return impl_->lost("read");
  RedisReply out = flatten(static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  return out;
}

Result<RedisReply> RedisConnection::command(const std::vector<std::string>& argv) {
  append(argv);
  if (Status s = flush(); !s) return s;
  return read_reply();
}

Status RedisConnection::read_available(std::vector<RedisReply>& out) {
  if (!impl_->ctx) return Status::unavailable("redis: not connected");
  if (redisBufferRead(impl_->ctx) != REDIS_OK) return impl_->lost("read");
  for (;;) {
    void* raw = nullptr;
    if (redisGetReplyFromReader(impl_->ctx, &raw) != REDIS_OK) return impl_->lost("parse");
    if (!raw) return Status::ok();
    out.push_back(flatten(static_cast<redisReply*>(raw)));
    freeReplyObject(raw);
  }
}

}  // namespace oms::server
