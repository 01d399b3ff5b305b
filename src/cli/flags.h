// A small, strict command-line parser shared by every cce4long binary:
// declared flags only (unknown flags are usage errors), --flag VALUE or
// --flag=VALUE, -x short aliases, "--" ends flags, and generated --help text.
// Verbs and their dispatch: cli/command_table.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace cce::cli {

struct FlagSpec {
  std::string name;        // without dashes, e.g. "key"
  std::string value_name;  // empty for a boolean flag
  std::string help;
  bool repeatable = false;
  char short_name = 0;  // e.g. 'f' for -f; 0 for none
  // Spelled only -X (short_name), never --name: mount(8)'s "-o OPTIONS".
  // `name` is still the key for ParsedFlags.
  bool short_only = false;
};

class ParsedFlags {
 public:
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> Get(const std::string& name) const;
  const std::vector<std::string>& All(const std::string& name) const;
  // Parses an unsigned integer flag; errors name the flag.
  StatusOr<std::optional<uint64_t>> GetUint(const std::string& name, uint64_t min,
                                            uint64_t max) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  friend class FlagParser;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

class FlagParser {
 public:
  // usage: e.g. "cce dataset encrypt --key FILE [options] SRC_DIR DST_DIR".
  FlagParser(std::string usage, std::string summary, std::vector<FlagSpec> flags);
  // Always knows --help (-h). Errors are kInvalidArgument naming the flag.
  StatusOr<ParsedFlags> Parse(const std::vector<std::string>& args) const;
  std::string Help() const;
  // The usage line given to the constructor ("cce job status ID [options]").
  const std::string& usage() const { return usage_; }
  // The declared flag spelled --name, or nullptr.
  const FlagSpec* Declared(const std::string& name) const { return FindLong(name); }
  // Whether the parser has flag --NAME taking a value called value_name
  // ("output", "FORMAT").
  bool Declares(const std::string& name, const std::string& value_name) const;

 private:
  const FlagSpec* FindLong(const std::string& name) const;
  const FlagSpec* FindShort(char short_name) const;
  std::string usage_;
  std::string summary_;
  std::vector<FlagSpec> flags_;
};

}  // namespace cce::cli
