// Private to src/cli: a dataset's published sample (docs/explore/samples.md),
// shared by `cce dataset publish-sample | fetch-sample | sample-info` and
// `cce dataset register --sample DIR`.
#pragma once

#include <string>
#include <vector>

#include "api/wire.h"
#include "cli/command.h"
#include "cli/plane_client.h"

namespace cce::cli {

std::vector<Command> SampleCommands();

// Streams a tar of `dir` (regular files and directories only, checked
// before anything is sent) as dataset `dataset`'s next sample, with a
// progress bar on a terminal. Returns the plane's listing.
StatusOr<api::SampleInfo> PublishSampleDir(PlaneClient& c, const std::string& dataset,
                                           const std::string& dir);
// Downloads every listed file of the latest sample into `dir`, each checked
// against the listing's size and SHA-256 before it is renamed into place;
// an existing file is not overwritten (kFailedPrecondition).
StatusOr<api::SampleInfo> FetchSampleTo(PlaneClient& c, const std::string& dataset,
                                        const std::string& dir);

}  // namespace cce::cli
