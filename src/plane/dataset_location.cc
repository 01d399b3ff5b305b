#include "plane/dataset_location.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "format/format.h"

namespace cce::plane {
namespace {

std::vector<std::string_view> SplitParts(std::string_view rest) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start < rest.size()) {
    size_t end = rest.find('/', start);
    if (end == std::string_view::npos) end = rest.size();
    parts.push_back(rest.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// For the log's wording only (the open already failed): O_NOFOLLOW reports a
// symlink as ELOOP, or ENOTDIR with O_DIRECTORY.
bool IsSymlink(int dir_fd, const std::string& name) {
  struct stat st {};
  return ::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

}  // namespace

Status RefuseControlCharacters(std::string_view text, std::string_view what) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      return InvalidArgument(std::string(what) + ": control character at offset " +
                             std::to_string(i) + ": expected none");
    }
  }
  return Status::Ok();
}

StatusOr<UniqueFd> OpenDatasetManifest(const std::vector<std::string>& roots, std::string_view path,
                                       uint64_t max_bytes) {
  const std::string shown(path);
  RETURN_IF_ERROR(RefuseControlCharacters(path, "location"));
  if (path.empty() || path.front() != '/') return InvalidArgument(shown + ": not absolute");
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  for (std::string_view part : SplitParts(path.substr(1))) {
    if (part.empty() || part == "." || part == "..") {
      return InvalidArgument(shown + ": empty, '.' or '..' part");
    }
  }
  // The longest root that is PATH or a parent of it.
  const std::string* root = nullptr;
  for (const std::string& r : roots) {
    const bool under = path == r || (path.size() > r.size() && path.substr(0, r.size()) == r &&
                                     path[r.size()] == '/');
    if (under && (root == nullptr || r.size() > root->size())) root = &r;
  }
  if (root == nullptr) {
    return PermissionDenied(shown + ": outside the allowed dataset roots (datasets.allowed_roots)");
  }
  // The root is the operator's: symlinks in it are followed. Below it,
  // nothing is.
  UniqueFd dir(::open(root->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return ErrnoStatus("dataset root " + *root, errno);
  std::string walked = *root;
  for (std::string_view part : SplitParts(path.substr(root->size()))) {
    if (part.empty()) continue;  // the '/' after the root
    walked += "/" + std::string(part);
    const std::string name(part);
    UniqueFd next(::openat(dir.get(), name.c_str(),
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!next.valid()) {
      const int err = errno;
      if (IsSymlink(dir.get(), name))
        return PermissionDenied(walked + ": a symlink (not followed)");
      return ErrnoStatus(walked, err);
    }
    dir = std::move(next);
  }
  const std::string manifest = walked + "/" + format::kManifestName;
  UniqueFd fd(
      ::openat(dir.get(), format::kManifestName, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    if (IsSymlink(dir.get(), format::kManifestName)) {
      return PermissionDenied(manifest + ": a symlink (not followed)");
    }
    return ErrnoStatus(manifest, err);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(manifest, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(manifest + ": not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return InvalidArgument(manifest + ": " + std::to_string(st.st_size) +
                           " bytes, over the limit of " + std::to_string(max_bytes) +
                           " (datasets.max_manifest_bytes)");
  }
  return fd;
}

}  // namespace cce::plane
