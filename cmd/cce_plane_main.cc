// build/bin/cce-plane: the Privacy Plane server. Verbs (init, serve, user add,
// collateral import|fetch): cce_plane_commands.h. Exit codes: base/exit_code.h.
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "base/exit_code.h"
#include "cce_plane_commands.h"

int main(int argc, char** argv) {
  try {
    return cce::cli::RunCommand(cce::cmd::PlaneCommandTable(),
                                std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::cerr << "cce-plane: internal error: " << e.what() << "\n";
    return cce::kExitFailure;
  }
}
