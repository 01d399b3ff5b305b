// Private to src/cli: what every `cce` verb shares — the command table entry
// (cli/command_table.h), flag parsing with --help, JSON output selection and
// error reporting, all as `cce`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/command_table.h"
#include "cli/flags.h"

namespace cce::cli {

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
std::vector<Command> ImageCommands();    // image_commands.cc
std::vector<Command> JobCommands();      // job_commands.cc
std::vector<Command> AuditCommands();    // audit_commands.cc
std::vector<Command> ReviewCommands();   // review_commands.cc
std::vector<Command> AttestCommands();   // attest_commands.cc
std::vector<Command> SandboxCommands();  // sandbox_commands.cc: local, no plane
std::vector<Command> GateCommands();     // gate_commands.cc: local, no plane
std::vector<Command> DatasetSampleCommands();  // dataset_sample_commands.cc: local, no plane
std::vector<Command> ExploreCommands();  // explore_commands.cc: Explore sessions

}  // namespace cce::cli
