#include "store/job_state.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>

namespace cce::store {
namespace {

using S = JobState;

TEST(JobState, NamesRoundTrip) {
  for (JobState s : kAllJobStates) {
    auto parsed = ParseJobState(JobStateName(s));
    ASSERT_TRUE(parsed.ok()) << JobStateName(s);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(JobStateName(S::kOutputSubmitted), "OUTPUT_SUBMITTED");
}

TEST(JobState, RejectsUnknownAndWrongCaseNames) {
  EXPECT_EQ(ParseJobState("submitted").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseJobState("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseJobState("DONE").status().code(), StatusCode::kInvalidArgument);
}

TEST(JobState, FinalStatesAreExactlyReleasedRejectedFailedCancelled) {
  std::set<JobState> final_states;
  for (JobState s : kAllJobStates) {
    if (IsFinalState(s)) final_states.insert(s);
  }
  EXPECT_EQ(final_states,
            (std::set<JobState>{S::kReleased, S::kRejected, S::kFailed, S::kCancelled}));
}

// The whole table, spelled out: every pair not listed is refused.
TEST(JobState, AllowsExactlyTheDesignTransitions) {
  std::set<std::pair<JobState, JobState>> allowed = {
      {S::kSubmitted, S::kAuthorized},    {S::kAuthorized, S::kProvisioning},
      {S::kProvisioning, S::kAttested},   {S::kAttested, S::kRunning},
      {S::kRunning, S::kOutputSubmitted}, {S::kOutputSubmitted, S::kReleased},
      {S::kOutputSubmitted, S::kHeld},    {S::kHeld, S::kApproved},
      {S::kHeld, S::kRejected},           {S::kApproved, S::kReleased},
  };
  for (JobState s : kAllJobStates) {
    if (IsFinalState(s)) continue;
    allowed.insert({s, S::kFailed});
    allowed.insert({s, S::kCancelled});
  }
  for (JobState from : kAllJobStates) {
    for (JobState to : kAllJobStates) {
      EXPECT_EQ(IsAllowedTransition(from, to), allowed.count({from, to}) == 1)
          << JobStateName(from) << " -> " << JobStateName(to);
    }
  }
}

TEST(JobState, NothingLeavesAFinalState) {
  for (JobState from : kAllJobStates) {
    if (!IsFinalState(from)) continue;
    for (JobState to : kAllJobStates) EXPECT_FALSE(IsAllowedTransition(from, to));
  }
}

TEST(JobState, HeldOutputIsNeverReleasedWithoutApproval) {
  EXPECT_FALSE(IsAllowedTransition(S::kHeld, S::kReleased));
  EXPECT_FALSE(IsAllowedTransition(S::kRunning, S::kReleased));
  EXPECT_FALSE(IsAllowedTransition(S::kSubmitted, S::kRunning));
}

}  // namespace
}  // namespace cce::store
