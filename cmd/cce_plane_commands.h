// The verbs of build/bin/cce-plane (init, serve, user add, collateral
// import|fetch): flags in, one call into src/plane, results out. Kept out of
// the main so it stays short, and out of src/cli so `cce` never links the
// plane.
#pragma once

#include "cli/command_table.h"

namespace cce::cmd {

// The cce-plane command table, for cli::RunCommand.
const cli::CommandTable& PlaneCommandTable();

}  // namespace cce::cmd
