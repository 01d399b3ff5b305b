// Private to src/cli: what every `cce` verb shares — the command table entry,
// flag parsing with --help, JSON output selection and error reporting.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cli/flags.h"

namespace cce::cli {

using Args = std::vector<std::string>;

struct Command {
  std::vector<std::string> path;  // {"dataset", "encrypt"} or {"rent"}
  std::string summary;
  std::function<int(const Args&)> run;
};

// Prints "cce: error: ..." and returns the exit code for s.
int Fail(const Status& s);
// Parses flags; on --help prints help and sets *exit to 0; on a usage error
// prints it and sets *exit. Returns nullopt whenever the verb should exit.
std::optional<ParsedFlags> ParseOrExit(const FlagParser& parser, const Args& args,
                                       size_t positional, int* exit);
// --output text|json.
StatusOr<bool> JsonOutput(const ParsedFlags& f);
extern const FlagSpec kOutputFlag;

// Verbs that talk to the Privacy Plane (plane_commands.cc).
std::vector<Command> PlaneCommands();
std::vector<Command> ImageCommands();  // image_commands.cc
std::vector<Command> JobCommands();    // job_commands.cc
std::vector<Command> AuditCommands();  // audit_commands.cc
std::vector<Command> AttestCommands();  // attest_commands.cc

}  // namespace cce::cli
