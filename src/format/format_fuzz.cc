// libFuzzer target for what src/format reads from untrusted storage (see
// docs/fuzzing.md): the 68-byte file header, a sealed file read through the
// manifest reader (ReadSealedFile, as ReadManifest calls it, over a memfd)
// and the manifest JSON it decrypts to. The dataset key is fixed (bytes
// 0x00..0x1f), so the seeds in tests/data/fuzz/format_fuzz, encrypted under
// it, decrypt and reach the JSON parser. Beyond "no crash, no sanitizer
// report" it checks what readers rely on: errors name where they are, a
// parsed header serializes to the bytes it came from, an accepted sealed
// file had exactly the size its header implies, and an accepted manifest
// is sorted, unique, and survives ToJson -> FromJson unchanged.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "format/format.h"
#include "format/internal.h"

namespace {

using cce::StatusCode;
using cce::format::DatasetKey;
using cce::format::FileHeader;
using cce::format::FileKind;
using cce::format::Geometry;
using cce::format::kHeaderSize;
using cce::format::Manifest;
using cce::format::ManifestEntry;

[[noreturn]] void Fail() {
  std::abort();
}

const DatasetKey& FuzzKey() {
  static const DatasetKey key = [] {
    std::array<uint8_t, cce::format::kKeySize> bytes{};
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i);
    auto k = DatasetKey::FromBytes(bytes);
    if (!k.ok()) Fail();
    return std::move(k).value();
  }();
  return key;
}

// One memfd for the whole run, rewritten per input.
int InputFd() {
  static const int fd = ::memfd_create("format_fuzz", MFD_CLOEXEC);
  if (fd < 0) Fail();
  return fd;
}

void CheckHeader(const uint8_t* data, size_t size) {
  const auto h = FileHeader::Parse({data, size});
  if (!h.ok()) {
    if (h.status().code() != StatusCode::kDataLoss || !h.status().message().starts_with("header")) {
      Fail();
    }
    return;
  }
  const auto bytes = h->Serialize();
  if (size < kHeaderSize || !std::equal(bytes.begin(), bytes.end(), data)) Fail();
  const Geometry g = Geometry::For(*h);
  // Segment arithmetic stays in range for every size the parser accepts.
  const uint64_t last = g.SegmentCount() - 1;
  if (g.SegmentOffset(last) + g.PlainSegmentSize(last) + cce::format::kTagSize !=
      g.CiphertextSize()) {
    Fail();
  }
}

void CheckManifest(std::string_view text) {
  const auto m = Manifest::FromJson(text);
  if (!m.ok()) {
    if (m.status().code() != StatusCode::kDataLoss ||
        !m.status().message().starts_with("manifest")) {
      Fail();
    }
    return;
  }
  for (size_t i = 0; i < m->entries.size(); ++i) {
    const ManifestEntry& e = m->entries[i];
    if (i > 0 && !(m->entries[i - 1].path < e.path)) Fail();
    if (!cce::format::ValidateRelativePath(e.path).ok()) Fail();
    if (e.mode > 07777) Fail();
  }
  const std::string again = m->ToJson();
  const auto m2 = Manifest::FromJson(again);
  if (!m2.ok() || m2->ToJson() != again || m2->entries.size() != m->entries.size()) Fail();
}

void CheckSealedFile(const uint8_t* data, size_t size, FileKind kind) {
  const int fd = InputFd();
  if (::ftruncate(fd, 0) != 0) Fail();
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) Fail();
    done += static_cast<size_t>(n);
  }
  const auto plain = cce::format::ReadSealedFile(fd, FuzzKey(), kind, "manifest.cce");
  if (!plain.ok()) {
    if (!plain.status().message().starts_with("manifest.cce")) Fail();
    return;
  }
  const auto h = FileHeader::Parse({data, size});
  if (!h.ok() || h->kind != kind || plain->size() != h->plaintext_size ||
      Geometry::For(*h).CiphertextSize() != size) {
    Fail();
  }
  if (kind == FileKind::kManifest) CheckManifest(*plain);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckHeader(data, size);
  CheckSealedFile(data, size, FileKind::kManifest);
  CheckSealedFile(data, size, FileKind::kData);
  // The JSON parser directly as well: mutations of a sealed manifest almost
  // never pass the tag, so this is how the fuzzer explores the parser.
  CheckManifest({reinterpret_cast<const char*>(data), size});
  return 0;
}
