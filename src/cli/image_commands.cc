// `cce image push`, `cce image list`.
#include "cli/command.h"

namespace cce::cli {

std::vector<Command> ImageCommands() {
  return {};
}

}  // namespace cce::cli
