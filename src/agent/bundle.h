// The output bundle the agent submits: one POSIX tar (pax) of the sandbox's
// result directory (files/, stdout.txt, stderr.txt, manifest.json) plus the
// agent's result.json, written deterministically (entries sorted, owner 0,
// mtime 0, modes 0644/0755) so the same output gives the same bytes and the
// same digest. Only regular files and directories are packed; anything else
// is an error (the sandbox's copy-out never produces one).
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace cce::agent {

struct BundleLimits {
  uint64_t max_bytes = uint64_t{1} << 30;  // content bytes of all files
  uint64_t max_entries = 100'000;
};

struct PackedBundle {
  uint64_t size = 0;   // bytes written to the fd (the tar)
  uint64_t files = 0;  // regular files packed
};

// Packs `dir` (not followed through symlinks; every open is O_NOFOLLOW
// beneath it) into `out_fd`, which must be an empty regular file. (The
// digest is computed where the bundle is signed: PlaneAgentClient.) `extra_name`/`extra_content`:
// one more file at the top (result.json); empty name: none. Errors name the offending path.
StatusOr<PackedBundle> PackBundle(const std::string& dir, int out_fd, const BundleLimits& limits,
                                  const std::string& extra_name = "",
                                  const std::string& extra_content = "");

}  // namespace cce::agent
