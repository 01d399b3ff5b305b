// Fuzzes the walk over an output bundle's tar (bundle_tar.h): the agent
// wrote those bytes, so they are hostile. Byte 0 picks the size of the
// pieces the rest is fed in ((b % 64 + 1) * 97 bytes, as the sealed
// output's segments would be); every entry is listed and read to its end,
// and its first bytes are typed. Nothing may crash, hang or read past a
// piece.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "plane/bundle_tar.h"

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
  auto tar = cce::plane::BundleTar::Open(source, "fuzz bundle", 1000);
  if (!tar.ok()) return 0;
  std::vector<uint8_t> buf(4096);
  for (int entries = 0; entries < 1000; ++entries) {
    auto e = (*tar)->Next();
    if (!e.ok() || !e->has_value()) break;
    std::string head;
    uint64_t total = 0;
    bool complete = false;
    for (;;) {
      auto n = (*tar)->Read(buf);
      if (!n.ok()) break;
      if (*n == 0) {
        complete = true;
        break;
      }
      total += *n;
      if (head.size() < 8192) head.append(reinterpret_cast<const char*>(buf.data()), *n);
    }
    // The size listed to reviewers is the size served (Content-Length).
    if (complete && total != (*e)->size) std::abort();
    bool attachment = false;
    (void)cce::plane::SniffContentType(head, false, &attachment);
    (void)cce::plane::LooksLikeText((*e)->path, true);
  }
  return 0;
}
