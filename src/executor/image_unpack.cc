#include "executor/image_unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "base/fd.h"
#include "crypto/crypto.h"
#include "image/image.h"

namespace cce::executor {

namespace {

using image::ByteSource;
using image::Descriptor;
using image::Digest;
using image::QuoteName;
using json = nlohmann::json;

constexpr size_t kChunk = 1 << 20;
// Removing a tree recurses once per level. Entry paths are at most
// max_path_depth deep, but symlinks in parent paths can nest deeper; past
// this we refuse rather than run out of stack or file descriptors.
constexpr int kMaxTreeDepth = 256;
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view kOpaqueWhiteout = ".wh..wh..opq";
constexpr char kDefaultPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "/") + p;
  return out.empty() ? "." : out;
}

// openat2 confined to the tree under dirfd: absolute symlinks, '..' above
// dirfd and /proc magic links all fail (EXDEV / ELOOP). EAGAIN means a
// concurrent rename raced the lookup; retried a few times.
int OpenBeneath(int dirfd, const std::string& path, uint64_t flags) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0; attempt < 8; ++attempt) {
    long fd = ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno != EAGAIN) return -1;
  }
  return -1;
}

// Names of a directory's entries other than "." and "..".
StatusOr<std::vector<std::string>> ListDir(int dirfd, const std::string& what) {
  int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return ErrnoStatus("dup " + what, errno);
  DIR* dir = ::fdopendir(dup);
  if (dir == nullptr) {
    int err = errno;
    ::close(dup);
    return ErrnoStatus("opendir " + what, err);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
  ::rewinddir(dir);
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    dirent* d = ::readdir(dir);
    if (d == nullptr) {
      if (errno != 0) return ErrnoStatus("readdir " + what, errno);
      break;
    }
    std::string_view name(d->d_name);
    if (name != "." && name != "..") names.emplace_back(name);
  }
  return names;
}

// Whether a compressed stream starts with a magic number we do not decode.
std::string UnsupportedCompression(std::string_view head) {
  auto starts = [&](std::string_view magic) { return head.substr(0, magic.size()) == magic; };
  if (starts(std::string_view("\x28\xb5\x2f\xfd", 4))) {
    return "zstd-compressed layers are not supported (re-push the image with gzip or "
           "uncompressed layers)";
  }
  if (starts(std::string_view("\xfd"
                              "7zXZ\x00",
                              6)))
    return "xz-compressed layers are not supported";
  if (starts("BZh")) return "bzip2-compressed layers are not supported";
  if (starts(std::string_view("\x04\x22\x4d\x18", 4)))
    return "lz4-compressed layers are not supported";
  return "";
}

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

mode_t SanitizedMode(mode_t perm, bool is_dir) {
  mode_t m = perm & 07777;
  m &= ~static_cast<mode_t>(S_ISUID | S_ISGID);
  if (!is_dir) m &= ~static_cast<mode_t>(S_ISVTX);
  m |= S_IRUSR | S_IRGRP | S_IROTH;
  if (is_dir || (m & (S_IXUSR | S_IXGRP | S_IXOTH)) != 0) m |= S_IXUSR | S_IXGRP | S_IXOTH;
  return m;
}

// One layer: the byte source, a raw-format libarchive reader that undoes
// gzip (the uncompressed stream is hashed for the diff_id), and a tar reader
// over that stream whose entries are applied one by one.
class LayerApplier {
 public:
  LayerApplier(int root_fd, ByteSource& source, std::string_view label, const UnpackLimits& limits,
               UnpackStats& stats)
      : root_fd_(root_fd), source_(source), label_(label), limits_(limits), stats_(stats) {}

  StatusOr<Digest> Run() {
    RETURN_IF_ERROR(Sniff());
    ASSIGN_OR_RETURN(archive * tar, OpenStreams());
    for (;;) {
      archive_entry* entry = nullptr;
      int r = archive_read_next_header(tar, &entry);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return StreamError(tar);
      where_.clear();
      RETURN_IF_ERROR(Entry(tar, entry));
    }
    where_.clear();
    // The diff_id covers the whole uncompressed stream (end-of-archive
    // blocks and padding too), and the blob check runs at the source's end.
    for (;;) {
      la_ssize_t n = ReadTar(tar_.get(), this, nullptr);
      if (n < 0) return StreamError(tar);
      if (n == 0) break;
    }
    std::vector<uint8_t> buf(size_t{64} * 1024);
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, source_.Read(buf));
      if (n == 0) break;
    }
    ++stats_.layers;
    return Digest::FromSha256(diff_hasher_.Finish());
  }

 private:
  // --- streams --------------------------------------------------------------

  // Reads the first bytes so an unsupported compression gets a clear error
  // rather than libarchive's "unrecognized archive format".
  Status Sniff() {
    buf_.resize(kChunk);
    while (pending_ < 6) {
      ASSIGN_OR_RETURN(size_t n, source_.Read(std::span<uint8_t>(buf_).subspan(pending_)));
      if (n == 0) break;
      pending_ += n;
    }
    std::string why = UnsupportedCompression(
        std::string_view(reinterpret_cast<const char*>(buf_.data()), pending_));
    if (!why.empty()) return InvalidArgument(label_ + ": " + why);
    if (pending_ == 0) return InvalidArgument(label_ + ": empty layer (not a tar stream)");
    return Status::Ok();
  }

  StatusOr<archive*> OpenStreams() {
    raw_.reset(archive_read_new());
    tar_.reset(archive_read_new());
    if (!raw_ || !tar_) return Internal("archive_read_new failed");
    // Built-in gzip only: a _WARN would mean libarchive forks a program.
    if (archive_read_support_format_raw(raw_.get()) != ARCHIVE_OK ||
        archive_read_support_filter_gzip(raw_.get()) != ARCHIVE_OK) {
      return Internal("libarchive lacks built-in gzip support: " + Error(raw_.get()));
    }
    if (archive_read_open(raw_.get(), this, nullptr, ReadSource, nullptr) != ARCHIVE_OK) {
      return StreamError(raw_.get());
    }
    archive_entry* entry = nullptr;
    if (archive_read_next_header(raw_.get(), &entry) != ARCHIVE_OK) return StreamError(raw_.get());
    if (archive_read_support_format_tar(tar_.get()) != ARCHIVE_OK) {
      return Internal("libarchive lacks tar support: " + Error(tar_.get()));
    }
    if (archive_read_open(tar_.get(), this, nullptr, ReadTar, nullptr) != ARCHIVE_OK) {
      return StreamError(tar_.get());
    }
    return tar_.get();
  }

  static la_ssize_t ReadSource(archive* a, void* client, const void** out) {
    auto* self = static_cast<LayerApplier*>(client);
    *out = self->buf_.data();
    if (self->pending_ > 0) {
      return static_cast<la_ssize_t>(std::exchange(self->pending_, 0));
    }
    auto n = self->source_.Read(self->buf_);
    if (!n.ok()) {
      self->error_ = n.status();
      archive_set_error(a, EIO, "reading the layer failed");
      return -1;
    }
    return static_cast<la_ssize_t>(*n);
  }

  // The tar reader's input: the raw reader's (decompressed) data, hashed
  // and counted. out == nullptr: drain after the end of the archive.
  static la_ssize_t ReadTar(archive* a, void* client, const void** out) {
    auto* self = static_cast<LayerApplier*>(client);
    la_ssize_t n =
        archive_read_data(self->raw_.get(), self->tar_buf_.data(), self->tar_buf_.size());
    if (n < 0) {
      if (self->error_.ok()) {
        self->error_ =
            InvalidArgument(self->label_ + ": decompressing: " + Error(self->raw_.get()));
      }
      if (a != nullptr) archive_set_error(a, EIO, "decompressing the layer failed");
      return -1;
    }
    self->tar_bytes_ += static_cast<uint64_t>(n);
    if (self->tar_bytes_ > self->limits_.max_tar_bytes) {
      self->error_ =
          InvalidArgument(self->label_ + ": uncompressed layer is larger than the limit of " +
                          std::to_string(self->limits_.max_tar_bytes) + " bytes");
      if (a != nullptr) archive_set_error(a, EFBIG, "layer too large");
      return -1;
    }
    self->diff_hasher_.Update(
        std::span<const uint8_t>(self->tar_buf_.data(), static_cast<size_t>(n)));
    if (out != nullptr) *out = self->tar_buf_.data();
    return n;
  }

  static std::string Error(archive* a) {
    const char* e = archive_error_string(a);
    return e != nullptr ? e : "unknown libarchive error";
  }

  // A stream failed: the source's or the decompressor's own error (e.g.
  // kDataLoss from a blob check) wins over libarchive's message about it.
  Status StreamError(archive* a) const {
    if (!error_.ok()) return error_;
    std::string msg = label_ + ": ";
    if (!where_.empty()) msg += "entry " + where_ + ": ";
    return InvalidArgument(msg + "bad tar stream: " + Error(a));
  }

  // --- entries --------------------------------------------------------------

  Status Refuse(const std::string& why) const {
    return InvalidArgument(label_ + ": entry " + where_ + ": " + why);
  }
  Status Os(const std::string& op, int err) const {
    return ErrnoStatus(label_ + ": entry " + where_ + ": " + op, err);
  }

  // Splits an archive path into components; absolute paths and '..' are
  // refused (an image made with them was made to escape).
  StatusOr<std::vector<std::string>> SplitPath(std::string_view raw,
                                               const std::string& what) const {
    auto split = image::SplitMemberPath(raw);
    if (!split.ok()) return Refuse(what + split.status().message());
    std::vector<std::string> parts = std::move(split).value();
    if (parts.size() > limits_.max_path_depth) {
      return Refuse(what + "path has " + std::to_string(parts.size()) +
                    " components, more than the limit of " +
                    std::to_string(limits_.max_path_depth));
    }
    return parts;
  }

  Status Entry(archive* tar, archive_entry* entry) {
    const char* raw = archive_entry_pathname(entry);
    where_ = raw != nullptr ? QuoteName(raw) : "(unnamed)";
    if (raw == nullptr) return Refuse("no name, or one libarchive cannot decode");
    if (++stats_.entries > limits_.max_entries) {
      return Refuse("more than the limit of " + std::to_string(limits_.max_entries) + " entries");
    }
    std::string_view path(raw);
    if (path.size() > limits_.max_path_bytes) {
      return Refuse("path is " + std::to_string(path.size()) + " bytes, more than the limit of " +
                    std::to_string(limits_.max_path_bytes));
    }
    ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitPath(path, ""));
    const mode_t type = archive_entry_filetype(entry);
    const char* hardlink = archive_entry_hardlink(entry);
    if (parts.empty()) {
      // "./": the root itself, whose mode the executor chose; nothing to do.
      if (type == AE_IFDIR && hardlink == nullptr) return Status::Ok();
      return Refuse("names the root directory");
    }
    std::string name = std::move(parts.back());
    parts.pop_back();
    if (std::string_view(name).substr(0, kWhiteoutPrefix.size()) == kWhiteoutPrefix) {
      return Whiteout(parts, name);
    }
    if (hardlink != nullptr) return HardLink(parts, name, hardlink);
    const mode_t perm = archive_entry_perm(entry);
    switch (type) {
      case AE_IFDIR: return Directory(parts, name, perm);
      case AE_IFREG: return RegularFile(tar, entry, parts, name, perm);
      case AE_IFLNK: return Symlink(parts, name, archive_entry_symlink(entry));
      // Device nodes would hand the container the host's hardware (the
      // runtime creates the few /dev nodes a container gets); FIFOs and
      // sockets have no place in an image and only widen what we create.
      case AE_IFCHR: return Refuse("character device nodes are not allowed in an image");
      case AE_IFBLK: return Refuse("block device nodes are not allowed in an image");
      case AE_IFIFO: return Refuse("FIFOs are not allowed in an image");
      case AE_IFSOCK: return Refuse("sockets are not allowed in an image");
      default: return Refuse("unknown entry type " + std::to_string(type));
    }
  }

  // An error resolving a parent path names why it failed.
  Status ResolveError(const std::string& path, int err, const std::string& what) const {
    if (err == EXDEV) {
      return Refuse(what + "path " + QuoteName(path) +
                    " leaves the root filesystem (through an absolute symlink, or a symlink or "
                    "'..' pointing outside it)");
    }
    if (err == ELOOP) return Refuse(what + "too many symlinks resolving " + QuoteName(path));
    if (err == ENOTDIR) return Refuse(what + QuoteName(path) + " is not a directory");
    return Os("resolving " + QuoteName(path), err);
  }

  // The directory holding an entry, resolved beneath the root. create:
  // missing directories are made (mode 0755); otherwise a missing one gives
  // an invalid fd.
  StatusOr<UniqueFd> OpenParent(const std::vector<std::string>& parts, bool create,
                                const std::string& what = "") {
    const std::string path = Join(parts);
    UniqueFd fd(OpenBeneath(root_fd_, path, O_PATH | O_DIRECTORY));
    if (fd.valid()) return fd;
    if (errno != ENOENT) return ResolveError(path, errno, what);
    if (!create) return UniqueFd();
    UniqueFd cur(OpenBeneath(root_fd_, ".", O_PATH | O_DIRECTORY));
    if (!cur.valid()) return Os("opening the root", errno);
    std::vector<std::string> prefix;
    for (const std::string& part : parts) {
      prefix.push_back(part);
      const std::string here = Join(prefix);
      UniqueFd next(OpenBeneath(root_fd_, here, O_PATH | O_DIRECTORY));
      if (!next.valid()) {
        if (errno != ENOENT) return ResolveError(here, errno, what);
        if (::mkdirat(cur.get(), part.c_str(), 0700) != 0) {
          // ENOENT from openat2 but EEXIST here: a symlink to nothing.
          if (errno == EEXIST) return Refuse(what + QuoteName(here) + " is a dangling symlink");
          return Os("mkdir " + QuoteName(here), errno);
        }
        next.reset(
            ::openat(cur.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next.valid()) return Os("open " + QuoteName(here), errno);
        RETURN_IF_ERROR(Settle(next.get(), true, 0755));
      }
      cur = std::move(next);
    }
    return cur;
  }

  // Gives a new or updated inode its final owner and mode and records it as
  // this layer's (whiteouts spare it).
  Status Settle(int fd, bool is_dir, mode_t perm) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Os("fstat", errno);
    // A setgid parent would hand its group down; everything is ours.
    if ((st.st_uid != ::geteuid() || st.st_gid != ::getegid()) &&
        ::fchown(fd, ::geteuid(), ::getegid()) != 0) {
      return Os("fchown", errno);
    }
    if (::fchmod(fd, SanitizedMode(perm, is_dir)) != 0) return Os("fchmod", errno);
    this_layer_.insert({st.st_dev, st.st_ino});
    return Status::Ok();
  }

  bool Mine(const struct stat& st) const { return this_layer_.count({st.st_dev, st.st_ino}) > 0; }

  // Removes parent/name and everything under it, never following symlinks.
  // lower_only: spares inodes this layer created, and the directories
  // holding them (whiteouts hide lower layers only).
  Status RemoveTree(int parent, const std::string& name, bool lower_only, int depth) {
    if (depth > kMaxTreeDepth) {
      return Refuse("removing a tree more than " + std::to_string(kMaxTreeDepth) + " levels deep");
    }
    struct stat st {};
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return Status::Ok();
      return Os("stat " + QuoteName(name), errno);
    }
    const bool keep = lower_only && Mine(st);
    if (S_ISDIR(st.st_mode)) {
      UniqueFd dir(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dir.valid()) return Os("open " + QuoteName(name), errno);
      ASSIGN_OR_RETURN(std::vector<std::string> children, ListDir(dir.get(), QuoteName(name)));
      for (const std::string& child : children) {
        RETURN_IF_ERROR(RemoveTree(dir.get(), child, lower_only, depth + 1));
      }
      if (keep) return Status::Ok();
      if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0) {
        // Still holds something this layer made: it stays as their parent.
        if (lower_only && errno == ENOTEMPTY) return Status::Ok();
        return Os("rmdir " + QuoteName(name), errno);
      }
      return Status::Ok();
    }
    if (keep) return Status::Ok();
    if (::unlinkat(parent, name.c_str(), 0) != 0) return Os("unlink " + QuoteName(name), errno);
    return Status::Ok();
  }

  // Clears the way for a new entry: whatever is at parent/name goes, except
  // a directory when a directory comes (tar semantics: they merge).
  // Returns whether a directory was kept.
  StatusOr<bool> ClearFor(int parent, const std::string& name, bool is_dir) {
    struct stat st {};
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return false;
      return Os("stat", errno);
    }
    if (is_dir && S_ISDIR(st.st_mode)) return true;
    RETURN_IF_ERROR(RemoveTree(parent, name, false, 0));
    return false;
  }

  Status Whiteout(const std::vector<std::string>& parts, const std::string& name) {
    if (name == kOpaqueWhiteout) {
      // Empties the directory of lower-layer content, whether this marker
      // comes before or after the layer's own entries in it.
      UniqueFd listable(OpenBeneath(root_fd_, Join(parts), O_RDONLY | O_DIRECTORY));
      if (!listable.valid()) {
        if (errno == ENOENT) return Status::Ok();  // nothing below to hide
        return ResolveError(Join(parts), errno, "");
      }
      ASSIGN_OR_RETURN(std::vector<std::string> children, ListDir(listable.get(), where_));
      for (const std::string& child : children) {
        RETURN_IF_ERROR(RemoveTree(listable.get(), child, true, 1));
      }
      return Status::Ok();
    }
    // Other .wh..wh.* names are AUFS bookkeeping (hard link directories);
    // Docker and containerd skip them too.
    if (std::string_view(name).substr(0, kWhiteoutMetaPrefix.size()) == kWhiteoutMetaPrefix) {
      return Status::Ok();
    }
    const std::string target = name.substr(kWhiteoutPrefix.size());
    if (target.empty() || target == "." || target == "..") {
      return Refuse("whiteout of " + QuoteName(target) + " names no file");
    }
    ASSIGN_OR_RETURN(UniqueFd parent, OpenParent(parts, false));
    if (!parent.valid()) return Status::Ok();  // nothing below to hide
    return RemoveTree(parent.get(), target, true, 0);
  }

  Status Directory(const std::vector<std::string>& parts, const std::string& name, mode_t perm) {
    ASSIGN_OR_RETURN(UniqueFd parent, OpenParent(parts, true));
    ASSIGN_OR_RETURN(bool kept, ClearFor(parent.get(), name, true));
    if (!kept && ::mkdirat(parent.get(), name.c_str(), 0700) != 0) return Os("mkdir", errno);
    UniqueFd dir(
        ::openat(parent.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir.valid()) return Os("open", errno);
    return Settle(dir.get(), true, perm);
  }

  Status RegularFile(archive* tar, archive_entry* entry, const std::vector<std::string>& parts,
                     const std::string& name, mode_t perm) {
    if (archive_entry_size_is_set(entry) != 0) {
      const auto declared =
          static_cast<uint64_t>(std::max<la_int64_t>(archive_entry_size(entry), 0));
      if (declared > limits_.max_file_bytes) {
        return Refuse("file of " + std::to_string(declared) + " bytes, more than the limit of " +
                      std::to_string(limits_.max_file_bytes));
      }
      if (declared > limits_.max_bytes - std::min(stats_.bytes, limits_.max_bytes)) {
        return Refuse("the image holds more than the limit of " +
                      std::to_string(limits_.max_bytes) + " bytes");
      }
    }
    ASSIGN_OR_RETURN(UniqueFd parent, OpenParent(parts, true));
    ASSIGN_OR_RETURN(bool kept, ClearFor(parent.get(), name, false));
    (void)kept;
    UniqueFd file(::openat(parent.get(), name.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!file.valid()) return Os("create", errno);
    Status s = WriteData(tar, file.get());
    if (!s.ok()) {
      // No half-written file (with its creation mode) stays behind.
      ::unlinkat(parent.get(), name.c_str(), 0);
      return s;
    }
    return Settle(file.get(), false, perm);
  }

  Status WriteData(archive* tar, int fd) {
    uint64_t written = 0;
    for (;;) {
      la_ssize_t n = archive_read_data(tar, file_buf_.data(), file_buf_.size());
      if (n < 0) return StreamError(tar);
      if (n == 0) break;
      const auto got = static_cast<uint64_t>(n);
      written += got;
      stats_.bytes += got;
      if (written > limits_.max_file_bytes) {
        return Refuse("file larger than the limit of " + std::to_string(limits_.max_file_bytes) +
                      " bytes");
      }
      if (stats_.bytes > limits_.max_bytes) {
        return Refuse("the image holds more than the limit of " +
                      std::to_string(limits_.max_bytes) + " bytes");
      }
      Status s = WriteFull(fd, std::span<const uint8_t>(file_buf_.data(), got));
      if (!s.ok()) return s.WithContext(label_ + ": entry " + where_);
    }
    return Status::Ok();
  }

  // A symlink entry is created as is and never followed: its target may be
  // anything (absolute targets are normal in images; inside the container
  // they resolve against the container's root).
  Status Symlink(const std::vector<std::string>& parts, const std::string& name,
                 const char* target) {
    if (target == nullptr || *target == '\0') return Refuse("symlink with an empty target");
    if (std::strlen(target) > limits_.max_path_bytes) {
      return Refuse("symlink target longer than the limit of " +
                    std::to_string(limits_.max_path_bytes) + " bytes");
    }
    ASSIGN_OR_RETURN(UniqueFd parent, OpenParent(parts, true));
    ASSIGN_OR_RETURN(bool kept, ClearFor(parent.get(), name, false));
    (void)kept;
    if (::symlinkat(target, parent.get(), name.c_str()) != 0) return Os("symlink", errno);
    struct stat st {};
    if (::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return Os("stat", errno);
    }
    if ((st.st_uid != ::geteuid() || st.st_gid != ::getegid()) &&
        ::fchownat(parent.get(), name.c_str(), ::geteuid(), ::getegid(), AT_SYMLINK_NOFOLLOW) !=
            0) {
      return Os("lchown", errno);
    }
    this_layer_.insert({st.st_dev, st.st_ino});
    return Status::Ok();
  }

  // A hard link's target must already be in the tree, resolved beneath the
  // root like any path: linking a host file in would hand it to the
  // container.
  Status HardLink(const std::vector<std::string>& parts, const std::string& name,
                  std::string_view target_raw) {
    if (target_raw.size() > limits_.max_path_bytes) {
      return Refuse("hard link target longer than the limit of " +
                    std::to_string(limits_.max_path_bytes) + " bytes");
    }
    const std::string what = "hard link target " + QuoteName(target_raw) + ": ";
    ASSIGN_OR_RETURN(std::vector<std::string> target_parts, SplitPath(target_raw, what));
    if (target_parts.empty()) return Refuse(what + "the root directory");
    const std::string target_name = std::move(target_parts.back());
    target_parts.pop_back();
    ASSIGN_OR_RETURN(UniqueFd target_parent, OpenParent(target_parts, false, what));
    struct stat target {};
    if (!target_parent.valid() ||
        ::fstatat(target_parent.get(), target_name.c_str(), &target, AT_SYMLINK_NOFOLLOW) != 0) {
      if (target_parent.valid() && errno != ENOENT) return Os("stat hard link target", errno);
      return Refuse(what + "not in the tree (a link must come after its target)");
    }
    if (S_ISDIR(target.st_mode)) return Refuse(what + "a directory");
    ASSIGN_OR_RETURN(UniqueFd parent, OpenParent(parts, true));
    struct stat existing {};
    if (::fstatat(parent.get(), name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0 &&
        existing.st_dev == target.st_dev && existing.st_ino == target.st_ino) {
      this_layer_.insert({target.st_dev, target.st_ino});
      return Status::Ok();  // already that link
    }
    ASSIGN_OR_RETURN(bool kept, ClearFor(parent.get(), name, false));
    (void)kept;
    if (::linkat(target_parent.get(), target_name.c_str(), parent.get(), name.c_str(), 0) != 0) {
      return Os("link", errno);
    }
    this_layer_.insert({target.st_dev, target.st_ino});
    return Status::Ok();
  }

  const int root_fd_;
  ByteSource& source_;
  const std::string label_;
  const UnpackLimits& limits_;
  UnpackStats& stats_;

  ArchivePtr raw_;            // decompresses the source
  ArchivePtr tar_;            // reads tar entries from raw_'s output
  std::vector<uint8_t> buf_;  // source reads
  size_t pending_ = 0;        // sniffed bytes in buf_ not yet handed to raw_
  std::vector<uint8_t> tar_buf_ = std::vector<uint8_t>(kChunk);
  std::vector<uint8_t> file_buf_ = std::vector<uint8_t>(kChunk);
  crypto::Sha256Hasher diff_hasher_;
  uint64_t tar_bytes_ = 0;
  Status error_;       // the first source or decompression error
  std::string where_;  // the current entry's path, quoted, for messages
  // Inodes this layer created or re-declared (whiteouts spare them).
  std::set<std::pair<dev_t, ino_t>> this_layer_;
};

// --- image config -------------------------------------------------------------

StatusOr<std::vector<std::string>> StringList(const json& object, const char* key,
                                              const std::string& what) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::vector<std::string>{};
  if (!it->is_array()) return InvalidArgument(what + "." + key + ": expected an array of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < it->size(); ++i) {
    if (!(*it)[i].is_string()) {
      return InvalidArgument(what + "." + key + "[" + std::to_string(i) + "]: expected a string");
    }
    out.push_back((*it)[i].get<std::string>());
  }
  return out;
}

StatusOr<std::string> OptionalString(const json& object, const char* key, const std::string& what) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) return InvalidArgument(what + "." + key + ": expected a string");
  return it->get<std::string>();
}

struct ParsedConfig {
  ImageConfig runtime;
  std::vector<Digest> diff_ids;
};

// ReadLocalImage has checked the config's shape (os, architecture,
// rootfs.diff_ids, no duplicate keys); this reads what the runtime needs.
StatusOr<ParsedConfig> ParseConfig(const std::string& text, const std::string& what) {
  json j = json::parse(text);
  ParsedConfig out;
  const json& diff_ids = j.at("rootfs").at("diff_ids");
  for (size_t i = 0; i < diff_ids.size(); ++i) {
    auto d = Digest::Parse(diff_ids[i].get<std::string>());
    if (!d.ok())
      return d.status().WithContext(what + ".rootfs.diff_ids[" + std::to_string(i) + "]");
    out.diff_ids.push_back(*d);
  }
  auto it = j.find("config");
  if (it == j.end() || it->is_null()) return out;
  const std::string here = what + ".config";
  if (!it->is_object()) return InvalidArgument(here + ": expected an object");
  ImageConfig& c = out.runtime;
  ASSIGN_OR_RETURN(c.entrypoint, StringList(*it, "Entrypoint", here));
  ASSIGN_OR_RETURN(c.cmd, StringList(*it, "Cmd", here));
  ASSIGN_OR_RETURN(c.env, StringList(*it, "Env", here));
  for (size_t i = 0; i < c.env.size(); ++i) {
    const std::string& e = c.env[i];
    if (e.find('=') == std::string::npos || e.front() == '=') {
      return InvalidArgument(here + ".Env[" + std::to_string(i) + "]: " + QuoteName(e) +
                             " is not NAME=value");
    }
  }
  ASSIGN_OR_RETURN(c.working_dir, OptionalString(*it, "WorkingDir", here));
  ASSIGN_OR_RETURN(c.user, OptionalString(*it, "User", here));
  return out;
}

StatusOr<UniqueFd> OpenEmptyRoot(const std::string& rootfs_dir) {
  UniqueFd fd(::open(rootfs_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return NotFound(rootfs_dir + ": rootfs directory does not exist");
    if (errno == ENOTDIR || errno == ELOOP) {
      return InvalidArgument(rootfs_dir + ": rootfs is not a directory (or is a symlink)");
    }
    return ErrnoStatus(rootfs_dir, errno);
  }
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(fd.get(), rootfs_dir));
  if (!names.empty()) {
    return FailedPrecondition(rootfs_dir + ": rootfs directory is not empty (holds " +
                              QuoteName(names.front()) + ")");
  }
  return fd;
}

image::ImageFormat FormatOf(ImageRef::Kind kind) {
  switch (kind) {
    case ImageRef::Kind::kOciArchive: return image::ImageFormat::kOciArchive;
    case ImageRef::Kind::kDockerArchive: return image::ImageFormat::kDockerArchive;
    default: return image::ImageFormat::kOciLayout;
  }
}

StatusOr<ImageConfig> UnpackImageImpl(const ImageRef& ref, const std::string& rootfs_dir,
                                      const UnpackLimits& limits,
                                      const std::string& expected_manifest_digest) {
  if (ref.kind == ImageRef::Kind::kDir) {
    struct stat st {};
    if (::stat(ref.path.c_str(), &st) != 0) return ErrnoStatus("dir:" + ref.path, errno);
    if (!S_ISDIR(st.st_mode)) return InvalidArgument("dir:" + ref.path + ": not a directory");
    ImageConfig config;
    config.env = {kDefaultPath};
    config.working_dir = "/";
    return config;
  }
  Digest expected;
  if (!expected_manifest_digest.empty()) {
    auto parsed = Digest::Parse(expected_manifest_digest);
    if (!parsed.ok()) return parsed.status().WithContext("expected manifest digest");
    expected = *parsed;
  }
  image::ReadOptions options;
  options.max_image_bytes = limits.max_image_bytes;
  options.format = FormatOf(ref.kind);
  options.ref_name = ref.tag;
  ASSIGN_OR_RETURN(image::LocalImage img, image::ReadLocalImage(ref.path, options));
  if (!expected.empty() && img.manifest.digest != expected) {
    return DataLoss(ref.path + ": image manifest is " + img.manifest.digest.str() + ", expected " +
                    expected.str() + " (the digest the job pinned)");
  }
  ASSIGN_OR_RETURN(ParsedConfig config, ParseConfig(img.config_json, ref.path + ": config"));
  const std::vector<Descriptor>& layers = img.layers;
  if (config.diff_ids.size() != layers.size()) {
    return Internal(ref.path + ": config has " + std::to_string(config.diff_ids.size()) +
                    " diff_ids for " + std::to_string(layers.size()) + " layers");
  }
  auto label = [&](size_t i) {
    return ref.path + ": layer " + std::to_string(i) + " (" + layers[i].digest.str() + ")";
  };
  for (size_t i = 0; i < layers.size(); ++i) {
    ASSIGN_OR_RETURN(image::LayerCompression compression,
                     image::LayerCompressionOf(layers[i].media_type));
    if (compression == image::LayerCompression::kZstd) {
      return InvalidArgument(label(i) + ": zstd-compressed layers (" + layers[i].media_type +
                             ") are not supported (re-push the image with gzip or uncompressed "
                             "layers)");
    }
  }
  ASSIGN_OR_RETURN(UniqueFd root, OpenEmptyRoot(rootfs_dir));

  // ForEachBlob delivers each distinct layer once, in manifest order for a
  // layout directory and in archive order for archives. A layer that comes
  // early, or is used twice, waits in an unlinked file inside the rootfs
  // directory (O_TMPFILE: never visible in the tree).
  UnpackStats stats;
  size_t next = 0;
  std::map<Digest, UniqueFd> spooled;
  auto apply = [&](size_t i, ByteSource& source) -> Status {
    const std::string where = label(i);
    ASSIGN_OR_RETURN(Digest diff_id, ApplyLayer(root.get(), source, where, limits, &stats));
    if (diff_id != config.diff_ids[i]) {
      return DataLoss(where + ": uncompressed content hashes to " + diff_id.str() +
                      ", but config rootfs.diff_ids[" + std::to_string(i) + "] says " +
                      config.diff_ids[i].str());
    }
    return Status::Ok();
  };
  auto uses_from = [&](const Digest& d, size_t from) {
    return std::count_if(layers.begin() + static_cast<std::ptrdiff_t>(from), layers.end(),
                         [&](const Descriptor& l) { return l.digest == d; });
  };
  auto apply_spooled = [&]() -> Status {
    while (next < layers.size()) {
      auto it = spooled.find(layers[next].digest);
      if (it == spooled.end()) break;
      if (::lseek(it->second.get(), 0, SEEK_SET) != 0) return ErrnoStatus("lseek spool", errno);
      image::FdSource source(it->second.get(), label(next) + " (spooled)");
      RETURN_IF_ERROR(apply(next, source));
      ++next;
      if (uses_from(it->first, next) == 0) spooled.erase(it);
    }
    return Status::Ok();
  };
  Status visited = img.ForEachBlob([&](const Descriptor& blob, ByteSource& content) -> Status {
    const auto uses = uses_from(blob.digest, next);
    if (uses == 0) return Status::Ok();  // the config or the manifest
    if (uses == 1 && layers[next].digest == blob.digest) {
      RETURN_IF_ERROR(apply(next, content));
      ++next;
      return apply_spooled();
    }
    UniqueFd spool(::openat(root.get(), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!spool.valid()) return ErrnoStatus(rootfs_dir + ": creating a spool file", errno);
    std::vector<uint8_t> buf(kChunk);
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, content.Read(buf));  // verifies at the end
      if (n == 0) break;
      RETURN_IF_ERROR(WriteFull(spool.get(), std::span<const uint8_t>(buf.data(), n)));
    }
    spooled.emplace(blob.digest, std::move(spool));
    return apply_spooled();
  });
  RETURN_IF_ERROR(visited);
  if (next != layers.size()) {
    return Internal(label(next) + ": never delivered by the image reader");
  }
  config.runtime.manifest_digest = img.manifest.digest.str();
  return config.runtime;
}

}  // namespace

StatusOr<ImageRef> ParseImageRef(std::string_view text) {
  const std::string what = "image " + QuoteName(text);
  const size_t colon = text.find(':');
  const std::string_view transport = text.substr(0, colon);
  static const std::pair<std::string_view, ImageRef::Kind> kKinds[] = {
      {"oci", ImageRef::Kind::kOciLayout},
      {"oci-archive", ImageRef::Kind::kOciArchive},
      {"docker-archive", ImageRef::Kind::kDockerArchive},
      {"dir", ImageRef::Kind::kDir},
  };
  const auto* kind = std::find_if(std::begin(kKinds), std::end(kKinds),
                                  [&](const auto& k) { return k.first == transport; });
  if (colon == std::string_view::npos || kind == std::end(kKinds)) {
    return InvalidArgument(what + ": unknown transport " + QuoteName(transport) +
                           " (expected oci:PATH[:TAG], oci-archive:PATH[:TAG], "
                           "docker-archive:PATH[:TAG] or dir:ROOTFS)");
  }
  ImageRef ref;
  ref.kind = kind->second;
  const std::string_view rest = text.substr(colon + 1);
  if (ref.kind == ImageRef::Kind::kDir) {
    ref.path = std::string(rest);  // a rootfs has no tags; ':' is part of the path
  } else {
    const size_t tag_colon = rest.find(':');
    ref.path = std::string(rest.substr(0, tag_colon));
    if (tag_colon != std::string_view::npos) {
      ref.tag = std::string(rest.substr(tag_colon + 1));
      if (ref.tag.empty()) return InvalidArgument(what + ": empty TAG after ':'");
    }
  }
  if (ref.path.empty()) return InvalidArgument(what + ": empty PATH");
  return ref;
}

StatusOr<Digest> ApplyLayer(int rootfs_fd, ByteSource& layer, std::string_view label,
                            const UnpackLimits& limits, UnpackStats* stats) {
  LayerApplier applier(rootfs_fd, layer, label, limits, *stats);
  return applier.Run();
}

StatusOr<ImageConfig> UnpackImage(const ImageRef& ref, const std::string& rootfs_dir,
                                  const UnpackLimits& limits,
                                  const std::string& expected_manifest_digest) {
  // The one boundary where a library exception becomes a Status.
  try {
    return UnpackImageImpl(ref, rootfs_dir, limits, expected_manifest_digest);
  } catch (const json::exception& e) {
    return Internal(ref.path + ": unexpected JSON error in the image config: " + e.what());
  }
}

}  // namespace cce::executor
