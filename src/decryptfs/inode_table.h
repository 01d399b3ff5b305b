// InodeTable: the immutable directory tree DecryptFS presents, built once
// from an authenticated manifest. Inode numbers are dense (1 = root), never
// reused and valid for the whole mount, so the FUSE lookup count needs no
// bookkeeping. Private to DecryptFS.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "format/format.h"

namespace cce::decryptfs {

inline constexpr uint64_t kRootIno = 1;

struct Inode {
  uint64_t ino = 0;
  uint64_t parent = 0;  // the root is its own parent
  std::string name;     // last path component; empty for the root
  std::string path;     // relative path as in the manifest; empty for the root
  bool is_dir = false;
  uint32_t mode = 0;  // permission bits as presented: read-only (no write, setuid or setgid)
  int64_t mtime = 0;
  uint64_t size = 0;                             // files: plaintext bytes
  uint32_t nlink = 1;                            // directories: 2 + subdirectories
  const format::ManifestEntry* entry = nullptr;  // files: the manifest entry
  std::vector<uint64_t> children;                // directories: sorted by name
};

class InodeTable {
 public:
  // Every manifest entry becomes an inode; parents missing from the manifest
  // become implicit read-only directories. Fails on duplicate paths and on a
  // file used as a directory.
  static StatusOr<InodeTable> Build(format::Manifest manifest);

  InodeTable(InodeTable&&) noexcept = default;
  InodeTable& operator=(InodeTable&&) noexcept = default;

  // nullptr for an unknown inode number.
  const Inode* Get(uint64_t ino) const {
    return ino >= 1 && ino <= nodes_.size() ? &nodes_[ino - 1] : nullptr;
  }
  // nullptr if `parent` is not a directory or has no child `name`.
  const Inode* Lookup(uint64_t parent, std::string_view name) const;

  size_t size() const { return nodes_.size(); }
  uint64_t total_file_bytes() const { return total_file_bytes_; }
  const format::Manifest& manifest() const { return *manifest_; }

 private:
  InodeTable() = default;
  // Owned on the heap so Inode::entry pointers survive moves of the table.
  std::unique_ptr<format::Manifest> manifest_;
  std::vector<Inode> nodes_;  // nodes_[ino - 1]
  uint64_t total_file_bytes_ = 0;
};

}  // namespace cce::decryptfs
