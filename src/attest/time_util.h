// time_util: RFC 3339 UTC timestamps as used by Intel collateral
// ("2025-06-19T10:16:03Z") and the CLI's --at flag, to and from unix seconds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace cce::attest {

// Accepts "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (upper- or lower-case T and Z) or
// the same with a "+00:00" offset; other offsets are rejected. The fraction is
// dropped (whole seconds). Years 1970..9999.
StatusOr<int64_t> ParseRfc3339Utc(std::string_view text);

// "YYYY-MM-DDTHH:MM:SSZ".
std::string FormatRfc3339Utc(int64_t unix_seconds);

}  // namespace cce::attest
