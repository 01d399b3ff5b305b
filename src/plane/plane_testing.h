// Test support for the plane (library cce_plane_testing, linked by tests and
// benchmarks only): serve with a test double for the Output Gate or the
// provisioner. Production binaries cannot reach this.
#pragma once

#include "base/clock.h"
#include "base/status.h"
#include "plane/gate.h"
#include "plane/plane.h"
#include "plane/provisioner.h"

namespace cce::plane {

struct TestDoubles {
  Gate* gate = nullptr;                // replaces the fail-closed gate
  Provisioner* provisioner = nullptr;  // replaces the configured provisioner
};

Status ServeForTest(const ServeOptions& options, const Clock& clock, const TestDoubles& doubles);

}  // namespace cce::plane
