#include "store/store.h"

#include <string>

namespace cce::store {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kProvider: return "provider";
    case Role::kConsumer: return "consumer";
    case Role::kReviewer: return "reviewer";
    case Role::kOperator: return "operator";
  }
  return "unknown";
}

StatusOr<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kProvider, Role::kConsumer, Role::kReviewer, Role::kOperator}) {
    if (RoleName(r) == name) return r;
  }
  return InvalidArgument("unknown role '" + std::string(name) +
                         "' (expected provider, consumer, reviewer or operator)");
}

std::string_view GateVerdictName(GateVerdict verdict) {
  switch (verdict) {
    case GateVerdict::kPending: return "pending";
    case GateVerdict::kRelease: return "release";
    case GateVerdict::kHold: return "hold";
  }
  return "unknown";
}

std::string_view AuditDecisionName(AuditDecision decision) {
  switch (decision) {
    case AuditDecision::kAllow: return "allow";
    case AuditDecision::kDeny: return "deny";
    case AuditDecision::kInfo: return "info";
  }
  return "unknown";
}

StatusOr<AuditDecision> ParseAuditDecision(std::string_view name) {
  for (AuditDecision d : {AuditDecision::kAllow, AuditDecision::kDeny, AuditDecision::kInfo}) {
    if (AuditDecisionName(d) == name) return d;
  }
  return InvalidArgument("unknown audit decision '" + std::string(name) +
                         "' (expected allow, deny or info)");
}

std::string_view ReviewDecisionName(ReviewDecision decision) {
  switch (decision) {
    case ReviewDecision::kApprove: return "approve";
    case ReviewDecision::kReject: return "reject";
  }
  return "unknown";
}

StatusOr<ReviewDecision> ParseReviewDecision(std::string_view name) {
  for (ReviewDecision d : {ReviewDecision::kApprove, ReviewDecision::kReject}) {
    if (ReviewDecisionName(d) == name) return d;
  }
  return InvalidArgument("unknown review decision '" + std::string(name) +
                         "' (expected approve or reject)");
}

std::string_view ExploreStateName(ExploreState state) {
  switch (state) {
    case ExploreState::kStarting: return "STARTING";
    case ExploreState::kRunning: return "RUNNING";
    case ExploreState::kStopped: return "STOPPED";
    case ExploreState::kLost: return "LOST";
    case ExploreState::kFailed: return "FAILED";
  }
  return "UNKNOWN";
}

StatusOr<ExploreState> ParseExploreState(std::string_view name) {
  for (ExploreState s : {ExploreState::kStarting, ExploreState::kRunning, ExploreState::kStopped,
                         ExploreState::kLost, ExploreState::kFailed}) {
    if (ExploreStateName(s) == name) return s;
  }
  return InvalidArgument("unknown Explore session state '" + std::string(name) +
                         "' (expected STARTING, RUNNING, STOPPED, LOST or FAILED)");
}

bool IsLiveExploreState(ExploreState state) {
  return state == ExploreState::kStarting || state == ExploreState::kRunning;
}

}  // namespace cce::store
