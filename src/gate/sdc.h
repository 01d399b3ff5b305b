// Statistical disclosure control on the tables of an output (docs/gate.md):
// small cells, dominance (NK rule and p% rule), microdata (rows unique on
// quasi-identifiers) and differencing between tables in the output and
// against tables the same consumer was released earlier on the same data.
#pragma once

#include <vector>

#include "gate/content.h"
#include "gate/policy.h"

namespace cce::gate {

// Detectors "sdc.small_cell", "sdc.dominance", "sdc.p_percent",
// "sdc.microdata", "sdc.differencing".
void DetectDisclosure(const std::vector<Table>& tables, const std::vector<Table>& released,
                      const Policy& policy, std::vector<Finding>* findings);

}  // namespace cce::gate
