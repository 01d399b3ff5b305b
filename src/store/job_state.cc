#include "store/job_state.h"

#include <string>

namespace cce::store {

std::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kSubmitted: return "SUBMITTED";
    case JobState::kAuthorized: return "AUTHORIZED";
    case JobState::kProvisioning: return "PROVISIONING";
    case JobState::kAttested: return "ATTESTED";
    case JobState::kRunning: return "RUNNING";
    case JobState::kOutputSubmitted: return "OUTPUT_SUBMITTED";
    case JobState::kReleased: return "RELEASED";
    case JobState::kHeld: return "HELD";
    case JobState::kApproved: return "APPROVED";
    case JobState::kRejected: return "REJECTED";
    case JobState::kFailed: return "FAILED";
    case JobState::kCancelled: return "CANCELLED";
  }
  return "UNKNOWN";
}

StatusOr<JobState> ParseJobState(std::string_view name) {
  for (JobState s : kAllJobStates) {
    if (JobStateName(s) == name) return s;
  }
  return InvalidArgument("unknown job state '" + std::string(name) + "'");
}

bool IsFinalState(JobState state) {
  switch (state) {
    case JobState::kReleased:
    case JobState::kRejected:
    case JobState::kFailed:
    case JobState::kCancelled: return true;
    default: return false;
  }
}

bool IsAllowedTransition(JobState from, JobState to) {
  if (IsFinalState(from)) return false;
  if (to == JobState::kFailed || to == JobState::kCancelled) return true;
  switch (from) {
    case JobState::kSubmitted: return to == JobState::kAuthorized;
    case JobState::kAuthorized: return to == JobState::kProvisioning;
    case JobState::kProvisioning: return to == JobState::kAttested;
    case JobState::kAttested: return to == JobState::kRunning;
    case JobState::kRunning: return to == JobState::kOutputSubmitted;
    case JobState::kOutputSubmitted: return to == JobState::kReleased || to == JobState::kHeld;
    case JobState::kHeld: return to == JobState::kApproved || to == JobState::kRejected;
    case JobState::kApproved: return to == JobState::kReleased;
    default: return false;
  }
}

}  // namespace cce::store
