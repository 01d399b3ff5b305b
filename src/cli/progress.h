// A progress bar for long work, drawn on stderr only when it is a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace cce::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();  // finishes the line
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  bool enabled() const { return enabled_; }
  void Update(uint64_t done, uint64_t total, uint64_t files_done, uint64_t files_total);

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
};

std::string HumanBytes(uint64_t bytes);

}  // namespace cce::cli
