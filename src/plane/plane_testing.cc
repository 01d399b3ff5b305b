#include "plane/plane_testing.h"

#include "plane/serve_internal.h"

namespace cce::plane {

Status ServeForTest(const ServeOptions& options, const Clock& clock, const TestDoubles& doubles) {
  return ServeWith(options, clock, doubles.gate, doubles.provisioner);
}

}  // namespace cce::plane
