#include "cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>

namespace cce::cli {
namespace {

// The one bar drawn now (commands draw one at a time): whether its line is
// open, for the signal handler. Lock-free atomics are async-signal-safe.
std::atomic<bool> g_line_open{false};
struct sigaction g_old_int {};
struct sigaction g_old_term {};

extern "C" void EndLineAndDie(int sig) {
  if (g_line_open.load()) {
    const ssize_t n = ::write(STDERR_FILENO, "\n", 1);
    (void)n;
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// "V UNIT" with `decimals` digits after the point.
std::string Format(int decimals, double v, const char* unit) {
  char buf[48];
  (void)std::snprintf(buf, sizeof buf, "%.*f %s", decimals, v, unit);
  return buf;
}

}  // namespace

std::string HumanBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  auto v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return Format(u == 0 ? 0 : 1, v, kUnits[u]);
}

std::string HumanDuration(double s) {
  if (!std::isfinite(s) || s < 0 || s >= 36e6) return "?";  // not known, or over 10000 h
  if (s < 9.95) return Format(1, s, "s");
  if (s < 59.5) return Format(0, s, "s");
  auto whole = static_cast<uint64_t>(std::llround(s));
  char buf[48];
  if (whole < 3600) {
    (void)std::snprintf(buf, sizeof buf, "%llu min %02llu s",
                        static_cast<unsigned long long>(whole / 60),
                        static_cast<unsigned long long>(whole % 60));
  } else {
    const uint64_t minutes = (whole + 30) / 60;
    (void)std::snprintf(buf, sizeof buf, "%llu h %02llu min",
                        static_cast<unsigned long long>(minutes / 60),
                        static_cast<unsigned long long>(minutes % 60));
  }
  return buf;
}

std::string HumanRate(double bps) {
  if (!std::isfinite(bps) || bps < 0) return "?";
  static const char* const kUnits[] = {"B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s"};
  int u = 0;
  // Round first, so 1023.7 B/s is "1.00 KiB/s", not "1024 B/s".
  while (u < 4 && bps >= 999.5) {
    bps /= 1024;
    ++u;
  }
  if (u == 0) return Format(0, bps, kUnits[u]);
  return Format(bps >= 99.95 ? 0 : bps >= 9.995 ? 1 : 2, bps, kUnits[u]);
}

std::string ProgressLine(std::string_view label, uint64_t done, uint64_t total,
                         uint64_t files_done, uint64_t files_total, double elapsed) {
  constexpr int kWidth = 30;
  const double frac =
      total == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
  std::string bar(static_cast<size_t>(frac * kWidth), '#');
  bar.resize(kWidth, '.');
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  std::string line(label);
  char pct[16];
  (void)std::snprintf(pct, sizeof pct, "%3.0f%%", std::floor(frac * 100));
  line += " [" + bar + "] " + pct + "  " + HumanBytes(done) + "/" + HumanBytes(total) + "  " +
          std::to_string(files_done) + "/" + std::to_string(files_total) + " files  " +
          HumanRate(rate);
  if (done < total) {
    // An estimate needs some progress and some time to be worth showing.
    const bool known = done > 0 && elapsed >= 0.5 && rate > 0;
    line += "  ETA " + (known ? HumanDuration(static_cast<double>(total - done) / rate)
                              : std::string("?"));
  }
  return line;
}

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {
  if (!enabled_) return;
  struct sigaction cur {};
  // Only where nothing else handles the signals (a command's own handler
  // does its own clean-up and calls Finish()).
  if (::sigaction(SIGINT, nullptr, &cur) == 0 && cur.sa_handler == SIG_DFL &&
      ::sigaction(SIGTERM, nullptr, &cur) == 0 && cur.sa_handler == SIG_DFL) {
    struct sigaction sa {};
    sa.sa_handler = EndLineAndDie;
    sigemptyset(&sa.sa_mask);
    handlers_ = ::sigaction(SIGINT, &sa, &g_old_int) == 0 &&
                ::sigaction(SIGTERM, &sa, &g_old_term) == 0;
  }
}

ProgressBar::~ProgressBar() {
  Finish();
  if (handlers_) {
    ::sigaction(SIGINT, &g_old_int, nullptr);
    ::sigaction(SIGTERM, &g_old_term, nullptr);
  }
}

void ProgressBar::Finish() {
  if (!drawn_) return;
  (void)std::fputs("\n", stderr);
  (void)std::fflush(stderr);
  drawn_ = false;
  g_line_open.store(false);
}

void ProgressBar::Update(uint64_t done, uint64_t total, uint64_t files_done,
                         uint64_t files_total) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && done < total && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const std::string line = ProgressLine(label_, done, total, files_done, files_total, secs);
  // "\r" back to the line's start, "\033[K" clears what a longer line left.
  (void)std::fprintf(stderr, "\r%s\033[K", line.c_str());
  (void)std::fflush(stderr);
  drawn_ = true;
  g_line_open.store(true);
}

}  // namespace cce::cli
