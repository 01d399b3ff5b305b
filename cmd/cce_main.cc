// build/bin/cce: the one CLI for providers, consumers, reviewers, operators.
#include <exception>
#include <iostream>

#include "cli/cli.h"

int main(int argc, char** argv) {
  try {
    return cce::cli::RunCce(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::cerr << "cce: internal error: " << e.what() << "\n";
    return cce::cli::kExitFailure;
  }
}
