// capture: the container's stdout and stderr are part of its output (they can
// leak data too), so they are captured into files with a hard cap and packed
// with /output. The pipe is always drained to EOF so the writer never blocks
// on a full pipe; bytes past the cap are counted and dropped.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/fd.h"
#include "base/status.h"

namespace cce::executor {

class CappedSink {
 public:
  // Creates `path` (must not exist; 0600, O_NOFOLLOW) to receive at most
  // `max_bytes`. Errors: kAlreadyExists, kIo.
  static StatusOr<CappedSink> Create(const std::string& path, uint64_t max_bytes);

  // Appends what fits under the cap; counts the rest as dropped. kIo on a
  // failed write.
  Status Write(std::span<const uint8_t> data);
  // Reads `fd` until EOF (retrying EINTR, waiting on EAGAIN), feeding Write.
  // Blocking; run one per pipe on its own thread. kIo on a failed read.
  Status Drain(int fd);
  // fsyncs and closes the file. Further writes are errors.
  Status Close();

  uint64_t written() const { return written_; }  // bytes in the file
  uint64_t total() const { return total_; }      // bytes seen on the pipe
  bool truncated() const { return total_ > written_; }
  const std::string& path() const { return path_; }

 private:
  CappedSink(std::string path, UniqueFd fd, uint64_t max)
      : path_(std::move(path)), fd_(std::move(fd)), max_(max) {}

  std::string path_;
  UniqueFd fd_;
  uint64_t max_ = 0;
  uint64_t written_ = 0;
  uint64_t total_ = 0;
};

}  // namespace cce::executor
