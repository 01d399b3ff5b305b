// The job's image, fetched from the plane by the digest it pinned at
// submission: the manifest and every blob it names are written into an OCI
// image layout directory (each blob hashed as it arrives), which the
// executor then unpacks, checking every digest again against the manifest.
#pragma once

#include <string>

#include "agent/plane_agent_client.h"
#include "base/status.h"

namespace cce::agent {

// Writes `layout_dir` (created, must not exist) as an OCI image layout
// holding the one image whose manifest digest is `expected_digest`.
// kDataLoss when the plane's manifest has another digest or a blob does
// not hash to its digest; kInvalidArgument for a manifest we cannot read
// (the message names the field).
Status FetchImageLayout(PlaneAgentClient& plane, const std::string& expected_digest,
                        const std::string& layout_dir);

}  // namespace cce::agent
