// The `cce` command-line tool: one entry point dispatching to verbs
// (key, dataset, ...). Exit codes are documented in docs/cli.md.
#pragma once

#include <string>
#include <vector>

#include "base/exit_code.h"
#include "base/status.h"

namespace cce::cli {

// The exit codes are those of every cce4long binary (base/exit_code.h).
using ::cce::ExitCodeFor;
using ::cce::kExitDataLoss;
using ::cce::kExitFailure;
using ::cce::kExitOk;
using ::cce::kExitUsage;

// Runs `cce` with its arguments (argv[1..]). Writes results to stdout and
// errors/progress to stderr.
int RunCce(const std::vector<std::string>& args);

}  // namespace cce::cli
