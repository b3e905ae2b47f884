// A libpq connection and what the PostgreSQL back end sends through it
// (internal to storage/): parameters and results in binary format (no SQL
// is ever built from values: every value is a parameter, batches are
// binary arrays unnested server-side), statements prepared once per
// connection, and a small pool of connections for the synchronous reads.
//
// Connection: one thread at a time. ReadPool: thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

struct pg_conn;
struct pg_result;

namespace oms::storage::pg {

// Parameters of one statement, each in binary format with its type.
class Params {
 public:
  Params& text(std::string_view v);
  Params& bytes(std::string_view v);
  Params& i64(std::int64_t v);
  Params& boolean(bool v);
  // One-dimensional arrays (text[], bytea[], int8[], bool[], int2[]).
  Params& text_array(const std::vector<std::string>& v);
  Params& bytes_array(const std::vector<std::string>& v);
  Params& i64_array(const std::vector<std::int64_t>& v);
  Params& bool_array(const std::vector<bool>& v);
  Params& i16_array(const std::vector<std::int16_t>& v);

  std::size_t size() const { return values_.size(); }
  const std::vector<std::string>& values() const { return values_; }
  const std::vector<unsigned>& types() const { return types_; }

 private:
  Params& add(std::string value, unsigned type);
  Params& array(unsigned elem_type, std::size_t n, const std::string* elems);
  std::vector<std::string> values_;
  std::vector<unsigned> types_;
};

// A statement's rows (binary format); owns the PGresult.
class Rows {
 public:
  Rows() = default;
  explicit Rows(pg_result* r);
  Rows(Rows&&) noexcept;
  Rows& operator=(Rows&&) noexcept;
  ~Rows();
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;

  int size() const;
  bool null(int row, int col) const;
  std::string_view str(int row, int col) const;  // text or bytea
  std::int64_t i64(int row, int col) const;
  std::int16_t i16(int row, int col) const;
  bool boolean(int row, int col) const;
  std::uint64_t affected() const;  // INSERT/UPDATE/DELETE row count

 private:
  pg_result* r_ = nullptr;
};

class Connection {
 public:
  // Connects (application_name oms); io_error with libpq's message.
  static Result<std::unique_ptr<Connection>> open(const std::string& dsn);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs `sql` (prepared on first use on this connection) with `params`.
  // Errors are io_error; sqlstate() then holds the server's SQLSTATE.
  Result<Rows> exec(const std::string& sql, const Params& params = Params());
  // Runs the statements in order in one round trip (libpq pipeline mode):
  // their rows, or the first error (the statements after it do not run;
  // inside a transaction, the transaction is then aborted). A statement
  // with `prepare` false is sent unnamed (BEGIN, COMMIT).
  struct Step {
    const std::string* sql;
    const Params* params;
    bool prepare = true;
  };
  Result<std::vector<Rows>> pipeline(const std::vector<Step>& steps);
  // exec() for a read outside a transaction: when the connection turns
  // out to be broken (a server restart, a failover), reconnects and runs
  // it once more.
  Result<Rows> read(const std::string& sql, const Params& params = Params());
  // Runs commands without parameters (BEGIN, COMMIT, SET ...).
  Status command(const char* sql);
  const std::string& sqlstate() const { return sqlstate_; }
  // Whether the server connection is still up; reset() reconnects.
  bool ok() const;
  Status reset();

 private:
  explicit Connection(pg_conn* c) : c_(c) {}
  Status error(std::string_view what, pg_result* r);
  pg_conn* c_;
  std::unordered_map<std::string, std::string> prepared_;  // sql -> statement name
  std::string sqlstate_;
};

// Connections for the reads. get() waits for a free one (reconnecting a
// broken one first).
class ReadPool {
 public:
  static Result<std::unique_ptr<ReadPool>> open(const std::string& dsn, std::size_t n);

  class Lease {
   public:
    Lease(ReadPool* pool, std::unique_ptr<Connection> c) : pool_(pool), c_(std::move(c)) {}
    Lease(Lease&&) = default;
    ~Lease();
    Connection* operator->() { return c_.get(); }
    Connection& operator*() { return *c_; }

   private:
    ReadPool* pool_;
    std::unique_ptr<Connection> c_;
  };
  Lease get();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> free_;
};

// SQLSTATEs after which a whole batch is simply tried again.
inline bool retryable(std::string_view sqlstate) {
  return sqlstate == "40P01" /* deadlock_detected */ || sqlstate == "40001" /* serialization_failure */;
}

}  // namespace oms::storage::pg
