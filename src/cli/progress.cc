#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

namespace cce::cli {

std::string HumanBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  auto v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  (void)std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, kUnits[u]);
  return buf;
}

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
  if (drawn_) (void)std::fputs("\n", stderr);
}

void ProgressBar::Update(uint64_t done, uint64_t total, uint64_t files_done, uint64_t files_total) {
  if (!enabled_) return;
  constexpr int kWidth = 30;
  double frac = total == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
  int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  (void)std::fprintf(stderr, "\r%s [%s] %3.0f%%  %s/%s  %llu/%llu files  %s/s   ", label_.c_str(),
                     bar.c_str(), frac * 100, HumanBytes(done).c_str(), HumanBytes(total).c_str(),
                     static_cast<unsigned long long>(files_done),
                     static_cast<unsigned long long>(files_total),
                     HumanBytes(static_cast<uint64_t>(rate)).c_str());
  (void)std::fflush(stderr);
  drawn_ = true;
}

}  // namespace cce::cli
