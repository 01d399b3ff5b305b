// Private to src/plane: opening the manifest of a dataset registered with a
// file:// location. A provider names a path; the plane opens it only beneath
// an operator-configured root, never through a symlink or '..', and only a
// regular, size-capped manifest.cce, without blocking on FIFOs or devices.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/status.h"

namespace cce::plane {

// kInvalidArgument naming the offset when `text` holds a control character
// (U+0000..U+001F or U+007F), including NUL.
Status RefuseControlCharacters(std::string_view text, std::string_view what);

// Opens PATH/manifest.cce read-only, where PATH (absolute, from file://PATH)
// must be one of `roots` (absolute, normalized: see LoadConfig) or lie beneath
// one. PATH may not hold empty, "." or ".." parts; every directory beneath the
// root is opened with O_NOFOLLOW (a symlink anywhere below the root is
// refused, and nothing can be swapped between check and open); the manifest
// is opened with O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC and must be a regular file
// of at most `max_bytes`. Errors are detailed for the plane's log: they
// reveal what exists on the plane's file system, so never show them to a
// client.
StatusOr<UniqueFd> OpenDatasetManifest(const std::vector<std::string>& roots, std::string_view path,
                                       uint64_t max_bytes);

}  // namespace cce::plane
