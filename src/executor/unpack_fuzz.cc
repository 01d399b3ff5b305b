// libFuzzer target for the layer unpacker (docs/fuzzing.md). Each input is
// one layer (tar, optionally gzip) applied by ApplyLayer, with small limits,
// to an empty directory `rootfs` next to a directory `outside` holding one
// file. Beyond "no crash, no sanitizer report" it checks, whether the layer
// was accepted or refused half-way, the unpacker's promises: nothing outside
// rootfs changed; the tree holds only directories, regular files and
// symlinks; no setuid/setgid bits; everything is readable by all; the limits
// held. The directories are removed after every input.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "base/fd.h"
#include "executor/image_unpack.h"

namespace {

namespace fs = std::filesystem;

[[noreturn]] void Fail() {
  std::abort();
}

constexpr std::string_view kSentinel = "outside the rootfs\n";

cce::executor::UnpackLimits Limits() {
  cce::executor::UnpackLimits limits;
  limits.max_bytes = 1 << 20;
  limits.max_file_bytes = 256 << 10;
  limits.max_tar_bytes = 4 << 20;
  limits.max_entries = 256;
  limits.max_path_depth = 16;
  limits.max_path_bytes = 512;
  return limits;
}

void CheckTree(const fs::path& rootfs, const cce::executor::UnpackLimits& limits) {
  uint64_t bytes = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(rootfs, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) Fail();
    if (S_ISLNK(st.st_mode)) continue;
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) Fail();
    if ((st.st_mode & (S_ISUID | S_ISGID)) != 0) Fail();
    if ((st.st_mode & S_IROTH) == 0) Fail();
    if (S_ISDIR(st.st_mode) && (st.st_mode & S_IXOTH) == 0) Fail();
    if (S_ISREG(st.st_mode)) {
      if ((st.st_mode & S_ISVTX) != 0) Fail();
      if (static_cast<uint64_t>(st.st_size) > limits.max_file_bytes) Fail();
      bytes += static_cast<uint64_t>(st.st_size);
    }
  }
  if (ec) Fail();
  if (bytes > limits.max_bytes) Fail();
}

void CheckOutside(const fs::path& base) {
  size_t names = 0;
  for (const auto& e : fs::directory_iterator(base)) {
    ++names;
    if (e.path().filename() != "rootfs" && e.path().filename() != "outside") Fail();
  }
  if (names != 2) Fail();
  size_t outside = 0;
  for (const auto& e : fs::directory_iterator(base / "outside")) {
    ++outside;
    if (e.path().filename() != "sentinel" || !e.is_regular_file() || e.is_symlink()) Fail();
  }
  if (outside != 1) Fail();
  // Not hard-linked into the rootfs either.
  struct stat st {};
  if (::lstat((base / "outside" / "sentinel").c_str(), &st) != 0 || st.st_nlink != 1) Fail();
  std::ifstream in(base / "outside" / "sentinel", std::ios::binary);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (got != kSentinel) Fail();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string tmpl = (fs::temp_directory_path() / "cce-unpack-fuzz-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) Fail();
  const fs::path base(tmpl);
  fs::create_directory(base / "rootfs");
  fs::create_directory(base / "outside");
  std::ofstream(base / "outside" / "sentinel", std::ios::binary) << kSentinel;
  {
    cce::UniqueFd root(::open((base / "rootfs").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid()) Fail();
    cce::image::BufferSource source(std::string_view(reinterpret_cast<const char*>(data), size));
    const auto limits = Limits();
    cce::executor::UnpackStats stats;
    const auto diff_id =
        cce::executor::ApplyLayer(root.get(), source, "fuzz layer", limits, &stats);
    if (!diff_id.ok() && diff_id.status().message().empty()) Fail();
    if (diff_id.ok() && (diff_id->empty() || stats.layers != 1)) Fail();
    if (stats.bytes > limits.max_bytes) Fail();
    CheckTree(base / "rootfs", limits);
    CheckOutside(base);
  }
  std::error_code ec;
  fs::remove_all(base, ec);
  return 0;
}
