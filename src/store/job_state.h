// The Privacy Mode job state machine of DESIGN.md, as data: the states, their
// wire names and the allowed transitions. The store enforces this table on
// every TransitionJob; the plane uses it to decide what to do next.
#pragma once

#include <array>
#include <string_view>

#include "base/status.h"

namespace cce::store {

enum class JobState {
  kSubmitted,
  kAuthorized,
  kProvisioning,
  kAttested,
  kRunning,
  kOutputSubmitted,
  kReleased,
  kHeld,
  kApproved,
  kRejected,
  kFailed,
  kCancelled,
};

inline constexpr std::array<JobState, 12> kAllJobStates = {
    JobState::kSubmitted, JobState::kAuthorized,      JobState::kProvisioning, JobState::kAttested,
    JobState::kRunning,   JobState::kOutputSubmitted, JobState::kReleased,     JobState::kHeld,
    JobState::kApproved,  JobState::kRejected,        JobState::kFailed,       JobState::kCancelled,
};

// "SUBMITTED", "OUTPUT_SUBMITTED", ... (the names stored and shown to users).
std::string_view JobStateName(JobState state);
StatusOr<JobState> ParseJobState(std::string_view name);

// RELEASED, REJECTED, FAILED and CANCELLED: nothing follows them.
bool IsFinalState(JobState state);

// The forward path SUBMITTED -> AUTHORIZED -> PROVISIONING -> ATTESTED ->
// RUNNING -> OUTPUT_SUBMITTED -> RELEASED | HELD; HELD -> APPROVED | REJECTED;
// APPROVED -> RELEASED; and FAILED / CANCELLED from every non-final state.
// Nothing else, and never a state to itself.
bool IsAllowedTransition(JobState from, JobState to);

}  // namespace cce::store
