// time_util: RFC 3339 UTC timestamps as used by Intel collateral
// ("2025-06-19T10:16:03Z") and the CLI's --at flag, to and from unix seconds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace cce::attest {

// Accepts any RFC 3339 date-time: "YYYY-MM-DDTHH:MM:SS[.fraction]" then "Z"
// or a "+HH:MM"/"-HH:MM" offset (upper- or lower-case T and Z, or a space for
// T as RFC 3339 §5.6 allows) and returns UTC unix seconds. The fraction is
// dropped (whole seconds); a leap second :60 counts as :59. Invalid dates
// (2025-02-30) and times before 1970 are refused with the reason.
StatusOr<int64_t> ParseRfc3339Utc(std::string_view text);

// "YYYY-MM-DDTHH:MM:SSZ".
std::string FormatRfc3339Utc(int64_t unix_seconds);

}  // namespace cce::attest
