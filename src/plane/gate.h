// The Output Gate's interface: scores an output bundle's disclosure risk.
// The real detectors come with the Output Gate issue; until then the plane
// runs FailClosedGate, which holds everything for review.
#pragma once

#include <string>

#include "base/status.h"
#include "store/store.h"

namespace cce::plane {

struct GateDecision {
  store::GateVerdict verdict = store::GateVerdict::kHold;
  double score = 1.0;
  std::string findings_json = "[]";
};

class Gate {
 public:
  virtual ~Gate() = default;
  virtual StatusOr<GateDecision> Score(const store::Output& output) = 0;
};

// Holds every output (fail closed): no gate configured means no release.
class FailClosedGate : public Gate {
 public:
  StatusOr<GateDecision> Score(const store::Output& output) override;
};

}  // namespace cce::plane
