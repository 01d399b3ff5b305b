// File descriptors and whole-buffer I/O. UniqueFd owns one fd; the helpers
// retry on EINTR and short transfers so callers see all-or-error.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "base/status.h"

namespace cce {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Reads up to buf.size() bytes at offset; returns bytes read (short only at EOF).
StatusOr<size_t> PreadFull(int fd, std::span<uint8_t> buf, uint64_t offset);
Status PwriteFull(int fd, std::span<const uint8_t> buf, uint64_t offset);
Status WriteFull(int fd, std::span<const uint8_t> buf);
// Reads until EOF (at most max_bytes, else an error naming `what`).
StatusOr<std::string> ReadAll(int fd, size_t max_bytes, std::string_view what);
StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes);
// Creates `path` (which must not exist; a symlink there is refused) with
// `data` and `mode` exactly (umask does not apply), fsynced.
Status WriteNewFile(const std::string& path, std::span<const uint8_t> data, mode_t mode);
// Replaces `path` with `data` all or nothing: writes a temporary file in the
// same directory with `mode`, fsyncs it, renames it over `path` and fsyncs
// the directory. A crash leaves the old file or the new one, never a mix.
Status WriteFileAtomic(const std::string& path, std::span<const uint8_t> data, mode_t mode);

}  // namespace cce
