#include "storage/pg_connection.h"

#include <libpq-fe.h>

#include <cstdlib>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace oms::storage::pg {
namespace {

// Type OIDs (pg_type.h; fixed since PostgreSQL 7).
constexpr unsigned kBool = 16, kBytea = 17, kInt8 = 20, kInt2 = 21, kText = 25;
constexpr unsigned kBoolArray = 1000, kByteaArray = 1001, kInt2Array = 1005, kTextArray = 1009,
                   kInt8Array = 1016;

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t get_be(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
unsigned array_type(unsigned elem) {
  switch (elem) {
    case kBool: return kBoolArray;
    case kBytea: return kByteaArray;
    case kInt2: return kInt2Array;
    case kInt8: return kInt8Array;
    default: return kTextArray;
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Params

Params& Params::add(std::string value, unsigned type) {
  values_.push_back(std::move(value));
  types_.push_back(type);
  return *this;
}
Params& Params::text(std::string_view v) { return add(std::string(v), kText); }
Params& Params::bytes(std::string_view v) { return add(std::string(v), kBytea); }
Params& Params::i64(std::int64_t v) {
  std::string s;
  put_be(s, static_cast<std::uint64_t>(v), 8);
  return add(std::move(s), kInt8);
}
Params& Params::boolean(bool v) { return add(std::string(1, v ? '\1' : '\0'), kBool); }

// The binary array format (arrayfuncs.c, array_send): ndim, has-nulls,
// element type, (length, lower bound) per dimension, then each element as
// length + bytes.
Params& Params::array(unsigned elem_type, std::size_t n, const std::string* elems) {
  std::string s;
  put_be(s, n == 0 ? 0 : 1, 4);
  put_be(s, 0, 4);
  put_be(s, elem_type, 4);
  if (n > 0) {
    put_be(s, n, 4);
    put_be(s, 1, 4);
  }
  for (std::size_t i = 0; i < n; ++i) {
    put_be(s, elems[i].size(), 4);
    s += elems[i];
  }
  return add(std::move(s), array_type(elem_type));
}
Params& Params::text_array(const std::vector<std::string>& v) { return array(kText, v.size(), v.data()); }
Params& Params::bytes_array(const std::vector<std::string>& v) { return array(kBytea, v.size(), v.data()); }
Params& Params::i64_array(const std::vector<std::int64_t>& v) {
  std::vector<std::string> e(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) put_be(e[i], static_cast<std::uint64_t>(v[i]), 8);
  return array(kInt8, e.size(), e.data());
}
Params& Params::i16_array(const std::vector<std::int16_t>& v) {
  std::vector<std::string> e(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) put_be(e[i], static_cast<std::uint16_t>(v[i]), 2);
  return array(kInt2, e.size(), e.data());
}
Params& Params::bool_array(const std::vector<bool>& v) {
  std::vector<std::string> e(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) e[i] = std::string(1, v[i] ? '\1' : '\0');
  return array(kBool, e.size(), e.data());
}

// ---------------------------------------------------------------------------
// Rows

Rows::Rows(pg_result* r) : r_(r) {}
Rows::Rows(Rows&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
Rows& Rows::operator=(Rows&& o) noexcept {
  if (this != &o) {
    if (r_) PQclear(r_);
    r_ = std::exchange(o.r_, nullptr);
  }
  return *this;
}
Rows::~Rows() {
  if (r_) PQclear(r_);
}
int Rows::size() const { return r_ ? PQntuples(r_) : 0; }
bool Rows::null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
std::string_view Rows::str(int row, int col) const {
  return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
}
std::int64_t Rows::i64(int row, int col) const {
  if (null(row, col)) return 0;
  const int len = PQgetlength(r_, row, col);
  return static_cast<std::int64_t>(get_be(PQgetvalue(r_, row, col), len >= 8 ? 8 : len));
}
std::int16_t Rows::i16(int row, int col) const {
  if (null(row, col)) return 0;
  return static_cast<std::int16_t>(get_be(PQgetvalue(r_, row, col), 2));
}
bool Rows::boolean(int row, int col) const { return !null(row, col) && PQgetvalue(r_, row, col)[0] != 0; }
std::uint64_t Rows::affected() const {
  const char* n = r_ ? PQcmdTuples(r_) : "";
  return *n ? std::strtoull(n, nullptr, 10) : 0;
}

// ---------------------------------------------------------------------------
// Connection

Result<std::unique_ptr<Connection>> Connection::open(const std::string& dsn) {
  if (dsn.empty()) return Status::invalid_argument("postgres: no dsn ([postgres] dsn)");
  {
    // A malformed DSN is the configuration's fault, not the server's.
    char* err = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(dsn.c_str(), &err);
    if (!parsed) {
      std::string msg = err ? err : "out of memory";
      if (err) PQfreemem(err);
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      return Status::invalid_argument(fmt::format("postgres: bad dsn ([postgres] dsn): {}", msg));
    }
    PQconninfoFree(parsed);
  }
  const char* keys[] = {"dbname", "application_name", nullptr};
  const char* values[] = {dsn.c_str(), "omsd", nullptr};
  pg_conn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (!c) return Status::io_error("postgres: out of memory connecting");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return Status::io_error(fmt::format("postgres: cannot connect: {}", msg));
  }
  // Notices ("already exists, skipping") are not errors: not printed.
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Connection>(new Connection(c));
}

Connection::~Connection() { PQfinish(c_); }

bool Connection::ok() const { return PQstatus(c_) == CONNECTION_OK; }

Status Connection::reset() {
  prepared_.clear();
  PQreset(c_);
  if (!ok()) return Status::io_error(fmt::format("postgres: reconnect failed: {}", PQerrorMessage(c_)));
  return Status::ok();
}

Status Connection::error(std::string_view what, pg_result* r) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  sqlstate_ = state ? state : "";
  std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c_);
  if (msg.empty()) msg = PQerrorMessage(c_);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (r) PQclear(r);
  return Status::io_error(fmt::format("postgres: {}: {}", what, msg));
}

Status Connection::command(const char* sql) {
  sqlstate_.clear();
  pg_result* r = PQexec(c_, sql);
  const auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return error(sql, r);
  PQclear(r);
  return Status::ok();
}

Result<Rows> Connection::exec(const std::string& sql, const Params& params) {
  sqlstate_.clear();
  const int n = static_cast<int>(params.size());
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = fmt::format("oms{}", prepared_.size() + 1);
    std::vector<unsigned> types = params.types();
    pg_result* r = PQprepare(c_, name.c_str(), sql.c_str(), n, types.data());
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) return error("preparing a statement", r);
    PQclear(r);
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  std::vector<const char*> values(static_cast<std::size_t>(n));
  std::vector<int> lengths(static_cast<std::size_t>(n)), formats(static_cast<std::size_t>(n), 1);
  for (int i = 0; i < n; ++i) {
    values[static_cast<std::size_t>(i)] = params.values()[static_cast<std::size_t>(i)].data();
    lengths[static_cast<std::size_t>(i)] = static_cast<int>(params.values()[static_cast<std::size_t>(i)].size());
  }
  pg_result* r = PQexecPrepared(c_, it->second.c_str(), n, values.data(), lengths.data(), formats.data(),
                                /*resultFormat=*/1);
  const auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return error("a statement failed", r);
  return Rows(r);
}

Result<std::vector<Rows>> Connection::pipeline(const std::vector<Step>& steps) {
  sqlstate_.clear();
  if (PQenterPipelineMode(c_) != 1) return error("entering pipeline mode", nullptr);
  // What was sent, in order: a prepare (true) or a statement (false).
  struct Sent {
    bool prepare;
    std::size_t step;
    std::string name;
  };
  std::vector<Sent> sent;
  std::unordered_map<std::string, std::string> preparing;  // sql -> name, sent in this pipeline
  bool send_failed = false;
  for (std::size_t i = 0; i < steps.size() && !send_failed; ++i) {
    const Step& st = steps[i];
    const Params& params = *st.params;
    const int n = static_cast<int>(params.size());
    std::vector<const char*> values(static_cast<std::size_t>(n));
    std::vector<int> lengths(static_cast<std::size_t>(n)), formats(static_cast<std::size_t>(n), 1);
    for (std::size_t k = 0; k < static_cast<std::size_t>(n); ++k) {
      values[k] = params.values()[k].data();
      lengths[k] = static_cast<int>(params.values()[k].size());
    }
    if (!st.prepare) {
      send_failed = PQsendQueryParams(c_, st.sql->c_str(), n, params.types().data(), values.data(), lengths.data(),
                                      formats.data(), 1) != 1;
      sent.push_back({false, i, {}});
      continue;
    }
    std::string name;
    if (auto it = prepared_.find(*st.sql); it != prepared_.end()) {
      name = it->second;
    } else if (auto p = preparing.find(*st.sql); p != preparing.end()) {
      name = p->second;
    } else {
      name = fmt::format("oms{}", prepared_.size() + preparing.size() + 1);
      send_failed = PQsendPrepare(c_, name.c_str(), st.sql->c_str(), n, params.types().data()) != 1;
      preparing.emplace(*st.sql, name);
      sent.push_back({true, i, name});
    }
    if (!send_failed)
      send_failed = PQsendQueryPrepared(c_, name.c_str(), n, values.data(), lengths.data(), formats.data(), 1) != 1;
    sent.push_back({false, i, {}});
  }
  if (!send_failed) send_failed = PQpipelineSync(c_) != 1;
  if (send_failed) {
    Status s = error("sending a pipeline", nullptr);
    return s;  // (the connection is unusable: reset() before the next use)
  }
  std::vector<Rows> out(steps.size());
  Status first_error;
  for (const Sent& x : sent) {
    pg_result* r = PQgetResult(c_);
    if (!r) return error("reading a pipeline", nullptr);
    const auto st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      if (x.prepare) {
        prepared_.emplace(*steps[x.step].sql, x.name);
        PQclear(r);
      } else {
        out[x.step] = Rows(r);
      }
    } else if (st == PGRES_PIPELINE_ABORTED) {
      PQclear(r);
    } else if (first_error.is_ok()) {
      first_error = error(x.prepare ? "preparing a statement" : "a statement failed", r);
    } else {
      PQclear(r);
    }
    while (pg_result* extra = PQgetResult(c_)) PQclear(extra);  // the end of this one's results
  }
  const std::string state = sqlstate_;
  pg_result* sync = PQgetResult(c_);
  const bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  if (sync) PQclear(sync);
  if (!synced || PQexitPipelineMode(c_) != 1) return error("leaving pipeline mode", nullptr);
  sqlstate_ = state;
  if (!first_error.is_ok()) return first_error;
  return out;
}

Result<Rows> Connection::read(const std::string& sql, const Params& params) {
  auto r = exec(sql, params);
  if (r || ok()) return r;
  if (Status s = reset(); !s) return s;
  return exec(sql, params);
}

// ---------------------------------------------------------------------------
// ReadPool

Result<std::unique_ptr<ReadPool>> ReadPool::open(const std::string& dsn, std::size_t n) {
  auto pool = std::make_unique<ReadPool>();
  for (std::size_t i = 0; i < (n == 0 ? 1 : n); ++i) {
    auto c = Connection::open(dsn);
    if (!c) return c.status();
    pool->free_.push_back(std::move(c).value());
  }
  return pool;
}

ReadPool::Lease ReadPool::get() {
  std::unique_ptr<Connection> c;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !free_.empty(); });
    c = std::move(free_.back());
    free_.pop_back();
  }
  if (!c->ok()) (void)c->reset();  // a failed reset shows as the read's error
  return Lease(this, std::move(c));
}

ReadPool::Lease::~Lease() {
  if (!c_) return;
  {
    std::lock_guard lock(pool_->mu_);
    pool_->free_.push_back(std::move(c_));
  }
  pool_->cv_.notify_one();
}

}  // namespace oms::storage::pg
