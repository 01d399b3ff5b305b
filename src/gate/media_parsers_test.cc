// PNG, JPEG and PDF parsers: files are built here, byte by byte, the way the
// usual producers write them (matplotlib's Agg PNGs and PDF backend, a
// JFIF JPEG), then given each covert channel the parsers must report.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "gate/content.h"

namespace cce::gate {
namespace {

// ---------------------------------------------------------------- helpers

struct Result {
  Status status;
  Parsed parsed;
  uint64_t budget_left = 0;
};

Result ParseWith(ParseFn fn, const std::string& bytes, const Policy& policy = Policy{},
                 uint64_t budget = uint64_t{1} << 30) {
  Result r;
  r.budget_left = budget;
  ParseContext ctx{policy, r.budget_left};
  Item item;
  item.path = "out/file";
  item.bytes = bytes;
  r.status = fn(item, ctx, &r.parsed);
  return r;
}

std::vector<const Finding*> FindingsOf(const Parsed& p, const std::string& detector) {
  std::vector<const Finding*> out;
  for (const Finding& f : p.findings) {
    if (f.detector == detector) out.push_back(&f);
  }
  return out;
}

std::string AllText(const Parsed& p) {
  std::string all;
  for (const TextSpan& t : p.texts) all += t.text + "\n";
  return all;
}

std::string Dump(const Parsed& p) {
  std::string s;
  for (const Finding& f : p.findings) {
    s += f.detector + " @ " + f.location + ": " + f.message + "\n";
  }
  return s;
}

std::string Compress(const std::string& in, int level = 9) {
  uLongf n = compressBound(static_cast<uLong>(in.size()));
  std::string out(n, '\0');
  EXPECT_EQ(
      compress2(reinterpret_cast<Bytef*>(out.data()), &n, reinterpret_cast<const Bytef*>(in.data()),
                static_cast<uLong>(in.size()), level),
      Z_OK);
  out.resize(n);
  return out;
}

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// ---------------------------------------------------------------- PNG writer

std::string Chunk(const std::string& type, const std::string& data) {
  const std::string body = type + data;
  const auto crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
  return Be32(static_cast<uint32_t>(data.size())) + body + Be32(crc);
}

int PaethPredict(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

// Filters rows of `row_bytes` with filter type (row index + salt) % 5, so
// every filter is exercised.
std::string FilterRows(const std::vector<uint8_t>& raw, size_t rows, size_t row_bytes, size_t unit,
                       int salt) {
  std::string out;
  for (size_t y = 0; y < rows; ++y) {
    const int filter = static_cast<int>((y + static_cast<size_t>(salt)) % 5);
    out.push_back(static_cast<char>(filter));
    const uint8_t* cur = raw.data() + y * row_bytes;
    const uint8_t* prev = y > 0 ? cur - row_bytes : nullptr;
    for (size_t i = 0; i < row_bytes; ++i) {
      const int a = i >= unit ? cur[i - unit] : 0;
      const int b = prev ? prev[i] : 0;
      const int c = (prev && i >= unit) ? prev[i - unit] : 0;
      int pred = 0;
      switch (filter) {
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: pred = PaethPredict(a, b, c); break;
        default: break;
      }
      out.push_back(static_cast<char>((cur[i] - pred) & 0xff));
    }
  }
  return out;
}

struct Image {
  uint32_t width = 0, height = 0;
  int channels = 3;  // 1 gray/palette, 2 gray+alpha, 3 RGB, 4 RGBA
  std::vector<uint8_t> pixels;
  uint8_t& at(uint32_t x, uint32_t y, int c) {
    return pixels[(static_cast<size_t>(y) * width + x) * static_cast<size_t>(channels) +
                  static_cast<size_t>(c)];
  }
};

struct PngOptions {
  int color = 2;  // PNG colour type
  bool interlace = false;
  std::string palette;      // PLTE payload for colour type 3
  std::string before_idat;  // chunks inserted after IHDR
  std::string after_idat;   // chunks inserted before IEND
  std::string after_iend;   // bytes after IEND
  std::string idat_extra;   // raw bytes appended to the image data before compressing
};

std::string EncodePng(const Image& img, const PngOptions& o = {}) {
  std::string ihdr = Be32(img.width) + Be32(img.height);
  ihdr += static_cast<char>(8);
  ihdr += static_cast<char>(o.color);
  ihdr += std::string(2, '\0');
  ihdr += static_cast<char>(o.interlace ? 1 : 0);
  const size_t pixel = static_cast<size_t>(img.channels);
  std::string filtered;
  if (!o.interlace) {
    filtered = FilterRows(img.pixels, img.height, img.width * pixel, pixel, 0);
  } else {
    static const int kPass[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                    {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
    for (int p = 0; p < 7; ++p) {
      std::vector<uint8_t> sub;
      size_t w = 0, h = 0;
      for (uint32_t y = static_cast<uint32_t>(kPass[p][1]); y < img.height;
           y += static_cast<uint32_t>(kPass[p][3])) {
        ++h;
        w = 0;
        for (uint32_t x = static_cast<uint32_t>(kPass[p][0]); x < img.width;
             x += static_cast<uint32_t>(kPass[p][2])) {
          ++w;
          for (size_t c = 0; c < pixel; ++c) {
            sub.push_back(img.pixels[(static_cast<size_t>(y) * img.width + x) * pixel + c]);
          }
        }
      }
      if (w == 0 || h == 0) continue;
      filtered += FilterRows(sub, h, w * pixel, pixel, p);
    }
  }
  filtered += o.idat_extra;
  const std::string z = Compress(filtered);
  std::string png = "\x89PNG\r\n\x1a\n";
  png += Chunk("IHDR", ihdr);
  png += o.before_idat;
  if (o.color == 3) png += Chunk("PLTE", o.palette);
  // Split the image data over two IDAT chunks, as encoders do.
  const size_t half = z.size() / 2;
  png += Chunk("IDAT", z.substr(0, half));
  png += Chunk("IDAT", z.substr(half));
  png += o.after_idat;
  png += Chunk("IEND", "");
  png += o.after_iend;
  return png;
}

// A matplotlib-like chart: white figure, axes frame, light grid, flat bars,
// an antialiased curve, a colour bar (a gradient) and dotted tick marks.
Image Chart(uint32_t w, uint32_t h, int channels) {
  Image img;
  img.width = w;
  img.height = h;
  img.channels = channels;
  img.pixels.assign(static_cast<size_t>(w) * h * static_cast<size_t>(channels), 255);
  auto blend = [&](uint32_t x, uint32_t y, const int rgb[3], double alpha) {
    if (x >= w || y >= h || alpha <= 0) return;
    alpha = std::min(alpha, 1.0);
    for (int c = 0; c < std::min(channels, 3); ++c) {
      const double v = img.at(x, y, c) * (1 - alpha) + rgb[c] * alpha;
      img.at(x, y, c) = static_cast<uint8_t>(std::lround(v));
    }
  };
  const int black[3] = {0, 0, 0}, grid[3] = {176, 176, 176}, blue[3] = {31, 119, 180},
            orange[3] = {255, 127, 14};
  const uint32_t left = w / 8, right = w * 3 / 4, top = h / 10, bottom = h * 9 / 10;
  for (uint32_t x = left; x <= right; ++x) {
    for (uint32_t y = top; y <= bottom; y += (bottom - top) / 5) blend(x, y, grid, 0.6);
  }
  for (uint32_t i = 0; i < 5; ++i) {  // bars
    const uint32_t x0 = left + 10 + i * (right - left) / 5, x1 = x0 + (right - left) / 8;
    const uint32_t y0 = bottom - (i + 1) * (bottom - top) / 7;
    for (uint32_t x = x0; x < x1; ++x) {
      for (uint32_t y = y0; y < bottom; ++y) blend(x, y, blue, 1.0);
    }
  }
  for (uint32_t x = left; x <= right; ++x) {  // frame and ticks
    blend(x, top, black, 1);
    blend(x, bottom, black, 1);
    if ((x - left) % 40 == 0) {
      for (uint32_t k = 1; k < 5; ++k) blend(x, bottom + k, black, 1);
    }
  }
  for (uint32_t y = top; y <= bottom; ++y) {
    blend(left, y, black, 1);
    blend(right, y, black, 1);
  }
  // Antialiased curve: coverage from the distance to y = f(x), width 1.5 px.
  for (uint32_t x = left + 1; x < right; ++x) {
    for (uint32_t y = top + 1; y < bottom; ++y) {
      const double t = (x - left) / 37.0;
      const double fy = (top + bottom) / 2.0 + (bottom - top) / 3.0 * std::sin(t);
      const double slope = (bottom - top) / 3.0 * std::cos(t) / 37.0;
      const double dist = std::abs(y - fy) / std::sqrt(1 + slope * slope);
      blend(x, y, orange, 1.25 - dist);
    }
  }
  // Colour bar: a vertical gradient.
  for (uint32_t y = top; y <= bottom; ++y) {
    const double t = static_cast<double>(y - top) / (bottom - top);
    const int rgb[3] = {static_cast<int>(68 + 185 * t), static_cast<int>(1 + 230 * t),
                        static_cast<int>(84 - 50 * t)};
    for (uint32_t x = right + 20; x < right + 35 && x < w; ++x) blend(x, y, rgb, 1);
  }
  return img;
}

// Random bits into the LSB of every channel of `share` of the pixels (or of
// the pixels in rows [row_from, row_to) when share is 1).
void EmbedLsb(Image& img, double share, uint32_t row_from = 0, uint32_t row_to = UINT32_MAX,
              uint32_t seed = 7) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> pick(0, 1);
  for (uint32_t y = row_from; y < std::min(row_to, img.height); ++y) {
    for (uint32_t x = 0; x < img.width; ++x) {
      if (pick(rng) >= share) continue;
      for (int c = 0; c < img.channels; ++c) {
        img.at(x, y, c) = static_cast<uint8_t>((img.at(x, y, c) & 0xfe) | (rng() & 1));
      }
    }
  }
}

// Colour type 3: maps each RGB colour of `rgb` to a palette index.
std::pair<Image, std::string> Palettize(const Image& rgb) {
  Image out;
  out.width = rgb.width;
  out.height = rgb.height;
  out.channels = 1;
  std::vector<uint32_t> colours;
  std::string plte;
  for (size_t i = 0; i < rgb.pixels.size(); i += 3) {
    const uint32_t c =
        (uint32_t{rgb.pixels[i]} << 16) | (uint32_t{rgb.pixels[i + 1]} << 8) | rgb.pixels[i + 2];
    auto it = std::find(colours.begin(), colours.end(), c);
    size_t index = static_cast<size_t>(it - colours.begin());
    if (it == colours.end()) {
      if (colours.size() == 256)
        index = 0;  // rare colours fold onto the first
      else {
        colours.push_back(c);
        plte += std::string{static_cast<char>(c >> 16), static_cast<char>(c >> 8),
                            static_cast<char>(c)};
      }
    }
    out.pixels.push_back(static_cast<uint8_t>(index));
  }
  return {out, plte};
}

const std::string kSoftware =
    Chunk("tEXt", std::string("Software\0Matplotlib version3.8.2, https://matplotlib.org/", 57));

std::string ChartPng(int channels = 3) {
  PngOptions o;
  o.color = channels == 4 ? 6 : channels == 1 ? 0 : 2;
  o.before_idat = kSoftware + Chunk("pHYs", std::string("\0\0\x0b\x13\0\0\x0b\x13\x01", 9));
  return EncodePng(Chart(320, 240, channels), o);
}

// ---------------------------------------------------------------- PNG tests

TEST(ParsePng, HonestChartIsCleanAndItsTextIsScanned) {
  for (int channels : {1, 3, 4}) {
    Result r = ParseWith(ParsePng, ChartPng(channels));
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    EXPECT_TRUE(r.parsed.findings.empty()) << channels << " channels:\n" << Dump(r.parsed);
    ASSERT_EQ(r.parsed.texts.size(), 1u);
    EXPECT_EQ(r.parsed.texts[0].location, "chunk tEXt at byte 33");
    EXPECT_NE(r.parsed.texts[0].text.find("Matplotlib version3.8.2"), std::string::npos);
    EXPECT_TRUE(r.parsed.children.empty());
  }
}

TEST(ParsePng, HonestPaletteAndInterlacedChartsAreClean) {
  auto [pal, plte] = Palettize(Chart(320, 240, 3));
  PngOptions o;
  o.color = 3;
  o.palette = plte;
  Result r = ParseWith(ParsePng, EncodePng(pal, o));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.parsed.findings.empty()) << Dump(r.parsed);

  PngOptions inter;
  inter.interlace = true;
  r = ParseWith(ParsePng, EncodePng(Chart(301, 203, 3), inter));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.parsed.findings.empty()) << Dump(r.parsed);
}

TEST(ParsePng, HonestChartsScoreFarBelowTheLsbThreshold) {
  Policy report_all;
  report_all.lsb_threshold = 0;  // every image gets its LSB finding, with its score
  auto [pal, plte] = Palettize(Chart(320, 240, 3));
  PngOptions palette;
  palette.color = 3;
  palette.palette = plte;
  PngOptions inter;
  inter.interlace = true;
  for (const std::string& png :
       {ChartPng(1), ChartPng(3), ChartPng(4), EncodePng(pal, palette),
        EncodePng(Chart(301, 203, 3), inter), EncodePng(Chart(1000, 700, 3))}) {
    Result r = ParseWith(ParsePng, png, report_all);
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    auto found = FindingsOf(r.parsed, "covert.png");
    ASSERT_EQ(found.size(), 1u);
    EXPECT_LT(found[0]->score, 0.3) << found[0]->message;
  }
}

TEST(ParsePng, RandomLsbsInThirtyPercentOfPixelsAreHeld) {
  for (int channels : {1, 3, 4}) {
    Image img = Chart(320, 240, channels);
    EmbedLsb(img, 0.3);
    PngOptions o;
    o.color = channels == 4 ? 6 : channels == 1 ? 0 : 2;
    Result r = ParseWith(ParsePng, EncodePng(img, o));
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    auto found = FindingsOf(r.parsed, "covert.png");
    ASSERT_EQ(found.size(), 1u) << channels << " channels:\n" << Dump(r.parsed);
    EXPECT_EQ(found[0]->location, "LSB plane");
    EXPECT_TRUE(found[0]->hard);
    EXPECT_GE(found[0]->score, Policy{}.lsb_threshold);
    EXPECT_LE(found[0]->score, 1.0);
  }
}

TEST(ParsePng, RandomLsbsInPaletteIndicesAndInterlacedImagesAreHeld) {
  auto [pal, plte] = Palettize(Chart(320, 240, 3));
  while (plte.size() < 768) plte += plte.substr(0, std::min<size_t>(3, 768 - plte.size()));
  EmbedLsb(pal, 0.3);
  PngOptions o;
  o.color = 3;
  o.palette = plte;
  Result r = ParseWith(ParsePng, EncodePng(pal, o));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(FindingsOf(r.parsed, "covert.png").size(), 1u) << Dump(r.parsed);

  Image img = Chart(301, 203, 3);
  EmbedLsb(img, 0.3);
  PngOptions inter;
  inter.interlace = true;
  r = ParseWith(ParsePng, EncodePng(img, inter));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(FindingsOf(r.parsed, "covert.png").size(), 1u) << Dump(r.parsed);
}

TEST(ParsePng, LsbsReplacedInOneRegionAreHeld) {
  // Every pixel of the top 15 rows carries payload bits, the rest is clean:
  // the whole-image share is small, the 32x32 blocks show it.
  Image img = Chart(320, 240, 3);
  EmbedLsb(img, 1.0, 0, 15);
  Result r = ParseWith(ParsePng, EncodePng(img));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  auto found = FindingsOf(r.parsed, "covert.png");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_NE(found[0]->message.find("block at x="), std::string::npos) << found[0]->message;
}

TEST(ParsePng, ThresholdDecidesTheLsbFinding) {
  Image img = Chart(320, 240, 3);
  EmbedLsb(img, 0.3);
  Policy lax;
  lax.lsb_threshold = 1.01;  // nothing reaches it
  Result r = ParseWith(ParsePng, EncodePng(img), lax);
  ASSERT_TRUE(r.status.ok());
  EXPECT_TRUE(FindingsOf(r.parsed, "covert.png").empty());
}

TEST(ParsePng, BytesAfterIendAreHeldAndScanned) {
  PngOptions o;
  o.after_iend = "id,name\n1,alice\n";
  Result r = ParseWith(ParsePng, EncodePng(Chart(64, 48, 3), o));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  auto found = FindingsOf(r.parsed, "covert.png");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_TRUE(found[0]->hard);
  const size_t iend_end = EncodePng(Chart(64, 48, 3)).size();
  EXPECT_EQ(found[0]->location, "byte " + std::to_string(iend_end));
  EXPECT_EQ(found[0]->offset, static_cast<int64_t>(iend_end));
  ASSERT_EQ(r.parsed.children.size(), 1u);
  EXPECT_EQ(r.parsed.children[0].name, "after-iend");
  EXPECT_EQ(r.parsed.children[0].bytes, o.after_iend);
}

TEST(ParsePng, TextChunksAreScannedAndTooMuchTextIsHeld) {
  PngOptions o;
  const std::string secret = "patient 4711 diagnosed";
  o.before_idat = Chunk("zTXt", std::string("Comment\0\0", 9) + Compress(secret)) +
                  Chunk("iTXt", std::string("Title\0\0\0en\0Titel\0", 17) + "caf\xc3\xa9");
  Result r = ParseWith(ParsePng, EncodePng(Chart(64, 48, 3), o));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.parsed.findings.empty()) << Dump(r.parsed);
  EXPECT_NE(AllText(r.parsed).find(secret), std::string::npos);
  EXPECT_NE(AllText(r.parsed).find("caf\xc3\xa9"), std::string::npos);

  o.before_idat = Chunk("tEXt", "Comment" + std::string(1, '\0') + std::string(1100, 'x'));
  r = ParseWith(ParsePng, EncodePng(Chart(64, 48, 3), o));
  ASSERT_TRUE(r.status.ok());
  auto found = FindingsOf(r.parsed, "covert.png");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_EQ(found[0]->location, "text chunks");
  EXPECT_TRUE(found[0]->hard);

  // Many small chunks add up.
  o.before_idat.clear();
  for (int i = 0; i < 12; ++i)
    o.before_idat += Chunk("tEXt", std::string("k\0", 2) + std::string(100, 'y'));
  r = ParseWith(ParsePng, EncodePng(Chart(64, 48, 3), o));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(FindingsOf(r.parsed, "covert.png").size(), 1u);
}

TEST(ParsePng, UnknownAncillaryChunksCarryingDataAreHeld) {
  PngOptions o;
  o.after_idat = Chunk("prIv", std::string(64, 'a'));  // at the limit: allowed
  Result r = ParseWith(ParsePng, EncodePng(Chart(64, 48, 3), o));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.parsed.findings.empty()) << Dump(r.parsed);

  o.after_idat = Chunk("prIv", std::string(65, 'a'));
  r = ParseWith(ParsePng, EncodePng(Chart(64, 48, 3), o));
  ASSERT_TRUE(r.status.ok());
  auto found = FindingsOf(r.parsed, "covert.png");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_NE(found[0]->location.find("chunk prIv at byte"), std::string::npos);

  o.after_idat = Chunk("prIv", std::string(40, 'a')) + Chunk("prIv", std::string(40, 'b'));
  r = ParseWith(ParsePng, EncodePng(Chart(64, 48, 3), o));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(FindingsOf(r.parsed, "covert.png").size(), 1u) << Dump(r.parsed);

  o.after_idat = Chunk("gAMA", std::string(200, 'g'));  // a known chunk, oversized
  r = ParseWith(ParsePng, EncodePng(Chart(64, 48, 3), o));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(FindingsOf(r.parsed, "covert.png").size(), 1u) << Dump(r.parsed);
}

TEST(ParsePng, ImageDataBeyondThePixelsIsHeld) {
  PngOptions o;
  o.idat_extra = std::string(100, 'z');
  Result r = ParseWith(ParsePng, EncodePng(Chart(64, 48, 3), o));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  auto found = FindingsOf(r.parsed, "covert.png");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_EQ(found[0]->location, "IDAT");
}

TEST(ParsePng, CompressedTextBombIsAFinding) {
  PngOptions o;
  o.before_idat =
      Chunk("zTXt", std::string("Comment\0\0", 9) + Compress(std::string(1 << 20, 'a')));
  Result r = ParseWith(ParsePng, EncodePng(Chart(64, 48, 3), o));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(FindingsOf(r.parsed, "encoding.bomb").size(), 1u) << Dump(r.parsed);

  Result tight = ParseWith(ParsePng, ChartPng(), Policy{}, 10);  // budget smaller than the text
  ASSERT_TRUE(tight.status.ok());
  EXPECT_EQ(FindingsOf(tight.parsed, "encoding.bomb").size(), 1u) << Dump(tight.parsed);
  EXPECT_TRUE(tight.parsed.texts.empty());
}

TEST(ParsePng, StructuralErrorsNameTheChunkAndByte) {
  std::string png = ChartPng();
  std::string bad = png;
  bad[45] ^= 1;  // inside the tEXt chunk at byte 33
  Result r = ParseWith(ParsePng, bad);
  EXPECT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("chunk tEXt at byte 33: CRC mismatch"), std::string::npos)
      << r.status.message();

  r = ParseWith(ParsePng,
                "\x89PNG\r\n\x1a\n" + Chunk("tEXt", std::string("a\0b", 3)) + png.substr(8));
  EXPECT_NE(r.status.message().find("expected IHDR as the first chunk"), std::string::npos)
      << r.status.message();

  r = ParseWith(ParsePng, std::string("GIF89a") + png);
  EXPECT_NE(r.status.message().find("PNG: byte 0"), std::string::npos);

  std::string no_iend = png.substr(0, png.size() - 12);
  r = ParseWith(ParsePng, no_iend);
  EXPECT_NE(r.status.message().find("ends before IEND"), std::string::npos) << r.status.message();

  std::string big_length = png;
  big_length[33] = '\x7f';  // tEXt length 0x7f000039
  r = ParseWith(ParsePng, big_length);
  EXPECT_NE(r.status.message().find("runs past the end of the file"), std::string::npos);

  // A filter type out of range in the first scanline.
  Image img = Chart(16, 8, 3);
  std::string filtered = FilterRows(img.pixels, 8, 48, 3, 0);
  filtered[0] = 9;
  std::string ihdr = Be32(16) + Be32(8) + std::string("\x08\x02\0\0\0", 5);
  r = ParseWith(ParsePng, "\x89PNG\r\n\x1a\n" + Chunk("IHDR", ihdr) +
                              Chunk("IDAT", Compress(filtered)) + Chunk("IEND", ""));
  EXPECT_NE(r.status.message().find("filter type 9"), std::string::npos) << r.status.message();
}

TEST(ParsePng, EveryTruncationIsAnErrorNotACrash) {
  PngOptions o;
  o.before_idat = kSoftware;
  const std::string png = EncodePng(Chart(40, 30, 3), o);
  for (size_t n = 0; n < png.size(); ++n) {
    Result r = ParseWith(ParsePng, png.substr(0, n));
    EXPECT_FALSE(r.status.ok()) << "prefix of " << n << " bytes";
  }
}

// ---------------------------------------------------------------- JPEG writer

std::string Segment(int marker, const std::string& payload) {
  const size_t n = payload.size() + 2;
  return std::string{'\xff', static_cast<char>(marker), static_cast<char>(n >> 8),
                     static_cast<char>(n)} +
         payload;
}

// A baseline JFIF file as Pillow writes one (tables are plausible, the
// entropy-coded data is not a real picture: the parser never decodes it).
std::string Jpeg(const std::string& extra_segments = "", const std::string& after_eoi = "") {
  std::string j = "\xff\xd8";
  j += Segment(0xe0, std::string("JFIF\0\x01\x01\0\0\x01\0\x01\0\0", 14));
  j += extra_segments;
  j += Segment(0xdb, std::string(1, '\0') + std::string(64, '\x10'));
  j += Segment(0xc0, std::string("\x08\0\x10\0\x10\x03\x01\x22\0\x02\x11\x01\x03\x11\x01", 15));
  j += Segment(0xc4, std::string(1, '\0') + std::string(16, '\x01') + std::string(16, '\x05'));
  j += Segment(0xdd, std::string("\0\x04", 2));  // DRI
  j += Segment(0xda, std::string("\x03\x01\0\x02\x11\x03\x11\0\x3f\0", 10));
  j += std::string("\x12\x34\xff\x00\x56", 5);  // stuffed 0xFF
  j += "\xff\xd0";                              // RST0
  j += std::string("\x9a\xbc\xff\x00\xde\xff", 6);
  j += "\xff\xd9";
  j += after_eoi;
  return j;
}

TEST(ParseJpeg, PlainJfifIsClean) {
  Result r = ParseWith(ParseJpeg, Jpeg());
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.parsed.findings.empty()) << Dump(r.parsed);
  EXPECT_TRUE(r.parsed.children.empty());
}

TEST(ParseJpeg, BytesAfterEoiAreHeldAndScanned) {
  const std::string hidden = "PK\x03\x04 a zip after the picture";
  Result r = ParseWith(ParseJpeg, Jpeg("", hidden));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  auto found = FindingsOf(r.parsed, "covert.jpeg");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_EQ(found[0]->location, "byte " + std::to_string(Jpeg().size()));
  EXPECT_TRUE(found[0]->hard);
  ASSERT_EQ(r.parsed.children.size(), 1u);
  EXPECT_EQ(r.parsed.children[0].name, "after-eoi");
  EXPECT_EQ(r.parsed.children[0].bytes, hidden);
}

TEST(ParseJpeg, CommentsAndExifAreScannedAndTooMuchIsHeld) {
  const std::string exif =
      std::string("Exif\0\0MM\0\x2a\0\0\0\x08", 14) + "Canon EOS 5D serial 12345678";
  Result r = ParseWith(ParseJpeg, Jpeg(Segment(0xfe, "made by plot.py") + Segment(0xe1, exif)));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.parsed.findings.empty()) << Dump(r.parsed);
  const std::string all = AllText(r.parsed);
  EXPECT_NE(all.find("made by plot.py"), std::string::npos);
  EXPECT_NE(all.find("Canon EOS 5D serial 12345678"), std::string::npos);
  bool com_location = false;
  for (const TextSpan& t : r.parsed.texts)
    com_location |= t.location.rfind("segment COM at byte", 0) == 0;
  EXPECT_TRUE(com_location);

  const std::string xmp = std::string("http://ns.adobe.com/xap/1.0/\0", 29) + "<x:xmpmeta>" +
                          std::string(1200, 'q') + "</x:xmpmeta>";
  r = ParseWith(ParseJpeg, Jpeg(Segment(0xe1, xmp)));
  ASSERT_TRUE(r.status.ok());
  auto found = FindingsOf(r.parsed, "covert.jpeg");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_EQ(found[0]->location, "metadata segments");
}

TEST(ParseJpeg, IccProfileWithUnusedSpaceIsHeld) {
  // A profile of one tag covering bytes 144..160, then 200 bytes nothing uses.
  std::string icc(360, '\0');
  auto put32 = [&](size_t at, uint32_t v) { icc.replace(at, 4, Be32(v)); };
  put32(0, 360);
  icc.replace(36, 4, "acsp");
  put32(128, 1);
  put32(132, 0x64657363);  // 'desc'
  put32(136, 144);
  put32(140, 16);
  const std::string app2 = std::string("ICC_PROFILE\0\x01\x01", 14);
  Result r = ParseWith(ParseJpeg, Jpeg(Segment(0xe2, app2 + icc)));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(FindingsOf(r.parsed, "covert.jpeg").size(), 1u) << Dump(r.parsed);

  icc.resize(160);
  put32(0, 160);
  r = ParseWith(ParseJpeg, Jpeg(Segment(0xe2, app2 + icc)));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.parsed.findings.empty()) << Dump(r.parsed);
}

TEST(ParseJpeg, StructuralErrorsNameTheByte) {
  Result r = ParseWith(ParseJpeg, "\x89PNG");
  EXPECT_NE(r.status.message().find("JPEG: byte 0"), std::string::npos);
  std::string bad = Jpeg();
  bad[4] = '\x7f';  // APP0 length far past the end
  r = ParseWith(ParseJpeg, bad);
  EXPECT_NE(r.status.message().find("runs past the end"), std::string::npos) << r.status.message();
  const std::string j = Jpeg();
  for (size_t n = 0; n < j.size(); ++n) {
    Result t = ParseWith(ParseJpeg, j.substr(0, n));
    EXPECT_FALSE(t.status.ok()) << "prefix of " << n << " bytes";
  }
}

// ---------------------------------------------------------------- PDF writer

// Objects in order, then an xref table and trailer with correct offsets, as
// matplotlib's backend_pdf writes them.
struct PdfWriter {
  std::string out = "%PDF-1.4\n%\xac\xdc \xab\xba\n";
  std::vector<size_t> offsets;
  void Object(int num, const std::string& body) {
    if (offsets.size() < static_cast<size_t>(num) + 1)
      offsets.resize(static_cast<size_t>(num) + 1, 0);
    offsets[static_cast<size_t>(num)] = out.size();
    out += std::to_string(num) + " 0 obj\n" + body + "\nendobj\n";
  }
  void Stream(int num, const std::string& dict_entries, const std::string& data) {
    Object(num, "<< " + dict_entries + " >>\nstream\n" + data + "\nendstream");
  }
  std::string Finish(const std::string& trailer_extra = "") {
    const size_t xref = out.size();
    out += "xref\n0 " + std::to_string(offsets.size()) + "\n0000000000 65535 f \n";
    for (size_t i = 1; i < offsets.size(); ++i) {
      char line[32];
      std::snprintf(line, sizeof line, "%010zu 00000 n \n", offsets[i]);
      out += line;
    }
    out += "trailer\n<< /Size " + std::to_string(offsets.size()) + " /Root 1 0 R /Info 9 0 R " +
           trailer_extra + ">>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
    return out;
  }
};

const std::string kContent =
    "q 0 0 460.8 345.6 re W n 1 g 0 0 460.8 345.6 re f Q\n"
    "0.121569 0.466667 0.705882 rg 57.6 38.016 m 414.72 38.016 l S\n"
    "BT /F1 10 Tf 1 0 0 1 54.4 23.4 Tm (0.0) Tj ET\n"
    "BT /F1 10 Tf 1 0 0 1 140.2 23.4 Tm (0.5) Tj ET\n"
    "BT /F1 12 Tf 1 0 0 1 180 320 Tm [(Patient) -333 (counts \\(2024\\))] TJ ET\n"
    "BT /F1 10 Tf 1 0 0 1 20 200 Tm <616c696365> Tj T* (bob\\040smith) Tj ET\n";

// A one-page chart as matplotlib writes it: Flate content with an indirect
// /Length, a Type 1 font, an /Info dictionary.
std::string MatplotlibPdf(const std::function<void(PdfWriter&)>& extra = nullptr,
                          const std::string& trailer_extra = "") {
  PdfWriter w;
  w.Object(1, "<< /Type /Catalog /Pages 2 0 R >>");
  w.Object(2, "<< /Type /Pages /Kids [ 3 0 R ] /Count 1 >>");
  w.Object(3,
           "<< /Type /Page /Parent 2 0 R /Resources 6 0 R /MediaBox [ 0 0 460.8 345.6 ] "
           "/Contents 4 0 R /Annots [ ] >>");
  const std::string z = Compress(kContent);
  w.Stream(4, "/Length 5 0 R /Filter /FlateDecode", z);
  w.Object(5, std::to_string(z.size()));
  w.Object(6, "<< /Font << /F1 7 0 R >> /ProcSet [ /PDF /Text /ImageB /ImageC /ImageI ] >>");
  w.Object(7, "<< /Type /Font /Subtype /Type1 /BaseFont /DejaVuSans >>");
  w.Object(8, "<< /Type /ExtGState >>");
  w.Object(9,
           "<< /Creator (Matplotlib v3.8.2, https://matplotlib.org) /Producer "
           "(Matplotlib pdf backend v3.8.2) /CreationDate (D:20241206101500+01'00') >>");
  if (extra) extra(w);
  return w.Finish(trailer_extra);
}

TEST(ParsePdf, MatplotlibChartIsCleanAndItsTextIsExtracted) {
  Result r = ParseWith(ParsePdf, MatplotlibPdf());
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.parsed.findings.empty()) << Dump(r.parsed);
  EXPECT_TRUE(r.parsed.children.empty());
  const std::string all = AllText(r.parsed);
  EXPECT_NE(all.find("0.0"), std::string::npos);
  EXPECT_NE(all.find("Patient counts (2024)"), std::string::npos) << all;
  EXPECT_NE(all.find("\nalice\nbob smith"), std::string::npos) << all;
  EXPECT_NE(all.find("Matplotlib pdf backend v3.8.2"), std::string::npos);
  bool stream_location = false;
  for (const TextSpan& t : r.parsed.texts)
    stream_location |= t.location == "object 4 0 stream at byte " + std::to_string(t.offset);
  EXPECT_TRUE(stream_location);
}

TEST(ParsePdf, BytesAfterTheLastEofAreHeldAndScanned) {
  const std::string pdf = MatplotlibPdf();
  Result r = ParseWith(ParsePdf, pdf + "\r\n  \n");  // whitespace is fine
  ASSERT_TRUE(r.status.ok());
  EXPECT_TRUE(r.parsed.findings.empty()) << Dump(r.parsed);
  r = ParseWith(ParsePdf, pdf + "1,alice,90210\n");
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  auto found = FindingsOf(r.parsed, "covert.pdf");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_TRUE(found[0]->hard);
  ASSERT_EQ(r.parsed.children.size(), 1u);
  EXPECT_EQ(r.parsed.children[0].name, "after-eof");
  EXPECT_NE(r.parsed.children[0].bytes.find("1,alice,90210"), std::string::npos);
}

TEST(ParsePdf, JavaScriptIsHeld) {
  Result r = ParseWith(ParsePdf, MatplotlibPdf([](PdfWriter& w) {
                         w.Object(10, "<< /S /JavaScript /JS (app.alert\\(1\\)) >>");
                       }));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  auto found = FindingsOf(r.parsed, "covert.pdf");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_NE(found[0]->location.find("object 10 0"), std::string::npos);
  EXPECT_NE(found[0]->message.find("JavaScript"), std::string::npos);
}

TEST(ParsePdf, EmbeddedFilesAreHeldAndScanned) {
  const std::string csv = "id,name\n1,alice\n2,bob\n";
  Result r = ParseWith(
      ParsePdf, MatplotlibPdf([&](PdfWriter& w) {
        w.Object(10, "<< /Type /Filespec /F (data.csv) /EF << /F 11 0 R >> >>");
        w.Stream(11, "/Length " + std::to_string(Compress(csv).size()) + " /Filter /FlateDecode",
                 Compress(csv));
      }));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  auto found = FindingsOf(r.parsed, "covert.pdf");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_NE(found[0]->message.find("embedded file"), std::string::npos);
  ASSERT_EQ(r.parsed.children.size(), 1u);
  EXPECT_EQ(r.parsed.children[0].name, "obj11.embedded");
  EXPECT_EQ(r.parsed.children[0].bytes, csv);
}

TEST(ParsePdf, AsciiFiltersAreDecodedAndJpegsPassedOn) {
  // "BT (hi there) Tj ET" in ASCIIHex, then in ASCII85 (by Python's base64.a85encode).
  Result r = ParseWith(ParsePdf, MatplotlibPdf([](PdfWriter& w) {
                         w.Stream(10, "/Subtype /Form /Length 39 /Filter /ASCIIHexDecode",
                                  "4254202868692074686572652920546a204554>");
                         w.Stream(11, "/Subtype /Form /Length 26 /Filter /ASCII85Decode",
                                  "6<#'UBPAT2BOu3q.3MT)+@T6~>");
                         w.Stream(12, "/Type /XObject /Subtype /Image /Length 4 /Filter /DCTDecode",
                                  "\xff\xd8\xff\xd9");
                       }));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.parsed.findings.empty()) << Dump(r.parsed);
  EXPECT_NE(AllText(r.parsed).find("hi there"), std::string::npos) << AllText(r.parsed);
  ASSERT_EQ(r.parsed.children.size(), 1u);
  EXPECT_EQ(r.parsed.children[0].name, "obj12.jpg");
  EXPECT_EQ(r.parsed.children[0].bytes, "\xff\xd8\xff\xd9");
}

TEST(ParsePdf, ImagesAreBoundedByTheirSizeNotTheRatio) {
  // An indexed 200x100 image as matplotlib's imshow writes it: a flat image
  // compresses far beyond max_expansion_ratio, its palette is a string.
  const std::string pixels = Compress(std::string(200 * 100, '\x07'));
  const std::string palette = "<" + std::string(256 * 6, 'a') + ">";
  const std::string dict =
      "/Type /XObject /Subtype /Image /Width 200 /Height 100 "
      "/ColorSpace [/Indexed /DeviceRGB 255 " +
      palette + "] /BitsPerComponent 8 /Filter /FlateDecode /Length ";
  Result r = ParseWith(ParsePdf, MatplotlibPdf([&](PdfWriter& w) {
                         w.Stream(10, dict + std::to_string(pixels.size()), pixels);
                       }));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.parsed.findings.empty()) << Dump(r.parsed);

  const std::string longer = Compress(std::string(200 * 100, '\x07') + "hidden rows");
  r = ParseWith(ParsePdf, MatplotlibPdf([&](PdfWriter& w) {
                  w.Stream(10, dict + std::to_string(longer.size()), longer);
                }));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  auto found = FindingsOf(r.parsed, "covert.pdf");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_TRUE(found[0]->hard);
  EXPECT_NE(found[0]->message.find("more than the 20000 bytes"), std::string::npos);
}

TEST(ParsePdf, StreamsNothingShowsAreScannedAsItems) {
  // Raw CSV in a stream no page uses: not text the page shows, so it is
  // handed on whole, to be typed and scanned.
  const std::string csv = "id,name,zip\n1,alice,90210\n";
  Result r = ParseWith(ParsePdf, MatplotlibPdf([&](PdfWriter& w) {
                         w.Stream(10, "/Length " + std::to_string(csv.size()), csv);
                       }));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(r.parsed.children.size(), 1u);
  EXPECT_EQ(r.parsed.children[0].name, "obj10.stream");
  EXPECT_EQ(r.parsed.children[0].bytes, csv);
}

TEST(ParsePdf, CommentsInContentStreamsAreScannedAndCounted) {
  const std::string content = "% 1,alice,90210\nBT (x) Tj ET\n";
  Result r =
      ParseWith(ParsePdf, MatplotlibPdf([&](PdfWriter& w) {
                  w.Stream(10, "/Subtype /Form /Length " + std::to_string(content.size()), content);
                }));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.parsed.findings.empty()) << Dump(r.parsed);
  EXPECT_NE(AllText(r.parsed).find("1,alice,90210"), std::string::npos);

  const std::string many = "%" + std::string(1100, 'c') + "\nBT (x) Tj ET\n";
  r = ParseWith(ParsePdf, MatplotlibPdf([&](PdfWriter& w) {
                  w.Stream(10, "/Subtype /Form /Length " + std::to_string(many.size()), many);
                }));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(FindingsOf(r.parsed, "covert.pdf").size(), 1u) << Dump(r.parsed);
}

TEST(ParsePdf, UndecodableFiltersAreHeld) {
  Result r = ParseWith(ParsePdf, MatplotlibPdf([](PdfWriter& w) {
                         w.Stream(10, "/Length 5 /Filter /LZWDecode", "\x80\x0b\x60\x50\x22");
                       }));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  auto found = FindingsOf(r.parsed, "covert.pdf");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_NE(found[0]->message.find("/LZWDecode"), std::string::npos);
}

TEST(ParsePdf, UnusedSpaceBetweenObjectsIsHeld) {
  const std::string junk(100, 'J');
  Result r = ParseWith(ParsePdf, MatplotlibPdf([&](PdfWriter& w) { w.out += junk + "\n"; }));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  auto found = FindingsOf(r.parsed, "covert.pdf");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_NE(found[0]->message.find("outside any object"), std::string::npos);
  EXPECT_NE(AllText(r.parsed).find(junk), std::string::npos);

  r = ParseWith(ParsePdf, MatplotlibPdf([&](PdfWriter& w) { w.out += "%" + junk + "\n"; }));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(FindingsOf(r.parsed, "covert.pdf").size(), 1u) << "a long comment";

  r = ParseWith(ParsePdf, MatplotlibPdf([&](PdfWriter& w) {
                  for (int i = 0; i < 20; ++i) w.out += "%abcdef\n";
                }));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(FindingsOf(r.parsed, "covert.pdf").size(), 1u) << "many short comments";
}

TEST(ParsePdf, MetadataOverTheLimitIsHeld) {
  Result r = ParseWith(ParsePdf, MatplotlibPdf([](PdfWriter& w) {
                         w.Object(10, "<< /Keywords (" + std::string(1100, 'k') + ") >>");
                       }));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  auto found = FindingsOf(r.parsed, "covert.pdf");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_EQ(found[0]->location, "metadata");
}

TEST(ParsePdf, ObjectStreamsAreReadLikeObjects) {
  const std::string objs = "10 0 << /S /JavaScript /JS (this.print\\(\\)) >> (secret 4711)";
  const std::string z = Compress(objs);
  Result r = ParseWith(ParsePdf, MatplotlibPdf([&](PdfWriter& w) {
                         w.Stream(12,
                                  "/Type /ObjStm /N 1 /First 5 /Length " +
                                      std::to_string(z.size()) + " /Filter /FlateDecode",
                                  z);
                       }));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(FindingsOf(r.parsed, "covert.pdf").size(), 1u) << Dump(r.parsed);
  EXPECT_NE(AllText(r.parsed).find("secret 4711"), std::string::npos);
}

TEST(ParsePdf, FlateBombIsAFinding) {
  const std::string z = Compress(std::string(4 << 20, ' '));
  Result r =
      ParseWith(ParsePdf, MatplotlibPdf([&](PdfWriter& w) {
                  w.Stream(10, "/Length " + std::to_string(z.size()) + " /Filter /FlateDecode", z);
                }));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  auto found = FindingsOf(r.parsed, "encoding.bomb");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_NE(found[0]->message.find("max_expansion_ratio"), std::string::npos);
}

TEST(ParsePdf, WrongDirectLengthFallsBackToEndstream) {
  Result r = ParseWith(ParsePdf, MatplotlibPdf([](PdfWriter& w) {
                         w.Stream(10, "/Subtype /Form /Length 3", "BT (fallback text) Tj ET");
                       }));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_TRUE(r.parsed.findings.empty()) << Dump(r.parsed);
  EXPECT_NE(AllText(r.parsed).find("fallback text"), std::string::npos);
}

TEST(ParsePdf, EncryptedPdfIsHeld) {
  Result r = ParseWith(ParsePdf, MatplotlibPdf(nullptr, "/Encrypt 12 0 R "));
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  auto found = FindingsOf(r.parsed, "covert.pdf");
  ASSERT_EQ(found.size(), 1u) << Dump(r.parsed);
  EXPECT_NE(found[0]->message.find("encrypted"), std::string::npos);
}

TEST(ParsePdf, TruncationsAreErrorsNotCrashes) {
  const std::string pdf = MatplotlibPdf();
  EXPECT_NE(ParseWith(ParsePdf, "hello").status.message().find("%PDF-"), std::string::npos);
  for (size_t n = 0; n + 1 < pdf.size(); ++n) {  // the last byte is a newline after %%EOF
    Result r = ParseWith(ParsePdf, pdf.substr(0, n));
    EXPECT_FALSE(r.status.ok()) << "prefix of " << n << " bytes";
  }
  Result deep =
      ParseWith(ParsePdf, "%PDF-1.4\n1 0 obj\n" + std::string(100000, '[') + "\nendobj\n%%EOF\n");
  EXPECT_NE(deep.status.message().find("nesting deeper"), std::string::npos)
      << deep.status.message();
}

// ---------------------------------------------------------------- robustness

TEST(MediaParsers, MutatedFilesNeverCrash) {
  std::mt19937 rng(42);
  PngOptions o;
  o.before_idat = kSoftware;
  const std::vector<std::pair<ParseFn, std::string>> seeds = {
      {ParsePng, EncodePng(Chart(40, 30, 3), o)},
      {ParseJpeg, Jpeg(Segment(0xfe, "comment"))},
      {ParsePdf, MatplotlibPdf()}};
  for (const auto& [fn, seed] : seeds) {
    for (int i = 0; i < 400; ++i) {
      std::string m = seed;
      const int edits = 1 + static_cast<int>(rng() % 8);
      for (int e = 0; e < edits; ++e) m[rng() % m.size()] = static_cast<char>(rng());
      Result r = ParseWith(fn, m, Policy{}, 1 << 20);
      (void)r;
    }
  }
}

}  // namespace
}  // namespace cce::gate
