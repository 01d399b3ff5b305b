// The command machinery every cce4long binary shares (cce, cce-plane,
// cce-decryptfs): a table of verbs dispatched from argv ("dataset encrypt",
// "user add"), --help at every level, flag parsing that reports usage errors,
// and errors printed as "PROG: error: ..." with the exit code from
// base/exit_code.h. The flags themselves: cli/flags.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/exit_code.h"
#include "base/status.h"
#include "cli/flags.h"

namespace cce::cli {

using Args = std::vector<std::string>;

struct Command {
  std::vector<std::string> path;  // {"dataset", "encrypt"} or {"rent"}: one or two words
  std::string summary;            // one line in the command listing
  // Gets the arguments after the path; returns the process's exit code.
  std::function<int(const Args&)> run;
};

// A binary made of verbs.
struct CommandTable {
  std::string program;      // "cce-plane": the usage line's first word and the error prefix
  std::string description;  // the paragraph under the usage line
  std::vector<Command> commands;
  std::string footer;   // after the listing: where to read more, what the exit codes mean
  std::string version;  // `PROG --version` prints "PROG VERSION"; empty: no --version
};

// Runs the command that args (argv[1..]) names and returns its exit code.
// No arguments: the listing on stdout, exit 2; a group's name alone
// ("cce dataset"): that group's listing on stdout, exit 2. "--help", "-h" or "help" (also
// after a group's name: "cce dataset --help"): the listing, exit 0. An unknown
// command: "PROG: error: unknown command '...'" and the listing on stderr,
// exit 2. A command's own --help is its FlagParser's (see ParseArgs).
int RunCommand(const CommandTable& table, const Args& args);

// "Usage: PROG [GROUP] COMMAND [options]", the description, the commands
// (those of `group` only, unless it is empty) with their summaries, the footer.
std::string CommandListing(const CommandTable& table, const std::string& group = "");

// Writes "PROG: error: MESSAGE" to stderr; returns ExitCodeFor(status).
// When JSON output was asked for (SetJsonErrors), also writes the error as
// one line on stdout, so a script reading JSON sees it there:
//   {"error":{"code":"not_found","message":"MESSAGE","exit":2}}
// (code: the Status code's name, lower case with '_'; exit: the exit code).
int ReportError(std::string_view program, const Status& status);

// Whether ReportError also prints errors as JSON on stdout. ParseArgs turns
// it on for a verb run with `--output json` (also when its flags do not
// parse); a verb that decides its own exit code prints through ReportError
// too, so its errors follow.
void SetJsonErrors(bool on);
bool JsonErrors();
// The JSON line ReportError prints (without the newline).
std::string ErrorJson(const Status& status, int exit_code);

// For ParseArgs: the verb checks its positional arguments itself.
inline constexpr size_t kAnyArgCount = SIZE_MAX;

// Parses a verb's flags. Returns nullopt whenever the verb should return
// *exit at once: after printing --help (exit 0), or after reporting a bad
// flag or a number of positional arguments other than `positional` (exit 2).
// A verb whose parser declares `--output FORMAT` and is given `--output json`
// (or `--output=json`) turns on SetJsonErrors first.
std::optional<ParsedFlags> ParseArgs(std::string_view program, const FlagParser& parser,
                                     const Args& args, size_t positional, int* exit);

}  // namespace cce::cli
