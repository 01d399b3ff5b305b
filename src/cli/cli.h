// The `cce` command-line tool: one entry point dispatching to verbs
// (key, dataset, ...). Exit codes are documented in docs/cli.md.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace cce::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;   // runtime failure (I/O, ...)
inline constexpr int kExitUsage = 2;     // bad flags, arguments or input files
inline constexpr int kExitDataLoss = 3;  // authentication failed: tampering or wrong key

int ExitCodeFor(const Status& status);

// Runs `cce` with its arguments (argv[1..]). Writes results to stdout and
// errors/progress to stderr.
int RunCce(const std::vector<std::string>& args);

}  // namespace cce::cli
