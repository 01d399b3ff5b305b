#include "plane/log.h"

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

namespace cce::plane {

Logger::Level Logger::ParseLevel(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  return Level::kInfo;
}

void Logger::Log(Level level, std::string_view event, const Fields& fields) {
  if (level < min_level_) return;
  static const char* const kNames[] = {"debug", "info", "warn", "error"};
  const char* lvl = kNames[static_cast<int>(level)];
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  std::tm tm{};
  gmtime_r(&ts.tv_sec, &tm);
  char when[64];
  (void)std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      static_cast<int>(ts.tv_nsec / 1000000));
  std::string line;
  if (json_) {
    nlohmann::json j = {{"ts", when}, {"level", lvl}, {"event", event}};
    for (const auto& [k, v] : fields) j[k] = v;
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  } else {
    line = when;
    line += " ";
    line += lvl;
    line += " ";
    line += event;
    for (const auto& [k, v] : fields) {
      line += " ";
      line += k;
      line += "=";
      line += v;
    }
    line += "\n";
  }
  std::lock_guard<std::mutex> l(mu_);
  (void)std::fwrite(line.data(), 1, line.size(), stderr);
  (void)std::fflush(stderr);
}

}  // namespace cce::plane
