// Fuzzes unpacking a dataset sample's tar (sample_tar.h): the provider
// wrote those bytes. Byte 0 picks the size of the pieces the rest is fed in
// ((b % 64 + 1) * 97 bytes, as reads of the uploaded file would be). The
// tar is unpacked into a fresh directory that is removed afterwards. Nothing
// may crash, hang or read past a piece; whatever is accepted has a listing
// that matches its digest, and nothing lands outside the directory.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/fd.h"
#include "plane/sample_tar.h"

namespace {

// One scratch directory per process: root/ holds `out`, unpacked into and
// removed per input; anything else appearing in root/ is an escape.
char g_root[4096];  // removed (empty) at exit

const std::string& Root() {
  static const std::string root = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string t = std::string(tmp != nullptr ? tmp : "/tmp") + "/sample_tar_fuzz_XXXXXX";
    if (t.size() >= sizeof(g_root) || ::mkdtemp(t.data()) == nullptr) std::abort();
    std::copy(t.begin(), t.end(), g_root);
    std::atexit([] { ::rmdir(g_root); });
    return t;
  }();
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t piece = (data[0] % 64 + 1) * size_t{97};
  const uint8_t* p = data + 1;
  size_t left = size - 1;
  std::vector<uint8_t> current;  // a copy, so a read past the piece is caught by ASan
  auto source = [&]() -> cce::StatusOr<cce::crypto::ByteSpan> {
    const size_t n = left < piece ? left : piece;
    current.assign(p, p + n);
    p += n;
    left -= n;
    return cce::crypto::ByteSpan(current.data(), current.size());
  };
  const std::string& root = Root();
  cce::UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid() || ::mkdirat(root_fd.get(), "out", 0700) != 0) std::abort();
  {
    cce::UniqueFd out(::openat(root_fd.get(), "out", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!out.valid()) std::abort();
    cce::plane::SampleLimits limits;
    limits.max_files = 200;
    limits.max_bytes = 1 << 20;
    auto r = cce::plane::UnpackSampleTar(source, out.get(), "fuzz sample", limits);
    if (r.ok() && r->files_digest != cce::plane::SampleFilesDigest(r->files)) std::abort();
  }
  if (!cce::plane::RemoveSampleTree(root_fd.get(), "out").ok()) std::abort();
  // Nothing but "out" was ever created in root/.
  if (::rmdir(root.c_str()) != 0 || ::mkdir(root.c_str(), 0700) != 0) std::abort();
  return 0;
}
