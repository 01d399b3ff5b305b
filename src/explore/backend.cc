#include "explore/backend.h"

namespace cce::explore {

std::string_view SessionStateName(SessionState state) {
  switch (state) {
    case SessionState::kStarting:
      return "starting";
    case SessionState::kRunning:
      return "running";
    case SessionState::kGone:
      return "gone";
    case SessionState::kFailed:
      return "failed";
  }
  return "unknown";
}

bool ValidSessionId(std::string_view id) {
  if (id.size() != 19 || id.substr(0, 3) != "xs-") return false;
  for (char c : id.substr(3)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace cce::explore
