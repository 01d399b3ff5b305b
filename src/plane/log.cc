#include "plane/log.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

namespace cce::plane {

namespace {

// Length of the valid UTF-8 sequence at s[i] (2..4), or 0.
size_t Utf8SequenceLength(std::string_view s, size_t i, uint32_t* cp) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t extra = 0;
  uint32_t v = 0;
  if ((c & 0xe0) == 0xc0) {
    extra = 1;
    v = c & 0x1fu;
  } else if ((c & 0xf0) == 0xe0) {
    extra = 2;
    v = c & 0x0fu;
  } else if ((c & 0xf8) == 0xf0) {
    extra = 3;
    v = c & 0x07u;
  } else {
    return 0;
  }
  if (i + extra >= s.size()) return 0;
  for (size_t k = 1; k <= extra; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    v = (v << 6) | (cc & 0x3fu);
  }
  static constexpr uint32_t kMinForLength[] = {0, 0x80, 0x800, 0x10000};
  if (v < kMinForLength[extra] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return extra + 1;
}

bool IsInvisibleControl(uint32_t cp) {
  return cp < 0xa0 || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f;
}

}  // namespace

std::string EscapeLogValue(std::string_view v) {
  const bool plain = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=';
  });
  if (plain) return std::string(v);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < v.size();) {
    const auto u = static_cast<unsigned char>(v[i]);
    switch (v[i]) {
      case '"':
        out += "\\\"";
        ++i;
        continue;
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      default: break;
    }
    if (u >= 0x20 && u < 0x7f) {
      out += v[i++];
      continue;
    }
    uint32_t cp = 0;
    const size_t n = u >= 0x80 ? Utf8SequenceLength(v, i, &cp) : 0;
    if (n == 0) {  // a control byte or a byte that is not valid UTF-8
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
      ++i;
    } else if (IsInvisibleControl(cp)) {
      char buf[16];
      (void)std::snprintf(buf, sizeof buf, "\\u{%04x}", static_cast<unsigned>(cp));
      out += buf;
      i += n;
    } else {
      out.append(v.substr(i, n));
      i += n;
    }
  }
  out += '"';
  return out;
}

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
    line += EscapeLogValue(event);
    for (const auto& [k, v] : fields) {
      line += " ";
      line += EscapeLogValue(k);
      line += "=";
      line += EscapeLogValue(v);
    }
    line += "\n";
  }
  std::lock_guard<std::mutex> l(mu_);
  (void)std::fwrite(line.data(), 1, line.size(), out_);
  (void)std::fflush(out_);
}

}  // namespace cce::plane
