#include "executor/output_copy.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/fd.h"
#include "crypto/crypto.h"

namespace cce::executor {
namespace {

constexpr size_t kCopyBuffer = size_t{64} * 1024;

// Printable ASCII stays, everything else becomes \xNN: safe in logs and JSON.
std::string Display(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[5];
      (void)std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// Valid UTF-8 (no overlongs, surrogates or > U+10FFFF) without control characters.
bool IsCleanName(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    int n;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<size_t>(n) >= s.size()) return false;  // truncated sequence
    for (int k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    if (cp < 0xa0) return false;  // C1 controls
    i += static_cast<size_t>(n) + 1;
  }
  return true;
}

// "rel/name", or "name" at the top.
std::string JoinRel(const std::string& rel, const std::string& name) {
  if (rel.empty()) return name;
  std::string out = rel;
  out += '/';
  out += name;
  return out;
}

const char* TypeName(mode_t mode) {
  if (S_ISLNK(mode)) return "symlink (not followed)";
  if (S_ISFIFO(mode)) return "fifo";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISCHR(mode)) return "character device";
  if (S_ISBLK(mode)) return "block device";
  if (S_ISDIR(mode)) return "directory";
  if (S_ISREG(mode)) return "regular file";
  return "unknown file type";
}

// Removes our own partial tree. Never follows symlinks (there are none in a
// tree we wrote, but a stale one is not trusted either).
void RemoveTreeAt(int parent_fd, const std::string& name) {
  int fd = ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    ::unlinkat(parent_fd, name.c_str(), 0);
    return;
  }
  if (DIR* d = ::fdopendir(fd)) {
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    for (const auto& n : names) {
      if (::unlinkat(::dirfd(d), n.c_str(), 0) != 0) RemoveTreeAt(::dirfd(d), n);
    }
    ::closedir(d);
  } else {
    ::close(fd);
  }
  ::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR);
}

class Walker {
 public:
  Walker(const OutputLimits& limits, bool use_openat2, dev_t root_dev)
      : limits_(limits), use_openat2_(use_openat2), root_dev_(root_dev) {}

  Status Walk(int src_fd, int dst_fd, const std::string& rel, uint32_t depth);
  OutputManifest TakeManifest() { return std::move(manifest_); }

 private:
  // Returns an fd, or -errno.
  int OpenBeneath(int dir_fd, const std::string& name, int flags);
  void Skip(const std::string& rel, const std::string& why) {
    manifest_.skipped.push_back(Display(rel) + ": " + why);
  }
  // Why an open failed, for the skip list; empty if it is a hard error.
  static std::string SkipReason(int err);
  Status CopyFile(int src_fd, int dst_dir_fd, const std::string& name, const std::string& rel);

  const OutputLimits& limits_;
  const bool use_openat2_;
  const dev_t root_dev_;
  uint64_t entries_ = 0;
  OutputManifest manifest_;
};

int Walker::OpenBeneath(int dir_fd, const std::string& name, int flags) {
  if (use_openat2_) {
    struct open_how how {};
    how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    long fd = ::syscall(SYS_openat2, dir_fd, name.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno != ENOSYS) return -errno;
  }
  // Fallback: `name` is one component from readdir (never "." or ".."), so
  // O_NOFOLLOW on it is the whole resolution; mounts are caught by st_dev.
  int fd = ::openat(dir_fd, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
  return fd >= 0 ? fd : -errno;
}

std::string Walker::SkipReason(int err) {
  switch (err) {
    case ELOOP: return "symlink (not followed)";
    case EXDEV: return "mount point (not crossed)";
    case ENOENT: return "vanished during copy";
    case ENOTDIR: return "changed type during copy";
    case ENXIO: return "socket or device (not opened)";
    default: return "";
  }
}

Status Walker::Walk(int src_fd, int dst_fd, const std::string& rel, uint32_t depth) {
  std::vector<std::string> names;
  {
    int dup_fd = ::fcntl(src_fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return ErrnoStatus("output: dup " + Display(rel), errno);
    DIR* d = ::fdopendir(dup_fd);
    if (d == nullptr) {
      ::close(dup_fd);
      return ErrnoStatus("output: opendir " + Display(rel), errno);
    }
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      if (++entries_ > limits_.max_files) {
        ::closedir(d);
        return ResourceExhausted("output: more than " + std::to_string(limits_.max_files) +
                                 " entries (at '" + Display(JoinRel(rel, n)) + "')");
      }
      names.push_back(std::move(n));
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoStatus("output: readdir " + Display(rel), err);
  }
  std::sort(names.begin(), names.end());

  for (const auto& name : names) {
    const std::string path = JoinRel(rel, name);
    if (name.size() > limits_.max_name) {
      return ResourceExhausted("output: '" + Display(path) + "': name longer than " +
                               std::to_string(limits_.max_name) + " bytes");
    }
    if (!IsCleanName(name)) {
      Skip(path, "name is not UTF-8 or has control characters");
      continue;
    }
    struct stat st {};
    if (::fstatat(src_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) {
        Skip(path, "vanished during copy");
        continue;
      }
      return ErrnoStatus("output: stat '" + Display(path) + "'", errno);
    }
    if (S_ISDIR(st.st_mode)) {
      if (depth + 1 > limits_.max_depth) {
        return ResourceExhausted("output: '" + Display(path) + "': deeper than " +
                                 std::to_string(limits_.max_depth) + " directories");
      }
      int fd = OpenBeneath(src_fd, name, O_RDONLY | O_DIRECTORY);
      if (fd < 0) {
        std::string why = SkipReason(-fd);
        if (why.empty()) return ErrnoStatus("output: open '" + Display(path) + "'", -fd);
        Skip(path, why);
        continue;
      }
      UniqueFd sub(fd);
      struct stat sst {};
      if (::fstat(sub.get(), &sst) != 0)
        return ErrnoStatus("output: fstat " + Display(path), errno);
      if (!S_ISDIR(sst.st_mode)) {
        Skip(path, std::string(TypeName(sst.st_mode)) + " (changed during copy)");
        continue;
      }
      if (sst.st_dev != root_dev_) {
        Skip(path, "mount point (not crossed)");
        continue;
      }
      if (::mkdirat(dst_fd, name.c_str(), 0755) != 0) {
        return ErrnoStatus("output: mkdir '" + Display(path) + "' in destination", errno);
      }
      UniqueFd dsub(
          ::openat(dst_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dsub.valid()) {
        return ErrnoStatus("output: open '" + Display(path) + "' in destination", errno);
      }
      if (::fchmod(dsub.get(), 0755) != 0)
        return ErrnoStatus("output: chmod " + Display(path), errno);
      RETURN_IF_ERROR(Walk(sub.get(), dsub.get(), path, depth + 1));
    } else if (S_ISREG(st.st_mode)) {
      RETURN_IF_ERROR(CopyFile(src_fd, dst_fd, name, path));
    } else {
      Skip(path, TypeName(st.st_mode));
    }
  }
  return Status::Ok();
}

Status Walker::CopyFile(int src_dir_fd, int dst_dir_fd, const std::string& name,
                        const std::string& rel) {
  // O_NONBLOCK: a FIFO swapped in after the fstatat above opens at once
  // instead of blocking, and is then refused by the S_ISREG check.
  int fd = OpenBeneath(src_dir_fd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    std::string why = SkipReason(-fd);
    if (why.empty()) return ErrnoStatus("output: open '" + Display(rel) + "'", -fd);
    Skip(rel, why);
    return Status::Ok();
  }
  UniqueFd src(fd);
  struct stat st {};
  if (::fstat(src.get(), &st) != 0) return ErrnoStatus("output: fstat " + Display(rel), errno);
  if (!S_ISREG(st.st_mode)) {
    Skip(rel, std::string(TypeName(st.st_mode)) + " (changed during copy)");
    return Status::Ok();
  }
  if (st.st_dev != root_dev_) {
    Skip(rel, "mount point (not crossed)");
    return Status::Ok();
  }
  UniqueFd dst(::openat(dst_dir_fd, name.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!dst.valid())
    return ErrnoStatus("output: create '" + Display(rel) + "' in destination", errno);
  if (::fchmod(dst.get(), 0644) != 0) return ErrnoStatus("output: chmod " + Display(rel), errno);

  crypto::Sha256Hasher hasher;
  std::vector<uint8_t> buf(kCopyBuffer);
  uint64_t size = 0;
  while (true) {
    ssize_t n = ::read(src.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("output: read '" + Display(rel) + "'", errno);
    }
    if (n == 0) break;
    auto un = static_cast<uint64_t>(n);
    // Checked per read: the file may still be growing (a process that
    // outlived the container), so its st_size is not trusted.
    if (manifest_.total_bytes + un > limits_.max_bytes) {
      return ResourceExhausted("output: '" + Display(rel) + "': total size passes the limit of " +
                               std::to_string(limits_.max_bytes) + " bytes");
    }
    std::span<const uint8_t> chunk(buf.data(), static_cast<size_t>(n));
    RETURN_IF_ERROR(
        WriteFull(dst.get(), chunk).WithContext("output: write '" + Display(rel) + "'"));
    hasher.Update(chunk);
    manifest_.total_bytes += un;
    size += un;
  }
  crypto::Sha256Digest digest = hasher.Finish();
  manifest_.files.push_back(OutputEntry{rel, size, crypto::ToHex(digest)});
  return Status::Ok();
}

}  // namespace

namespace internal {

StatusOr<OutputManifest> CopyOutputImpl(const std::string& src_dir, const std::string& dst_dir,
                                        const OutputLimits& limits, bool use_openat2) {
  if (dst_dir.empty() || dst_dir.back() == '/') {
    return InvalidArgument("output: destination '" + dst_dir + "' must name a new directory");
  }
  UniqueFd src(::open(src_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!src.valid()) {
    if (errno == ENOENT) return NotFound("output: source " + src_dir + " does not exist");
    if (errno == ENOTDIR || errno == ELOOP) {
      return InvalidArgument("output: source " + src_dir + " is not a directory (or a symlink)");
    }
    return ErrnoStatus("output: open " + src_dir, errno);
  }
  struct stat st {};
  if (::fstat(src.get(), &st) != 0) return ErrnoStatus("output: fstat " + src_dir, errno);
  if (::lstat(dst_dir.c_str(), &st) == 0 || errno != ENOENT) {
    return AlreadyExists("output: destination " + dst_dir + " already exists");
  }
  struct stat root {};
  (void)::fstat(src.get(), &root);

  // The partial tree is a sibling so one rename publishes it whole.
  size_t slash = dst_dir.find_last_of('/');
  std::string parent =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : dst_dir.substr(0, slash));
  std::string base = slash == std::string::npos ? dst_dir : dst_dir.substr(slash + 1);
  std::string partial_name = base + ".partial";
  UniqueFd parent_fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent_fd.valid()) {
    if (errno == ENOENT)
      return NotFound("output: destination parent " + parent + " does not exist");
    return ErrnoStatus("output: open " + parent, errno);
  }
  RemoveTreeAt(parent_fd.get(), partial_name);
  if (::mkdirat(parent_fd.get(), partial_name.c_str(), 0755) != 0) {
    return ErrnoStatus("output: mkdir " + dst_dir + ".partial", errno);
  }
  UniqueFd dst(::openat(parent_fd.get(), partial_name.c_str(),
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dst.valid()) return ErrnoStatus("output: open " + dst_dir + ".partial", errno);

  Walker walker(limits, use_openat2, root.st_dev);
  Status s = walker.Walk(src.get(), dst.get(), "", 0);
  if (s.ok() && ::renameat2(parent_fd.get(), partial_name.c_str(), parent_fd.get(), base.c_str(),
                            RENAME_NOREPLACE) != 0) {
    s = ErrnoStatus("output: rename " + dst_dir + ".partial to " + dst_dir, errno);
  }
  if (!s.ok()) {
    dst.reset();
    RemoveTreeAt(parent_fd.get(), partial_name);
    return s;
  }
  OutputManifest m = walker.TakeManifest();
  std::sort(m.files.begin(), m.files.end(),
            [](const OutputEntry& a, const OutputEntry& b) { return a.path < b.path; });
  return m;
}

}  // namespace internal

StatusOr<OutputManifest> CopyOutput(const std::string& src_dir, const std::string& dst_dir,
                                    const OutputLimits& limits) {
  return internal::CopyOutputImpl(src_dir, dst_dir, limits, /*use_openat2=*/true);
}

std::string ManifestToJson(const OutputManifest& manifest) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : manifest.files) {
    files.push_back({{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}});
  }
  nlohmann::json j = {{"files", std::move(files)},
                      {"skipped", manifest.skipped},
                      {"total_bytes", manifest.total_bytes}};
  // Paths are clean UTF-8 by construction; replace is a second line of defence.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace cce::executor
