#include "server/server.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/jwt.h"
#include "server/admin_api.h"
#include "server/admin_endpoint.h"
#include "server/client_endpoint.h"
#include "server/cluster.h"
#include "server/context.h"
#include "server/fair_pool.h"
#include "server/log.h"
#include "server/router.h"
#include "server/session_socket.h"
#include "server/tls.h"
#include "storage/store.h"

namespace oms::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;
namespace fs = std::filesystem;

namespace {

// How long the shutdown waits for sessions to finish their close handshake.
constexpr auto kShutdownGrace = std::chrono::seconds(5);
constexpr std::size_t kSecretBytes = 32;
constexpr std::size_t kMinSecretBytes = 32;  // operator-supplied secret files
// Connections taken from the backlog per accept completion.
constexpr int kAcceptsPerWakeup = 64;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  return s;
}

Result<std::string> read_secret(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalid_argument(fmt::format("{}: cannot read {}", what, path));
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  s = trim(std::move(s));
  // 32 bytes: an HS256 key shorter than its hash is weaker than HS256 (RFC 7518 3.2).
  if (s.size() < kMinSecretBytes)
    return Status::invalid_argument(fmt::format(
        "{}: {} holds {} bytes; at least {} are required (e.g. `openssl rand -hex 32`)", what, path, s.size(),
        kMinSecretBytes));
  return s;
}

// Every connection is a file descriptor: raises RLIMIT_NOFILE's soft limit
// to the hard one, and when the connection caps (client and admin, plus a
// reserve for the store's files and the listeners) still exceed it, lowers
// limits.max_connections to fit, so that connections beyond it are refused
// cleanly at the cap instead of failing at accept() with EMFILE (the accept
// loop backs off then; deploy/OPERATIONS.md, "File descriptors").
void fit_descriptor_limit(Config& cfg) {
  constexpr rlim_t kReserve = 256;  // RocksDB files, listeners, logs, the pools
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  const rlim_t wanted = static_cast<rlim_t>(cfg.max_connections) + cfg.max_admin_connections + kReserve;
  if (lim.rlim_cur == RLIM_INFINITY || wanted <= lim.rlim_cur) return;
  const rlim_t room = lim.rlim_cur > cfg.max_admin_connections + kReserve + 16
                          ? lim.rlim_cur - cfg.max_admin_connections - kReserve
                          : 16;
  spdlog::info("limits.max_connections lowered from {} to {}: the open-file limit is {} (ulimit -n), with {} for "
               "admin connections and {} reserved; raise LimitNOFILE= in the systemd unit for more",
               cfg.max_connections, room, lim.rlim_cur, cfg.max_admin_connections, kReserve);
  cfg.max_connections = static_cast<std::size_t>(room);
}

// fsync of a directory, so that a file created or renamed in it survives a
// power cut.
bool sync_directory(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// Reads `path`, or creates it (mode 0600) with a fresh random secret. The
// secret is written and synced under a temporary name, then linked into
// place (link fails if another process got there first) and the directory
// synced: a crash never leaves a short or empty secret behind.
Result<std::string> read_or_create_secret(const std::string& path, const char* what) {
  if (fs::exists(path)) return read_secret(path, what);
  std::string secret = random_hex(kSecretBytes);
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // a leftover of a crash during an earlier first start
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::io_error(fmt::format("{}: cannot create {}: {}", what, tmp, std::strerror(errno)));
  std::string line = secret + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return Status::io_error(fmt::format("{}: cannot write {}", what, tmp));
  }
  const int linked = ::link(tmp.c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  if (linked != 0) {
    if (link_errno == EEXIST) return read_secret(path, what);
    return Status::io_error(fmt::format("{}: cannot create {}: {}", what, path, std::strerror(link_errno)));
  }
  if (!sync_directory(fs::path(path).parent_path()))
    return Status::io_error(fmt::format("{}: cannot sync the directory of {}", what, path));
  spdlog::info("generated {} in {}", what, path);
  return secret;
}

Status write_file_atomically(const fs::path& path, const std::string& content) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
    if (!out) return Status::io_error(fmt::format("cannot write {}", tmp.string()));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status::io_error(fmt::format("cannot rename {}: {}", tmp.string(), ec.message()));
  return Status::ok();
}

}  // namespace

// The I/O contexts: one io_context per I/O thread (session_socket.h says
// why). Accepted connections, client and admin, are dealt to them in turn;
// the first is also the server's own: listeners, signals and timers.
class IoContexts {
 public:
  explicit IoContexts(unsigned n) {
    for (unsigned i = 0; i < std::max(1u, n); ++i)
      contexts_.push_back(std::make_unique<net::io_context>(/*concurrency_hint=*/1));
  }

  net::io_context& main() { return *contexts_.front(); }
  std::vector<net::io_context*> all() const {
    std::vector<net::io_context*> out;
    for (const auto& c : contexts_) out.push_back(c.get());
    return out;
  }
  // Where the next connection goes: the contexts in turn.
  SessionExecutor next() {
    return contexts_[next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()]->get_executor();
  }

  // Runs each context on its own thread (the calling thread runs main())
  // until main() has no work left (at shutdown, once every connection is
  // closed: Server::Impl::wait_for_sessions), then lets the others finish
  // what they still hold and joins them.
  void run() {
    std::vector<net::executor_work_guard<net::io_context::executor_type>> keep;
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < contexts_.size(); ++i) {
      keep.push_back(net::make_work_guard(*contexts_[i]));
      threads.emplace_back([c = contexts_[i].get()] {
        pthread_setname_np(pthread_self(), "oms-io");
        c->run();
      });
    }
    pthread_setname_np(pthread_self(), "oms-io");
    main().run();
    keep.clear();
    for (auto& t : threads) t.join();
  }

  void stop() {
    for (auto& c : contexts_) c->stop();
  }

 private:
  std::vector<std::unique_ptr<net::io_context>> contexts_;
  std::atomic<unsigned> next_{0};
};

// Accepts connections on one endpoint (on the main context); each accepted
// socket goes to the next I/O context.
class Listener {
 public:
  enum class Kind { kClient, kAdmin };
  Listener(IoContexts& io, ServerContext& ctx, AdminApi& api, Kind kind)
      : io_(io), ctx_(ctx), api_(api), kind_(kind), acceptor_(io.main()) {}

  Status open(const Endpoint& ep, const char* key) {
    boost::system::error_code ec;
    auto addr = net::ip::make_address(ep.host, ec);
    if (ec) return Status::invalid_argument(fmt::format("{}: '{}' is not an IP address", key, ep.host));
    tcp::endpoint endpoint(addr, ep.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec)
      return Status::io_error(fmt::format("{}: cannot listen on {}:{}: {}", key, ep.host, ep.port, ec.message()));
    port_ = acceptor_.local_endpoint().port();
    return Status::ok();
  }

  unsigned short port() const { return port_; }

  void accept() {
    acceptor_.async_accept(io_.next(), [this](boost::system::error_code ec, SessionSocket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
        if (out_of_descriptors(ec)) return back_off(ec);
        spdlog::warn("accept: {}", ec.message());
      } else {
        backoff_ = std::chrono::milliseconds(0);  // the burst is over
        serve(std::move(socket));
        // A sign-in storm queues many connections at once: take what is
        // already waiting now, instead of one per trip through a busy
        // scheduler queue.
        acceptor_.non_blocking(true, ec);
        for (int i = 0; !ec && i < kAcceptsPerWakeup; ++i) {
          SessionSocket more(io_.next());
          acceptor_.accept(more, ec);
          if (!ec) serve(std::move(more));
        }
      }
      accept();
    });
  }

  static bool out_of_descriptors(const boost::system::error_code& ec) {
    return ec == net::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system ||
           ec == net::error::no_buffer_space || ec == net::error::no_memory;
  }

  // Out of file descriptors the pending connection stays in the backlog and
  // accept fails again at once: without a pause the loop spins a core.
  // Waits 50 ms, doubling to 500 ms while it lasts; one log line per burst.
  void back_off(const boost::system::error_code& ec) {
    ctx_.metrics.accept_backoffs.fetch_add(1, std::memory_order_relaxed);
    if (backoff_.count() == 0) {
      spdlog::warn("accept: {}; pausing accepts (limits.max_connections, ulimit -n)", ec.message());
      backoff_ = std::chrono::milliseconds(50);
    } else {
      backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(500));
    }
    backoff_timer_.expires_after(backoff_);
    backoff_timer_.async_wait([this](boost::system::error_code tec) {
      if (tec || !acceptor_.is_open()) return;
      accept();
    });
  }

  void serve(SessionSocket socket) {
    boost::system::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    if (kind_ == Kind::kClient) serve_client_connection(ctx_, std::move(socket));
    else serve_admin_connection(ctx_, api_, tcp::socket(std::move(socket)));
  }

  void close() {
    net::post(acceptor_.get_executor(), [this] {
      boost::system::error_code ignored;
      backoff_timer_.cancel();
      acceptor_.close(ignored);
    });
  }

 private:
  IoContexts& io_;
  ServerContext& ctx_;
  AdminApi& api_;
  Kind kind_;
  tcp::acceptor acceptor_;
  net::steady_timer backoff_timer_{acceptor_.get_executor()};
  std::chrono::milliseconds backoff_{0};  // 0: not backing off
  unsigned short port_ = 0;
};

class Server::Impl {
 public:
  explicit Impl(Config config)
      : threads_(config.io_threads ? config.io_threads : std::max(1u, std::thread::hardware_concurrency())),
        io_(threads_),
        ioc_(io_.main()),
        blocking_(config.admin_threads),
        scans_(config.store_threads, config.max_queued_scans_per_user, "oms-scan"),
        signals_(ioc_, SIGINT, SIGTERM),
        sweep_timer_(ioc_),
        reconcile_timer_(ioc_),
        grace_timer_(ioc_),
        api_(ctx_),
        client_(io_, ctx_, api_, Listener::Kind::kClient),
        admin_(io_, ctx_, api_, Listener::Kind::kAdmin) {
    ctx_.config = std::move(config);
    ctx_.router = std::make_unique<Router>(ctx_);
    ctx_.run_blocking = [this](std::function<void()> fn) { net::post(blocking_, std::move(fn)); };
    ctx_.run_for_user = [this](const std::string& user, std::function<void()> fn) {
      return scans_.submit(user, std::move(fn));
    };
    ctx_.scans_queued = [this] { return scans_.queued(); };
    ctx_.scans_refused = [this] { return scans_.refused(); };
  }
  // The cluster's hint readers hold sockets of the I/O contexts: they go
  // before the contexts do (members go in reverse order, ctx_ after io_).
  ~Impl() {
    if (ctx_.cluster) ctx_.cluster->stop();
  }

  Status start() {
    const Config& cfg = ctx_.config;
    if (cfg.tls_configured()) {
      auto tls = make_tls_context(cfg);
      if (!tls) return tls.status();
      ctx_.tls = std::move(*tls);
      if (!cfg.client_tls() && !cfg.admin_tls())
        spdlog::warn("[tls] is configured but tls.client and tls.admin are both false: no listener uses TLS");
    }
    fit_descriptor_limit(ctx_.config);
    std::error_code ec;
    fs::create_directories(cfg.data_dir, ec);
    if (ec) return Status::io_error(fmt::format("server.data_dir: cannot create {}: {}", cfg.data_dir, ec.message()));
    fs::permissions(cfg.data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    const fs::path dir(cfg.data_dir);
    fs::remove(dir / "ports.json", ec);

    auto jwt = cfg.jwt_secret_file.empty()
                   ? read_or_create_secret((dir / "jwt.secret").string(), "JWT secret")
                   : read_secret(cfg.jwt_secret_file, "server.jwt_secret_file");
    if (!jwt) return jwt.status();
    ctx_.jwt_secret = std::move(*jwt);
    auto token = cfg.admin_token_file.empty()
                     ? read_or_create_secret((dir / "admin.token").string(), "admin token")
                     : read_secret(cfg.admin_token_file, "server.admin_token_file");
    if (!token) return token.status();
    ctx_.admin_token = std::move(*token);

    start_disk_guard(cfg, dir.string());  // before the store: on a full disk the ballast goes first
    storage::StoreOptions so;
    so.path = (dir / "store").string();
    so.backend = cfg.store_backend == "postgres" ? storage::Backend::kPostgres : storage::Backend::kRocksDb;
    so.postgres_dsn = cfg.postgres_dsn;
    so.postgres_read_connections = cfg.postgres_read_connections;
    so.postgres_late_locks = cfg.postgres_late_locks;
    so.max_messages = cfg.max_messages;
    so.max_bytes = cfg.max_bytes;
    so.ttl_days = cfg.ttl_days;
    so.ttl_ms_override = cfg.ttl_seconds > 0 ? cfg.ttl_seconds * 1000 : 0;
    so.dedup_window_ms = cfg.dedup_window_seconds * 1000;
    so.sync = cfg.sync;
    so.max_batch_requests = cfg.max_batch;
    so.max_queued_requests = cfg.max_queued_writes;
    so.block_cache_bytes = cfg.block_cache_mb << 20;
    so.clock = ctx_.clock;
    so.device_idle_ms = cfg.device_idle_seconds * 1000;
    so.max_devices_per_user = static_cast<std::size_t>(cfg.max_devices_per_user);
    so.max_receipts_per_mailbox = static_cast<std::uint64_t>(cfg.max_receipts_per_mailbox);
    so.refuse_new_messages = [guard = ctx_.disk_guard.get()] {
      return guard->refresh_if_older(std::chrono::milliseconds(0));  // a statvfs per batch (~1 µs)
    };
    so.refuse_all_writes = [guard = ctx_.disk_guard.get()] { return guard->exhausted(); };
    auto store = storage::open_store(so);
    if (!store) return store.status();
    ctx_.database = std::move(*store);
    ctx_.store = &ctx_.database->mailboxes();
    ctx_.store->set_batch_observer(&ctx_.metrics);
    ctx_.store->set_receipt_listener(
        [router = ctx_.router.get()](const std::vector<storage::NewReceipt>& r) { router->receipts_written(r); });
    if (!cfg.cluster_redis_url.empty()) {
      std::string node_id = cfg.cluster_node_id;
      if (node_id.empty()) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        node_id = fmt::format("{}-{}", host, ::getpid());
      }
      if (cfg.store_backend != "postgres")
        spdlog::warn("cluster.redis_url is set but store.backend is not postgres: the nodes do not share mailboxes");
      ctx_.cluster = std::make_unique<Cluster>(ctx_, cfg.cluster_redis_url, node_id, cfg.cluster_node_ttl_seconds);
      Router* router = ctx_.router.get();
      ctx_.cluster->set_presence_hooks(
          {[router](const std::string& user, proto::PresenceState before, proto::PresenceState after, std::uint64_t since) {
             router->presence_changed(user, {before, after, since});
           },
           [router](const std::string& user, proto::PresenceState before, proto::PresenceState after) {
             router->notify_watchers(user, before, after);
           }});
      // A batch's hints go to Redis from the completion thread, in one write.
      ctx_.store->set_after_batch([cluster = ctx_.cluster] { cluster->flush_hints(); });
      ctx_.cluster->attach_io(io_.all());  // each I/O thread reads its sessions' hints
      if (Status s = ctx_.cluster->start(); !s) return s;
      spdlog::info("cluster mode: node {} (redis {}, node_ttl_seconds {})", node_id, cfg.cluster_redis_url,
                   cfg.cluster_node_ttl_seconds);
    }
    if (!cfg.sync)
      logger_for(LogComponent::kStore).warn("store.sync = false: acknowledged messages can be lost in a crash");
    if (cfg.dev_tokens)
      spdlog::warn("auth.dev_tokens = true: anyone who reaches the client listener can get a token for any "
                   "user (POST /v1/dev/token); for development only");

    auto client_ep = parse_endpoint(cfg.listen, "server.listen");
    auto admin_ep = parse_endpoint(cfg.admin_listen, "server.admin_listen");
    if (!client_ep) return client_ep.status();
    if (!admin_ep) return admin_ep.status();
    if (Status s = client_.open(*client_ep, "server.listen"); !s) return s;
    if (Status s = admin_.open(*admin_ep, "server.admin_listen"); !s) return s;
    client_.accept();
    admin_.accept();

    signals_.async_wait([this](boost::system::error_code ec, int sig) {
      if (ec) return;
      spdlog::info("signal {}: shutting down", sig);
      begin_shutdown();
    });
    schedule_sweep();
    schedule_reconcile();

    ctx_.listeners_ready.store(true);
    if (Status s = write_file_atomically(
            dir / "ports.json", fmt::format("{{\"client\":{},\"admin\":{},\"client_tls\":{},\"admin_tls\":{}}}\n",
                                            client_.port(), admin_.port(), cfg.client_tls(), cfg.admin_tls()));
        !s)
      return s;
    spdlog::info("omsd ready: client {}://{}:{}/v1/ws admin {}://{}:{} data {} ({} I/O threads)",
                 cfg.client_tls() ? "wss" : "ws", client_ep->host, client_.port(), cfg.admin_tls() ? "https" : "http",
                 admin_ep->host, admin_.port(), cfg.data_dir, threads_);
    return Status::ok();
  }

  void start_disk_guard(const Config& cfg, const std::string& dir) {
    storage::DiskGuardOptions o;
    o.dir = dir;
    o.min_free_bytes = cfg.min_free_bytes;
    o.min_free_percent = cfg.min_free_percent;
    o.resume_free_bytes = cfg.resume_free_bytes;
    o.critical_free_bytes = cfg.critical_free_bytes;
    o.ballast_bytes = cfg.ballast_bytes;
    o.write_floor_bytes = cfg.write_floor_bytes;
    o.interval = std::chrono::milliseconds(cfg.disk_check_ms);
    ctx_.disk_guard = std::make_unique<storage::DiskGuard>(o, [](const storage::DiskState& s, const char* what) {
      auto& log = logger_for(LogComponent::kStore);
      const auto level = std::string_view(what) == "resumed" || std::string_view(what) == "ballast recreated" ||
                                     std::string_view(what) == "writable"
                             ? spdlog::level::info
                             : spdlog::level::warn;
      log.log(level,
               "disk {}: {} bytes free ({} usable), refuse below {} resume at {}, ballast {} ({} bytes){}", what,
               s.available, s.usable, s.low_mark, s.high_mark, s.ballast_present ? "on disk" : "released",
               s.ballast_bytes, s.full ? "; new messages are refused with store_full" : "");
    });
    ctx_.disk_guard->start();
  }

  int run() {
    io_.run();
    scans_.stop();
    scans_.join();
    blocking_.join();
    // This node's presence leaves Redis now (not at the TTL).
    if (ctx_.cluster) ctx_.cluster->stop();
    // Completes every queued write, then closes RocksDB.
    ctx_.store = nullptr;
    ctx_.database.reset();
    spdlog::info("omsd stopped");
    return 0;
  }

  void begin_shutdown() {
    net::post(ioc_, [this] {
      if (ctx_.shutting_down.exchange(true)) return;
      ctx_.listeners_ready.store(false);
      client_.close();
      admin_.close();
      signals_.cancel();
      if (ctx_.cluster) ctx_.cluster->close_readers();  // (nothing of theirs stays pending on the contexts)
      sweep_timer_.cancel();
      reconcile_timer_.cancel();
      for (auto& s : ctx_.open_sessions.snapshot()) s->post_close(1001, "server shutting down");
      deadline_ = std::chrono::steady_clock::now() + kShutdownGrace;
      wait_for_sessions();
    });
  }

 private:
  void wait_for_sessions() {
    if (ctx_.metrics.connections_open.load() <= 0) return;  // run() returns once idle
    if (std::chrono::steady_clock::now() >= deadline_) {
      spdlog::warn("shutdown: {} connections did not close in time; stopping", ctx_.metrics.connections_open.load());
      io_.stop();
      return;
    }
    grace_timer_.expires_after(std::chrono::milliseconds(20));
    grace_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) wait_for_sessions();
    });
  }

  void schedule_sweep() {
    sweep_timer_.expires_after(std::chrono::seconds(ctx_.config.sweep_interval_seconds));
    sweep_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || ctx_.shutting_down.load()) return;
      ctx_.store->sweep_expired([](Result<std::uint64_t> r) {
        if (!r) logger_for(LogComponent::kStore).warn("expiry sweep failed: {}", r.status().to_string());
        else if (*r) logger_for(LogComponent::kStore).info("expiry sweep removed {} messages", *r);
      });
      schedule_sweep();
    });
  }

  // Devices that went idle stop holding messages back (contract 4.1):
  // every devices.reconcile_seconds, on the admin pool (it scans).
  void schedule_reconcile() {
    reconcile_timer_.expires_after(std::chrono::seconds(ctx_.config.device_reconcile_seconds));
    reconcile_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || ctx_.shutting_down.load()) return;
      ctx_.run_blocking([this] {
        ctx_.store->reconcile_devices([](Result<std::uint64_t> r) {
          if (!r) logger_for(LogComponent::kStore).warn("device reconcile failed: {}", r.status().to_string());
          else if (*r) logger_for(LogComponent::kStore).info("device reconcile released {} messages", *r);
        });
      });
      schedule_reconcile();
    });
  }

  unsigned threads_;
  ServerContext ctx_;
  IoContexts io_;
  net::io_context& ioc_;  // io_.main()
  net::thread_pool blocking_;  // admin requests (server.admin_threads)
  FairPool scans_;             // mailbox scans, fair between users (server.store_threads)
  net::signal_set signals_;
  net::steady_timer sweep_timer_;
  net::steady_timer reconcile_timer_;
  net::steady_timer grace_timer_;
  std::chrono::steady_clock::time_point deadline_{};
  AdminApi api_;
  Listener client_;
  Listener admin_;
};

Server::Server(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Server::~Server() = default;
Status Server::start() { return impl_->start(); }
int Server::run() { return impl_->run(); }
void Server::shutdown() { impl_->begin_shutdown(); }

}  // namespace oms::server
