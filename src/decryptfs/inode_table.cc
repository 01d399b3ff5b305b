#include "decryptfs/inode_table.h"

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <unordered_set>

namespace cce::decryptfs {
namespace {

// Files and directories are presented read-only; setuid/setgid never cross
// the mount (it is also mounted nosuid). The sticky bit is harmless.
constexpr uint32_t kPresentedBits = 01555;
constexpr uint32_t kImplicitDirMode = 0555;

}  // namespace

StatusOr<InodeTable> InodeTable::Build(format::Manifest manifest) {
  InodeTable t;
  t.manifest_ = std::make_unique<format::Manifest>(std::move(manifest));
  std::unordered_map<std::string, uint64_t> by_path;
  by_path.reserve(t.manifest_->entries.size() + 1);
  std::unordered_set<uint64_t> implicit;  // directories not (yet) listed themselves

  int64_t newest = 0;
  for (const auto& e : t.manifest_->entries) newest = std::max(newest, e.mtime);

  Inode root;
  root.ino = kRootIno;
  root.parent = kRootIno;
  root.is_dir = true;
  root.mode = kImplicitDirMode;
  root.mtime = newest;
  t.nodes_.push_back(std::move(root));
  by_path.emplace("", kRootIno);

  // Returns the inode of directory `path`, creating implicit ones as needed.
  auto ensure_dir = [&](const std::string& path, auto& self) -> StatusOr<uint64_t> {
    auto it = by_path.find(path);
    if (it != by_path.end()) {
      if (!t.nodes_[it->second - 1].is_dir) {
        return DataLoss("manifest: '" + path + "' is a file but has entries below it");
      }
      return it->second;
    }
    size_t slash = path.rfind('/');
    std::string parent_path = slash == std::string::npos ? "" : path.substr(0, slash);
    ASSIGN_OR_RETURN(uint64_t parent, self(parent_path, self));
    Inode d;
    d.ino = t.nodes_.size() + 1;
    d.parent = parent;
    d.name = slash == std::string::npos ? path : path.substr(slash + 1);
    d.path = path;
    d.is_dir = true;
    d.mode = kImplicitDirMode;
    d.mtime = newest;
    t.nodes_[parent - 1].children.push_back(d.ino);
    by_path.emplace(path, d.ino);
    implicit.insert(d.ino);
    t.nodes_.push_back(std::move(d));
    return t.nodes_.back().ino;
  };

  for (const format::ManifestEntry& e : t.manifest_->entries) {
    if (e.path.empty()) return DataLoss("manifest: entry with an empty path");
    size_t slash = e.path.rfind('/');
    std::string parent_path = slash == std::string::npos ? "" : e.path.substr(0, slash);
    ASSIGN_OR_RETURN(uint64_t parent, ensure_dir(parent_path, ensure_dir));
    auto existing = by_path.find(e.path);
    if (existing != by_path.end()) {
      Inode& n = t.nodes_[existing->second - 1];
      // An implicit directory created for an earlier child may be listed
      // later itself; anything else is a duplicate.
      if (e.type == format::ManifestEntry::Type::kDirectory && implicit.erase(n.ino) == 1) {
        n.mode = e.mode & kPresentedBits;
        n.mtime = e.mtime;
        continue;
      }
      return DataLoss("manifest: '" + e.path + "' is listed twice");
    }
    Inode n;
    n.ino = t.nodes_.size() + 1;
    n.parent = parent;
    n.name = slash == std::string::npos ? e.path : e.path.substr(slash + 1);
    n.path = e.path;
    n.mode = e.mode & kPresentedBits;
    n.mtime = e.mtime;
    if (e.type == format::ManifestEntry::Type::kDirectory) {
      n.is_dir = true;
    } else {
      n.size = e.size;
      n.entry = &e;
      t.total_file_bytes_ += e.size;
    }
    t.nodes_[parent - 1].children.push_back(n.ino);
    by_path.emplace(e.path, n.ino);
    t.nodes_.push_back(std::move(n));
  }

  for (Inode& n : t.nodes_) {
    if (!n.is_dir) continue;
    std::sort(n.children.begin(), n.children.end(),
              [&t](uint64_t a, uint64_t b) { return t.nodes_[a - 1].name < t.nodes_[b - 1].name; });
    uint32_t subdirs = 0;
    for (uint64_t c : n.children) subdirs += t.nodes_[c - 1].is_dir ? 1 : 0;
    n.nlink = 2 + subdirs;
  }
  return t;
}

const Inode* InodeTable::Lookup(uint64_t parent, std::string_view name) const {
  const Inode* dir = Get(parent);
  if (dir == nullptr || !dir->is_dir) return nullptr;
  auto it = std::lower_bound(dir->children.begin(), dir->children.end(), name,
                             [this](uint64_t ino, std::string_view n) {
                               return std::string_view(nodes_[ino - 1].name) < n;
                             });
  if (it == dir->children.end() || nodes_[*it - 1].name != name) return nullptr;
  return &nodes_[*it - 1];
}

}  // namespace cce::decryptfs
