#include "gate/decompress.h"

#include <bzlib.h>
#include <lzma.h>
#include <zlib.h>

#include <algorithm>
#include <memory>

namespace cce::gate {
namespace {

constexpr size_t kChunk = 64 * 1024;

std::string At(std::string_view format, std::string_view what, uint64_t byte) {
  return std::string(format) + " stream: " + std::string(what) + " at input byte " +
         std::to_string(byte);
}

StatusOr<Decompressed> Zlib(Compression kind, std::string_view in, uint64_t max_out) {
  z_stream z{};
  const int window = kind == Compression::kRawDeflate ? -15
                     : kind == Compression::kGzip     ? 16 + 15
                                                      : 15;
  if (inflateInit2(&z, window) != Z_OK) return Internal("zlib: inflateInit2 failed");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
  const char* name = kind == Compression::kGzip   ? "gzip"
                     : kind == Compression::kZlib ? "zlib"
                                                  : "deflate";
  Decompressed out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(std::min<size_t>(in.size(), UINT32_MAX));
  char buf[kChunk];
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    const int rc = inflate(&z, Z_NO_FLUSH);
    const size_t got = sizeof buf - z.avail_out;
    if (out.bytes.size() + got > max_out) {
      out.bytes.append(buf, max_out - out.bytes.size());
      out.over_limit = true;
      break;
    }
    out.bytes.append(buf, got);
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && z.avail_in == 0) {
      return InvalidArgument(At(name, "truncated", in.size()));
    }
    if (rc != Z_OK) {
      return InvalidArgument(At(name, z.msg ? z.msg : "corrupt data", z.total_in));
    }
  }
  out.consumed = z.total_in;
  return out;
}

StatusOr<Decompressed> Bzip2(std::string_view in, uint64_t max_out) {
  bz_stream z{};
  if (BZ2_bzDecompressInit(&z, 0, 0) != BZ_OK) return Internal("bzip2: init failed");
  std::unique_ptr<bz_stream, int (*)(bz_stream*)> guard(&z, BZ2_bzDecompressEnd);
  Decompressed out;
  z.next_in = const_cast<char*>(in.data());
  z.avail_in = static_cast<unsigned>(std::min<size_t>(in.size(), UINT32_MAX));
  char buf[kChunk];
  for (;;) {
    z.next_out = buf;
    z.avail_out = sizeof buf;
    const int rc = BZ2_bzDecompress(&z);
    const size_t got = sizeof buf - z.avail_out;
    if (out.bytes.size() + got > max_out) {
      out.bytes.append(buf, max_out - out.bytes.size());
      out.over_limit = true;
      break;
    }
    out.bytes.append(buf, got);
    if (rc == BZ_STREAM_END) break;
    const uint64_t used = in.size() - z.avail_in;
    if (rc != BZ_OK) return InvalidArgument(At("bzip2", "corrupt data", used));
    if (z.avail_in == 0 && got == 0) return InvalidArgument(At("bzip2", "truncated", used));
  }
  out.consumed = in.size() - z.avail_in;
  return out;
}

StatusOr<Decompressed> Xz(std::string_view in, uint64_t max_out) {
  lzma_stream z = LZMA_STREAM_INIT;
  // The decoder's own memory is bounded too (a crafted header can ask for a huge dictionary).
  if (lzma_stream_decoder(&z, uint64_t{256} << 20, LZMA_CONCATENATED) != LZMA_OK) {
    return Internal("xz: decoder init failed");
  }
  std::unique_ptr<lzma_stream, void (*)(lzma_stream*)> guard(&z, lzma_end);
  Decompressed out;
  z.next_in = reinterpret_cast<const uint8_t*>(in.data());
  z.avail_in = in.size();
  uint8_t buf[kChunk];
  for (;;) {
    z.next_out = buf;
    z.avail_out = sizeof buf;
    const lzma_ret rc = lzma_code(&z, z.avail_in == 0 ? LZMA_FINISH : LZMA_RUN);
    const size_t got = sizeof buf - z.avail_out;
    if (out.bytes.size() + got > max_out) {
      out.bytes.append(reinterpret_cast<char*>(buf), max_out - out.bytes.size());
      out.over_limit = true;
      break;
    }
    out.bytes.append(reinterpret_cast<char*>(buf), got);
    if (rc == LZMA_STREAM_END) break;
    if (rc == LZMA_MEMLIMIT_ERROR) {
      return InvalidArgument(At("xz", "dictionary over 256 MiB", z.total_in));
    }
    if (rc != LZMA_OK) return InvalidArgument(At("xz", "corrupt or truncated data", z.total_in));
  }
  out.consumed = z.total_in;
  return out;
}

}  // namespace

StatusOr<Decompressed> Decompress(Compression kind, std::string_view in, uint64_t max_out) {
  switch (kind) {
    case Compression::kZlib:
    case Compression::kRawDeflate:
    case Compression::kGzip: return Zlib(kind, in, max_out);
    case Compression::kBzip2: return Bzip2(in, max_out);
    case Compression::kXz: return Xz(in, max_out);
  }
  return Internal("unknown compression");
}

}  // namespace cce::gate
