#include "cli/command_table.h"

#include <iostream>

namespace cce::cli {
namespace {

bool IsHelp(const std::string& arg) {
  return arg == "--help" || arg == "-h" || arg == "help";
}

std::string CommandName(const Command& c) {
  std::string name;
  for (const std::string& word : c.path) name += (name.empty() ? "" : " ") + word;
  return name;
}

}  // namespace

std::string CommandListing(const CommandTable& table, const std::string& group) {
  std::string h = "Usage: " + table.program + " " +
                  (group.empty() ? std::string("COMMAND") : group + " COMMAND") + " [options]\n\n" +
                  table.description + "\n\nCommands:\n";
  for (const Command& c : table.commands) {
    if (!group.empty() && c.path[0] != group) continue;
    std::string name = CommandName(c);
    h += "  " + name + std::string(name.size() < 22 ? 22 - name.size() : 1, ' ') + c.summary + "\n";
  }
  if (!table.footer.empty()) h += "\n" + table.footer;
  return h;
}

int ReportError(std::string_view program, const Status& status) {
  std::cerr << program << ": error: " << status.message() << "\n";
  return ExitCodeFor(status);
}

std::optional<ParsedFlags> ParseArgs(std::string_view program, const FlagParser& parser,
                                     const Args& args, size_t positional, int* exit) {
  auto parsed = parser.Parse(args);
  if (!parsed.ok()) {
    *exit = ReportError(program, parsed.status());
    return std::nullopt;
  }
  if (parsed->Has("help")) {
    std::cout << parser.Help();
    *exit = kExitOk;
    return std::nullopt;
  }
  if (positional != kAnyArgCount && parsed->positional().size() != positional) {
    *exit = ReportError(
        program, InvalidArgument("expected " + std::to_string(positional) + " argument(s), got " +
                                 std::to_string(parsed->positional().size()) + " (try --help)"));
    return std::nullopt;
  }
  return std::move(*parsed);
}

int RunCommand(const CommandTable& table, const Args& args) {
  if (args.empty() || IsHelp(args[0])) {
    std::cout << CommandListing(table);
    return args.empty() ? kExitUsage : kExitOk;
  }
  if (args[0] == "--version" && !table.version.empty()) {
    std::cout << table.program << " " << table.version << "\n";
    return kExitOk;
  }
  bool group_known = false;
  for (const Command& c : table.commands) {
    if (c.path[0] != args[0]) continue;
    if (c.path.size() == 1) return c.run(Args(args.begin() + 1, args.end()));
    group_known = true;
    if (args.size() >= 2 && c.path[1] == args[1]) return c.run(Args(args.begin() + 2, args.end()));
  }
  if (group_known && args.size() >= 2 && IsHelp(args[1])) {
    std::cout << CommandListing(table, args[0]);
    return kExitOk;
  }
  std::string named = group_known && args.size() >= 2 ? args[0] + " " + args[1] : args[0];
  (void)ReportError(table.program, InvalidArgument("unknown command '" + named + "'"));
  std::cerr << "\n" << CommandListing(table, group_known ? args[0] : "");
  return kExitUsage;
}

}  // namespace cce::cli
