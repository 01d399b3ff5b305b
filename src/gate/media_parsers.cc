// PNG, JPEG and PDF parsers (content.h): they walk each format's structure
// strictly enough to see every byte's purpose, hand text to the detectors,
// nested files (a JPEG in a PDF, bytes after an end marker) to the scanner,
// and report the covert channels these formats offer: text chunks and
// metadata, bytes after the end marker, unknown chunks, unused space and
// random least significant bits in PNG pixels. Nothing is rendered, run or
// fetched; every loop advances through the input, every allocation is
// bounded by bytes present or by the policy.
#include <zlib.h>  // crc32 only: all decompression goes through decompress.h

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "gate/content.h"
#include "gate/decompress.h"

namespace cce::gate {
namespace {

// ---------------------------------------------------------------- shared

constexpr uint64_t kUnknownChunkBytes = 64;  // an unchecked chunk/segment may carry this much

uint32_t Be32(std::string_view s, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
uint16_t Be16(std::string_view s, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

std::string Hex32(uint32_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int i = 7; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = kDigits[v & 15];
  return out;
}

// A short printable excerpt for messages: never more than `max` characters of
// the input, non-printable bytes as \xNN.
std::string Excerpt(std::string_view s, size_t max = 32) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 15]);
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

std::string Latin1ToUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else {
      out.push_back(static_cast<char>(0xc0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
    }
  }
  return out;
}

// Printable ASCII runs of at least 4 characters, one per line (like
// strings(1)): the text a binary blob (EXIF, ICC) carries.
std::string PrintableRuns(std::string_view s) {
  std::string out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    const bool printable = i < s.size() && static_cast<unsigned char>(s[i]) >= 0x20 &&
                           static_cast<unsigned char>(s[i]) < 0x7f;
    if (printable) continue;
    if (i - start >= 4) {
      out.append(s.substr(start, i - start));
      out.push_back('\n');
    }
    start = i + 1;
  }
  return out;
}

uint64_t SaturatingMul(uint64_t a, uint64_t b) {
  if (a != 0 && b > UINT64_MAX / a) return UINT64_MAX;
  return a * b;
}

// Emits findings, texts and children for one item, charging the expansion
// budget for every byte it hands on.
class Emitter {
 public:
  Emitter(const Item& item, ParseContext& ctx, Parsed* out) : item_(item), ctx_(ctx), out_(out) {}

  const Policy& policy() const { return ctx_.policy; }

  void Find(std::string detector, std::string location, int64_t offset, double score, bool hard,
            std::string message) {
    Finding f;
    f.detector = std::move(detector);
    f.file = item_.path;
    f.location = std::move(location);
    f.offset = offset;
    f.score = score;
    f.hard = hard;
    f.message = std::move(message);
    out_->findings.push_back(std::move(f));
  }

  void Bomb(const std::string& location, int64_t offset, const std::string& what) {
    Find("encoding.bomb", location, offset, 1, true, what);
  }

  // Charges `n` bytes; false (and a bomb finding) when the budget is spent.
  bool Charge(uint64_t n, const std::string& location, int64_t offset) {
    if (n > ctx_.expand_budget) {
      Bomb(location, offset,
           "unpacking " + std::to_string(n) +
               " more bytes would exceed the scan's expansion budget");
      ctx_.expand_budget = 0;
      return false;
    }
    ctx_.expand_budget -= n;
    return true;
  }

  void Text(uint64_t offset, std::string location, std::string text) {
    if (text.empty()) return;
    if (!Charge(text.size(), location, static_cast<int64_t>(offset))) return;
    TextSpan span;
    span.file = item_.path;
    span.offset = offset;
    span.location = std::move(location);
    span.text = std::move(text);
    out_->texts.push_back(std::move(span));
  }

  void Nested(std::string name, std::string location, int64_t offset, std::string_view bytes) {
    if (bytes.size() > ctx_.policy.max_child_bytes) {
      Bomb(location, offset,
           "nested item of " + std::to_string(bytes.size()) + " bytes is over max_child_bytes (" +
               std::to_string(ctx_.policy.max_child_bytes) + ")");
      return;
    }
    if (!Charge(bytes.size(), location, offset)) return;
    Child child;
    child.name = std::move(name);
    child.location = std::move(location);
    child.bytes.assign(bytes);
    out_->children.push_back(std::move(child));
  }

  // Decompresses `in` within the limits: max_child_bytes, the remaining
  // budget and max_expansion_ratio times the input. Over a limit: a bomb
  // finding and false. A corrupt stream is an error naming `what`.
  // `size_cap` (not 0) replaces the ratio where the output's size is known
  // from elsewhere (an image's dimensions).
  StatusOr<bool> Expand(Compression kind, std::string_view in, const std::string& what,
                        const std::string& location, int64_t offset, std::string* result,
                        uint64_t size_cap = 0) {
    const uint64_t by_ratio =
        size_cap != 0
            ? size_cap
            : SaturatingMul(std::max<uint64_t>(in.size(), 1),
                            static_cast<uint64_t>(std::max(1.0, ctx_.policy.max_expansion_ratio)));
    const uint64_t cap = std::min({ctx_.policy.max_child_bytes, ctx_.expand_budget, by_ratio});
    auto d = Decompress(kind, in, cap);
    if (!d.ok()) return InvalidArgument(what + ": " + d.status().message());
    if (d->over_limit) {
      std::string limit =
          cap == by_ratio
              ? (size_cap != 0 ? "the size its header declares"
                               : "max_expansion_ratio (" +
                                     std::to_string(ctx_.policy.max_expansion_ratio) + ")")
          : cap == ctx_.policy.max_child_bytes ? "max_child_bytes"
                                               : "the scan's expansion budget";
      Bomb(location, offset,
           what + ": " + std::to_string(in.size()) + " compressed bytes expand beyond " +
               std::to_string(cap) + " bytes, over " + limit);
      ctx_.expand_budget -= std::min<uint64_t>(ctx_.expand_budget, d->bytes.size());
      return false;
    }
    ctx_.expand_budget -= d->bytes.size();
    *result = std::move(d->bytes);
    return true;
  }

 private:
  const Item& item_;
  ParseContext& ctx_;
  Parsed* out_;
};

// An ICC profile (PNG iCCP, JPEG APP2): the header's size must be the
// profile's and its tags must cover the profile; uncovered bytes beyond the
// 4-byte padding each element may have are unused space.
void CheckIccProfile(std::string_view icc, const std::string& location, int64_t offset,
                     const std::string& detector, Emitter& emit) {
  if (icc.size() < 132 || Be32(icc, 0) != icc.size() || icc.substr(36, 4) != "acsp") {
    emit.Find(detector, location, offset, 1, true,
              "ICC profile of " + std::to_string(icc.size()) +
                  " bytes is not a valid profile (header size or 'acsp' signature wrong)");
    return;
  }
  const uint64_t count = Be32(icc, 128);
  if (count > (icc.size() - 132) / 12) {
    emit.Find(detector, location, offset, 1, true,
              "ICC profile: tag table of " + std::to_string(count) + " entries runs past its end");
    return;
  }
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  ranges.reserve(count + 1);
  ranges.emplace_back(0, 132 + 12 * count);
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t off = Be32(icc, 132 + 12 * i + 4);
    const uint64_t len = Be32(icc, 132 + 12 * i + 8);
    if (off > icc.size() || len > icc.size() - off) {
      emit.Find(detector, location, offset, 1, true,
                "ICC profile: tag " + std::to_string(i) + " points past the profile's end");
      return;
    }
    ranges.emplace_back(off, off + len);
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t covered_to = 0, unused = 0;
  for (const auto& [begin, end] : ranges) {
    if (begin > covered_to) unused += (begin - covered_to > 3) ? begin - covered_to : 0;
    covered_to = std::max(covered_to, end);
  }
  if (icc.size() - covered_to > 3) unused += icc.size() - covered_to;
  if (unused > kUnknownChunkBytes) {
    emit.Find(detector, location, offset, 1, true,
              "ICC profile has " + std::to_string(unused) +
                  " bytes no tag uses (unused space that can carry data)");
  }
}

// ---------------------------------------------------------------- PNG

struct PngHeader {
  uint32_t width = 0;
  uint32_t height = 0;
  int depth = 0;
  int color = 0;
  int interlace = 0;
  int Channels() const {
    switch (color) {
      case 0: return 1;
      case 2: return 3;
      case 3: return 1;
      case 4: return 2;
      case 6: return 4;
      default: return 0;
    }
  }
  uint64_t BitsPerPixel() const { return static_cast<uint64_t>(Channels()) * depth; }
  uint64_t RowBytes(uint64_t w) const { return (w * BitsPerPixel() + 7) / 8; }
  // Bytes of filter type + filtered bytes per complete pixel (for Sub/Average/Paeth).
  size_t FilterUnit() const { return std::max<size_t>(1, BitsPerPixel() / 8); }
};

struct Adam7Pass {
  uint32_t x0, y0, dx, dy;
};
constexpr Adam7Pass kAdam7[7] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                 {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};

struct PassGeometry {
  uint64_t width = 0, height = 0, row_bytes = 0;
};

std::vector<PassGeometry> Passes(const PngHeader& h) {
  std::vector<PassGeometry> passes;
  if (h.interlace == 0) {
    passes.push_back({h.width, h.height, h.RowBytes(h.width)});
    return passes;
  }
  for (const Adam7Pass& p : kAdam7) {
    PassGeometry g;
    g.width = h.width > p.x0 ? (h.width - p.x0 + p.dx - 1) / p.dx : 0;
    g.height = h.height > p.y0 ? (h.height - p.y0 + p.dy - 1) / p.dy : 0;
    g.row_bytes = h.RowBytes(g.width);
    passes.push_back(g);
  }
  return passes;
}

uint64_t RawSize(const std::vector<PassGeometry>& passes) {
  uint64_t total = 0;
  for (const PassGeometry& g : passes) {
    if (g.width == 0 || g.height == 0) continue;
    const uint64_t bytes = SaturatingMul(g.height, g.row_bytes + 1);
    if (bytes == UINT64_MAX || total > UINT64_MAX - bytes) return UINT64_MAX;
    total += bytes;
  }
  return total;
}

int Paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  if (pb <= pc) return b;
  return c;
}

// Reverses the scanline filters of one pass in place (each row: filter byte,
// then row_bytes bytes). Errors name the scanline and the byte.
Status Unfilter(uint8_t* data, const PassGeometry& g, size_t unit, int pass, uint64_t base) {
  const size_t stride = g.row_bytes + 1;
  for (uint64_t y = 0; y < g.height; ++y) {
    uint8_t* row = data + y * stride;
    const uint8_t* prev = y > 0 ? data + (y - 1) * stride + 1 : nullptr;
    const int filter = row[0];
    uint8_t* cur = row + 1;
    const size_t n = g.row_bytes;
    switch (filter) {
      case 0: break;
      case 1:
        for (size_t i = unit; i < n; ++i) cur[i] = static_cast<uint8_t>(cur[i] + cur[i - unit]);
        break;
      case 2:
        if (prev)
          for (size_t i = 0; i < n; ++i) cur[i] = static_cast<uint8_t>(cur[i] + prev[i]);
        break;
      case 3:
        for (size_t i = 0; i < n; ++i) {
          const int left = i >= unit ? cur[i - unit] : 0;
          const int up = prev ? prev[i] : 0;
          cur[i] = static_cast<uint8_t>(cur[i] + ((left + up) >> 1));
        }
        break;
      case 4:
        for (size_t i = 0; i < n; ++i) {
          const int left = i >= unit ? cur[i - unit] : 0;
          const int up = prev ? prev[i] : 0;
          const int up_left = (prev && i >= unit) ? prev[i - unit] : 0;
          cur[i] = static_cast<uint8_t>(cur[i] + Paeth(left, up, up_left));
        }
        break;
      default:
        return InvalidArgument(
            "PNG: IDAT: " +
            std::string(pass >= 0 ? "pass " + std::to_string(pass + 1) + ", " : "") + "scanline " +
            std::to_string(y) + " at inflated byte " + std::to_string(base + y * stride) +
            ": filter type " + std::to_string(filter) + " is not 0-4");
    }
  }
  return Status::Ok();
}

// The LSB statistic. Rule: in an image a program drew (a chart: flat areas,
// antialiased lines, gradients), a sample whose four neighbours (left, right,
// up, down, same channel) all hold one value v is itself v: flat areas are
// flat, and an antialiased edge or a gradient never isolates a single sample
// that is off by exactly one. Writing random bits into the least significant
// bits of a fraction r of the samples makes about r/2 of those "flat-context"
// samples differ from v by exactly one (a flipped LSB; +-1 LSB matching
// too). The statistic is q, the share of flat-context samples off by exactly
// one, taken as a Wilson lower bound (z = 3) so that a handful of samples
// proves nothing, divided by kFlipShare and capped at 1; it is computed over
// the whole image and over every 32x32 block (an embedding confined to a
// region shows there), and the largest value is the score. So r = 0.3
// gives q ~ 0.15 and a score of 1, a clean chart q ~ 0 and a score ~ 0.
// Where the embedding is dense, flat contexts become rare (four random LSBs
// agree 1 time in 8) and the clean flat part of a block dilutes q; so the
// same is also measured per sample: isolated off-by-one samples over all
// samples (r = 0.3: ~0.078, r = 1: 1/16, a chart: ~0), Wilson lower bound
// over kIsolatedRate, capped at 1, and the score is the larger of the two.
//
// Not used: the chi-square pairs-of-values test (Westfeld-Pfitzmann). It only
// reacts to near-complete embedding, and on a fully random LSB plane its
// p-value is uniform on [0, 1], so it cannot give a stable score; the flat-
// context share is large for partial and full embedding alike. Limits: LSBs
// changed only where the picture is busy (edges, noise, photographs) leave no
// flat context to see them; photographs and noisy renderings may score high
// for honest reasons (their LSBs are noise), which holds them for review.
constexpr double kFlipShare = 0.10;
constexpr double kIsolatedRate = 0.015;
constexpr uint32_t kBlock = 32;

double WilsonLower(uint64_t hits, uint64_t n) {
  if (n == 0) return 0;
  constexpr double z = 3;
  const double p = static_cast<double>(hits) / static_cast<double>(n);
  const double dn = static_cast<double>(n);
  const double centre = p + z * z / (2 * dn);
  const double margin = z * std::sqrt(p * (1 - p) / dn + z * z / (4 * dn * dn));
  return std::max(0.0, (centre - margin) / (1 + z * z / dn));
}

struct LsbResult {
  double score = 0;
  uint64_t flat = 0;  // flat-context samples (worst place)
  uint64_t off_by_one = 0;
  uint64_t samples = 0;
  bool in_block = false;
  uint64_t block_x = 0, block_y = 0;
};

template <int kBytes>
LsbResult LsbStatistic(const uint8_t* img, size_t stride, uint64_t w, uint64_t h, int channels) {
  LsbResult result;
  if (w < 3 || h < 3) return result;
  const size_t pixel = static_cast<size_t>(channels) * kBytes;
  auto at = [&](const uint8_t* p) -> int {
    if constexpr (kBytes == 1) return p[0];
    return (p[0] << 8) | p[1];
  };
  const uint64_t blocks_x = (w + kBlock - 1) / kBlock;
  std::vector<uint64_t> flat(blocks_x, 0), hits(blocks_x, 0), samples(blocks_x, 0);
  uint64_t total_flat = 0, total_hits = 0, total_samples = 0;
  auto score = [](uint64_t hit, uint64_t f, uint64_t n) {
    return std::min(
        1.0, std::max(WilsonLower(hit, f) / kFlipShare, WilsonLower(hit, n) / kIsolatedRate));
  };
  auto close_blocks = [&](uint64_t block_row) {
    for (uint64_t b = 0; b < blocks_x; ++b) {
      const double s = score(hits[b], flat[b], samples[b]);
      if (s > result.score) {
        result.score = s;
        result.flat = flat[b];
        result.off_by_one = hits[b];
        result.samples = samples[b];
        result.in_block = true;
        result.block_x = b * kBlock;
        result.block_y = block_row * kBlock;
      }
      total_flat += flat[b];
      total_hits += hits[b];
      total_samples += samples[b];
      flat[b] = hits[b] = samples[b] = 0;
    }
  };
  for (uint64_t y = 1; y + 1 < h; ++y) {
    const uint8_t* up = img + (y - 1) * stride;
    const uint8_t* row = img + y * stride;
    const uint8_t* down = img + (y + 1) * stride;
    for (uint64_t x = 1; x + 1 < w; ++x) {
      const size_t i = x * pixel;
      uint64_t f = 0, d = 0;
      for (int c = 0; c < channels; ++c) {
        const size_t k = i + static_cast<size_t>(c) * kBytes;
        const int v = at(up + k);
        if (at(down + k) != v || at(row + k - pixel) != v || at(row + k + pixel) != v) continue;
        ++f;
        const int p = at(row + k);
        d += (p - v == 1 || v - p == 1) ? 1 : 0;
      }
      flat[x / kBlock] += f;
      hits[x / kBlock] += d;
      samples[x / kBlock] += static_cast<uint64_t>(channels);
    }
    if ((y + 1) % kBlock == 0 || y + 2 == h) close_blocks(y / kBlock);
  }
  const double global = score(total_hits, total_flat, total_samples);
  if (global >= result.score) {
    result.score = global;
    result.flat = total_flat;
    result.off_by_one = total_hits;
    result.samples = total_samples;
    result.in_block = false;
  }
  return result;
}

struct ChunkRule {
  const char* type;
  uint32_t max_len;
};
// Ancillary chunks with a fixed structure: more bytes than this is a channel.
constexpr ChunkRule kSmallChunks[] = {{"bKGD", 6},   {"cHRM", 32}, {"gAMA", 4},  {"pHYs", 9},
                                      {"sBIT", 4},   {"sRGB", 1},  {"tIME", 7},  {"tRNS", 256},
                                      {"hIST", 512}, {"cICP", 4},  {"mDCv", 24}, {"cLLi", 8},
                                      {"oFFs", 9},   {"sTER", 1},  {"acTL", 8},  {"fcTL", 26}};

bool IsLetter(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

Status CheckIhdr(std::string_view data, size_t at, PngHeader* h) {
  const std::string where = "PNG: chunk IHDR at byte " + std::to_string(at) + ": ";
  if (data.size() != 13) {
    return InvalidArgument(where + "length " + std::to_string(data.size()) + ", expected 13");
  }
  h->width = Be32(data, 0);
  h->height = Be32(data, 4);
  h->depth = static_cast<unsigned char>(data[8]);
  h->color = static_cast<unsigned char>(data[9]);
  h->interlace = static_cast<unsigned char>(data[12]);
  if (h->width == 0 || h->height == 0 || h->width > 0x7fffffffu || h->height > 0x7fffffffu) {
    return InvalidArgument(where + "image size " + std::to_string(h->width) + " x " +
                           std::to_string(h->height) + " is not 1..2^31-1");
  }
  bool ok = false;
  switch (h->color) {
    case 0:
      ok = h->depth == 1 || h->depth == 2 || h->depth == 4 || h->depth == 8 || h->depth == 16;
      break;
    case 3: ok = h->depth == 1 || h->depth == 2 || h->depth == 4 || h->depth == 8; break;
    case 2:
    case 4:
    case 6: ok = h->depth == 8 || h->depth == 16; break;
    default: break;
  }
  if (!ok) {
    return InvalidArgument(where + "colour type " + std::to_string(h->color) + " with bit depth " +
                           std::to_string(h->depth) + " is not a valid combination");
  }
  if (data[10] != 0 || data[11] != 0 || h->interlace > 1) {
    return InvalidArgument(where + "compression, filter or interlace method is not 0/0/0-1");
  }
  return Status::Ok();
}

// Keyword (1-79 bytes) and the rest of a text chunk, split at the first NUL.
StatusOr<std::pair<std::string_view, std::string_view>> SplitKeyword(std::string_view data,
                                                                     const std::string& where) {
  const size_t nul = data.find('\0');
  if (nul == std::string_view::npos || nul == 0 || nul > 79) {
    return InvalidArgument(where + ": expected a 1-79 byte keyword ended by a NUL");
  }
  return std::make_pair(data.substr(0, nul), data.substr(nul + 1));
}

// The pixel checks: inflate IDAT within the size the header implies, undo
// the filters, look for unused space and random LSBs.
Status CheckPixels(const PngHeader& h, std::string_view idat, size_t idat_at, Emitter& emit) {
  const std::vector<PassGeometry> passes = Passes(h);
  const uint64_t expected = RawSize(passes);
  const Policy& policy = emit.policy();
  if (expected > policy.max_child_bytes) {
    emit.Find("covert.png", "IDAT", static_cast<int64_t>(idat_at), 1, true,
              "image of " + std::to_string(h.width) + " x " + std::to_string(h.height) + " needs " +
                  std::to_string(expected) +
                  " bytes of pixel data, over max_child_bytes; its pixels cannot be checked");
    return Status::Ok();
  }
  auto inflated = Decompress(Compression::kZlib, idat, expected + 1);
  if (!inflated.ok()) {
    return InvalidArgument("PNG: IDAT at byte " + std::to_string(idat_at) + ": " +
                           inflated.status().message());
  }
  std::string& raw = inflated->bytes;
  if (raw.size() > expected) {
    emit.Find("covert.png", "IDAT", static_cast<int64_t>(idat_at), 1, true,
              "image data inflates to more than the " + std::to_string(expected) + " bytes a " +
                  std::to_string(h.width) + " x " + std::to_string(h.height) +
                  " image needs (unused space that can carry data)");
    raw.resize(expected);
  } else if (raw.size() < expected) {
    return InvalidArgument("PNG: IDAT at byte " + std::to_string(idat_at) +
                           ": image data ends after " + std::to_string(raw.size()) + " of " +
                           std::to_string(expected) + " bytes");
  } else if (idat.size() - inflated->consumed > policy.max_trailing_bytes) {
    emit.Find("covert.png", "IDAT", static_cast<int64_t>(idat_at), 1, true,
              std::to_string(idat.size() - inflated->consumed) +
                  " bytes follow the end of the compressed image data in IDAT");
  }
  auto* data = reinterpret_cast<uint8_t*>(raw.data());
  uint64_t at = 0;
  for (size_t p = 0; p < passes.size(); ++p) {
    const PassGeometry& g = passes[p];
    if (g.width == 0 || g.height == 0) continue;
    RETURN_IF_ERROR(
        Unfilter(data + at, g, h.FilterUnit(), h.interlace ? static_cast<int>(p) : -1, at));
    at += g.height * (g.row_bytes + 1);
  }
  if (h.depth < 8) return Status::Ok();  // a flipped bit in a 1-4 bit image is a visible pixel

  // One plane of samples, rows of row_bytes (no filter bytes).
  const uint64_t row_bytes = h.RowBytes(h.width);
  const uint8_t* plane = data + 1;
  size_t stride = row_bytes + 1;
  std::vector<uint8_t> full;
  if (h.interlace) {
    full.assign(row_bytes * h.height, 0);
    const size_t pixel = h.BitsPerPixel() / 8;
    uint64_t base = 0;
    for (size_t p = 0; p < passes.size(); ++p) {
      const PassGeometry& g = passes[p];
      if (g.width == 0 || g.height == 0) continue;
      for (uint64_t y = 0; y < g.height; ++y) {
        const uint8_t* src = data + base + y * (g.row_bytes + 1) + 1;
        const uint64_t fy = kAdam7[p].y0 + y * kAdam7[p].dy;
        for (uint64_t x = 0; x < g.width; ++x) {
          const uint64_t fx = kAdam7[p].x0 + x * kAdam7[p].dx;
          std::memcpy(&full[fy * row_bytes + fx * pixel], src + x * pixel, pixel);
        }
      }
      base += g.height * (g.row_bytes + 1);
    }
    plane = full.data();
    stride = row_bytes;
  }
  const LsbResult lsb = h.depth == 8
                            ? LsbStatistic<1>(plane, stride, h.width, h.height, h.Channels())
                            : LsbStatistic<2>(plane, stride, h.width, h.height, h.Channels());
  if (lsb.score >= policy.lsb_threshold) {
    const std::string where = lsb.in_block ? "the 32x32 block at x=" + std::to_string(lsb.block_x) +
                                                 ", y=" + std::to_string(lsb.block_y)
                                           : "the whole image";
    emit.Find("covert.png", "LSB plane", -1, lsb.score, true,
              "least significant bits look random (statistic " + std::to_string(lsb.score) +
                  "): in " + where + ", " + std::to_string(lsb.off_by_one) + " of " +
                  std::to_string(lsb.flat) + " samples whose four neighbours are equal (of " +
                  std::to_string(lsb.samples) +
                  " samples) differ from them by exactly 1, where a drawn image has almost "
                  "none; data may be hidden in the pixels");
  }
  return Status::Ok();
}

}  // namespace

Status ParsePng(const Item& item, ParseContext& ctx, Parsed* out) {
  static constexpr char kSignature[] = "\x89PNG\r\n\x1a\n";
  const std::string_view s = item.bytes;
  if (s.size() < 8 || s.substr(0, 8) != std::string_view(kSignature, 8)) {
    return InvalidArgument("PNG: byte 0: expected the 8-byte PNG signature");
  }
  Emitter emit(item, ctx, out);
  PngHeader header;
  bool have_header = false, have_palette = false, have_iend = false;
  std::string idat;
  size_t idat_at = 0;
  enum { kNoIdat, kInIdat, kAfterIdat } idat_state = kNoIdat;
  uint64_t text_bytes = 0, unknown_bytes = 0;
  bool unknown_flagged = false;
  size_t pos = 8;
  while (pos < s.size()) {
    if (s.size() - pos < 12) {
      return InvalidArgument("PNG: byte " + std::to_string(pos) + ": truncated chunk header (" +
                             std::to_string(s.size() - pos) + " bytes left, 12 needed)");
    }
    const uint32_t length = Be32(s, pos);
    const std::string_view type = s.substr(pos + 4, 4);
    if (!std::all_of(type.begin(), type.end(), IsLetter)) {
      return InvalidArgument("PNG: byte " + std::to_string(pos + 4) + ": chunk type \"" +
                             Excerpt(type) + "\" is not four letters");
    }
    const std::string name(type);
    const std::string where = "PNG: chunk " + name + " at byte " + std::to_string(pos);
    if (length > 0x7fffffffu || length > s.size() - pos - 12) {
      return InvalidArgument(where + ": length " + std::to_string(length) +
                             " runs past the end of the file (" + std::to_string(s.size()) +
                             " bytes)");
    }
    const std::string_view data = s.substr(pos + 8, length);
    const uint32_t stored = Be32(s, pos + 8 + length);
    const auto computed = static_cast<uint32_t>(
        crc32(crc32(0, reinterpret_cast<const Bytef*>(type.data()), 4),
              reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
    if (stored != computed) {
      return InvalidArgument(where + ": CRC mismatch (stored " + Hex32(stored) + ", computed " +
                             Hex32(computed) + ") at byte " + std::to_string(pos + 8 + length));
    }
    const std::string location = "chunk " + name + " at byte " + std::to_string(pos);
    const auto offset = static_cast<int64_t>(pos);
    if (!have_header && name != "IHDR") {
      return InvalidArgument(where + ": expected IHDR as the first chunk");
    }
    if (idat_state == kInIdat && name != "IDAT") idat_state = kAfterIdat;

    if (name == "IHDR") {
      if (have_header) return InvalidArgument(where + ": a second IHDR");
      RETURN_IF_ERROR(CheckIhdr(data, pos, &header));
      have_header = true;
    } else if (name == "PLTE") {
      if (length == 0 || length % 3 != 0 || length > 768 || have_palette || idat_state != kNoIdat) {
        return InvalidArgument(where + ": expected one palette of 1-256 RGB entries before IDAT");
      }
      have_palette = true;
    } else if (name == "IDAT") {
      if (idat_state == kAfterIdat)
        return InvalidArgument(where + ": IDAT chunks are not consecutive");
      if (header.color == 3 && !have_palette)
        return InvalidArgument(where + ": palette image without PLTE");
      if (idat_state == kNoIdat) idat_at = pos;
      idat_state = kInIdat;
      idat.append(data);  // bounded by the file's size
    } else if (name == "IEND") {
      if (length != 0) return InvalidArgument(where + ": IEND carries data");
      have_iend = true;
      pos += 12;
      break;
    } else if (type[0] >= 'A' && type[0] <= 'Z') {
      return InvalidArgument(where + ": unknown critical chunk");
    } else if (name == "tEXt" || name == "zTXt" || name == "iTXt") {
      ASSIGN_OR_RETURN(auto parts, SplitKeyword(data, where));
      std::string text;
      if (name == "tEXt") {
        text = Latin1ToUtf8(parts.first) + "\n" + Latin1ToUtf8(parts.second);
      } else if (name == "zTXt") {
        if (parts.second.empty() || parts.second[0] != 0) {
          return InvalidArgument(where + ": expected compression method 0");
        }
        std::string inflated;
        ASSIGN_OR_RETURN(bool fits, emit.Expand(Compression::kZlib, parts.second.substr(1), where,
                                                location, offset, &inflated));
        if (!fits) {
          pos += 12 + length;
          continue;
        }
        text = Latin1ToUtf8(parts.first) + "\n" + Latin1ToUtf8(inflated);
      } else {
        // iTXt: flag, method, language NUL, translated keyword NUL, text.
        std::string_view rest = parts.second;
        if (rest.size() < 2) return InvalidArgument(where + ": truncated iTXt header");
        const bool compressed = rest[0] == 1;
        rest.remove_prefix(2);
        const size_t lang_end = rest.find('\0');
        const size_t kw_end =
            lang_end == std::string_view::npos ? lang_end : rest.find('\0', lang_end + 1);
        if (kw_end == std::string_view::npos) {
          return InvalidArgument(where +
                                 ": expected language tag and translated keyword ended by NULs");
        }
        std::string body(rest.substr(kw_end + 1));
        if (compressed) {
          std::string inflated;
          ASSIGN_OR_RETURN(
              bool fits, emit.Expand(Compression::kZlib, body, where, location, offset, &inflated));
          if (!fits) {
            pos += 12 + length;
            continue;
          }
          body = std::move(inflated);
        }
        text = std::string(parts.first) + "\n" + std::string(rest.substr(0, lang_end)) + "\n" +
               std::string(rest.substr(lang_end + 1, kw_end - lang_end - 1)) + "\n" + body;
      }
      text_bytes += text.size();
      emit.Text(pos + 8, location, std::move(text));
    } else if (name == "eXIf") {
      text_bytes += length;
      emit.Text(pos + 8, location, PrintableRuns(data));
    } else if (name == "iCCP") {
      ASSIGN_OR_RETURN(auto parts, SplitKeyword(data, where));
      if (parts.second.empty() || parts.second[0] != 0) {
        return InvalidArgument(where + ": expected compression method 0");
      }
      std::string profile;
      ASSIGN_OR_RETURN(bool fits, emit.Expand(Compression::kZlib, parts.second.substr(1), where,
                                              location, offset, &profile));
      if (fits) CheckIccProfile(profile, location, offset, "covert.png", emit);
    } else {
      const ChunkRule* rule = nullptr;
      for (const ChunkRule& r : kSmallChunks) {
        if (name == r.type) rule = &r;
      }
      if (rule != nullptr) {
        if (length > rule->max_len) {
          emit.Find("covert.png", location, offset, 1, true,
                    name + " chunk carries " + std::to_string(length) + " bytes where at most " +
                        std::to_string(rule->max_len) + " are defined");
        }
      } else {
        // Private or unknown ancillary chunk (sPLT, dSIG, fdAT, ... included).
        unknown_bytes += length;
        emit.Text(pos + 8, location, Latin1ToUtf8(data));
        if (length > kUnknownChunkBytes) {
          unknown_flagged = true;
          emit.Find("covert.png", location, offset, 1, true,
                    "ancillary chunk " + name + " carries " + std::to_string(length) +
                        " bytes the gate cannot check");
        }
      }
    }
    pos += 12 + length;
  }
  if (!have_iend) {
    return InvalidArgument("PNG: byte " + std::to_string(s.size()) + ": file ends before IEND");
  }
  if (idat_state == kNoIdat)
    return InvalidArgument("PNG: byte " + std::to_string(pos) + ": no IDAT chunk");
  if (unknown_bytes > kUnknownChunkBytes && !unknown_flagged) {
    emit.Find("covert.png", "ancillary chunks", -1, 1, true,
              std::to_string(unknown_bytes) +
                  " bytes in small private/unknown ancillary chunks the gate cannot check");
  }
  if (text_bytes > ctx.policy.max_text_chunk_bytes) {
    emit.Find("covert.png", "text chunks", -1, 1, true,
              std::to_string(text_bytes) + " bytes of text in tEXt/zTXt/iTXt/eXIf chunks, over " +
                  std::to_string(ctx.policy.max_text_chunk_bytes));
  }
  const size_t trailing = s.size() - pos;
  if (trailing > 0) {
    const std::string location = "byte " + std::to_string(pos);
    if (trailing > ctx.policy.max_trailing_bytes) {
      emit.Find("covert.png", location, static_cast<int64_t>(pos), 1, true,
                std::to_string(trailing) + " bytes after the IEND chunk (starting \"" +
                    Excerpt(s.substr(pos), 16) + "\")");
    }
    emit.Nested("after-iend", location, static_cast<int64_t>(pos), s.substr(pos));
  }
  return CheckPixels(header, idat, idat_at, emit);
}

// ---------------------------------------------------------------- JPEG
//
// The walk covers the container: markers, segment lengths, entropy-coded
// data (stuffed 0xFF00 and RSTn allowed) up to EOI. Hidden data in the DCT
// coefficients (JSteg, F5, ...) is out of scope: it needs a Huffman decoder
// and statistics of the coefficients, and is not checked.

Status ParseJpeg(const Item& item, ParseContext& ctx, Parsed* out) {
  const std::string_view s = item.bytes;
  if (s.size() < 4 || static_cast<unsigned char>(s[0]) != 0xff ||
      static_cast<unsigned char>(s[1]) != 0xd8) {
    return InvalidArgument("JPEG: byte 0: expected the SOI marker FFD8");
  }
  Emitter emit(item, ctx, out);
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  bool have_frame = false, have_scan = false, have_eoi = false;
  uint64_t text_bytes = 0;
  std::string icc;
  size_t icc_at = 0;
  size_t pos = 2;
  while (pos < s.size()) {
    if (byte(pos) != 0xff) {
      return InvalidArgument("JPEG: byte " + std::to_string(pos) +
                             ": expected a marker (0xFF), found 0x" + Hex32(byte(pos)).substr(6));
    }
    const size_t marker_at = pos;
    while (pos < s.size() && byte(pos) == 0xff) ++pos;  // fill bytes
    if (pos >= s.size()) break;
    const int marker = byte(pos++);
    const std::string where = "JPEG: marker FF" + Hex32(static_cast<uint32_t>(marker)).substr(6) +
                              " at byte " + std::to_string(marker_at);
    if (marker == 0xd9) {
      have_eoi = true;
      break;
    }
    if (marker == 0xd8 || marker == 0x00 || (marker >= 0xd0 && marker <= 0xd7)) {
      return InvalidArgument(where + ": unexpected here");
    }
    if (marker == 0x01) continue;  // TEM: no length
    if (s.size() - pos < 2) return InvalidArgument(where + ": truncated segment length");
    const uint16_t length = Be16(s, pos);
    if (length < 2 || length > s.size() - pos) {
      return InvalidArgument(where + ": segment length " + std::to_string(length) +
                             " runs past the end of the file (" + std::to_string(s.size()) +
                             " bytes)");
    }
    const std::string_view data = s.substr(pos + 2, length - 2u);
    const std::string location =
        "segment " +
        std::string(marker == 0xfe ? "COM"
                    : marker >= 0xe0 && marker <= 0xef
                        ? "APP" + std::to_string(marker - 0xe0)
                        : "FF" + Hex32(static_cast<uint32_t>(marker)).substr(6)) +
        " at byte " + std::to_string(marker_at);
    pos += length;
    if ((marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc)) {
      if (have_frame) return InvalidArgument(where + ": a second frame header");
      if (data.size() < 6) return InvalidArgument(where + ": frame header shorter than 6 bytes");
      const size_t components = static_cast<unsigned char>(data[5]);
      if (components == 0 || data.size() != 6 + 3 * components) {
        return InvalidArgument(where + ": frame header length does not match its " +
                               std::to_string(components) + " components");
      }
      have_frame = true;
    } else if (marker == 0xda) {
      if (!have_frame) return InvalidArgument(where + ": scan before any frame header (SOF)");
      if (data.empty() ||
          data.size() != 4 + 2 * static_cast<size_t>(static_cast<unsigned char>(data[0]))) {
        return InvalidArgument(where + ": scan header length does not match its component count");
      }
      have_scan = true;
      // Entropy-coded data: up to a marker that is neither stuffing nor RSTn.
      while (pos < s.size()) {
        const void* ff = std::memchr(s.data() + pos, 0xff, s.size() - pos);
        if (ff == nullptr) {
          pos = s.size();
          break;
        }
        pos = static_cast<size_t>(static_cast<const char*>(ff) - s.data());
        if (pos + 1 >= s.size()) {
          pos = s.size();
          break;
        }
        const int next = byte(pos + 1);
        if (next == 0x00 || (next >= 0xd0 && next <= 0xd7)) {
          pos += 2;
        } else if (next == 0xff) {
          ++pos;  // fill byte before a marker
        } else {
          break;
        }
      }
    } else if (marker == 0xfe) {
      text_bytes += data.size();
      emit.Text(marker_at + 4, location, Latin1ToUtf8(data));
    } else if (marker == 0xe0 && data.substr(0, 5) == std::string_view("JFIF\0", 5)) {
      // Density and thumbnail size are 9 bytes; a thumbnail's pixels can carry data.
      if (data.size() > 14) {
        text_bytes += data.size() - 14;
        emit.Text(marker_at + 18, location, PrintableRuns(data.substr(14)));
      }
    } else if (marker == 0xee && data.substr(0, 5) == "Adobe") {
      if (data.size() > 12) text_bytes += data.size() - 12;
    } else if (marker == 0xe2 && data.substr(0, 12) == std::string_view("ICC_PROFILE\0", 12) &&
               data.size() >= 14) {
      if (icc.empty()) icc_at = marker_at;
      icc.append(data.substr(14));  // chunks in file order (the sequence numbers are 1..n)
    } else if (marker >= 0xe0 && marker <= 0xef) {
      // EXIF, XMP and any other application segment: metadata text.
      text_bytes += data.size();
      const bool xmp = data.substr(0, 29) == std::string_view("http://ns.adobe.com/xap/1.0/\0", 29);
      emit.Text(marker_at + 4, location, xmp ? std::string(data.substr(29)) : PrintableRuns(data));
    }
    // DQT, DHT, DRI, DNL, DAC, EXP...: tables, no free payload worth checking.
  }
  if (!have_eoi) {
    return InvalidArgument("JPEG: byte " + std::to_string(s.size()) +
                           ": file ends before the EOI marker");
  }
  if (!have_scan)
    return InvalidArgument("JPEG: byte " + std::to_string(pos) + ": EOI before any scan (SOS)");
  if (!icc.empty()) {
    CheckIccProfile(icc, "segment APP2 ICC_PROFILE at byte " + std::to_string(icc_at),
                    static_cast<int64_t>(icc_at), "covert.jpeg", emit);
  }
  if (text_bytes > ctx.policy.max_text_chunk_bytes) {
    emit.Find("covert.jpeg", "metadata segments", -1, 1, true,
              std::to_string(text_bytes) + " bytes of text in COM/APPn segments, over " +
                  std::to_string(ctx.policy.max_text_chunk_bytes));
  }
  const size_t trailing = s.size() - pos;
  if (trailing > 0) {
    const std::string location = "byte " + std::to_string(pos);
    if (trailing > ctx.policy.max_trailing_bytes) {
      emit.Find("covert.jpeg", location, static_cast<int64_t>(pos), 1, true,
                std::to_string(trailing) + " bytes after the EOI marker (starting \"" +
                    Excerpt(s.substr(pos), 16) + "\")");
    }
    emit.Nested("after-eoi", location, static_cast<int64_t>(pos), s.substr(pos));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- PDF
//
// A tolerant object scanner, not a renderer: it finds "N G obj ... endobj",
// reads dictionaries and streams, decodes streams (Flate, ASCIIHex, ASCII85;
// DCT passed on as a JPEG), extracts the text that content streams show
// (Tj, TJ, ', ") and every string object, and accounts for the bytes outside
// objects (header, comments, xref tables, trailer). JavaScript, embedded
// files, filters it cannot decode, encryption and unused space hold.

namespace {

constexpr int kPdfMaxDepth = 64;  // nesting of arrays/dictionaries

bool PdfSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\0';
}
bool PdfDelimiter(char c) {
  return c == '(' || c == ')' || c == '<' || c == '>' || c == '[' || c == ']' || c == '{' ||
         c == '}' || c == '/' || c == '%';
}
bool PdfRegular(char c) {
  return !PdfSpace(c) && !PdfDelimiter(c);
}
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

struct PdfToken {
  enum Kind {
    kEnd,
    kNumber,
    kName,
    kString,
    kDictOpen,
    kDictClose,
    kArrayOpen,
    kArrayClose,
    kWord
  };
  Kind kind = kEnd;
  std::string text;  // name (without '/'), decoded string, word, number text
  size_t at = 0;
};

class PdfLexer {
 public:
  PdfLexer(std::string_view s, size_t pos, size_t end) : s_(s), pos_(pos), end_(end) {}
  size_t pos() const { return pos_; }
  void set_pos(size_t p) { pos_ = p; }
  // Comments skipped from now on are appended here, one a line.
  void set_comments(std::string* comments) { comments_ = comments; }

  void SkipSpace() {
    while (pos_ < end_) {
      if (PdfSpace(s_[pos_])) {
        ++pos_;
      } else if (s_[pos_] == '%') {
        const size_t start = pos_;
        while (pos_ < end_ && s_[pos_] != '\n' && s_[pos_] != '\r') ++pos_;
        if (comments_ != nullptr) {
          comments_->append(Latin1ToUtf8(s_.substr(start, pos_ - start)));
          comments_->push_back('\n');
        }
      } else {
        break;
      }
    }
  }

  PdfToken Next() {
    SkipSpace();
    PdfToken t;
    t.at = pos_;
    if (pos_ >= end_) return t;
    const char c = s_[pos_];
    if (c == '/') {
      ++pos_;
      t.kind = PdfToken::kName;
      while (pos_ < end_ && PdfRegular(s_[pos_])) {
        if (s_[pos_] == '#' && pos_ + 2 < end_ && HexValue(s_[pos_ + 1]) >= 0 &&
            HexValue(s_[pos_ + 2]) >= 0) {
          t.text.push_back(static_cast<char>(HexValue(s_[pos_ + 1]) * 16 + HexValue(s_[pos_ + 2])));
          pos_ += 3;
        } else {
          t.text.push_back(s_[pos_++]);
        }
      }
    } else if (c == '(') {
      t.kind = PdfToken::kString;
      LiteralString(&t.text);
    } else if (c == '<' && pos_ + 1 < end_ && s_[pos_ + 1] == '<') {
      pos_ += 2;
      t.kind = PdfToken::kDictOpen;
    } else if (c == '>' && pos_ + 1 < end_ && s_[pos_ + 1] == '>') {
      pos_ += 2;
      t.kind = PdfToken::kDictClose;
    } else if (c == '<') {
      t.kind = PdfToken::kString;
      HexString(&t.text);
    } else if (c == '[') {
      ++pos_;
      t.kind = PdfToken::kArrayOpen;
    } else if (c == ']') {
      ++pos_;
      t.kind = PdfToken::kArrayClose;
    } else if (PdfDelimiter(c)) {
      ++pos_;  // stray ')', '>', '{', '}': a word of its own
      t.kind = PdfToken::kWord;
      t.text.assign(1, c);
    } else {
      const size_t start = pos_;
      while (pos_ < end_ && PdfRegular(s_[pos_])) ++pos_;
      t.text.assign(s_.substr(start, pos_ - start));
      const bool numeric = std::all_of(t.text.begin(), t.text.end(), [](char ch) {
        return (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '+';
      });
      t.kind = numeric ? PdfToken::kNumber : PdfToken::kWord;
    }
    return t;
  }

 private:
  void LiteralString(std::string* out) {
    ++pos_;
    int depth = 1;
    while (pos_ < end_) {
      const char c = s_[pos_++];
      if (c == '\\') {
        if (pos_ >= end_) break;
        const char e = s_[pos_++];
        switch (e) {
          case 'n': out->push_back('\n'); break;
          case 'r': out->push_back('\r'); break;
          case 't': out->push_back('\t'); break;
          case 'b': out->push_back('\b'); break;
          case 'f': out->push_back('\f'); break;
          case '\r':
            if (pos_ < end_ && s_[pos_] == '\n') ++pos_;
            break;
          case '\n': break;
          default:
            if (e >= '0' && e <= '7') {
              int v = e - '0';
              for (int k = 0; k < 2 && pos_ < end_ && s_[pos_] >= '0' && s_[pos_] <= '7'; ++k) {
                v = v * 8 + (s_[pos_++] - '0');
              }
              out->push_back(static_cast<char>(v & 0xff));
            } else {
              out->push_back(e);  // \( \) \\ and unknown escapes: the character
            }
        }
      } else if (c == '(') {
        ++depth;
        out->push_back(c);
      } else if (c == ')') {
        if (--depth == 0) return;
        out->push_back(c);
      } else {
        out->push_back(c);
      }
    }
  }
  void HexString(std::string* out) {
    ++pos_;
    int high = -1;
    while (pos_ < end_ && s_[pos_] != '>') {
      const int v = HexValue(s_[pos_++]);
      if (v < 0) continue;  // whitespace (and junk) is ignored
      if (high < 0) {
        high = v;
      } else {
        out->push_back(static_cast<char>(high * 16 + v));
        high = -1;
      }
    }
    if (high >= 0) out->push_back(static_cast<char>(high * 16));
    if (pos_ < end_) ++pos_;
  }

  std::string_view s_;
  size_t pos_;
  size_t end_;
  std::string* comments_ = nullptr;
};

struct PdfEntry;
struct PdfValue {
  enum Kind { kNull, kNumber, kName, kString, kRef, kArray, kDict, kWord } kind = kNull;
  std::string text;  // number, name, string or word
  uint32_t ref_num = 0, ref_gen = 0;
  std::vector<PdfValue> items;  // array elements
  std::vector<PdfEntry> dict;   // dictionary entries

  const PdfValue* Get(std::string_view key) const;
  bool IsName(std::string_view name) const { return kind == kName && text == name; }
};
struct PdfEntry {
  std::string key;
  PdfValue value;
};
const PdfValue* PdfValue::Get(std::string_view key) const {
  for (const PdfEntry& e : dict) {
    if (e.key == key) return &e.value;
  }
  return nullptr;
}

bool ParseUint(std::string_view t, uint32_t* v) {
  if (t.empty() || t.size() > 9) return false;
  uint32_t r = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return false;
    r = r * 10 + static_cast<uint32_t>(c - '0');
  }
  *v = r;
  return true;
}

// Parses one value; references "N G R" are recognised by looking ahead.
// Errors name the byte.
StatusOr<PdfValue> ParseValue(PdfLexer& lex, int depth) {
  if (depth > kPdfMaxDepth) {
    return InvalidArgument("PDF: byte " + std::to_string(lex.pos()) + ": nesting deeper than " +
                           std::to_string(kPdfMaxDepth));
  }
  PdfToken t = lex.Next();
  PdfValue v;
  switch (t.kind) {
    case PdfToken::kEnd:
      return InvalidArgument("PDF: byte " + std::to_string(t.at) +
                             ": expected a value, found the end");
    case PdfToken::kName:
      v.kind = PdfValue::kName;
      v.text = std::move(t.text);
      return v;
    case PdfToken::kString:
      v.kind = PdfValue::kString;
      v.text = std::move(t.text);
      return v;
    case PdfToken::kWord:
      v.kind = t.text == "null" ? PdfValue::kNull : PdfValue::kWord;
      v.text = std::move(t.text);
      return v;
    case PdfToken::kNumber: {
      v.kind = PdfValue::kNumber;
      v.text = std::move(t.text);
      const size_t save = lex.pos();
      PdfToken gen = lex.Next();
      if (gen.kind == PdfToken::kNumber) {
        PdfToken r = lex.Next();
        uint32_t num = 0, g = 0;
        if (r.kind == PdfToken::kWord && r.text == "R" && ParseUint(v.text, &num) &&
            ParseUint(gen.text, &g)) {
          v.kind = PdfValue::kRef;
          v.ref_num = num;
          v.ref_gen = g;
          return v;
        }
      }
      lex.set_pos(save);
      return v;
    }
    case PdfToken::kArrayOpen: {
      v.kind = PdfValue::kArray;
      for (;;) {
        const size_t save = lex.pos();
        PdfToken peek = lex.Next();
        if (peek.kind == PdfToken::kArrayClose) return v;
        if (peek.kind == PdfToken::kEnd) {
          return InvalidArgument("PDF: byte " + std::to_string(t.at) + ": array without ']'");
        }
        lex.set_pos(save);
        ASSIGN_OR_RETURN(PdfValue item, ParseValue(lex, depth + 1));
        v.items.push_back(std::move(item));
      }
    }
    case PdfToken::kDictOpen: {
      v.kind = PdfValue::kDict;
      for (;;) {
        PdfToken key = lex.Next();
        if (key.kind == PdfToken::kDictClose) return v;
        if (key.kind != PdfToken::kName) {
          return InvalidArgument("PDF: byte " + std::to_string(key.at) +
                                 ": expected a name as dictionary key or '>>'");
        }
        ASSIGN_OR_RETURN(PdfValue value, ParseValue(lex, depth + 1));
        v.dict.push_back(PdfEntry{std::move(key.text), std::move(value)});
      }
    }
    case PdfToken::kDictClose:
    case PdfToken::kArrayClose:
      return InvalidArgument("PDF: byte " + std::to_string(t.at) + ": unexpected '" +
                             (t.kind == PdfToken::kDictClose ? ">>" : "]") + "'");
  }
  return v;
}

std::string Utf16BeToUtf8(std::string_view s) {
  std::string out;
  for (size_t i = 0; i + 1 < s.size(); i += 2) {
    uint32_t cp = (static_cast<unsigned char>(s[i]) << 8) | static_cast<unsigned char>(s[i + 1]);
    if (cp >= 0xd800 && cp < 0xdc00 && i + 3 < s.size()) {
      const uint32_t lo =
          (static_cast<unsigned char>(s[i + 2]) << 8) | static_cast<unsigned char>(s[i + 3]);
      if (lo >= 0xdc00 && lo < 0xe000) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i += 2;
      }
    }
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }
  return out;
}

// A PDF text string: UTF-16BE with a BOM, else PDFDocEncoding (~Latin-1).
std::string PdfTextString(std::string_view s) {
  if (s.size() >= 2 && static_cast<unsigned char>(s[0]) == 0xfe &&
      static_cast<unsigned char>(s[1]) == 0xff) {
    return Utf16BeToUtf8(s.substr(2));
  }
  return Latin1ToUtf8(s);
}

struct PdfObject {
  uint32_t num = 0, gen = 0;
  size_t start = 0;  // of "N G obj"
  size_t end = 0;    // after "endobj" (or where the object stopped)
  PdfValue value;
  bool is_stream = false;
  size_t data_at = 0, data_len = 0;
};

// What a value tree holds that matters: its strings (metadata text),
// JavaScript, references to embedded files, encryption.
struct PdfFacts {
  std::vector<std::string> strings;
  bool javascript = false;
  bool encrypt = false;
  std::vector<std::pair<uint32_t, uint32_t>> embedded_refs;   // from /EF
  std::vector<std::pair<uint32_t, uint32_t>> js_refs;         // /JS as a stream
  std::vector<std::pair<uint32_t, uint32_t>> content_refs;    // /Contents, /CharProcs values
  std::vector<std::pair<uint32_t, uint32_t>> charproc_dicts;  // /CharProcs as a reference
  std::vector<std::pair<uint32_t, uint32_t>> cmap_refs;       // /ToUnicode
  std::vector<std::pair<uint32_t, uint32_t>> binary_refs;     // font programs, CID maps
};

void AddRefs(const PdfValue& v, std::vector<std::pair<uint32_t, uint32_t>>* refs) {
  if (v.kind == PdfValue::kRef) refs->emplace_back(v.ref_num, v.ref_gen);
  for (const PdfValue& item : v.items) {
    if (item.kind == PdfValue::kRef) refs->emplace_back(item.ref_num, item.ref_gen);
  }
  for (const PdfEntry& e : v.dict) {
    if (e.value.kind == PdfValue::kRef) refs->emplace_back(e.value.ref_num, e.value.ref_gen);
  }
}

void CollectFacts(const PdfValue& v, PdfFacts* facts, bool skip_strings) {
  switch (v.kind) {
    case PdfValue::kString:
      if (!skip_strings) facts->strings.push_back(PdfTextString(v.text));
      break;
    case PdfValue::kName:
      if (v.text == "JavaScript") facts->javascript = true;
      break;
    case PdfValue::kArray:
      for (const PdfValue& item : v.items) CollectFacts(item, facts, skip_strings);
      break;
    case PdfValue::kDict:
      for (const auto& [key, value] : v.dict) {
        if (key == "JS" || key == "JavaScript") {
          facts->javascript = true;
          if (value.kind == PdfValue::kRef)
            facts->js_refs.emplace_back(value.ref_num, value.ref_gen);
        }
        if (key == "Encrypt") facts->encrypt = true;
        if (key == "Contents")
          AddRefs(value, &facts->content_refs);  // a page's (annotations': a string)
        if (key == "CharProcs") {
          AddRefs(value,
                  value.kind == PdfValue::kRef ? &facts->charproc_dicts : &facts->content_refs);
        }
        if (key == "ToUnicode") AddRefs(value, &facts->cmap_refs);
        if (key == "FontFile" || key == "FontFile2" || key == "FontFile3" || key == "CIDToGIDMap" ||
            key == "CIDSet") {
          AddRefs(value, &facts->binary_refs);
        }
        if (key == "EF" && value.kind == PdfValue::kDict) {
          for (const auto& [k2, ref] : value.dict) {
            if (ref.kind == PdfValue::kRef)
              facts->embedded_refs.emplace_back(ref.ref_num, ref.ref_gen);
          }
        }
        // /ID is two random byte strings; a /ColorSpace string is an indexed
        // image's palette: neither is text.
        CollectFacts(value, facts, skip_strings || key == "ID" || key == "ColorSpace");
      }
      break;
    default: break;
  }
}

uint64_t ObjectKey(uint32_t num, uint32_t gen) {
  return (uint64_t{num} << 32) | gen;
}

// Every "N G obj" header in [begin, end): the offset of N and of what follows
// "obj". Text inside streams may match too; the walk skips those.
struct ObjHeader {
  uint32_t num = 0, gen = 0;
  size_t start = 0, body = 0;
};
std::vector<ObjHeader> FindObjectHeaders(std::string_view s, size_t begin, size_t end) {
  std::vector<ObjHeader> headers;
  size_t i = begin;
  while (i < end) {
    const size_t hit = s.substr(0, end).find("obj", i);
    if (hit == std::string_view::npos) break;
    i = hit + 3;
    if (i < end && PdfRegular(s[i])) continue;  // "objx"
    // Back over: space, digits (gen), space, digits (num), a delimiter.
    size_t p = hit;
    size_t spaces = 0;
    while (p > begin && PdfSpace(s[p - 1])) --p, ++spaces;
    if (spaces == 0) continue;  // "endobj"
    const size_t gen_end = p;
    while (p > begin && s[p - 1] >= '0' && s[p - 1] <= '9' && gen_end - p < 10) --p;
    const size_t gen_start = p;
    if (gen_start == gen_end) continue;
    spaces = 0;
    while (p > begin && PdfSpace(s[p - 1])) --p, ++spaces;
    if (spaces == 0) continue;
    const size_t num_end = p;
    while (p > begin && s[p - 1] >= '0' && s[p - 1] <= '9' && num_end - p < 10) --p;
    if (p == num_end || (p > begin && PdfRegular(s[p - 1]))) continue;
    ObjHeader h;
    if (!ParseUint(s.substr(p, num_end - p), &h.num) ||
        !ParseUint(s.substr(gen_start, gen_end - gen_start), &h.gen)) {
      continue;
    }
    h.start = p;
    h.body = i;
    headers.push_back(h);
  }
  return headers;
}

// Decoders for the ASCII filters; errors name the stream.
StatusOr<std::string> AsciiHexDecode(std::string_view in, const std::string& where) {
  std::string out;
  out.reserve(in.size() / 2);
  int high = -1;
  for (char c : in) {
    if (c == '>') break;
    if (PdfSpace(c)) continue;
    const int v = HexValue(c);
    if (v < 0)
      return InvalidArgument(where + ": ASCIIHexDecode: '" + Excerpt(std::string_view(&c, 1)) +
                             "' is not hex");
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<char>(high * 16 + v));
      high = -1;
    }
  }
  if (high >= 0) out.push_back(static_cast<char>(high * 16));
  return out;
}

StatusOr<std::string> Ascii85Decode(std::string_view in, const std::string& where,
                                    uint64_t max_out) {
  std::string out;
  uint32_t group = 0;
  int n = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (PdfSpace(c)) continue;
    if (c == '~') break;
    if (out.size() > max_out) break;  // the caller reports the bomb
    if (c == 'z' && n == 0) {
      out.append(4, '\0');
      continue;
    }
    if (c < '!' || c > 'u') {
      return InvalidArgument(where + ": ASCII85Decode: byte " + std::to_string(i) +
                             " is not base-85");
    }
    group = group * 85 + static_cast<uint32_t>(c - '!');  // wraps on overflow like other decoders
    if (++n == 5) {
      for (int k = 3; k >= 0; --k) out.push_back(static_cast<char>((group >> (8 * k)) & 0xff));
      group = 0;
      n = 0;
    }
  }
  if (n == 1) return InvalidArgument(where + ": ASCII85Decode: a final group of one character");
  if (n > 1) {
    for (int k = n; k < 5; ++k) group = group * 85 + 84;
    for (int k = 0; k < n - 1; ++k)
      out.push_back(static_cast<char>((group >> (8 * (3 - k))) & 0xff));
  }
  return out;
}

// Text shown by a content stream: strings of Tj, TJ, ' and ", one line per
// text line (a change of the text position's y starts a new line).
std::string ContentText(std::string_view stream, std::string* comments) {
  std::string text;
  PdfLexer lex(stream, 0, stream.size());
  lex.set_comments(comments);
  std::vector<PdfToken> operands;
  std::vector<std::string> array_strings;
  std::vector<double> numbers;
  bool in_array = false;
  double y = 0, line_y = 0, last_y = 1e300;
  bool any_on_line = false;
  auto show = [&](const std::string& s) {
    if (s.empty()) return;
    if (last_y != y && !text.empty()) {
      text.push_back('\n');
      any_on_line = false;
    } else if (any_on_line) {
      text.push_back(' ');
    }
    text += Latin1ToUtf8(s);
    last_y = y;
    any_on_line = true;
  };
  auto num = [&](size_t from_end) -> double {
    if (operands.size() < from_end) return 0;
    const PdfToken& t = operands[operands.size() - from_end];
    return t.kind == PdfToken::kNumber ? std::strtod(t.text.c_str(), nullptr) : 0;
  };
  for (;;) {
    PdfToken t = lex.Next();
    if (t.kind == PdfToken::kEnd) break;
    if (in_array) {
      if (t.kind == PdfToken::kArrayClose) {
        in_array = false;
        PdfToken arr;
        arr.kind = PdfToken::kArrayOpen;
        for (const std::string& piece : array_strings) arr.text += piece;
        operands.push_back(std::move(arr));
      } else if (t.kind == PdfToken::kString) {
        array_strings.push_back(std::move(t.text));
      } else if (t.kind == PdfToken::kNumber && std::strtod(t.text.c_str(), nullptr) < -250) {
        array_strings.emplace_back(" ");  // a wide negative kern is a word space
      }
      continue;
    }
    switch (t.kind) {
      case PdfToken::kArrayOpen:
        in_array = true;
        array_strings.clear();
        break;
      case PdfToken::kWord: {
        const std::string& op = t.text;
        if (op == "Tj" || op == "'" || op == "\"" || op == "TJ") {
          if (op == "'" || op == "\"") y = line_y = line_y - 1;  // next line
          if (!operands.empty()) show(operands.back().text);
        } else if (op == "Td" || op == "TD") {
          line_y += num(1);
          y = line_y;
        } else if (op == "Tm") {
          line_y = num(1);
          y = line_y;
        } else if (op == "T*") {
          y = line_y = line_y - 1;
        } else if (op == "BI") {
          // Inline image: skip its binary data up to "EI".
          size_t p = lex.pos();
          const size_t id = stream.find("ID", p);
          if (id == std::string_view::npos) return text;
          p = id + 2;
          for (;;) {
            const size_t ei = stream.find("EI", p);
            if (ei == std::string_view::npos) return text;
            p = ei + 2;
            if (PdfSpace(stream[ei - 1]) && (p == stream.size() || !PdfRegular(stream[p]))) break;
          }
          lex.set_pos(p);
        }
        operands.clear();
        break;
      }
      default:
        if (operands.size() >= 16) operands.erase(operands.begin());  // operators take at most 6
        operands.push_back(std::move(t));
        break;
    }
  }
  return text;
}

class PdfScanner {
 public:
  PdfScanner(const Item& item, ParseContext& ctx, Parsed* out)
      : s_(item.bytes), emit_(item, ctx, out), policy_(ctx.policy) {}

  Status Run() {
    const size_t header = s_.substr(0, std::min<size_t>(s_.size(), 1024)).find("%PDF-");
    if (header == std::string_view::npos) {
      return InvalidArgument("PDF: byte 0: expected the %PDF- header in the first 1024 bytes");
    }
    if (header > 0) {
      emit_.Find("covert.pdf", "byte 0", 0, 1, true,
                 std::to_string(header) + " bytes before the %PDF- header");
      emit_.Nested("before-header", "byte 0", 0, s_.substr(0, header));
    }
    const size_t eof = s_.rfind("%%EOF");
    if (eof == std::string_view::npos || eof < header) {
      return InvalidArgument("PDF: byte " + std::to_string(s_.size()) +
                             ": no %%EOF marker (truncated file)");
    }
    end_ = eof + 5;
    size_t tail = end_;
    while (tail < s_.size() && PdfSpace(s_[tail])) ++tail;
    if (tail < s_.size()) {
      const std::string location = "byte " + std::to_string(end_);
      if (s_.size() - tail > policy_.max_trailing_bytes) {
        emit_.Find("covert.pdf", location, static_cast<int64_t>(end_), 1, true,
                   std::to_string(s_.size() - end_) + " bytes after the last %%EOF (starting \"" +
                       Excerpt(s_.substr(tail), 16) + "\")");
      }
      emit_.Nested("after-eof", location, static_cast<int64_t>(end_), s_.substr(end_));
    }
    begin_ = header;

    headers_ = FindObjectHeaders(s_, begin_, end_);
    for (size_t i = 0; i < headers_.size(); ++i) {
      index_[ObjectKey(headers_[i].num, headers_[i].gen)] = i;  // the last definition wins
    }
    size_t pos = begin_;
    for (const ObjHeader& h : headers_) {
      if (h.start < pos) continue;  // inside an earlier object (stream data)
      RETURN_IF_ERROR(ScanGap(pos, h.start));
      ASSIGN_OR_RETURN(PdfObject obj, ReadObject(h));
      pos = obj.end;
      objects_.push_back(std::move(obj));
    }
    RETURN_IF_ERROR(ScanGap(pos, end_));

    for (const PdfObject& obj : objects_) {
      PdfFacts facts;
      CollectFacts(obj.value, &facts, false);
      ObjectFacts(obj, facts);
      Absorb(facts);
      values_[ObjectKey(obj.num, obj.gen)] = &obj.value;
    }
    // Object streams first: the objects they hold may name embedded files,
    // pages' contents and fonts' glyph procedures.
    for (const PdfObject& obj : objects_) {
      const PdfValue* type = obj.value.Get("Type");
      if (obj.is_stream && type != nullptr && type->IsName("ObjStm"))
        RETURN_IF_ERROR(ScanStream(obj));
    }
    for (uint64_t key : charproc_dicts_) {
      auto it = values_.find(key);
      if (it == values_.end()) continue;
      std::vector<std::pair<uint32_t, uint32_t>> refs;
      AddRefs(*it->second, &refs);
      for (auto& r : refs) content_.insert(ObjectKey(r.first, r.second));
    }
    for (const PdfObject& obj : objects_) {
      const PdfValue* type = obj.value.Get("Type");
      if (obj.is_stream && !(type != nullptr && type->IsName("ObjStm")))
        RETURN_IF_ERROR(ScanStream(obj));
    }
    if (unused_bytes_ > kUnknownChunkBytes) {
      emit_.Find("covert.pdf", "byte " + std::to_string(first_unused_),
                 static_cast<int64_t>(first_unused_), 1, true,
                 std::to_string(unused_bytes_) +
                     " bytes outside any object, xref table or trailer (unused space or comments)");
    }
    if (!unused_text_.empty())
      emit_.Text(first_unused_, "outside objects", std::move(unused_text_));
    if (meta_bytes_ > policy_.max_text_chunk_bytes) {
      emit_.Find("covert.pdf", "metadata", -1, 1, true,
                 std::to_string(meta_bytes_) + " bytes of metadata text (strings, XMP), over " +
                     std::to_string(policy_.max_text_chunk_bytes));
    }
    return Status::Ok();
  }

 private:
  static std::string ObjName(uint32_t num, uint32_t gen) {
    return std::to_string(num) + " " + std::to_string(gen);
  }

  // The value of an indirect object that is a plain number (a /Length).
  bool ResolveNumber(uint32_t num, uint32_t gen, uint64_t* value) {
    auto it = index_.find(ObjectKey(num, gen));
    if (it == index_.end()) return false;
    const ObjHeader& h = headers_[it->second];
    PdfLexer lex(s_, h.body, end_);
    PdfToken t = lex.Next();
    uint32_t v = 0;
    if (t.kind != PdfToken::kNumber || !ParseUint(t.text, &v)) return false;
    *value = v;
    return true;
  }

  bool EndstreamAt(size_t p) const {
    while (p < end_ && PdfSpace(s_[p])) ++p;
    return s_.substr(p, 9) == "endstream";
  }

  StatusOr<PdfObject> ReadObject(const ObjHeader& h) {
    PdfObject obj;
    obj.num = h.num;
    obj.gen = h.gen;
    obj.start = h.start;
    const std::string where =
        "PDF: object " + ObjName(h.num, h.gen) + " at byte " + std::to_string(h.start);
    PdfLexer lex(s_, h.body, end_);
    auto value = ParseValue(lex, 0);
    if (!value.ok()) return InvalidArgument(where + ": " + value.status().message());
    obj.value = std::move(*value);
    const size_t after_value = lex.pos();
    PdfToken t = lex.Next();
    if (t.kind == PdfToken::kWord && t.text == "stream" && obj.value.kind == PdfValue::kDict) {
      size_t data = lex.pos();
      if (data < end_ && s_[data] == '\r') ++data;
      if (data < end_ && s_[data] == '\n') ++data;
      obj.is_stream = true;
      obj.data_at = data;
      uint64_t length = 0;
      bool have_length = false;
      if (const PdfValue* len = obj.value.Get("Length")) {
        uint32_t direct = 0;
        if (len->kind == PdfValue::kNumber && ParseUint(len->text, &direct)) {
          length = direct;
          have_length = true;
        } else if (len->kind == PdfValue::kRef) {
          have_length = ResolveNumber(len->ref_num, len->ref_gen, &length);
        }
      }
      size_t after;
      if (have_length && length <= end_ - data && EndstreamAt(data + length)) {
        obj.data_len = length;
        after = data + length;
      } else {
        // Fallback: the first "endstream" (its EOL is not data).
        const size_t found = s_.substr(0, end_).find("endstream", data);
        if (found == std::string_view::npos) {
          return InvalidArgument(where + ": stream at byte " + std::to_string(data) +
                                 " has no endstream");
        }
        size_t stop = found;
        if (stop > data && s_[stop - 1] == '\n') --stop;
        if (stop > data && s_[stop - 1] == '\r') --stop;
        obj.data_len = stop - data;
        after = found;
      }
      lex.set_pos(after);
      lex.Next();  // endstream
      const size_t save = lex.pos();
      PdfToken endobj = lex.Next();
      if (!(endobj.kind == PdfToken::kWord && endobj.text == "endobj")) lex.set_pos(save);
      obj.end = lex.pos();
      return obj;
    }
    if (t.kind == PdfToken::kWord && t.text == "endobj") {
      obj.end = lex.pos();
      return obj;
    }
    // Tolerated: a missing endobj ends the object after its value.
    obj.end = after_value;
    return obj;
  }

  // Bytes between objects: whitespace, comments, xref tables, trailers and
  // startxref are structure; anything else is unused space.
  Status ScanGap(size_t begin, size_t end) {
    PdfLexer lex(s_, begin, end);
    size_t p = begin;
    while (p < end) {
      const char c = s_[p];
      if (PdfSpace(c)) {
        ++p;
        continue;
      }
      if (c == '%') {
        size_t e = p;
        while (e < end && s_[e] != '\n' && s_[e] != '\r') ++e;
        const std::string_view comment = s_.substr(p, e - p);
        // The header, %%EOF and one short binary-marker line are structure;
        // any other comment counts (many short ones add up).
        bool structure = (p == begin_ && comment.substr(0, 5) == "%PDF-") || comment == "%%EOF";
        if (!structure && !marker_seen_ && comment.size() <= 8) structure = marker_seen_ = true;
        if (!structure) Unused(p, comment);
        p = e;
        continue;
      }
      const std::string_view rest = s_.substr(p, end - p);
      if (rest.substr(0, 4) == "xref") {
        p += 4;
        while (p < end && (PdfSpace(s_[p]) || (s_[p] >= '0' && s_[p] <= '9') || s_[p] == 'n' ||
                           s_[p] == 'f')) {
          ++p;
        }
        continue;
      }
      if (rest.substr(0, 7) == "trailer") {
        lex.set_pos(p + 7);
        auto dict = ParseValue(lex, 0);
        if (!dict.ok() || dict->kind != PdfValue::kDict) {
          return InvalidArgument("PDF: trailer at byte " + std::to_string(p) +
                                 ": expected a dictionary");
        }
        PdfFacts facts;
        CollectFacts(*dict, &facts, false);
        Metadata("trailer at byte " + std::to_string(p), p, facts.strings);
        if (facts.encrypt) Encrypted(p);
        p = lex.pos();
        continue;
      }
      if (rest.substr(0, 9) == "startxref") {
        p += 9;
        while (p < end && (PdfSpace(s_[p]) || (s_[p] >= '0' && s_[p] <= '9'))) ++p;
        continue;
      }
      size_t e = p;
      while (e < end && !PdfSpace(s_[e])) ++e;
      Unused(p, s_.substr(p, e - p));
      p = e;
    }
    return Status::Ok();
  }

  void Unused(size_t at, std::string_view bytes) {
    if (unused_bytes_ == 0) first_unused_ = at;
    unused_bytes_ += bytes.size();
    if (unused_text_.size() < policy_.max_child_bytes) {
      unused_text_.append(Latin1ToUtf8(bytes));
      unused_text_.push_back('\n');
    }
  }

  void Encrypted(size_t at) {
    if (encrypted_reported_) return;
    encrypted_reported_ = true;
    emit_.Find("covert.pdf", "byte " + std::to_string(at), static_cast<int64_t>(at), 1, true,
               "the PDF is encrypted: its content cannot be checked");
  }

  void Metadata(const std::string& location, size_t at, const std::vector<std::string>& strings) {
    std::string text;
    for (const std::string& str : strings) {
      meta_bytes_ += str.size();
      text += str;
      text.push_back('\n');
    }
    emit_.Text(at, location, std::move(text));
  }

  void Absorb(const PdfFacts& facts) {
    for (auto& r : facts.embedded_refs) embedded_.insert(ObjectKey(r.first, r.second));
    for (auto& r : facts.js_refs) js_streams_.insert(ObjectKey(r.first, r.second));
    for (auto& r : facts.content_refs) content_.insert(ObjectKey(r.first, r.second));
    for (auto& r : facts.charproc_dicts) charproc_dicts_.insert(ObjectKey(r.first, r.second));
    for (auto& r : facts.cmap_refs) cmaps_.insert(ObjectKey(r.first, r.second));
    for (auto& r : facts.binary_refs) binary_.insert(ObjectKey(r.first, r.second));
  }

  void ObjectFacts(const PdfObject& obj, const PdfFacts& facts) {
    const std::string location =
        "object " + ObjName(obj.num, obj.gen) + " at byte " + std::to_string(obj.start);
    Metadata(location, obj.start, facts.strings);
    if (facts.javascript) {
      emit_.Find("covert.pdf", location, static_cast<int64_t>(obj.start), 1, true,
                 "JavaScript in the PDF (code that would run when the document is opened)");
    }
    if (facts.encrypt && obj.value.Get("Type") && obj.value.Get("Type")->IsName("XRef")) {
      Encrypted(obj.start);
    }
  }

  // Bytes an image XObject's decoded data needs (PNG predictors add a byte a
  // row); 0 when the colour space is not one whose components are known.
  static uint64_t ImageBytes(const PdfValue& dict) {
    auto number = [&](std::string_view key, uint32_t fallback) {
      uint32_t v = fallback;
      const PdfValue* p = dict.Get(key);
      if (p == nullptr || !ParseUint(p->text, &v)) return fallback;
      return v;
    };
    const uint32_t width = number("Width", 0), height = number("Height", 0);
    uint32_t bpc = number("BitsPerComponent", 8);
    uint32_t components = 0;
    const PdfValue* cs = dict.Get("ColorSpace");
    const PdfValue* mask = dict.Get("ImageMask");
    if (mask != nullptr && mask->text == "true") {
      components = 1;
      bpc = 1;
    } else if (cs != nullptr) {
      const PdfValue* name =
          cs->kind == PdfValue::kArray && !cs->items.empty() ? &cs->items[0] : cs;
      if (name->IsName("DeviceRGB") || name->IsName("RGB")) components = 3;
      if (name->IsName("DeviceGray") || name->IsName("G") || name->IsName("Indexed") ||
          name->IsName("I")) {
        components = 1;
      }
      if (name->IsName("DeviceCMYK") || name->IsName("CMYK")) components = 4;
    }
    if (width == 0 || height == 0 || components == 0 || bpc == 0 || bpc > 16) return 0;
    uint64_t row = (uint64_t{width} * components * bpc + 7) / 8;
    if (const PdfValue* parms = dict.Get("DecodeParms")) {
      uint32_t predictor = 1;
      if (const PdfValue* p = parms->Get("Predictor")) ParseUint(p->text, &predictor);
      if (predictor >= 10) ++row;
    }
    return SaturatingMul(row, height);
  }

  // Decodes a stream's filter chain. Returns false when the stream could not
  // be decoded (a finding says why); DCT data is returned as is with *jpeg.
  StatusOr<bool> Decode(const PdfObject& obj, const std::string& where, const std::string& location,
                        std::string* data, bool* jpeg) {
    std::vector<std::string> filters;
    if (const PdfValue* f = obj.value.Get("Filter")) {
      if (f->kind == PdfValue::kName) filters.push_back(f->text);
      for (const PdfValue& item : f->items) {
        if (item.kind == PdfValue::kName) filters.push_back(item.text);
      }
    }
    const auto offset = static_cast<int64_t>(obj.start);
    // Images compress far beyond max_expansion_ratio (flat areas); their
    // size is known instead, and data beyond it is unused space.
    const PdfValue* subtype = obj.value.Get("Subtype");
    const bool image = subtype != nullptr && subtype->IsName("Image");
    const uint64_t image_bytes = image ? ImageBytes(obj.value) : 0;
    *data = std::string(s_.substr(obj.data_at, obj.data_len));
    for (size_t i = 0; i < filters.size(); ++i) {
      const std::string& f = filters[i];
      if (f == "FlateDecode" || f == "Fl") {
        std::string out;
        // Room past the image's size so extra data shows as unused space, not as a bomb.
        const uint64_t size_cap = !image             ? 0
                                  : image_bytes == 0 ? policy_.max_child_bytes
                                                     : SaturatingMul(image_bytes, 2) + 4096;
        ASSIGN_OR_RETURN(bool fits, emit_.Expand(Compression::kZlib, *data, where, location, offset,
                                                 &out, size_cap));
        if (!fits) return false;
        if (image_bytes != 0 && out.size() > image_bytes) {
          emit_.Find("covert.pdf", location, offset, 1, true,
                     "image data decodes to more than the " + std::to_string(image_bytes) +
                         " bytes its dimensions need (unused space that can carry data)");
          return false;
        }
        *data = std::move(out);
      } else if (f == "ASCIIHexDecode" || f == "AHx") {
        ASSIGN_OR_RETURN(*data, AsciiHexDecode(*data, where));
      } else if (f == "ASCII85Decode" || f == "A85") {
        const uint64_t cap = std::min<uint64_t>(policy_.max_child_bytes, data->size());
        ASSIGN_OR_RETURN(*data, Ascii85Decode(*data, where, cap));
        if (data->size() > cap) {  // only 'z' expands: 1 byte to 4
          emit_.Bomb(location, offset, where + ": ASCII85 data expands beyond its own size");
          return false;
        }
      } else if ((f == "DCTDecode" || f == "DCT") && i + 1 == filters.size()) {
        *jpeg = true;
        return true;
      } else {
        emit_.Find(
            "covert.pdf", location, offset, 1, true,
            "stream uses filter /" + Excerpt(f) + ", which the gate cannot decode and check");
        return false;
      }
    }
    return true;
  }

  Status ScanStream(const PdfObject& obj) {
    const std::string where =
        "PDF: object " + ObjName(obj.num, obj.gen) + " at byte " + std::to_string(obj.start);
    const std::string location =
        "object " + ObjName(obj.num, obj.gen) + " stream at byte " + std::to_string(obj.data_at);
    const auto offset = static_cast<int64_t>(obj.start);
    const PdfValue* type = obj.value.Get("Type");
    const PdfValue* subtype = obj.value.Get("Subtype");
    auto is = [](const PdfValue* v, std::string_view name) { return v && v->IsName(name); };
    std::string data;
    bool jpeg = false;
    ASSIGN_OR_RETURN(bool decoded, Decode(obj, where, location, &data, &jpeg));
    if (!decoded) return Status::Ok();
    const std::string base = "obj" + std::to_string(obj.num);
    const bool embedded =
        is(type, "EmbeddedFile") || embedded_.count(ObjectKey(obj.num, obj.gen)) > 0;
    if (embedded) {
      emit_.Find("covert.pdf", location, offset, 1, true,
                 "embedded file of " + std::to_string(data.size()) + " bytes (scanned as " + base +
                     ".embedded)");
      emit_.Nested(base + (jpeg ? ".jpg" : ".embedded"), location, offset, data);
      return Status::Ok();
    }
    if (jpeg) {
      emit_.Nested(base + ".jpg", location, offset, data);
      return Status::Ok();
    }
    if (js_streams_.count(ObjectKey(obj.num, obj.gen)) > 0) {
      emit_.Text(obj.data_at, location, Latin1ToUtf8(data));
      return Status::Ok();
    }
    if (is(type, "XRef") || is(subtype, "Image") || obj.value.Get("Length1") ||
        obj.value.Get("Length2") || is(subtype, "Type1C") || is(subtype, "CIDFontType0C") ||
        is(subtype, "OpenType")) {
      return Status::Ok();  // binary: offsets, pixels, font programs
    }
    if (is(type, "ObjStm")) {
      // Objects stored in a stream: read their values like top-level ones.
      const PdfValue* first = obj.value.Get("First");
      uint32_t skip = 0;
      if (first == nullptr || !ParseUint(first->text, &skip) || skip > data.size()) {
        return InvalidArgument(where + ": object stream without a valid /First");
      }
      // The header: pairs of object number and offset (from /First).
      std::vector<uint32_t> numbers;
      PdfLexer head(data, 0, skip);
      for (PdfToken t = head.Next(); t.kind == PdfToken::kNumber; t = head.Next()) {
        uint32_t v = 0;
        if (!ParseUint(t.text, &v)) break;
        numbers.push_back(v);
      }
      PdfLexer lex(data, skip, data.size());
      PdfFacts facts;
      for (size_t i = 0;; ++i) {
        lex.SkipSpace();
        if (lex.pos() >= data.size()) break;
        auto v = ParseValue(lex, 0);
        if (!v.ok()) return InvalidArgument(where + ": object stream: " + v.status().message());
        CollectFacts(*v, &facts, false);
        if (2 * i < numbers.size()) {
          stored_.push_back(std::make_unique<PdfValue>(std::move(*v)));
          values_[ObjectKey(numbers[2 * i], 0)] = stored_.back().get();
        }
      }
      ObjectFacts(obj, facts);
      Absorb(facts);
      return Status::Ok();
    }
    if (is(type, "Metadata") || is(subtype, "XML")) {
      for (char c : data) meta_bytes_ += PdfSpace(c) ? 0 : 1;
      emit_.Text(obj.data_at, location, std::move(data));
      return Status::Ok();
    }
    const uint64_t key = ObjectKey(obj.num, obj.gen);
    if (content_.count(key) > 0 || is(subtype, "Form") || obj.value.Get("PatternType") != nullptr) {
      std::string comments;
      std::string text = ContentText(data, &comments);
      if (!comments.empty()) {
        meta_bytes_ += comments.size();
        text += "\n" + comments;
      }
      emit_.Text(obj.data_at, location, std::move(text));
      return Status::Ok();
    }
    if (cmaps_.count(key) > 0 || is(type, "CMap")) {
      emit_.Text(obj.data_at, location, Latin1ToUtf8(data));
      return Status::Ok();
    }
    if (obj.value.Get("N") != nullptr && obj.value.Get("FunctionType") == nullptr) {
      CheckIccProfile(data, location, offset, "covert.pdf", emit_);  // an ICCBased colour space
      return Status::Ok();
    }
    if (obj.value.Get("FunctionType") != nullptr || obj.value.Get("ShadingType") != nullptr ||
        binary_.count(key) > 0) {
      return Status::Ok();  // function samples, shading meshes, font programs: not checked
    }
    // A stream nothing identifies (no page shows it, no type): its bytes are
    // scanned as an item of their own, typed by content.
    emit_.Nested(base + ".stream", location, offset, data);
    return Status::Ok();
  }

  std::string_view s_;
  Emitter emit_;
  const Policy& policy_;
  size_t begin_ = 0, end_ = 0;
  std::vector<ObjHeader> headers_;
  std::unordered_map<uint64_t, size_t> index_;
  std::vector<PdfObject> objects_;
  std::unordered_set<uint64_t> embedded_, js_streams_, content_, charproc_dicts_, cmaps_, binary_;
  // Every object's value by number: top-level ones point into objects_,
  // those from object streams into stored_.
  std::unordered_map<uint64_t, const PdfValue*> values_;
  std::vector<std::unique_ptr<PdfValue>> stored_;
  uint64_t unused_bytes_ = 0, meta_bytes_ = 0;
  size_t first_unused_ = 0;
  std::string unused_text_;
  bool encrypted_reported_ = false;
  bool marker_seen_ = false;
};

}  // namespace

Status ParsePdf(const Item& item, ParseContext& ctx, Parsed* out) {
  PdfScanner scanner(item, ctx, out);
  return scanner.Run();
}

}  // namespace cce::gate
