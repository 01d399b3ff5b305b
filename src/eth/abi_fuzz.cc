// libFuzzer target for the ABI word decoders (docs/fuzzing.md): return data
// and event data from a node, split by AbiWords and read by WordUint (every
// width), WordAddress and WordBool. Checks: an accepted value encodes back
// to the same word with AbiEncoder, and WordUint refuses exactly the words
// with bits above the width.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "eth/abi.h"

namespace {

namespace eth = cce::eth;

bool SameWord(const cce::crypto::Bytes& encoded, const eth::Word& w) {
  return encoded.size() == 32 && std::equal(encoded.begin(), encoded.end(), w.begin());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const cce::crypto::ByteSpan in(data, size);
  auto words = eth::AbiWords(in, 0, "ret");
  if (!words.ok()) {
    if (size % 32 == 0) std::abort();
    return 0;
  }
  if (words->size() != size / 32) std::abort();
  for (const eth::Word& w : *words) {
    const size_t leading_zero_bytes = static_cast<size_t>(
        std::find_if(w.begin(), w.end(), [](uint8_t b) { return b != 0; }) - w.begin());
    for (unsigned bits = 8; bits <= 256; bits += 8) {
      auto v = eth::WordUint(w, bits, "w");
      if (v.ok() != (leading_zero_bytes >= 32 - bits / 8)) std::abort();
      if (v.ok() && !SameWord(eth::AbiEncoder().Uint(*v).Finish(), w)) std::abort();
    }
    if (auto a = eth::WordAddress(w, "w"); a.ok()) {
      if (!SameWord(eth::AbiEncoder().Addr(*a).Finish(), w)) std::abort();
    } else if (leading_zero_bytes >= 12) {
      std::abort();
    }
    if (auto b = eth::WordBool(w, "w"); b.ok()) {
      if (!SameWord(eth::AbiEncoder().Bool(*b).Finish(), w)) std::abort();
    }
    if (eth::WordHash(w).bytes != w) std::abort();
  }
  return 0;
}
