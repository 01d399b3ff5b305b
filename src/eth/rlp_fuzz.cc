// libFuzzer target for the RLP decoder (docs/fuzzing.md): any bytes through
// RlpDecode. Beyond "no crash, no sanitizer report" it checks that the
// decoder is canonical-only: an accepted input re-encodes to exactly itself
// (so one value has one encoding, and a transaction one hash).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "eth/rlp.h"

namespace {

using cce::crypto::Bytes;

Bytes Encode(const cce::eth::RlpItem& item) {
  if (!item.is_list) return cce::eth::RlpBytes(item.bytes);
  std::vector<Bytes> children;
  for (const auto& child : item.items) children.push_back(Encode(child));
  return cce::eth::RlpList(children);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const cce::crypto::ByteSpan in(data, size);
  auto item = cce::eth::RlpDecode(in);
  if (!item.ok()) {
    if (item.status().message().rfind("rlp: byte ", 0) != 0)
      std::abort();  // errors name the offset
    return 0;
  }
  const Bytes again = Encode(*item);
  if (again.size() != size || !std::equal(again.begin(), again.end(), data)) std::abort();
  return 0;
}
