// omsctl: the operator's command line over omsd's admin HTTP endpoint
// (contract §2 and §3), plus `token issue`, which mints a client JWT locally
// from the server's JWT secret.
//
// The parts: cli.h (exit codes, how a run ends), options.h (the command line
// and where each setting comes from), http_client.h (one request over
// http:// or https://), output.h (tables), commands.h (the commands).
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "server/omsctl/cli.h"
#include "server/omsctl/commands.h"
#include "server/omsctl/options.h"

using namespace oms::omsctl;

namespace {

constexpr std::string_view kSynopsis = R"(usage: omsctl [GLOBAL OPTIONS] COMMAND [ARGS]

Commands:
  token issue USER [--ttl DURATION]     print a client JWT (HS256, sub=USER);
                                        DURATION like 30s, 15m, 12h, 7d
                                        (default 24h); needs the JWT secret
  policy get [IDENTITY]                 list client policies, or show one
  policy new IDENTITY [SETTINGS]        create a policy; SETTINGS (each true
                                        or false, new: default true):
                                        --enable-im-auto-archiving BOOL
                                        --enable-delivery-receipts BOOL
  policy set IDENTITY SETTINGS          change a policy (at least one setting)
  policy remove IDENTITY                users granted it revert to Global
  policy grant USER (IDENTITY | --global)
  im-config get
  im-config set --enable-offline-im true|false
  user show USER                        presence, sessions, policy, mailbox,
                                        devices
  user revoke USER                      close USER's sessions and refuse every
                                        token issued until now (durable)
  user kick USER                        close USER's sessions (tokens stay valid)
  mailbox purge USER                    delete every stored message of USER
  device list USER                      USER's devices: active, open sessions,
                                        unacked messages and receipts, seen
  device remove USER DEVICE             forget DEVICE ("legacy": the sessions
                                        without a name): it holds nothing back
                                        any more; its sessions close (4403)
  health                                GET /readyz; exit 0 when ready
  metrics [--raw]                       counters and gauges of GET /metrics
                                        (--raw: the Prometheus text as is)
  backup [NAME]                         a consistent copy of the store (RocksDB
                                        checkpoint) into the server's [backup]
                                        dir (default DATA_DIR/backups), as NAME
                                        (A-Z a-z 0-9 . _ -, at most 64; must not
                                        exist; default the UTC time), mode 0700
)";

constexpr std::string_view kOptions = R"(
Global options (anywhere on the line):
  --admin URL              admin endpoint, e.g. http://127.0.0.1:8081
                           (default: DATA_DIR/ports.json, $OMS_ADMIN_URL,
                           else http://127.0.0.1:8081)
  --data-dir DIR           omsd's data dir (default ./oms-data): admin.token,
                           jwt.secret and ports.json are read from it
  --token-file FILE        admin bearer token (default DATA_DIR/admin.token,
                           or $OMS_ADMIN_TOKEN)
  --jwt-secret-file FILE   JWT secret for `token issue` (default
                           DATA_DIR/jwt.secret)
  --timeout SECONDS        connect/read timeout (default 10)
  --cacert FILE            https:// only: trust the CA certificate(s) in FILE
                           (PEM) instead of the system store, e.g. the
                           server's own self-signed certificate
  --insecure               https:// only: do not verify the server
                           certificate (trials with a self-signed one)
  --json                   print the server's JSON instead of tables
  -h, --help               this text

Exit codes: 0 ok, 1 the server answered an error, 2 usage or local
configuration error, 3 cannot reach the admin endpoint.
)";

int run(const std::vector<std::string>& argv) {
  GlobalOptions g;
  bool help = false;
  const std::vector<std::string> args = parse_global_options(argv, g, help);
  if (help || (!args.empty() && args[0] == "help")) {
    std::cout << kSynopsis << kOptions;
    return kExitOk;
  }
  if (args.empty()) usage_error("no command given");
  return run_command(g, args);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    int rc = run(args);
    std::cout.flush();
    return rc;
  } catch (const CliExit& e) {
    std::cout.flush();
    const bool is_usage_line = e.message.rfind("usage: ", 0) == 0;
    if (!e.message.empty()) {
      const bool prefixed = is_usage_line || e.message.rfind("error: ", 0) == 0;
      std::cerr << (prefixed ? "" : "omsctl: ") << e.message << '\n';
    }
    // A command's own usage line is enough; otherwise show every command.
    if (e.help == CliExit::Help::kSynopsis && !is_usage_line) std::cerr << '\n' << kSynopsis;
    if (e.help != CliExit::Help::kNone) std::cerr << "(omsctl --help lists the global options)\n";
    return e.code;
  } catch (const std::exception& e) {
    std::cerr << "omsctl: " << e.what() << '\n';
    return kExitServerError;
  }
}
