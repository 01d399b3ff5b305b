// Private to src/gate: bounded decompression (zlib, raw deflate, gzip,
// bzip2, xz). Never produces more than `max_out` bytes: a stream that would
// is reported as over the limit, which callers turn into a bomb finding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace cce::gate {

enum class Compression { kZlib, kRawDeflate, kGzip, kBzip2, kXz };

struct Decompressed {
  std::string bytes;
  bool over_limit = false;  // stopped at max_out with input left: bytes is the prefix
  uint64_t consumed =
      0;  // input bytes used (trailing bytes after the stream's end are the caller's)
};

// Errors: kInvalidArgument "<format> stream: <library message> at input byte N".
StatusOr<Decompressed> Decompress(Compression kind, std::string_view in, uint64_t max_out);

}  // namespace cce::gate
