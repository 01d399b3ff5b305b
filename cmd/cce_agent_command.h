// build/bin/cce-agent's verbs (docs/agent.md): `run`, the one job of a
// (confidential) VM. Kept out of the main so the main stays short.
#pragma once

#include "cli/command_table.h"

namespace cce::cmd {

const cli::CommandTable& AgentCommandTable();

}  // namespace cce::cmd
