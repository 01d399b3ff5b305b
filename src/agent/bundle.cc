#include "agent/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <vector>

#include "base/fd.h"

namespace cce::agent {
namespace {

struct ArchiveCloser {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryCloser {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

class Packer {
 public:
  Packer(archive* a, const BundleLimits& limits) : a_(a), limits_(limits) {}

  Status Header(const std::string& path, bool dir, uint64_t size) {
    if (++entries_ > limits_.max_entries) {
      return ResourceExhausted("bundle: more than " + std::to_string(limits_.max_entries) +
                               " entries (at " + path + ")");
    }
    std::unique_ptr<archive_entry, EntryCloser> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), path.c_str());
    archive_entry_set_filetype(e.get(), dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e.get(), dir ? 0755 : 0644);
    archive_entry_set_size(e.get(), dir ? 0 : static_cast<la_int64_t>(size));
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    archive_entry_set_mtime(e.get(), 0, 0);
    if (archive_write_header(a_, e.get()) != ARCHIVE_OK) return Error(path);
    return Status::Ok();
  }

  Status Data(const std::string& path, const uint8_t* p, size_t n) {
    bytes_ += n;
    if (bytes_ > limits_.max_bytes) {
      return ResourceExhausted("bundle: more than " + std::to_string(limits_.max_bytes) +
                               " bytes (at " + path + ")");
    }
    while (n > 0) {
      la_ssize_t w = archive_write_data(a_, p, n);
      if (w <= 0) return Error(path);
      p += w;
      n -= static_cast<size_t>(w);
    }
    return Status::Ok();
  }

  // Packs the directory open at dir_fd, whose bundle path is `prefix`.
  Status Dir(int dir_fd, const std::string& prefix, int depth) {
    if (depth > 64)
      return ResourceExhausted("bundle: directories nested deeper than 64 at " + prefix);
    std::vector<std::string> names;
    {
      int dup_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
      if (dup_fd < 0) return ErrnoStatus("bundle: " + prefix, errno);
      DIR* d = fdopendir(dup_fd);
      if (d == nullptr) {
        close(dup_fd);
        return ErrnoStatus("bundle: " + prefix, errno);
      }
      while (dirent* de = readdir(d)) {
        std::string n = de->d_name;
        if (n != "." && n != "..") names.push_back(std::move(n));
      }
      closedir(d);
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      const std::string path = prefix.empty() ? name : prefix + "/" + name;
      struct stat st {};
      if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoStatus("bundle: " + path, errno);
      }
      if (S_ISDIR(st.st_mode)) {
        UniqueFd sub(openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub.valid()) return ErrnoStatus("bundle: " + path, errno);
        RETURN_IF_ERROR(Header(path + "/", true, 0));
        RETURN_IF_ERROR(Dir(sub.get(), path, depth + 1));
      } else if (S_ISREG(st.st_mode)) {
        UniqueFd f(openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        if (!f.valid()) return ErrnoStatus("bundle: " + path, errno);
        struct stat fst {};
        if (fstat(f.get(), &fst) != 0 || !S_ISREG(fst.st_mode)) {
          return FailedPrecondition("bundle: " + path + " is not a regular file any more");
        }
        RETURN_IF_ERROR(Header(path, false, static_cast<uint64_t>(fst.st_size)));
        std::vector<uint8_t> buf(256 << 10);
        uint64_t off = 0;
        while (off < static_cast<uint64_t>(fst.st_size)) {
          ASSIGN_OR_RETURN(size_t n, PreadFull(f.get(), buf, off));
          if (n == 0) return DataLoss("bundle: " + path + " shrank while being packed");
          n = static_cast<size_t>(std::min<uint64_t>(n, static_cast<uint64_t>(fst.st_size) - off));
          RETURN_IF_ERROR(Data(path, buf.data(), n));
          off += n;
        }
        ++files_;
      } else {
        return FailedPrecondition("bundle: " + path +
                                  " is neither a regular file nor a directory; refused");
      }
    }
    return Status::Ok();
  }

  uint64_t files() const { return files_; }
  void CountFile() { ++files_; }

 private:
  Status Error(const std::string& path) {
    return Status(
        StatusCode::kIo,
        "bundle: " + path + ": " +
            std::string(archive_error_string(a_) ? archive_error_string(a_) : "write failed"));
  }
  archive* a_;
  BundleLimits limits_;
  uint64_t entries_ = 0;
  uint64_t bytes_ = 0;
  uint64_t files_ = 0;
};

}  // namespace

StatusOr<PackedBundle> PackBundle(const std::string& dir, int out_fd, const BundleLimits& limits,
                                  const std::string& extra_name, const std::string& extra_content) {
  UniqueFd root(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid()) return ErrnoStatus("bundle: open " + dir, errno);
  std::unique_ptr<archive, ArchiveCloser> a(archive_write_new());
  if (!a || archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK ||
      archive_write_open_fd(a.get(), out_fd) != ARCHIVE_OK) {
    return Internal("bundle: cannot start the tar writer");
  }
  Packer packer(a.get(), limits);
  if (!extra_name.empty()) {
    RETURN_IF_ERROR(packer.Header(extra_name, false, extra_content.size()));
    RETURN_IF_ERROR(packer.Data(extra_name, reinterpret_cast<const uint8_t*>(extra_content.data()),
                                extra_content.size()));
    packer.CountFile();
  }
  RETURN_IF_ERROR(packer.Dir(root.get(), "", 0));
  if (archive_write_close(a.get()) != ARCHIVE_OK) return Internal("bundle: closing the tar failed");

  PackedBundle out;
  out.files = packer.files();
  struct stat st {};
  if (fstat(out_fd, &st) != 0) return ErrnoStatus("bundle: stat", errno);
  out.size = static_cast<uint64_t>(st.st_size);
  return out;
}

}  // namespace cce::agent
