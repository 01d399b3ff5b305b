#include "cli/flags.h"

#include <charconv>

namespace cce::cli {

namespace {

// How errors name a flag: as the user can spell it.
std::string Spelling(const FlagSpec& f) {
  return f.short_only ? "-" + std::string(1, f.short_name) : "--" + f.name;
}

}  // namespace

std::optional<std::string> ParsedFlags::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

const std::vector<std::string>& ParsedFlags::All(const std::string& name) const {
  static const std::vector<std::string> kEmpty;
  auto it = values_.find(name);
  return it == values_.end() ? kEmpty : it->second;
}

StatusOr<std::optional<uint64_t>> ParsedFlags::GetUint(const std::string& name, uint64_t min,
                                                       uint64_t max) const {
  auto v = Get(name);
  if (!v) return std::optional<uint64_t>();
  uint64_t out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size() || out < min || out > max) {
    const std::string range = std::to_string(min) + ".." + std::to_string(max);
    const std::string shown = "--" + name + ": '" + v->substr(0, 40) + "': ";
    if (v->starts_with("-")) {
      return InvalidArgument(shown + "must not be negative (expected an integer in " + range + ")");
    }
    if (ec == std::errc() && p == v->data() + v->size() && out == 0) {
      return InvalidArgument(shown + "must be at least " + std::to_string(min) +
                             " (expected an integer in " + range + ")");
    }
    return InvalidArgument(shown + "expected an integer in " + range);
  }
  return std::optional<uint64_t>(out);
}

FlagParser::FlagParser(std::string usage, std::string summary, std::vector<FlagSpec> flags)
    : usage_(std::move(usage)), summary_(std::move(summary)), flags_(std::move(flags)) {
  flags_.push_back({"help", "", "show this help and exit"});
}

const FlagSpec* FlagParser::FindLong(const std::string& name) const {
  for (const FlagSpec& f : flags_) {
    if (!f.short_only && f.name == name) return &f;
  }
  return nullptr;
}

const FlagSpec* FlagParser::FindShort(char short_name) const {
  for (const FlagSpec& f : flags_) {
    if (f.short_name != 0 && f.short_name == short_name) return &f;
  }
  return nullptr;
}

StatusOr<ParsedFlags> FlagParser::Parse(const std::vector<std::string>& args) const {
  ParsedFlags out;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (flags_done || a == "-" || a.empty() || a[0] != '-') {
      out.positional_.push_back(a);
      continue;
    }
    if (a == "--") {
      flags_done = true;
      continue;
    }
    if (a == "-h") {
      out.values_["help"].push_back("");
      continue;
    }
    const FlagSpec* spec = nullptr;
    std::optional<std::string> value;
    if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2);
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      spec = FindLong(name);
      if (spec == nullptr) return InvalidArgument("unknown option '--" + name + "' (try --help)");
    } else {  // -X: a declared short name
      if (a.size() == 2) spec = FindShort(a[1]);
      if (spec == nullptr) return InvalidArgument("unknown option '" + a + "' (try --help)");
    }
    const std::string flag = Spelling(*spec);
    if (spec->value_name.empty()) {
      if (value) return InvalidArgument(flag + " takes no value");
      value = "";
    } else if (!value) {
      if (i + 1 >= args.size()) {
        return InvalidArgument(flag + ": missing value " + spec->value_name);
      }
      value = args[++i];
    }
    auto& slot = out.values_[spec->name];
    if (!slot.empty() && !spec->repeatable) return InvalidArgument(flag + " given more than once");
    slot.push_back(*value);
  }
  return out;
}

std::string FlagParser::Help() const {
  std::string h = "Usage: " + usage_ + "\n\n" + summary_ + "\n\nOptions:\n";
  for (const FlagSpec& f : flags_) {
    std::string left = "  ";
    if (f.short_name != 0 && !f.short_only) left += "-" + std::string(1, f.short_name) + ", ";
    left += Spelling(f);
    if (!f.value_name.empty()) left += " " + f.value_name;
    if (left.size() < 28)
      left.resize(28, ' ');
    else
      left += "\n" + std::string(28, ' ');
    h += left + f.help + "\n";
  }
  return h;
}

bool FlagParser::Declares(const std::string& name, const std::string& value_name) const {
  const FlagSpec* f = FindLong(name);
  return f != nullptr && f->value_name == value_name;
}

}  // namespace cce::cli
