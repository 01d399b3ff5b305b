// `cce job submit|status|list|cancel|download`.
#include "cli/command.h"

namespace cce::cli {

std::vector<Command> JobCommands() {
  return {};
}

}  // namespace cce::cli
