// build/bin/cce-agent: the in-VM agent (cce_agent_command.h). Exit codes:
// base/exit_code.h.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "base/exit_code.h"
#include "cce_agent_command.h"

int main(int argc, char** argv) {
  try {
    return cce::cli::RunCommand(cce::cmd::AgentCommandTable(),
                                std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    (void)std::fprintf(stderr, "cce-agent: internal error: %s\n", e.what());
  } catch (...) {
    (void)std::fprintf(stderr, "cce-agent: internal error\n");
  }
  return cce::kExitFailure;
}
