// Private to src/cli: a directory tree as an uncompressed tar (ustar, with a
// pax header for a name over 100 bytes), produced a piece at a time as an
// upload body is read, so a dataset sample of any size is sent without
// being held in memory (`cce dataset publish-sample`).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/status.h"

namespace cce::cli {

class DirTarStream {
 public:
  struct Member {
    std::string path;  // relative to the directory, '/'-separated
    bool is_dir = false;
    uint64_t size = 0;  // files
  };
  // Walks `dir` without following symlinks: regular files and directories
  // only, anything else (a link, device, FIFO, socket) is kInvalidArgument
  // naming it, as the plane would refuse it. Members in path order, each
  // directory before what it holds. A path over `max_path_bytes` is
  // kInvalidArgument naming it.
  static StatusOr<DirTarStream> Open(const std::string& dir, size_t max_path_bytes = 255);

  const std::vector<Member>& members() const { return members_; }
  uint64_t total_file_bytes() const { return total_file_bytes_; }
  uint64_t file_count() const { return file_count_; }
  // Progress: file bytes handed out so far, and files started.
  uint64_t file_bytes_sent() const { return file_bytes_sent_; }
  uint64_t files_sent() const { return files_sent_; }

  // Fills a prefix of `buf`; 0 at the end. A file that cannot be read or
  // whose size changed since Open is an error naming it.
  StatusOr<size_t> Read(std::span<uint8_t> buf);

 private:
  Status NextMember();

  std::string dir_;
  std::vector<Member> members_;
  uint64_t total_file_bytes_ = 0;
  uint64_t file_count_ = 0;
  size_t next_ = 0;      // members_[next_] is the next to start
  std::string pending_;  // header or padding bytes not handed out yet
  size_t pending_off_ = 0;
  UniqueFd file_;          // the member whose data is being sent
  std::string file_path_;  // its path, for errors
  uint64_t file_left_ = 0;
  uint64_t file_pad_ = 0;  // padding to send after its data
  bool ended_ = false;     // the two zero blocks are queued
  uint64_t file_bytes_sent_ = 0;
  uint64_t files_sent_ = 0;
};

// One ustar header block (and a pax block before it when `path` is over
// 100 bytes) for a member; exposed for tests.
std::string TarHeaders(const std::string& path, bool is_dir, uint64_t size);

}  // namespace cce::cli
