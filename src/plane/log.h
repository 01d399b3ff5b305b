// Structured logs on stderr: JSON lines (one object per event) or text.
// Never pass secrets (tokens, keys) to a log call.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cce::plane {

class Logger {
 public:
  enum class Level { kDebug, kInfo, kWarn, kError };
  Logger(bool json, Level min_level) : json_(json), min_level_(min_level) {}
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
  std::mutex mu_;  // serializes writes so lines never interleave
};

}  // namespace cce::plane
