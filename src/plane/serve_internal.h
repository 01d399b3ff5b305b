// Private to src/plane: Serve with its gate and provisioner replaceable.
// Production calls Serve (plane.h); tests reach this only through the
// testing library (plane_testing.h).
#pragma once

#include "base/clock.h"
#include "base/status.h"
#include "plane/gate.h"
#include "plane/plane.h"
#include "plane/provisioner.h"

namespace cce::plane {

// nullptr: the configured gate (fail closed) / provisioner.
// fake_output_bytes: passed to the fake provisioner (MakeFakeProvisioner).
Status ServeWith(const ServeOptions& options, const Clock& clock, Gate* gate_override,
                 Provisioner* provisioner_override, uint64_t fake_output_bytes = 0);

}  // namespace cce::plane
