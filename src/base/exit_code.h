// The exit codes of every cce4long binary (cce, cce-plane, cce-decryptfs),
// derived from a Status by one table so that the same failure exits the same
// way whichever binary met it. Documented in docs/cli.md.
#pragma once

#include "base/status.h"

namespace cce {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;   // runtime failure: I/O, unavailable, wrong state
inline constexpr int kExitUsage = 2;     // bad flags, arguments or input files
inline constexpr int kExitDataLoss = 3;  // authentication failed: tampering, wrong key, refused

// The exit code for a process ending with `code`. Every StatusCode is listed
// (no default), so adding one does not compile until its exit code is chosen.
int ExitCodeFor(StatusCode code);
inline int ExitCodeFor(const Status& status) {
  return ExitCodeFor(status.code());
}

}  // namespace cce
