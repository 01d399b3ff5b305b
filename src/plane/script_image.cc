// The pure parts of a script job: script name and content checks, and the
// deterministic one-file layer (script_image.h).
#include "plane/script_image.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include "image/image.h"

namespace cce::plane::script_image {
namespace {

constexpr size_t kMaxScriptNameBytes = 100;
constexpr char kScriptNameRule[] =
    "expected 1 to 100 characters of [A-Za-z0-9._-], not starting with '.', ending in .py "
    "or .sh";

}  // namespace

Status CheckScriptName(const std::string& n) {
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  };
  const bool ok = !n.empty() && n.size() <= kMaxScriptNameBytes && n.front() != '.' &&
                  std::all_of(n.begin(), n.end(), ok_char) &&
                  (n.ends_with(".py") || n.ends_with(".sh")) && n.size() > 3;
  if (!ok)
    return InvalidArgument("body.script.name: " + image::QuoteName(n) + ": " + kScriptNameRule);
  return Status::Ok();
}

// Strict standard base64 (RFC 4648 §4): padded, no whitespace, at most
// `max_bytes` decoded (checked before decoding).
StatusOr<std::string> DecodeBase64(std::string_view text, size_t max_bytes,
                                   const std::string& field) {
  auto bad = [&](const std::string& why) { return InvalidArgument(field + ": " + why); };
  if (text.size() % 4 != 0) return bad("not base64 (length not a multiple of 4)");
  const size_t pad = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  const size_t decoded = text.size() / 4 * 3 - pad;
  if (decoded > max_bytes) {
    return bad("the script is " + std::to_string(decoded) + " bytes, more than the " +
               std::to_string(max_bytes) + " bytes allowed");
  }
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(decoded);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    std::array<int, 4> v{};
    for (size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && last && k >= 4 - pad) {
        v[k] = 0;
        continue;
      }
      v[k] = value(c);
      if (v[k] < 0) return bad("not base64 (byte " + std::to_string(i + k) + ")");
    }
    const uint32_t n = (static_cast<uint32_t>(v[0]) << 18) | (static_cast<uint32_t>(v[1]) << 12) |
                       (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
    out += static_cast<char>(n >> 16);
    if (!(last && pad == 2)) out += static_cast<char>((n >> 8) & 0xff);
    if (!(last && pad >= 1)) out += static_cast<char>(n & 0xff);
    // Non-canonical padding bits would let two texts name one script.
    if (last && ((pad == 2 && (n & 0xffff) != 0) || (pad == 1 && (n & 0xff) != 0))) {
      return bad("not canonical base64 (padding bits set)");
    }
  }
  return out;
}

// A ustar archive of one regular file, dir/name (dir without a leading or
// trailing '/', at most 155 bytes; name at most 100), mode 0444, owner
// root:root (0:0), mtime 0: the same input gives the same bytes.
std::string OneFileTar(const std::string& dir, const std::string& name,
                       const std::string& content) {
  std::array<char, 512> h{};
  auto put = [&h](size_t off, std::string_view s) {
    std::memcpy(h.data() + off, s.data(), s.size());
  };
  auto octal = [](uint64_t v, size_t width) {  // width-1 digits and a NUL
    std::string s(width - 1, '0');
    for (size_t i = width - 1; i-- > 0 && v > 0; v >>= 3) s[i] = static_cast<char>('0' + (v & 7));
    return s;
  };
  put(0, name);
  put(100, octal(0444, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  put(124, octal(content.size(), 12));
  put(136, octal(0, 12));
  put(148, "        ");  // the checksum counts its own field as spaces
  h[156] = '0';
  put(257, std::string_view("ustar\0"
                            "00",
                            8));
  put(265, "root");
  put(297, "root");
  put(329, octal(0, 8));
  put(337, octal(0, 8));
  put(345, dir);
  uint32_t sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  put(148, octal(sum, 7));
  h[155] = ' ';
  std::string tar(h.data(), h.size());
  tar += content;
  tar.append((512 - content.size() % 512) % 512, '\0');
  tar.append(1024, '\0');  // end of archive
  return tar;
}

// gzip (RFC 1952) of `data` by zlib, level 9, no name, mtime 0.
StatusOr<std::string> GzipBytes(const std::string& data) {
  z_stream z{};
  if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Internal("script layer: zlib deflateInit2 failed");
  }
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  const size_t n = z.total_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return Internal("script layer: zlib deflate failed");
  out.resize(n);
  return out;
}

}  // namespace cce::plane::script_image
