// omsctl's commands: `token issue` (local: signs a client JWT with the data
// dir's secret) and the admin endpoint's commands (policy, im-config, user,
// mailbox, health, metrics, backup), each printing a table or, with --json,
// the server's JSON.
#pragma once

#include <string>
#include <vector>

#include "server/omsctl/options.h"

namespace oms::omsctl {

// Runs the command `args[0]` with its arguments `args[1..]` and returns the
// exit code; errors end the run with a CliExit (cli.h). REQUIRES: args is
// not empty.
int run_command(const GlobalOptions& g, const std::vector<std::string>& args);

}  // namespace oms::omsctl
