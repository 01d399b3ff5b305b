#include "base/exit_code.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace cce {
namespace {

TEST(ExitCode, OneTableForEveryStatusCode) {
  const std::pair<StatusCode, int> kTable[] = {
      {StatusCode::kOk, 0},
      {StatusCode::kInvalidArgument, 2},
      {StatusCode::kNotFound, 2},
      {StatusCode::kAlreadyExists, 2},
      {StatusCode::kDataLoss, 3},
      {StatusCode::kPermissionDenied, 3},
      {StatusCode::kUnauthenticated, 3},
      {StatusCode::kFailedPrecondition, 1},
      {StatusCode::kUnavailable, 1},
      {StatusCode::kResourceExhausted, 1},
      {StatusCode::kInternal, 1},
      {StatusCode::kIo, 1},
  };
  for (const auto& [code, exit] : kTable) {
    EXPECT_EQ(ExitCodeFor(code), exit) << StatusCodeName(code);
  }
}

TEST(ExitCode, StatusOverloadUsesTheCode) {
  EXPECT_EQ(ExitCodeFor(Status::Ok()), kExitOk);
  EXPECT_EQ(ExitCodeFor(DataLoss("manifest.cce: segment 0: authentication failed")), kExitDataLoss);
  EXPECT_EQ(ExitCodeFor(PermissionDenied("wrong key")), kExitDataLoss);
  EXPECT_EQ(ExitCodeFor(InvalidArgument("--threads: 0")), kExitUsage);
  EXPECT_EQ(ExitCodeFor(ErrnoStatus("key file k", ENOENT)), kExitFailure);
}

TEST(ExitCode, ConstantsAreTheDocumentedNumbers) {
  EXPECT_EQ(kExitOk, 0);
  EXPECT_EQ(kExitFailure, 1);
  EXPECT_EQ(kExitUsage, 2);
  EXPECT_EQ(kExitDataLoss, 3);
}

}  // namespace
}  // namespace cce
