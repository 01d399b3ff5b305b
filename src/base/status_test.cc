#include "base/status.h"

#include <gtest/gtest.h>

namespace cce {
namespace {

Status FailIfNegative(int v) {
  if (v < 0) return InvalidArgument("value " + std::to_string(v) + " is negative");
  return Status::Ok();
}

StatusOr<int> Doubled(int v) {
  RETURN_IF_ERROR(FailIfNegative(v));
  return v * 2;
}

Status UseDoubled(int v, int* out) {
  ASSIGN_OR_RETURN(*out, Doubled(v));
  return Status::Ok();
}

TEST(Status, PropagatesErrorsAndValues) {
  int out = 0;
  EXPECT_TRUE(UseDoubled(4, &out).ok());
  EXPECT_EQ(out, 8);
  Status s = UseDoubled(-1, &out);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "value -1 is negative");
  EXPECT_EQ(s.WithContext("job.yaml").message(), "job.yaml: value -1 is negative");
}

}  // namespace
}  // namespace cce
