// libFuzzer target for the image readers (docs/fuzzing.md). An input that
// starts with '{' is an uploaded image manifest, checked by the plane's
// ValidateStoredManifest against a small blob store (one config blob and
// one layer blob, fixed below, which the manifest seeds reference); any
// other input is an image archive file (oci-archive or docker-archive tar,
// optionally gzip-compressed) read by ReadLocalImage, as `cce image push`
// reads one, followed by a pass of ForEachBlob over everything it found.
// Beyond "no crash, no sanitizer report" it checks the reader's promises:
// an accepted image's manifest digest is the SHA-256 of its bytes, its total
// size adds up, and every blob ForEachBlob delivers yields exactly its size
// and verifies.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "image/blob_store.h"
#include "image/image.h"

namespace {

namespace fs = std::filesystem;
using cce::Status;
using cce::image::BlobStore;
using cce::image::Descriptor;
using cce::image::Digest;

[[noreturn]] void Fail() {
  std::abort();
}

// The blobs the manifest seeds point at (tests/data/fuzz/make_seeds.py
// writes the same bytes).
constexpr std::string_view kLayer = "cce4long fuzz layer\n";
std::string ConfigJson() {
  return R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[")" +
         Digest::Of(kLayer).str() + R"("]}})";
}

// Removes the store's directory when the process ends normally.
struct TempStore {
  fs::path root;
  BlobStore store;
  ~TempStore() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

const BlobStore& Store() {
  static const TempStore* temp = [] {
    std::string tmpl = (fs::temp_directory_path() / "cce-image-fuzz-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) Fail();
    auto store = BlobStore::Create(tmpl + "/blobs");
    if (!store.ok()) Fail();
    const std::string config = ConfigJson();
    if (!store->PutBytes(config, Digest::Of(config)).ok()) Fail();
    if (!store->PutBytes(kLayer, Digest::Of(kLayer)).ok()) Fail();
    return new TempStore{tmpl, std::move(store).value()};
  }();
  static const struct Cleanup {
    ~Cleanup() { delete temp; }
  } cleanup;
  return temp->store;
}

// One memfd for the whole run, rewritten per input; ReadLocalImage opens it
// by its /proc path as it would open an archive file.
const std::string& InputPath() {
  static const std::string path = [] {
    const int fd = ::memfd_create("image_fuzz.tar", MFD_CLOEXEC);
    if (fd < 0) Fail();
    return "/proc/self/fd/" + std::to_string(fd);
  }();
  return path;
}

void WriteInput(const uint8_t* data, size_t size) {
  const int fd = std::stoi(InputPath().substr(std::string_view("/proc/self/fd/").size()));
  if (::ftruncate(fd, 0) != 0) Fail();
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) Fail();
    done += static_cast<size_t>(n);
  }
}

void CheckStoredManifest(std::string_view json) {
  const auto info = cce::image::ValidateStoredManifest(json, Store(), uint64_t{1} << 30);
  if (!info.ok()) {
    if (info.status().message().empty()) Fail();
    return;
  }
  if (info->digest != Digest::Of(json)) Fail();
  if (info->total_size < json.size() + info->config.size) Fail();
}

void CheckArchive(const uint8_t* data, size_t size) {
  WriteInput(data, size);
  cce::image::ReadOptions options;
  options.max_image_bytes = uint64_t{64} << 20;
  const auto image = cce::image::ReadLocalImage(InputPath(), options);
  if (!image.ok()) {
    if (image.status().message().empty()) Fail();
    return;
  }
  if (image->manifest.digest != Digest::Of(image->manifest_json) ||
      image->manifest.size != image->manifest_json.size() ||
      image->config.digest != Digest::Of(image->config_json)) {
    Fail();
  }
  uint64_t total = image->manifest.size + image->config.size;
  std::set<Digest> seen;
  for (const Descriptor& l : image->layers) {
    if (seen.insert(l.digest).second) total += l.size;
  }
  if (total != image->total_size) Fail();
  std::vector<uint8_t> buf(64 * 1024);
  const Status visited =
      image->ForEachBlob([&](const Descriptor& blob, cce::image::ByteSource& content) -> Status {
        uint64_t got = 0;
        for (;;) {
          auto n = content.Read(buf);
          if (!n.ok()) return n.status();
          if (*n == 0) break;
          got += *n;
        }
        if (got != blob.size) Fail();
        return Status::Ok();
      });
  // The input has not changed since it was read, so every blob verifies.
  if (!visited.ok()) Fail();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 0 && data[0] == '{') {
    CheckStoredManifest({reinterpret_cast<const char*>(data), size});
  } else {
    CheckArchive(data, size);
  }
  return 0;
}
