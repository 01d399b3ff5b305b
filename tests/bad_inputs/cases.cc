#include "bad_inputs/cases.h"

#include <algorithm>
#include <charconv>
#include <set>

namespace cce::bad_inputs {
namespace {

bool IsVarStart(char c) {
  return c >= 'A' && c <= 'Z';
}
bool IsVarChar(char c) {
  return IsVarStart(c) || c == '_' || (c >= '0' && c <= '9');
}

// At *i a '$': appends the expansion (or a lone '$') and advances *i past it.
Status ExpandAt(std::string_view text, size_t* i, const std::map<std::string, std::string>& vars,
                std::string* out) {
  size_t j = *i + 1;
  if (j >= text.size() || !IsVarStart(text[j])) {
    *out += '$';
    ++*i;
    return Status::Ok();
  }
  while (j < text.size() && IsVarChar(text[j])) ++j;
  const std::string name(text.substr(*i + 1, j - *i - 1));
  auto it = vars.find(name);
  if (it == vars.end()) {
    std::string known;
    for (const auto& [k, v] : vars) known += (known.empty() ? "$" : ", $") + k;
    return InvalidArgument("unknown variable $" + name + " (known: " + known + ")");
  }
  *out += it->second;
  *i = j;
  return Status::Ok();
}

StatusOr<int> ParseInt(const std::string& key, const std::string& v, int min, int max) {
  int out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || out < min || out > max) {
    return InvalidArgument(key + ": '" + v + "': expected an integer in " + std::to_string(min) +
                           ".." + std::to_string(max));
  }
  return out;
}

const std::set<std::string> kKeys = {"case",   "run",  "file",   "stdin", "exit",    "http",
                                     "header", "body", "status", "as",    "message", "absent"};
const std::set<std::string> kRepeatable = {"file", "header", "message", "absent"};
const std::set<std::string> kRunOnly = {"run", "file", "stdin", "exit"};
const std::set<std::string> kHttpOnly = {"http", "header", "body", "status"};
const std::set<std::string> kPrograms = {"cce", "cce-plane", "cce-agent", "cce-decryptfs"};
const std::set<std::string> kRoles = {"operator", "provider", "consumer", "reviewer", "none"};

std::map<std::string, std::string> Placeholders() {
  std::map<std::string, std::string> m;
  for (const std::string& v : kVariables) m[v] = "x";
  return m;
}

// Checks a finished case (its keys were checked as they came).
Status Finish(const Case& c, const std::set<std::string>& seen) {
  const bool run = seen.count("run") > 0;
  const bool http = seen.count("http") > 0;
  if (run == http) return InvalidArgument("case '" + c.name + "': needs either run: or http:");
  for (const std::string& k : seen) {
    if (run && kHttpOnly.count(k))
      return InvalidArgument("case '" + c.name + "': " + k + ": is for http: cases");
    if (http && kRunOnly.count(k))
      return InvalidArgument("case '" + c.name + "': " + k + ": is for run: cases");
  }
  if (run && !c.exit) return InvalidArgument("case '" + c.name + "': exit: is required");
  if (http && !c.status) return InvalidArgument("case '" + c.name + "': status: is required");
  if (c.messages.empty()) {
    return InvalidArgument("case '" + c.name + "': at least one message: is required");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::string> Expand(std::string_view text,
                             const std::map<std::string, std::string>& vars) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '$') {
      RETURN_IF_ERROR(ExpandAt(text, &i, vars, &out));
    } else {
      out += text[i++];
    }
  }
  return out;
}

StatusOr<std::vector<std::string>> SplitCommand(std::string_view line,
                                                const std::map<std::string, std::string>& vars) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < line.size();) {
    const char c = line[i];
    if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      ++i;
      continue;
    }
    in_word = true;
    if (c == '\'') {
      const size_t end = line.find('\'', i + 1);
      if (end == std::string_view::npos) {
        return InvalidArgument("unclosed ' at column " + std::to_string(i + 1));
      }
      word += line.substr(i + 1, end - i - 1);
      i = end + 1;
    } else if (c == '"') {
      size_t j = i + 1;
      for (;;) {
        if (j >= line.size())
          return InvalidArgument("unclosed \" at column " + std::to_string(i + 1));
        if (line[j] == '"') break;
        if (line[j] == '\\' && j + 1 < line.size() &&
            (line[j + 1] == '"' || line[j + 1] == '\\' || line[j + 1] == '$')) {
          word += line[j + 1];
          j += 2;
        } else if (line[j] == '$') {
          RETURN_IF_ERROR(ExpandAt(line, &j, vars, &word));
        } else {
          word += line[j++];
        }
      }
      i = j + 1;
    } else if (c == '\\') {
      if (i + 1 >= line.size()) return InvalidArgument("a trailing backslash");
      word += line[i + 1];
      i += 2;
    } else if (c == '$') {
      RETURN_IF_ERROR(ExpandAt(line, &i, vars, &word));
    } else {
      word += c;
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(word));
  if (words.empty()) return InvalidArgument("an empty command");
  return words;
}

StatusOr<std::vector<Case>> ParseCases(std::string_view text, const std::string& file) {
  std::vector<Case> out;
  std::set<std::string> names;
  std::optional<Case> cur;
  std::set<std::string> seen;
  int cur_file = -1;  // index in cur->files that "| " lines extend, or -1
  const auto placeholders = Placeholders();
  auto error = [&](int line, const std::string& what) {
    return InvalidArgument(file + ":" + std::to_string(line) + ": " + what);
  };
  auto close = [&]() -> Status {
    if (!cur) return Status::Ok();
    if (Status s = Finish(*cur, seen); !s.ok()) return error(cur->line, s.message());
    out.push_back(std::move(*cur));
    cur.reset();
    seen.clear();
    cur_file = -1;
    return Status::Ok();
  };
  int n = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(pos, end - pos));
    const bool last = end == text.size();
    pos = end + 1;
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) {
      RETURN_IF_ERROR(close());
      if (last) break;
      continue;
    }
    if (line[0] == '|') {
      if (line != "|" && line.rfind("| ", 0) != 0) {
        return error(n, "a file line starts with \"| \" (or is \"|\" alone)");
      }
      if (!cur || cur_file < 0) return error(n, "a \"| \" line outside a file: block");
      cur->files[static_cast<size_t>(cur_file)].second +=
          (line == "|" ? "" : line.substr(2)) + "\n";
      if (last) break;
      continue;
    }
    cur_file = -1;
    if (line.find_first_not_of(" \t") != std::string::npos &&
        line[line.find_first_not_of(" \t")] == '#') {
      if (last) break;
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) {
      return error(n, "expected \"key: value\", got '" + line.substr(0, 60) + "'");
    }
    const std::string key = line.substr(0, colon);
    std::string value = line.substr(colon + 1);
    value.erase(0, std::min(value.find_first_not_of(" \t"), value.size()));
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    if (!kKeys.count(key)) {
      std::string known;
      for (const std::string& k : kKeys) known += (known.empty() ? "" : ", ") + k;
      return error(n, "unknown key '" + key + "' (expected one of: " + known + ")");
    }
    if (key == "case") {
      if (cur) return error(n, "case: inside case '" + cur->name + "' (a blank line ends a case)");
      if (value.empty()) return error(n, "case: needs a name");
      if (!names.insert(value).second)
        return error(n, "case '" + value + "' appears twice in " + file);
      cur = Case{};
      cur->file = file;
      cur->line = n;
      cur->name = value;
      seen.insert("case");
      if (last) break;
      continue;
    }
    if (!cur) return error(n, key + ": before any case: line");
    if (seen.count(key) && !kRepeatable.count(key)) {
      return error(n, key + ": given twice in case '" + cur->name + "'");
    }
    seen.insert(key);
    // Every expanded value must name known variables only.
    if (key != "file" && key != "exit" && key != "status" && key != "as") {
      auto checked = key == "run" ? SplitCommand(value, placeholders).status()
                                  : Expand(value, placeholders).status();
      if (!checked.ok()) return error(n, key + ": " + checked.message());
    }
    if (key == "run") {
      auto words = SplitCommand(value, placeholders);
      if (!kPrograms.count((*words)[0])) {
        return error(n, "run: '" + (*words)[0] +
                            "': expected cce, cce-plane, cce-agent or cce-decryptfs first");
      }
      cur->run = value;
    } else if (key == "file") {
      if (value.empty() || value[0] == '/' || value.find("..") != std::string::npos) {
        return error(n, "file: '" + value + "': expected a relative name inside $WORK");
      }
      cur->files.push_back({value, ""});
      cur_file = static_cast<int>(cur->files.size()) - 1;
    } else if (key == "stdin") {
      cur->stdin_text = value + "\n";
    } else if (key == "exit") {
      auto v = ParseInt("exit", value, 0, 255);
      if (!v.ok()) return error(n, v.status().message());
      cur->exit = *v;
    } else if (key == "status") {
      auto v = ParseInt("status", value, 100, 599);
      if (!v.ok()) return error(n, v.status().message());
      cur->status = *v;
    } else if (key == "http") {
      const size_t sp = value.find(' ');
      const std::string method = value.substr(0, sp);
      const std::string path = sp == std::string::npos ? "" : value.substr(sp + 1);
      if (method.empty() ||
          !std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; }) ||
          path.empty() || path[0] != '/' || path.find(' ') != std::string::npos) {
        return error(n, "http: '" + value + "': expected METHOD /path (e.g. GET /api/v1/jobs)");
      }
      cur->method = method;
      cur->path = path;
    } else if (key == "header") {
      const size_t c = value.find(':');
      if (c == std::string::npos || c == 0) {
        return error(n, "header: '" + value + "': expected Name: value");
      }
      std::string v = value.substr(c + 1);
      v.erase(0, std::min(v.find_first_not_of(' '), v.size()));
      cur->headers.push_back({value.substr(0, c), v});
    } else if (key == "body") {
      cur->body = value;
    } else if (key == "as") {
      if (!kRoles.count(value)) {
        return error(
            n, "as: '" + value + "': expected operator, provider, consumer, reviewer or none");
      }
      cur->as = value;
    } else if (key == "message") {
      if (value.empty()) return error(n, "message: needs text");
      cur->messages.push_back(value);
    } else if (key == "absent") {
      if (value.empty()) return error(n, "absent: needs text");
      cur->absent.push_back(value);
    }
    if (last) break;
  }
  RETURN_IF_ERROR(close());
  return out;
}

}  // namespace cce::bad_inputs
