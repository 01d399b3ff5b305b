// Structured logs on stderr: JSON lines (one object per event) or text
// ("<time> <level> <event> key=value ..."). Text values that are not plain
// printable ASCII are quoted and escaped, so a field taken from a request (a
// decoded path with %0a or quotes) cannot forge a line or a field.
// Never pass secrets (tokens, keys) to a log call.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cce::plane {

// A text-log value: as is when it is non-empty printable ASCII without space,
// '"', '\\' or '='; otherwise in double quotes with \" \\ \n \r \t, other
// control bytes and bytes that are not valid UTF-8 as \xNN, and C1 controls,
// line separators and bidi overrides as \u{XXXX}.
std::string EscapeLogValue(std::string_view value);

class Logger {
 public:
  enum class Level { kDebug, kInfo, kWarn, kError };
  // Lines go to `out` (stderr unless a test passes its own stream).
  Logger(bool json, Level min_level, std::FILE* out = stderr)
      : json_(json), min_level_(min_level), out_(out) {}
  static Level ParseLevel(std::string_view name);

  using Fields = std::vector<std::pair<std::string, std::string>>;
  void Log(Level level, std::string_view event, const Fields& fields = {});
  void Info(std::string_view event, const Fields& fields = {}) { Log(Level::kInfo, event, fields); }
  void Warn(std::string_view event, const Fields& fields = {}) { Log(Level::kWarn, event, fields); }
  void Error(std::string_view event, const Fields& fields = {}) {
    Log(Level::kError, event, fields);
  }

 private:
  bool json_;
  Level min_level_;
  std::FILE* out_;
  std::mutex mu_;  // serializes writes so lines never interleave
};

}  // namespace cce::plane
