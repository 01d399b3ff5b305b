#include "base/exit_code.h"

namespace cce {

int ExitCodeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return kExitOk;
    // The caller asked for something malformed or absent: fix the command.
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kAlreadyExists: return kExitUsage;
    // Authentication failed: the data, the key or the caller is not genuine.
    case StatusCode::kDataLoss:
    case StatusCode::kPermissionDenied:
    case StatusCode::kUnauthenticated: return kExitDataLoss;
    // The request was fine but could not be carried out now.
    case StatusCode::kFailedPrecondition:
    case StatusCode::kUnavailable:
    case StatusCode::kResourceExhausted:
    case StatusCode::kInternal:
    case StatusCode::kIo: return kExitFailure;
  }
  return kExitFailure;  // not a valid StatusCode value
}

}  // namespace cce
