// A progress bar for long work, drawn on stderr only when it is a terminal:
//   encrypt [###########...................]  37%  1.1 GiB/3.0 GiB  2/5 files  412 MiB/s  ETA 4.7 s
// and the rounded figures the commands print in their summaries.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace cce::cli {

class ProgressBar {
 public:
  // While a drawn bar is alive, SIGINT and SIGTERM whose disposition is the
  // default end the bar's line first (a newline, so the shell's prompt and
  // any message start on their own line) and then kill the process as the
  // default would (the shell sees 128 + signal: 130 for Ctrl-C). A command
  // that handles the signals itself (an InterruptScope installed after the
  // bar) calls Finish() before printing its message.
  explicit ProgressBar(std::string label);
  ~ProgressBar();  // Finish(), and the signal dispositions restored
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  bool enabled() const { return enabled_; }
  // Redraws at most every 100 ms (and always at the end: done == total).
  void Update(uint64_t done, uint64_t total, uint64_t files_done, uint64_t files_total);
  // Ends the bar's line (newline) if one was drawn, so what follows (a
  // summary on stdout, an error on stderr) starts on its own line. Later
  // Updates draw a new line.
  void Finish();

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  bool handlers_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
};

// 1536 -> "1.5 KiB"; under 1 KiB: "512 B" (binary units, one decimal).
std::string HumanBytes(uint64_t bytes);

// A duration rounded for people: "0.4 s", "1.2 s" (one decimal under 10 s),
// "42 s", "3 min 05 s", "2 h 07 min". Negative, not finite or 10000 h and
// more: "?".
std::string HumanDuration(double seconds);

// A throughput rounded to three figures at most: "850 MiB/s", "12.5 MiB/s",
// "3.07 GiB/s", "0 B/s". Negative or not finite: "?".
std::string HumanRate(double bytes_per_second);

// The bar's text after `elapsed_seconds` (no "\r", no escape codes):
// label, bar, percent, bytes, files, rate and "ETA 12 s" (estimated from the
// average rate so far; "ETA ?" before there is one; none once done).
std::string ProgressLine(std::string_view label, uint64_t done, uint64_t total,
                         uint64_t files_done, uint64_t files_total, double elapsed_seconds);

}  // namespace cce::cli
