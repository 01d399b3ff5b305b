#include "cli/command_table.h"

#include <iostream>
#include <nlohmann/json.hpp>

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

namespace {
bool g_json_errors = false;

// `--output json` among a verb's arguments (before "--"), for a parser that
// declares `--output FORMAT` (not, e.g., `cce sandbox run --output DIR`).
bool AsksForJson(const FlagParser& parser, const Args& args) {
  if (!parser.Declares("output", "FORMAT")) return false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") return false;
    if (args[i] == "--output=json") return true;
    if (args[i] == "--output" && i + 1 < args.size() && args[i + 1] == "json") return true;
  }
  return false;
}
}  // namespace

void SetJsonErrors(bool on) {
  g_json_errors = on;
}

bool JsonErrors() {
  return g_json_errors;
}

std::string ErrorJson(const Status& status, int exit_code) {
  std::string code(StatusCodeName(status.code()));
  if (code == "i/o error") code = "io";
  for (char& c : code) {
    if (c == ' ') c = '_';
  }
  return nlohmann::json{
      {"error", {{"code", code}, {"message", status.message()}, {"exit", exit_code}}}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int ReportError(std::string_view program, const Status& status) {
  const int exit_code = ExitCodeFor(status);
  std::cerr << program << ": error: " << status.message() << "\n";
  if (g_json_errors) std::cout << ErrorJson(status, exit_code) << "\n" << std::flush;
  return exit_code;
}

std::optional<ParsedFlags> ParseArgs(std::string_view program, const FlagParser& parser,
                                     const Args& args, size_t positional, int* exit) {
  if (AsksForJson(parser, args)) SetJsonErrors(true);
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
    // Name the first surplus argument: `cce job submit job.yaml` shows what was
    // taken for an argument, and the usage line shows what was expected.
    const auto& got = parsed->positional();
    std::string extra;
    if (got.size() > positional) {
      const std::string word = got[positional].substr(0, 80);
      extra = ": unexpected '" + word + "'";
      // `cce job submit job.yaml`: the file belongs to -f.
      const FlagSpec* file = parser.Declared("file");
      if (file != nullptr && !parsed->Has("file")) {
        extra += "; did you mean " +
                 (file->short_name != 0 ? "-" + std::string(1, file->short_name) : "--file") +
                 " " + word + "?";
      }
    }
    *exit = ReportError(
        program, InvalidArgument("expected " + std::to_string(positional) + " argument(s), got " +
                                 std::to_string(got.size()) + extra +
                                 " (usage: " + parser.usage() + ")"));
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
  // A bare group ("cce dataset"): its commands, as a bare PROG lists all.
  if (group_known && args.size() == 1) {
    std::cout << CommandListing(table, args[0]);
    return kExitUsage;
  }
  std::string named = group_known && args.size() >= 2 ? args[0] + " " + args[1] : args[0];
  (void)ReportError(table.program, InvalidArgument("unknown command '" + named + "'"));
  std::cerr << "\n" << CommandListing(table, group_known ? args[0] : "");
  return kExitUsage;
}

}  // namespace cce::cli
