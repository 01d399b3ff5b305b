// Test support for the plane (library cce_plane_testing, linked by tests and
// benchmarks only): serve with a test double for the Output Gate or the
// provisioner. Production binaries cannot reach this.
#pragma once

#include <cstddef>
#include <string>

#include "base/clock.h"
#include "base/status.h"
#include "plane/gate.h"
#include "plane/plane.h"
#include "plane/provisioner.h"

namespace cce::plane {

struct TestDoubles {
  Gate* gate = nullptr;                // replaces the fail-closed gate
  Provisioner* provisioner = nullptr;  // replaces the configured provisioner
  // > 0: the fake provisioner (provisioner.backend: fake) submits outputs of
  // this many bytes, generated and sealed segment by segment.
  uint64_t fake_output_bytes = 0;
};

Status ServeForTest(const ServeOptions& options, const Clock& clock, const TestDoubles& doubles);

// Stores `manifest` in the image store of the plane at data_dir (safe while
// the server runs) and tags it as the public image library/test:TAG, so any
// consumer may name it in a job by its digest, which is returned. The
// manifest is not validated: for tests of what happens after submission.
StatusOr<std::string> AddPublicTestImage(const std::string& data_dir, const std::string& tag,
                                         const std::string& manifest, const Clock& clock);

// An OCI image whose layer is opaque bytes (the plane checks digests, sizes
// and the config, not the tar inside an uncompressed layer). The layer is
// `layer_bytes` of a fixed pattern starting with `seed`, so different seeds
// make different images.
struct TestImage {
  std::string layer;
  std::string config;
  std::string manifest;
  std::string layer_digest() const;
  std::string config_digest() const;
  std::string manifest_digest() const;
};
TestImage MakeTestImage(const std::string& seed, size_t layer_bytes = 1000);

}  // namespace cce::plane
