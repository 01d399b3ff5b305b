#include "image/blob_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

namespace cce::image {
namespace {

constexpr std::string_view kSha256Prefix = "sha256:";
constexpr size_t kSha256HexLen = 64;
constexpr size_t kCopyChunk = 1 << 20;

bool IsLowerHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// Quotes untrusted text for an error message, bounded and printable.
std::string Quote(std::string_view s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 100; ++i) {
    char c = s[i];
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (s.size() > 100) out += "...";
  out += "'";
  return out;
}

// Owns a temp file: unlinked on destruction unless Publish()ed.
class TempFile {
 public:
  TempFile() = default;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    fd_.reset();
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  Status Create(const std::string& dir) {
    std::string tmpl = dir + "/put-XXXXXX";
    int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("mkostemp " + tmpl, errno);
    fd_.reset(fd);
    path_ = tmpl;
    return Status::Ok();
  }
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

  Status Publish(const std::string& final_path) {
    fd_.reset();
    if (::rename(path_.c_str(), final_path.c_str()) != 0) {
      return ErrnoStatus("rename " + path_ + " -> " + final_path, errno);
    }
    path_.clear();
    return Status::Ok();
  }

 private:
  UniqueFd fd_;
  std::string path_;
};

Status FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + dir, errno);
  if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync " + dir, errno);
  return Status::Ok();
}

Status MismatchError(const Digest& expected, const Digest& actual, uint64_t size) {
  return DataLoss("blob " + expected.str() + ": content hashes to " + actual.str() + " (" +
                  std::to_string(size) + " bytes), expected " + expected.str());
}

}  // namespace

StatusOr<Digest> Digest::Parse(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return InvalidArgument("digest " + Quote(text) +
                           ": expected 'sha256:<64 lower-case hex digits>'");
  }
  std::string_view alg = text.substr(0, colon);
  if (alg != "sha256") {
    return InvalidArgument("digest " + Quote(text) + ": unsupported algorithm " + Quote(alg) +
                           " (only sha256 is accepted)");
  }
  std::string_view hex = text.substr(colon + 1);
  if (hex.size() != kSha256HexLen || !std::all_of(hex.begin(), hex.end(), IsLowerHex)) {
    return InvalidArgument("digest " + Quote(text) +
                           ": expected 'sha256:' followed by 64 lower-case hex digits");
  }
  return Digest(std::string(text));
}

Digest Digest::FromSha256(const crypto::Sha256Digest& sha) {
  return Digest(std::string(kSha256Prefix) + crypto::ToHex(sha));
}

Digest Digest::Of(std::string_view data) {
  return FromSha256(crypto::Sha256(crypto::AsBytes(data)));
}

std::string_view Digest::hex() const {
  if (value_.empty()) return {};
  return std::string_view(value_).substr(kSha256Prefix.size());
}

StatusOr<size_t> FdSource::Read(std::span<uint8_t> buf) {
  for (;;) {
    ssize_t n = ::read(fd_, buf.data(), buf.size());
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return ErrnoStatus(what_ + ": read", errno);
  }
}

StatusOr<size_t> BufferSource::Read(std::span<uint8_t> buf) {
  size_t n = std::min(buf.size(), data_.size());
  std::memcpy(buf.data(), data_.data(), n);
  data_.remove_prefix(n);
  return n;
}

BlobStore::BlobStore(std::string root)
    : root_(std::move(root)), blob_dir_(root_ + "/blobs/sha256"), tmp_dir_(root_ + "/tmp") {}

StatusOr<BlobStore> BlobStore::Create(const std::string& root) {
  if (root.empty()) return InvalidArgument("blob store: empty root path");
  BlobStore store(root);
  for (const std::string& dir : {store.blob_dir_, store.tmp_dir_}) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status(StatusCode::kIo, "blob store: mkdir " + dir + ": " + ec.message());
  }
  return store;
}

std::string BlobStore::Path(const Digest& digest) const {
  return blob_dir_ + "/" + std::string(digest.hex());
}

StatusOr<Digest> BlobStore::Put(ByteSource& source, const Digest& expected,
                                uint64_t max_bytes) const {
  if (expected.empty()) return InvalidArgument("blob store: Put without an expected digest");
  TempFile tmp;
  RETURN_IF_ERROR(tmp.Create(tmp_dir_));

  crypto::Sha256Hasher hasher;
  std::vector<uint8_t> buf(kCopyChunk);
  uint64_t total = 0;
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, source.Read(buf));
    if (n == 0) break;
    total += n;
    if (total > max_bytes) {
      return InvalidArgument("blob " + expected.str() + ": larger than the limit of " +
                             std::to_string(max_bytes) + " bytes");
    }
    std::span<const uint8_t> chunk(buf.data(), n);
    hasher.Update(chunk);
    RETURN_IF_ERROR(WriteFull(tmp.fd(), chunk).WithContext(tmp.path()));
  }
  if (::fsync(tmp.fd()) != 0) return ErrnoStatus("fsync " + tmp.path(), errno);
  Digest actual = Digest::FromSha256(hasher.Finish());
  if (actual != expected) return MismatchError(expected, actual, total);

  // Stored blobs are immutable; the mode says so to anyone poking at the tree.
  if (::fchmod(tmp.fd(), 0444) != 0) return ErrnoStatus("fchmod " + tmp.path(), errno);
  RETURN_IF_ERROR(tmp.Publish(Path(expected)));
  RETURN_IF_ERROR(FsyncDir(blob_dir_));
  return actual;
}

StatusOr<Digest> BlobStore::PutFromFd(int fd, const Digest& expected, uint64_t max_bytes) const {
  FdSource source(fd, "blob " + expected.str() + " source");
  return Put(source, expected, max_bytes);
}

StatusOr<Digest> BlobStore::PutBytes(std::string_view data, const Digest& expected) const {
  BufferSource source(data);
  return Put(source, expected, data.size());
}

StatusOr<Digest> BlobStore::Adopt(int fd, const Digest& expected, uint64_t max_bytes) const {
  if (expected.empty()) return InvalidArgument("blob store: Adopt without an expected digest");
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus("blob " + expected.str() + " source: fstat", errno);
  if (!S_ISREG(st.st_mode) || st.st_nlink != 0) {
    // Not an anonymous file: never link a file someone else has a name for.
    if (::lseek(fd, 0, SEEK_SET) != 0) return ErrnoStatus("blob source: lseek", errno);
    return PutFromFd(fd, expected, max_bytes);
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return InvalidArgument("blob " + expected.str() + ": larger than the limit of " +
                           std::to_string(max_bytes) + " bytes");
  }
  crypto::Sha256Hasher hasher;
  std::vector<uint8_t> buf(kCopyChunk);
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(total));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("blob " + expected.str() + " source: read", errno);
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > max_bytes) {
      return InvalidArgument("blob " + expected.str() + ": larger than the limit of " +
                             std::to_string(max_bytes) + " bytes");
    }
    hasher.Update(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
  }
  Digest actual = Digest::FromSha256(hasher.Finish());
  if (actual != expected) return MismatchError(expected, actual, total);
  if (::fsync(fd) != 0) return ErrnoStatus("fsync blob " + expected.str(), errno);
  if (::fchmod(fd, 0444) != 0) return ErrnoStatus("fchmod blob " + expected.str(), errno);
  // Give the anonymous file a temporary name, then publish it like Put does.
  // linkat through /proc needs no privilege for an O_TMPFILE file.
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::array<uint8_t, 8> rnd{};
    RETURN_IF_ERROR(crypto::RandomBytes(rnd));
    const std::string tmp = tmp_dir_ + "/adopt-" + crypto::ToHex(rnd);
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, tmp.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      if (errno == EEXIST) continue;
      // ENOENT (an unlinked named file), EXDEV, no /proc: copy instead.
      if (::lseek(fd, 0, SEEK_SET) != 0) return ErrnoStatus("blob source: lseek", errno);
      return PutFromFd(fd, expected, max_bytes);
    }
    if (::rename(tmp.c_str(), Path(expected).c_str()) != 0) {
      Status err = ErrnoStatus("rename " + tmp + " -> " + Path(expected), errno);
      ::unlink(tmp.c_str());
      return err;
    }
    RETURN_IF_ERROR(FsyncDir(blob_dir_));
    return actual;
  }
  return Internal("blob store: could not name a temporary file in " + tmp_dir_);
}

StatusOr<std::vector<Digest>> BlobStore::List() const {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(blob_dir_.c_str()), ::closedir);
  if (!dir) return ErrnoStatus("opendir " + blob_dir_, errno);
  std::vector<Digest> out;
  errno = 0;
  while (const dirent* e = ::readdir(dir.get())) {
    auto d = Digest::Parse(std::string(kSha256Prefix) + e->d_name);
    if (d.ok()) out.push_back(*d);
    errno = 0;
  }
  if (errno != 0) return ErrnoStatus("readdir " + blob_dir_, errno);
  std::sort(out.begin(), out.end());
  return out;
}

Status BlobStore::Remove(const Digest& digest) const {
  if (digest.empty()) return InvalidArgument("blob store: empty digest");
  if (::unlink(Path(digest).c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus("unlink " + Path(digest), errno);
  }
  return Status::Ok();
}

bool BlobStore::Has(const Digest& digest) const {
  if (digest.empty()) return false;
  struct stat st {};
  return ::lstat(Path(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

StatusOr<UniqueFd> BlobStore::Open(const Digest& digest) const {
  if (digest.empty()) return InvalidArgument("blob store: empty digest");
  std::string path = Path(digest);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return NotFound("blob " + digest.str() + ": not in the store");
    return ErrnoStatus("open " + path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat " + path, errno);
  if (!S_ISREG(st.st_mode)) return DataLoss(path + ": not a regular file");
  return fd;
}

StatusOr<uint64_t> BlobStore::Size(const Digest& digest) const {
  ASSIGN_OR_RETURN(UniqueFd fd, Open(digest));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat " + Path(digest), errno);
  return static_cast<uint64_t>(st.st_size);
}

Status BlobStore::Verify(const Digest& digest) const {
  ASSIGN_OR_RETURN(UniqueFd fd, Open(digest));
  crypto::Sha256Hasher hasher;
  std::vector<uint8_t> buf(kCopyChunk);
  uint64_t total = 0;
  FdSource source(fd.get(), Path(digest));
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, source.Read(buf));
    if (n == 0) break;
    total += n;
    hasher.Update(std::span<const uint8_t>(buf.data(), n));
  }
  Digest actual = Digest::FromSha256(hasher.Finish());
  if (actual != digest) return MismatchError(digest, actual, total).WithContext(Path(digest));
  return Status::Ok();
}

}  // namespace cce::image
