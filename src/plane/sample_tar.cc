#include "plane/sample_tar.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <set>

#include "base/fd.h"

namespace cce::plane {
namespace {

std::string Quoted(std::string_view s) {
  return "'" + std::string(s) + "'";
}

// The directory `path` below `root_fd` (each part created 0755 if absent,
// recorded in `created`), never following a symlink. A part that exists
// as something else is kInvalidArgument naming `member`.
StatusOr<UniqueFd> OpenDirs(int root_fd, std::string_view path, const std::string& member,
                            std::set<std::string>* created) {
  UniqueFd cur(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (!cur.valid()) return ErrnoStatus("sample directory", errno);
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string part(path.substr(start, end - start));
    const std::string so_far(path.substr(0, end));
    if (::mkdirat(cur.get(), part.c_str(), 0755) == 0) {
      created->insert(so_far);
    } else if (errno != EEXIST) {
      return ErrnoStatus(member + ": creating " + Quoted(so_far), errno);
    }
    UniqueFd next(
        ::openat(cur.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) {
      if (errno == ENOTDIR || errno == ELOOP) {
        return InvalidArgument(member + ": " + Quoted(so_far) +
                               " is a file earlier in the tar, not a directory");
      }
      return ErrnoStatus(member + ": opening " + Quoted(so_far), errno);
    }
    cur = std::move(next);
    start = end + 1;
  }
  return cur;
}

Status WriteAll(int fd, const uint8_t* p, size_t n, const std::string& member) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(member + ": writing", errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::string> SampleMemberPath(std::string_view name) {
  const std::string shown = Quoted(name.substr(0, 300));
  if (!name.empty() && name.front() == '/') {
    return InvalidArgument("member " + shown + ": an absolute path");
  }
  std::string_view p = name;
  while (p.starts_with("./")) p.remove_prefix(2);
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  if (p.empty() || p == ".") return std::string();
  if (p.size() > kMaxSamplePathBytes) {
    return InvalidArgument("member " + shown + ": a path of " + std::to_string(p.size()) +
                           " bytes, at most " + std::to_string(kMaxSamplePathBytes) + " allowed");
  }
  if (!LooksLikeText(p, false) || p.find_first_of("\t\n\r") != std::string_view::npos) {
    return InvalidArgument("member " + shown +
                           ": the name is not UTF-8 text without control characters");
  }
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    const std::string_view part = p.substr(start, end - start);
    if (part == "..") return InvalidArgument("member " + shown + ": a '..' part");
    if (part.empty() || part == ".") {
      return InvalidArgument("member " + shown + ": an empty or '.' part");
    }
    start = end + 1;
  }
  return std::string(p);
}

crypto::Sha256Digest SampleFilesDigest(const std::vector<SampleFile>& sorted) {
  crypto::Sha256Hasher h;
  h.Update(crypto::AsBytes(std::string_view("cce-sample-files-v1\n")));
  for (const SampleFile& f : sorted) {
    const std::string line = f.sha256 + " " + std::to_string(f.size) + " " + f.path + "\n";
    h.Update(crypto::AsBytes(line));
  }
  return h.Finish();
}

StatusOr<UnpackedSample> UnpackSampleTar(BundleTar::Source source, int dir_fd,
                                         const std::string& what, const SampleLimits& limits) {
  // Directories count as entries too: allow as many as files, and a few.
  ASSIGN_OR_RETURN(auto tar, BundleTar::Open(std::move(source), what, limits.max_files * 2 + 16));
  UnpackedSample out;
  std::set<std::string> dirs;  // every directory created, for the final chmod
  std::set<std::string> seen;  // file paths, to refuse a duplicate
  std::vector<uint8_t> buf(256 * 1024);
  for (;;) {
    ASSIGN_OR_RETURN(auto entry, tar->NextAny());
    if (!entry) break;
    auto path = SampleMemberPath(entry->path);
    if (!path.ok()) return InvalidArgument(what + ": " + path.status().message());
    const std::string member = what + ": member " + Quoted(*path);
    using Kind = BundleTar::Kind;
    switch (entry->kind) {
      case Kind::kDirectory: {
        if (path->empty()) break;  // the archive's root
        ASSIGN_OR_RETURN(UniqueFd d, OpenDirs(dir_fd, *path, member, &dirs));
        break;
      }
      case Kind::kFile: {
        if (path->empty()) return InvalidArgument(member + ": a file without a name");
        if (out.files.size() >= limits.max_files) {
          return ResourceExhausted(member + ": more than " + std::to_string(limits.max_files) +
                                   " files");
        }
        if (entry->size > limits.max_bytes - out.total_bytes) {
          return ResourceExhausted(member + ": the sample would exceed " +
                                   std::to_string(limits.max_bytes) +
                                   " bytes (explore.max_sample_bytes)");
        }
        if (!seen.insert(*path).second) return InvalidArgument(member + ": a duplicate path");
        const size_t slash = path->rfind('/');
        const std::string parent = slash == std::string::npos ? "" : path->substr(0, slash);
        const std::string base = slash == std::string::npos ? *path : path->substr(slash + 1);
        ASSIGN_OR_RETURN(UniqueFd d, OpenDirs(dir_fd, parent, member, &dirs));
        UniqueFd f(::openat(d.get(), base.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!f.valid()) {
          if (errno == EEXIST) return InvalidArgument(member + ": a directory of that name");
          return ErrnoStatus(member, errno);
        }
        crypto::Sha256Hasher h;
        uint64_t written = 0;
        for (;;) {
          ASSIGN_OR_RETURN(size_t n, tar->Read(buf));
          if (n == 0) break;
          if (n > entry->size - written) {
            return InvalidArgument(member + ": more data than its header says");
          }
          h.Update(crypto::ByteSpan(buf.data(), n));
          RETURN_IF_ERROR(WriteAll(f.get(), buf.data(), n, member));
          written += n;
        }
        if (written != entry->size) {
          return InvalidArgument(member + ": " + std::to_string(written) + " bytes of " +
                                 std::to_string(entry->size) + " (a truncated tar)");
        }
        if (::fchmod(f.get(), 0444) != 0 || ::fsync(f.get()) != 0) {
          return ErrnoStatus(member, errno);
        }
        const auto digest = h.Finish();
        out.files.push_back({*path, written, crypto::ToHex(digest)});
        out.total_bytes += written;
        break;
      }
      case Kind::kSymlink: return InvalidArgument(member + ": a symbolic link");
      case Kind::kHardlink: return InvalidArgument(member + ": a hard link");
      case Kind::kOther:
        return InvalidArgument(member + ": a device, FIFO or socket (only files and directories)");
    }
  }
  // Read-only from here on. Any order works: 0555 keeps search permission.
  for (const std::string& d : dirs) {
    if (::fchmodat(dir_fd, d.c_str(), 0555, 0) != 0) {
      return ErrnoStatus(what + ": " + Quoted(d), errno);
    }
  }
  std::sort(out.files.begin(), out.files.end(),
            [](const SampleFile& a, const SampleFile& b) { return a.path < b.path; });
  out.files_digest = SampleFilesDigest(out.files);
  return out;
}

Status RemoveSampleTree(int parent_fd, const std::string& name) {
  struct stat st {};
  if (::fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus(name, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(parent_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoStatus(name, errno);
    }
    return Status::Ok();
  }
  // Writable (and searchable) first, so its entries can go.
  if (::fchmodat(parent_fd, name.c_str(), 0700, 0) != 0) return ErrnoStatus(name, errno);
  UniqueFd fd(::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(name, errno);
  std::vector<std::string> children;
  {
    const int dup = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return ErrnoStatus(name, errno);
    DIR* dir = ::fdopendir(dup);
    if (dir == nullptr) {
      const int err = errno;
      ::close(dup);
      return ErrnoStatus(name, err);
    }
    while (dirent* e = ::readdir(dir)) {
      const std::string child = e->d_name;
      if (child != "." && child != "..") children.push_back(child);
    }
    ::closedir(dir);
  }
  for (const std::string& child : children) {
    Status s = RemoveSampleTree(fd.get(), child);
    if (!s.ok()) return s.WithContext(name);
  }
  if (::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoStatus(name, errno);
  }
  return Status::Ok();
}

}  // namespace cce::plane
