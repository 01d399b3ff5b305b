// Containers (docs/gate.md "Encodings and containers"): gzip, bzip2, xz, zip
// (and NPZ), tar and XLSX. Every byte of an archive is accounted for: it is
// structure we checked, member data we hand on as a child, or unused space
// we report (and hand on) as a covert channel. Decompression goes through
// decompress.h only, within the stream limit below, so a bomb is a finding.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gate/content.h"
#include "gate/decompress.h"

namespace cce::gate {
namespace {

using std::string;
using std::string_view;

constexpr uint64_t kNone = ~uint64_t{0};

// ---------------------------------------------------------------------------
// Small helpers.

uint8_t Byte(string_view b, uint64_t at) {
  return static_cast<uint8_t>(b[at]);
}
uint16_t Le16(string_view b, uint64_t at) {
  return static_cast<uint16_t>(Byte(b, at) | (Byte(b, at + 1) << 8));
}
uint32_t Le32(string_view b, uint64_t at) {
  return uint32_t{Le16(b, at)} | (uint32_t{Le16(b, at + 2)} << 16);
}
uint64_t Le64(string_view b, uint64_t at) {
  return uint64_t{Le32(b, at)} | (uint64_t{Le32(b, at + 4)} << 32);
}

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

// CRC-32 (ISO 3309, as zip, gzip and xz use it).
uint32_t Crc32(string_view s) {
  uint32_t c = 0xFFFFFFFFu;
  for (const char ch : s) c = kCrcTable[(c ^ static_cast<uint8_t>(ch)) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// A short, escaped excerpt of outside bytes for a message.
string Excerpt(string_view s, size_t max = 80) {
  string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const uint8_t c = Byte(s, i);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

string Quoted(string_view s) {
  return "'" + Excerpt(s) + "'";
}

// A member name as a child name: control bytes replaced, length capped.
string SafeName(string_view s) {
  string out;
  for (size_t i = 0; i < s.size() && i < 255; ++i) {
    const uint8_t c = Byte(s, i);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  return out.empty() ? string("unnamed") : out;
}

bool ValidUtf8(string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t c = Byte(s, i);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const uint8_t cc = Byte(s, i + k);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

// Outside bytes as UTF-8 text: kept when valid, else read as Latin-1.
string AsUtf8(string_view s) {
  if (ValidUtf8(s)) return string(s);
  string out;
  out.reserve(s.size() * 2);
  for (const char ch : s) {
    const auto c = static_cast<uint8_t>(ch);
    if (c < 0x80) {
      out += ch;
    } else {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

char Lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool EndsWithNoCase(string_view s, string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    if (Lower(s[s.size() - suffix.size() + i]) != Lower(suffix[i])) return false;
  }
  return true;
}

bool AllZero(string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '\0'; });
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

string_view Trim(string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

Finding MakeFinding(const Item& item, string detector, string location, int64_t offset,
                    double score, bool hard, string message) {
  Finding f;
  f.detector = std::move(detector);
  f.file = item.path;
  f.location = std::move(location);
  f.offset = offset;
  f.score = score;
  f.hard = hard;
  f.message = std::move(message);
  return f;
}

int64_t Off(uint64_t v) {
  return static_cast<int64_t>(v);
}
string Num(uint64_t v) {
  return std::to_string(v);
}

// ---------------------------------------------------------------------------
// Expansion bounds.

// The most one stream or member may produce: min(remaining budget,
// max_child_bytes, input * max_expansion_ratio), the ratio allowing at least
// 1 MiB so tiny inputs are not bombs. `why` names the binding bound.
struct Limit {
  uint64_t bytes = 0;
  string why;
};

Limit StreamLimit(const ParseContext& ctx, uint64_t in_bytes) {
  const double ratio_bytes = static_cast<double>(in_bytes) * ctx.policy.max_expansion_ratio;
  Limit limit;
  limit.bytes = ratio_bytes >= 1.8e19 ? kNone : static_cast<uint64_t>(ratio_bytes);
  limit.why = Num(static_cast<uint64_t>(ctx.policy.max_expansion_ratio)) + " times its " +
              Num(in_bytes) + " compressed bytes (policy max_expansion_ratio)";
  if (limit.bytes < kMiB) {
    limit.bytes = kMiB;
    limit.why = "1 MiB, the least any stream may expand to";
  }
  if (ctx.policy.max_child_bytes < limit.bytes) {
    limit.bytes = ctx.policy.max_child_bytes;
    limit.why = Num(limit.bytes) + " bytes (policy max_child_bytes)";
  }
  if (ctx.expand_budget < limit.bytes) {
    limit.bytes = ctx.expand_budget;
    limit.why = "the scan's remaining expansion budget of " + Num(limit.bytes) +
                " bytes (policy max_expanded_bytes)";
  }
  return limit;
}

bool Charge(ParseContext& ctx, uint64_t n) {
  if (n > ctx.expand_budget) return false;
  ctx.expand_budget -= n;
  return true;
}

void AddBomb(const Item& item, Parsed* out, string location, uint64_t offset, string message) {
  out->findings.push_back(MakeFinding(item, "encoding.bomb", std::move(location), Off(offset), 1.0,
                                      true, std::move(message) + ": a decompression bomb"));
}

// Hands outside bytes on as a child (charged to the budget), or reports a
// bomb when the budget or the per-child cap cannot take them.
void AddChild(const Item& item, ParseContext& ctx, Parsed* out, string name, string location,
              uint64_t offset, string bytes) {
  if (bytes.size() > ctx.policy.max_child_bytes || !Charge(ctx, bytes.size())) {
    AddBomb(item, out, location, offset,
            Num(bytes.size()) + " bytes of " + name +
                " would exceed max_child_bytes or the scan's "
                "expansion budget");
    return;
  }
  out->children.push_back(Child{std::move(name), std::move(location), std::move(bytes)});
}

string_view BaseName(string_view path) {
  const size_t slash = path.find_last_of("/!");
  return slash == string_view::npos ? path : path.substr(slash + 1);
}

// "data.csv.gz" -> "data.csv", "x.tgz" -> "x.tar", else `fallback`.
string StreamChildName(const Item& item, std::initializer_list<string_view> suffixes,
                       string_view tar_suffix, string_view fallback) {
  const string_view base = BaseName(item.path);
  for (const string_view suffix : suffixes) {
    if (base.size() > suffix.size() && EndsWithNoCase(base, suffix)) {
      return SafeName(base.substr(0, base.size() - suffix.size()));
    }
  }
  if (base.size() > tar_suffix.size() && EndsWithNoCase(base, tar_suffix)) {
    return SafeName(base.substr(0, base.size() - tar_suffix.size())) + ".tar";
  }
  return string(fallback);
}

// ---------------------------------------------------------------------------
// gzip, bzip2, xz.

// The decompressed stream as one child, and whatever follows the stream(s).
void FinishStream(const Item& item, ParseContext& ctx, Parsed* out, string_view format,
                  string child_name, string data, uint64_t end) {
  const string_view b = item.bytes;
  if (!data.empty()) {
    AddChild(item, ctx, out, std::move(child_name), string(format) + " stream at byte 0", 0,
             std::move(data));
  }
  if (end < b.size()) {
    const uint64_t n = b.size() - end;
    const bool hard = n > ctx.policy.max_trailing_bytes;
    out->findings.push_back(MakeFinding(item, "covert.trailing", "byte " + Num(end), Off(end),
                                        hard ? 1.0 : 0.3, hard,
                                        Num(n) + " bytes follow the end of the " + string(format) +
                                            " stream (data hidden after a valid file)"));
    AddChild(item, ctx, out, "trailing", "byte " + Num(end), end, string(b.substr(end)));
  }
}

struct GzipHeader {
  uint64_t size = 0;  // header bytes before the deflate data
  uint64_t name_at = kNone;
  string_view name;
  uint64_t comment_at = kNone;
  string_view comment;
  uint64_t extra_at = kNone;
  string_view extra;
};

StatusOr<GzipHeader> ReadGzipHeader(string_view b, uint64_t at, int member) {
  const string where = "gzip member " + std::to_string(member) + " at byte " + Num(at) + ": ";
  if (b.size() - at < 18)
    return InvalidArgument(where + "truncated (a header and trailer need 18 bytes)");
  if (Byte(b, at) != 0x1f || Byte(b, at + 1) != 0x8b) {
    return InvalidArgument(where + "magic 1f 8b expected");
  }
  if (Byte(b, at + 2) != 8) {
    return InvalidArgument(where + "compression method " + std::to_string(Byte(b, at + 2)) +
                           " (8, deflate, expected)");
  }
  const uint8_t flags = Byte(b, at + 3);
  if ((flags & 0xE0) != 0) return InvalidArgument(where + "reserved flag bits set");
  GzipHeader h;
  uint64_t p = at + 10;
  if ((flags & 0x04) != 0) {
    if (b.size() - p < 2) return InvalidArgument(where + "FEXTRA length truncated");
    const uint16_t xlen = Le16(b, p);
    p += 2;
    if (b.size() - p < xlen) return InvalidArgument(where + "FEXTRA runs past the end");
    h.extra_at = p;
    h.extra = b.substr(p, xlen);
    p += xlen;
  }
  for (const uint8_t bit : {uint8_t{0x08}, uint8_t{0x10}}) {
    if ((flags & bit) == 0) continue;
    const size_t nul = b.find('\0', p);
    if (nul == string_view::npos) {
      return InvalidArgument(where + (bit == 0x08 ? "FNAME" : "FCOMMENT") + " not terminated");
    }
    (bit == 0x08 ? h.name_at : h.comment_at) = p;
    (bit == 0x08 ? h.name : h.comment) = b.substr(p, nul - p);
    p = nul + 1;
  }
  if ((flags & 0x02) != 0) p += 2;
  if (p > b.size()) return InvalidArgument(where + "header CRC truncated");
  h.size = p - at;
  return h;
}

// FEXTRA made only of BGZF "BC" subfields (block sizes) is ordinary.
bool OnlyBgzfExtra(string_view extra) {
  uint64_t p = 0;
  while (extra.size() - p >= 4) {
    const uint16_t len = Le16(extra, p + 2);
    if (extra[p] != 'B' || extra[p + 1] != 'C' || len != 2 || extra.size() - p - 4 < len)
      return false;
    p += 4 + len;
  }
  return p == extra.size();
}

}  // namespace

Status ParseGzip(const Item& item, ParseContext& ctx, Parsed* out) {
  const string_view b = item.bytes;
  const Limit limit = StreamLimit(ctx, b.size());
  string data;
  string child_name;
  uint64_t pos = 0;
  int member = 0;
  while (pos < b.size()) {
    if (member > 0 && !(b.size() - pos >= 2 && Byte(b, pos) == 0x1f && Byte(b, pos + 1) == 0x8b)) {
      break;  // what follows is not another member: trailing bytes
    }
    ++member;
    ASSIGN_OR_RETURN(const GzipHeader h, ReadGzipHeader(b, pos, member));
    const string m = "gzip member " + std::to_string(member);
    if (h.name_at != kNone) {
      if (child_name.empty() && !h.name.empty()) child_name = SafeName(h.name);
      out->texts.push_back(
          TextSpan{item.path, h.name_at, m + " FNAME at byte " + Num(h.name_at), AsUtf8(h.name)});
    }
    if (h.comment_at != kNone) {
      out->texts.push_back(TextSpan{item.path, h.comment_at,
                                    m + " FCOMMENT at byte " + Num(h.comment_at),
                                    AsUtf8(h.comment)});
    }
    if (h.extra_at != kNone && !h.extra.empty() && !OnlyBgzfExtra(h.extra)) {
      const bool hard = h.extra.size() > ctx.policy.max_text_chunk_bytes;
      out->findings.push_back(MakeFinding(
          item, "covert.gzip", m + " FEXTRA at byte " + Num(h.extra_at), Off(h.extra_at),
          hard ? 1.0 : 0.3, hard, Num(h.extra.size()) + " bytes in the gzip extra field"));
      out->texts.push_back(TextSpan{item.path, h.extra_at, m + " FEXTRA at byte " + Num(h.extra_at),
                                    AsUtf8(h.extra)});
    }
    auto d = Decompress(Compression::kGzip, b.substr(pos), limit.bytes - data.size());
    if (!d.ok()) return d.status().WithContext(m + " at byte " + Num(pos));
    if (d->over_limit) {
      AddBomb(item, out, m + " at byte " + Num(pos), pos, "gzip stream expands past " + limit.why);
      return Status::Ok();
    }
    if (data.empty()) {
      data = std::move(d->bytes);
    } else {
      data += d->bytes;
    }
    pos += d->consumed;
  }
  if (child_name.empty()) child_name = StreamChildName(item, {".gz", ".gzip"}, ".tgz", "gunzip");
  FinishStream(item, ctx, out, "gzip", std::move(child_name), std::move(data), pos);
  return Status::Ok();
}

Status ParseBzip2(const Item& item, ParseContext& ctx, Parsed* out) {
  const string_view b = item.bytes;
  const Limit limit = StreamLimit(ctx, b.size());
  string data;
  uint64_t pos = 0;
  int stream = 0;
  while (pos < b.size()) {
    // Concatenated streams (pbzip2) each start "BZh" and a block size digit.
    const bool magic =
        b.size() - pos >= 4 && b.substr(pos, 3) == "BZh" && b[pos + 3] >= '1' && b[pos + 3] <= '9';
    if (stream > 0 && !magic) break;
    ++stream;
    const string m = "bzip2 stream " + std::to_string(stream) + " at byte " + Num(pos);
    if (!magic) return InvalidArgument(m + ": magic 'BZh1'..'BZh9' expected");
    auto d = Decompress(Compression::kBzip2, b.substr(pos), limit.bytes - data.size());
    if (!d.ok()) return d.status().WithContext(m);
    if (d->over_limit) {
      AddBomb(item, out, m, pos, "bzip2 stream expands past " + limit.why);
      return Status::Ok();
    }
    if (data.empty()) {
      data = std::move(d->bytes);
    } else {
      data += d->bytes;
    }
    pos += d->consumed;
  }
  FinishStream(item, ctx, out, "bzip2",
               StreamChildName(item, {".bz2", ".bzip2"}, ".tbz2", "bunzip2"), std::move(data), pos);
  return Status::Ok();
}

namespace {

// The end of the last whole xz stream (with its padding) at the start of
// `b`, found from the stream footers: magic "YZ", flags matching the
// header's, CRC-32 of backward size and flags. 0 when there is none.
uint64_t XzStreamsEnd(string_view b) {
  static constexpr string_view kMagic(
      "\xFD"
      "7zXZ\0",
      6);
  uint64_t pos = 0;
  while (b.size() - pos >= 32 && b.substr(pos, 6) == kMagic) {
    const string_view flags = b.substr(pos + 6, 2);
    uint64_t end = 0;
    for (uint64_t e = pos + 32; e <= b.size(); e += 4) {
      if (b[e - 2] == 'Y' && b[e - 1] == 'Z' && b.substr(e - 4, 2) == flags &&
          Crc32(b.substr(e - 8, 6)) == Le32(b, e - 12)) {
        end = e;
        break;
      }
    }
    if (end == 0) break;
    pos = end;
    while (b.size() - pos >= 4 && Le32(b, pos) == 0) pos += 4;  // stream padding
  }
  return pos;
}

}  // namespace

Status ParseXz(const Item& item, ParseContext& ctx, Parsed* out) {
  const string_view b = item.bytes;
  const Limit limit = StreamLimit(ctx, b.size());
  auto d = Decompress(Compression::kXz, b, limit.bytes);
  uint64_t end = b.size();
  if (!d.ok()) {
    // liblzma reads concatenated streams and calls anything after them
    // corrupt: find where the streams end and decode just those.
    end = XzStreamsEnd(b);
    if (end == 0 || end >= b.size()) return d.status();
    auto prefix = Decompress(Compression::kXz, b.substr(0, end), limit.bytes);
    if (!prefix.ok()) return d.status();
    d = std::move(prefix);
  }
  if (d->over_limit) {
    AddBomb(item, out, "byte 0", 0, "xz stream expands past " + limit.why);
    return Status::Ok();
  }
  FinishStream(item, ctx, out, "xz", StreamChildName(item, {".xz"}, ".txz", "unxz"),
               std::move(d->bytes), end);
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// zip.

namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint32_t kDescriptorSig = 0x08074b50;
constexpr size_t kMaxListedFindings = 20;

struct ZipMember {
  string name;
  uint16_t flags = 0;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t csize = 0;
  uint64_t usize = 0;
  uint64_t central_at = 0;  // its central directory entry
  uint64_t local_at = 0;    // its local header
  uint64_t data_at = 0;
  uint64_t end = 0;  // end of its data and data descriptor
};

struct Range {
  uint64_t begin = 0;
  uint64_t end = 0;
  string what;
};

struct Extra {
  uint16_t id = 0;
  uint64_t at = 0;
  string_view data;
};

// An extra field we know and that is within its usual size; anything else
// carrying data is a place to hide bytes.
bool KnownExtra(const Extra& e) {
  switch (e.id) {
    case 0x0001: return e.data.size() <= 28;  // ZIP64
    case 0x000a: return e.data.size() <= 36;  // NTFS times
    case 0x5455: return e.data.size() <= 13;  // extended timestamp
    case 0x5855: return e.data.size() <= 12;  // Info-ZIP Unix (old)
    case 0x7855: return e.data.size() <= 4;   // Info-ZIP Unix
    case 0x7875: return e.data.size() <= 19;  // Info-ZIP uid/gid
    case 0x7075:                              // Info-ZIP Unicode path: scanned as a name
    case 0x6375: return true;                 // Info-ZIP Unicode comment: scanned as text
    case 0xcafe: return e.data.empty();       // JAR marker
    case 0xd935:                              // zipalign: a 2-byte alignment, then zero padding
      return e.data.size() <= 4096 && (e.data.size() < 2 || AllZero(e.data.substr(2)));
    default: return false;
  }
}

class ZipReader {
 public:
  // Reads the structure (end record, central directory, local headers) and
  // checks it: central and local entries agree, nothing overlaps, only
  // stored/deflate and no encryption. Comments, unknown extra fields and
  // names go to `out`.
  Status Open(const Item& item, const Policy& policy, Parsed* out);

  const std::vector<ZipMember>& members() const { return members_; }

  // Member i's bytes, charged to the budget; nullopt after a bomb finding.
  StatusOr<std::optional<string>> Extract(size_t i, ParseContext& ctx, Parsed* out);

  // Every byte not covered by structure or member data: covert.zip
  // findings and one child "unused". Call after Extract.
  void ReportUnused(ParseContext& ctx, Parsed* out);

 private:
  Status ReadEnd(uint64_t* cd_start, uint64_t* cd_size, uint64_t* count, uint64_t* base);
  StatusOr<std::vector<Extra>> SplitExtras(uint64_t at, uint64_t len, const string& where) const;
  void CheckExtras(const std::vector<Extra>& extras, const string& where, const Policy& policy,
                   Parsed* out, string* names);
  Status ReadLocal(ZipMember* m, uint64_t local, uint64_t base, const Policy& policy, Parsed* out,
                   string* names);

  const Item* item_ = nullptr;
  string_view b_;
  std::vector<ZipMember> members_;
  std::vector<Range> covered_;
  size_t unknown_extras_ = 0;
  uint64_t comment_at_ = 0;
  string_view comment_;  // the archive comment
};

StatusOr<std::vector<Extra>> ZipReader::SplitExtras(uint64_t at, uint64_t len,
                                                    const string& where) const {
  std::vector<Extra> extras;
  uint64_t q = at;
  const uint64_t stop = at + len;
  while (q < stop) {
    if (stop - q < 4) {
      if (AllZero(b_.substr(q, stop - q))) break;  // zero padding some writers leave
      return InvalidArgument(where + ": extra field at byte " + Num(q) + " truncated");
    }
    Extra e;
    e.id = Le16(b_, q);
    const uint16_t size = Le16(b_, q + 2);
    if (stop - q - 4 < size) {
      return InvalidArgument(where + ": extra field at byte " + Num(q) + " runs past its area");
    }
    e.at = q + 4;
    e.data = b_.substr(q + 4, size);
    extras.push_back(e);
    q += 4 + uint64_t{size};
  }
  return extras;
}

void ZipReader::CheckExtras(const std::vector<Extra>& extras, const string& where,
                            const Policy& policy, Parsed* out, string* names) {
  for (const Extra& e : extras) {
    if (e.id == 0x7075 && e.data.size() > 5) {
      *names += AsUtf8(e.data.substr(5));
      *names += '\n';
    }
    if (e.id == 0x6375 && e.data.size() > 5) {
      out->texts.push_back(
          TextSpan{item_->path, e.at + 5, where + " Unicode comment", AsUtf8(e.data.substr(5))});
    }
    if (KnownExtra(e) || e.data.empty()) continue;
    char id[8];
    std::snprintf(id, sizeof id, "0x%04x", e.id);
    const string location = where + " extra field " + id + " at byte " + Num(e.at);
    out->texts.push_back(TextSpan{item_->path, e.at, location, AsUtf8(e.data)});
    if (++unknown_extras_ <= kMaxListedFindings) {
      const bool hard = e.data.size() > policy.max_text_chunk_bytes;
      out->findings.push_back(MakeFinding(
          *item_, "covert.zip", location, Off(e.at), hard ? 1.0 : 0.3, hard,
          Num(e.data.size()) + " bytes in an unknown or oversized zip extra field " + id));
    }
  }
}

Status ZipReader::ReadEnd(uint64_t* cd_start, uint64_t* cd_size, uint64_t* count, uint64_t* base) {
  const uint64_t n = b_.size();
  if (n < 22) {
    return InvalidArgument("zip: " + Num(n) +
                           " bytes is too short for an end of central directory record");
  }
  // The last signature whose comment ends inside the file; the comment is
  // at most 65535 bytes, so the record is within the last 65557 bytes.
  const uint64_t lowest = n - 22 > 65535 ? n - 22 - 65535 : 0;
  uint64_t eocd = kNone;
  for (uint64_t i = n - 22;; --i) {
    if (Le32(b_, i) == kEocdSig && i + 22 + Le16(b_, i + 20) <= n) {
      eocd = i;
      break;
    }
    if (i == lowest) break;
  }
  if (eocd == kNone) {
    return InvalidArgument("zip: no end of central directory record (PK\\5\\6) in the last " +
                           Num(n - lowest) + " bytes");
  }
  const uint16_t comment_len = Le16(b_, eocd + 20);
  covered_.push_back({eocd, eocd + 22 + comment_len, "the end of central directory record"});
  if (comment_len > 0) {
    comment_at_ = eocd + 22;
    comment_ = b_.substr(eocd + 22, comment_len);
  }
  *count = Le16(b_, eocd + 10);
  *cd_size = Le32(b_, eocd + 12);
  uint64_t cd_offset = Le32(b_, eocd + 16);
  uint64_t cd_end = eocd;
  if (eocd >= 20 && Le32(b_, eocd - 20) == kZip64LocatorSig) {
    const uint64_t loc = eocd - 20;
    covered_.push_back({loc, eocd, "the ZIP64 end of central directory locator"});
    if (Le32(b_, loc + 4) != 0 || Le32(b_, loc + 16) > 1) {
      return InvalidArgument("zip: ZIP64 locator at byte " + Num(loc) +
                             ": multi-disk archives are not supported");
    }
    // The record sits right before its locator (prepended bytes shift the
    // offset the locator states).
    const uint64_t stated = Le64(b_, loc + 8);
    uint64_t rec = kNone;
    if (loc >= 56 && Le32(b_, loc - 56) == kZip64EocdSig) {
      rec = loc - 56;
    } else if (stated <= loc && loc - stated >= 56 && Le32(b_, stated) == kZip64EocdSig) {
      rec = stated;
    }
    if (rec == kNone || Le64(b_, rec + 4) != 44 || rec + 56 != loc) {
      return InvalidArgument("zip: ZIP64 end of central directory record expected at byte " +
                             Num(loc >= 56 ? loc - 56 : 0) + " (locator at byte " + Num(loc) +
                             "), without extensible data");
    }
    if (Le32(b_, rec + 16) != 0 || Le32(b_, rec + 20) != 0 ||
        Le64(b_, rec + 24) != Le64(b_, rec + 32)) {
      return InvalidArgument("zip: ZIP64 record at byte " + Num(rec) +
                             ": multi-disk archives are not supported");
    }
    covered_.push_back({rec, loc, "the ZIP64 end of central directory record"});
    *count = Le64(b_, rec + 32);
    *cd_size = Le64(b_, rec + 40);
    cd_offset = Le64(b_, rec + 48);
    cd_end = rec;
  } else if (Le16(b_, eocd + 4) != 0 || Le16(b_, eocd + 6) != 0 ||
             Le16(b_, eocd + 8) != Le16(b_, eocd + 10)) {
    return InvalidArgument("zip: end of central directory at byte " + Num(eocd) +
                           ": multi-disk archives are not supported");
  }
  if (*cd_size > cd_end) {
    return InvalidArgument("zip: central directory of " + Num(*cd_size) +
                           " bytes does not fit before byte " + Num(cd_end));
  }
  if (*count > *cd_size / 46) {
    return InvalidArgument("zip: " + Num(*count) +
                           " entries cannot fit in a central directory of " + Num(*cd_size) +
                           " bytes");
  }
  // Where the directory says it is, else right before the end record with
  // every offset shifted by bytes prepended to the archive.
  if (cd_offset <= cd_end - *cd_size &&
      (*count == 0 ? cd_offset + *cd_size == cd_end : Le32(b_, cd_offset) == kCentralSig)) {
    *cd_start = cd_offset;
    *base = 0;
  } else {
    *cd_start = cd_end - *cd_size;
    if (cd_offset > *cd_start) {
      return InvalidArgument("zip: central directory offset " + Num(cd_offset) + " (at byte " +
                             Num(eocd + 16) + ") is past where the directory can be");
    }
    *base = *cd_start - cd_offset;
  }
  return Status::Ok();
}

Status ZipReader::ReadLocal(ZipMember* m, uint64_t local, uint64_t base, const Policy& policy,
                            Parsed* out, string* names) {
  const uint64_t n = b_.size();
  const string where = "zip member " + Quoted(m->name);
  const uint64_t lh = local + base;
  if (lh < local || lh > n || n - lh < 30 || Le32(b_, lh) != kLocalSig) {
    return InvalidArgument(where + ": no local header (PK\\3\\4) at byte " + Num(lh) +
                           " where its central directory entry at byte " + Num(m->central_at) +
                           " points");
  }
  m->local_at = lh;
  const uint16_t lflags = Le16(b_, lh + 6);
  const uint16_t lmethod = Le16(b_, lh + 8);
  const uint32_t lcrc = Le32(b_, lh + 14);
  uint64_t lcsize = Le32(b_, lh + 18);
  uint64_t lusize = Le32(b_, lh + 22);
  const uint16_t lnlen = Le16(b_, lh + 26);
  const uint16_t lxlen = Le16(b_, lh + 28);
  if (n - lh - 30 < uint64_t{lnlen} + lxlen) {
    return InvalidArgument(where + ": local header at byte " + Num(lh) + " runs past the end");
  }
  if (((m->flags | lflags) & 0x41) != 0) {
    return InvalidArgument("cannot parse: " + where + " is encrypted");
  }
  if (m->method != 0 && m->method != 8) {
    return InvalidArgument("cannot parse: " + where + " uses method " + std::to_string(m->method) +
                           " (only stored and deflate are scanned)");
  }
  // A reader that trusts the local header and one that trusts the central
  // directory must see the same member: a disagreement is how scanners are
  // fooled, so it is an error.
  const string_view lname = b_.substr(lh + 30, lnlen);
  if (lname != m->name) {
    return InvalidArgument(where + ": local header at byte " + Num(lh) + " names it " +
                           Quoted(lname) + ": central directory and local header disagree");
  }
  if (lmethod != m->method) {
    return InvalidArgument(where + ": local header at byte " + Num(lh) + " says method " +
                           std::to_string(lmethod) + ", the central directory " +
                           std::to_string(m->method));
  }
  ASSIGN_OR_RETURN(const std::vector<Extra> extras,
                   SplitExtras(lh + 30 + lnlen, lxlen, where + " local header"));
  bool zip64 = false;
  for (const Extra& e : extras) {
    if (e.id != 0x0001) continue;
    zip64 = true;
    if ((lusize == 0xFFFFFFFF || lcsize == 0xFFFFFFFF) && e.data.size() >= 16) {
      lusize = Le64(e.data, 0);
      lcsize = Le64(e.data, 8);
    }
  }
  CheckExtras(extras, where + " local header", policy, out, names);
  const bool descriptor = (lflags & 0x08) != 0;
  const bool agree = lcrc == m->crc && lcsize == m->csize && lusize == m->usize;
  const bool deferred = descriptor && (lcrc == 0 || lcrc == m->crc) &&
                        (lcsize == 0 || lcsize == m->csize) && (lusize == 0 || lusize == m->usize);
  if (!agree && !deferred) {
    return InvalidArgument(where + ": local header at byte " + Num(lh) +
                           " disagrees with the central directory (crc/compressed/size: local " +
                           Hex32(lcrc) + "/" + Num(lcsize) + "/" + Num(lusize) + ", central " +
                           Hex32(m->crc) + "/" + Num(m->csize) + "/" + Num(m->usize) + ")");
  }
  m->data_at = lh + 30 + lnlen + lxlen;
  if (m->csize > n - m->data_at) {
    return InvalidArgument(where + ": " + Num(m->csize) + " compressed bytes at byte " +
                           Num(m->data_at) + " run past the end of the archive");
  }
  if (m->method == 0 && m->csize != m->usize) {
    return InvalidArgument(where + ": stored, yet " + Num(m->csize) + " bytes declare size " +
                           Num(m->usize));
  }
  m->end = m->data_at + m->csize;
  if (descriptor) {
    zip64 = zip64 || m->csize >= 0xFFFFFFFF || m->usize >= 0xFFFFFFFF;
    uint64_t len = 0;
    for (const bool sig : {true, false}) {
      for (const bool wide : {zip64, !zip64}) {
        const uint64_t want = (sig ? 4 : 0) + 4 + (wide ? 16 : 8);
        if (len != 0 || n - m->end < want) continue;
        if (sig && Le32(b_, m->end) != kDescriptorSig) continue;
        const uint64_t q = m->end + (sig ? 4 : 0);
        const uint64_t dc = wide ? Le64(b_, q + 4) : Le32(b_, q + 4);
        const uint64_t du = wide ? Le64(b_, q + 12) : Le32(b_, q + 8);
        if (Le32(b_, q) == m->crc && dc == m->csize && du == m->usize) len = want;
      }
    }
    if (len == 0) {
      return InvalidArgument(where + ": data descriptor at byte " + Num(m->end) +
                             " missing or disagrees with the central directory");
    }
    m->end += len;
  }
  covered_.push_back({lh, m->end, "member " + Quoted(m->name)});
  return Status::Ok();
}

Status ZipReader::Open(const Item& item, const Policy& policy, Parsed* out) {
  item_ = &item;
  b_ = item.bytes;
  uint64_t cd_start = 0;
  uint64_t cd_size = 0;
  uint64_t count = 0;
  uint64_t base = 0;
  RETURN_IF_ERROR(ReadEnd(&cd_start, &cd_size, &count, &base));
  if (!comment_.empty()) {
    out->texts.push_back(TextSpan{item.path, comment_at_, "zip archive comment", AsUtf8(comment_)});
    if (comment_.size() > policy.max_text_chunk_bytes) {
      out->findings.push_back(MakeFinding(
          item, "covert.zip", "zip archive comment at byte " + Num(comment_at_), Off(comment_at_),
          1.0, true,
          "archive comment of " + Num(comment_.size()) + " bytes (over max_text_chunk_bytes " +
              Num(policy.max_text_chunk_bytes) + ")"));
    }
  }
  string names;
  const uint64_t cd_stop = cd_start + cd_size;
  uint64_t p = cd_start;
  members_.reserve(count);
  for (uint64_t k = 0; k < count; ++k) {
    if (cd_stop - p < 46 || Le32(b_, p) != kCentralSig) {
      return InvalidArgument("zip: central directory entry " + Num(k) + " at byte " + Num(p) +
                             ": signature PK\\1\\2 expected");
    }
    ZipMember m;
    m.central_at = p;
    m.flags = Le16(b_, p + 8);
    m.method = Le16(b_, p + 10);
    m.crc = Le32(b_, p + 16);
    m.csize = Le32(b_, p + 20);
    m.usize = Le32(b_, p + 24);
    const uint16_t nlen = Le16(b_, p + 28);
    const uint16_t xlen = Le16(b_, p + 30);
    const uint16_t clen = Le16(b_, p + 32);
    uint64_t local = Le32(b_, p + 42);
    if (cd_stop - p - 46 < uint64_t{nlen} + xlen + clen) {
      return InvalidArgument("zip: central directory entry at byte " + Num(p) +
                             ": name, extra field and comment run past the directory");
    }
    m.name = string(b_.substr(p + 46, nlen));
    const string where = "zip member " + Quoted(m.name);
    names += AsUtf8(m.name);
    names += '\n';
    ASSIGN_OR_RETURN(const std::vector<Extra> extras,
                     SplitExtras(p + 46 + nlen, xlen, where + " central directory entry"));
    for (const Extra& e : extras) {
      if (e.id != 0x0001) continue;
      // ZIP64 values, in order, for exactly the fields that are all ones.
      uint64_t q = 0;
      for (uint64_t* field : {&m.usize, &m.csize, &local}) {
        if (*field != 0xFFFFFFFF) continue;
        if (e.data.size() - q < 8) {
          return InvalidArgument(where + ": ZIP64 extra field at byte " + Num(e.at) +
                                 " too short for its 64-bit sizes");
        }
        *field = Le64(e.data, q);
        q += 8;
      }
    }
    CheckExtras(extras, where + " central directory entry", policy, out, &names);
    if (clen > 0) {
      const uint64_t at = p + 46 + nlen + xlen;
      out->texts.push_back(
          TextSpan{item.path, at, where + " comment", AsUtf8(b_.substr(at, clen))});
    }
    if (Le16(b_, p + 34) != 0 && Le16(b_, p + 34) != 0xFFFF) {
      return InvalidArgument(where + ": starts on disk " + std::to_string(Le16(b_, p + 34)) +
                             ": multi-disk archives are not supported");
    }
    RETURN_IF_ERROR(ReadLocal(&m, local, base, policy, out, &names));
    members_.push_back(std::move(m));
    p += 46 + uint64_t{nlen} + xlen + clen;
  }
  // Bytes in the directory after its last entry are left uncovered: unused.
  covered_.push_back({cd_start, p, "the central directory"});
  if (!names.empty()) {
    out->texts.push_back(TextSpan{item.path, cd_start, "zip member names", std::move(names)});
  }
  std::vector<Range> sorted = covered_;
  std::sort(sorted.begin(), sorted.end(),
            [](const Range& a, const Range& c) { return a.begin < c.begin; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].begin < sorted[i - 1].end) {
      return InvalidArgument("zip: " + sorted[i - 1].what + " (bytes " + Num(sorted[i - 1].begin) +
                             "-" + Num(sorted[i - 1].end) + ") and " + sorted[i].what + " (bytes " +
                             Num(sorted[i].begin) + "-" + Num(sorted[i].end) +
                             ") overlap: overlapping entries are how zip bombs and scanner "
                             "evasions are built");
    }
  }
  return Status::Ok();
}

StatusOr<std::optional<string>> ZipReader::Extract(size_t i, ParseContext& ctx, Parsed* out) {
  const ZipMember& m = members_[i];
  const string where = "zip member " + Quoted(m.name);
  const Limit limit = StreamLimit(ctx, m.csize);
  if (m.usize > limit.bytes) {
    AddBomb(*item_, out, where + " at byte " + Num(m.local_at), m.local_at,
            where + " declares " + Num(m.usize) + " bytes from " + Num(m.csize) +
                " compressed, over " + limit.why);
    return std::optional<string>();
  }
  string bytes;
  const string_view data = b_.substr(m.data_at, m.csize);
  if (m.method == 0) {
    bytes.assign(data);
  } else {
    auto d = Decompress(Compression::kRawDeflate, data, m.usize);
    if (!d.ok()) return d.status().WithContext(where + " at byte " + Num(m.data_at));
    if (d->over_limit) {
      return InvalidArgument(where + ": inflates past its declared size of " + Num(m.usize) +
                             " bytes");
    }
    if (d->bytes.size() != m.usize) {
      return InvalidArgument(where + ": inflates to " + Num(d->bytes.size()) +
                             " bytes, not the declared " + Num(m.usize));
    }
    if (d->consumed < m.csize) {
      // Compressed bytes after the end of the deflate stream: no reader
      // looks at them.
      covered_.push_back({m.data_at + d->consumed, m.data_at + m.csize, "unused"});
    }
    bytes = std::move(d->bytes);
  }
  const uint32_t crc = Crc32(bytes);
  if (crc != m.crc) {
    return InvalidArgument(where + ": CRC-32 mismatch (declared " + Hex32(m.crc) + ", computed " +
                           Hex32(crc) + ")");
  }
  if (!Charge(ctx, bytes.size())) {
    AddBomb(*item_, out, where, m.local_at, where + " exceeds the scan's expansion budget");
    return std::optional<string>();
  }
  return std::optional<string>(std::move(bytes));
}

void ZipReader::ReportUnused(ParseContext& ctx, Parsed* out) {
  // Ranges marked "unused" (deflate leftovers) lie inside member ranges:
  // the gaps are the complement of the member/structure ranges plus them.
  std::vector<Range> solid;
  std::vector<Range> holes;
  for (const Range& r : covered_) (r.what == "unused" ? holes : solid).push_back(r);
  std::sort(solid.begin(), solid.end(),
            [](const Range& a, const Range& c) { return a.begin < c.begin; });
  uint64_t at = 0;
  for (const Range& r : solid) {
    if (r.begin > at) holes.push_back({at, r.begin, "gap"});
    at = std::max(at, r.end);
  }
  if (at < b_.size()) holes.push_back({at, b_.size(), "gap"});
  std::sort(holes.begin(), holes.end(),
            [](const Range& a, const Range& c) { return a.begin < c.begin; });
  uint64_t total = 0;
  for (const Range& r : holes) total += r.end - r.begin;
  if (total == 0) return;
  const bool hard = total > ctx.policy.max_trailing_bytes;
  string hidden;
  for (size_t i = 0; i < holes.size(); ++i) {
    const Range& r = holes[i];
    hidden.append(b_.substr(r.begin, r.end - r.begin));
    if (i >= kMaxListedFindings) continue;
    const string where = r.begin == 0         ? " before the first entry (prepended data)"
                         : r.end == b_.size() ? " after the end record (appended data)"
                         : r.what == "unused" ? " after a member's deflate stream ends"
                                              : " between entries";
    out->findings.push_back(
        MakeFinding(*item_, "covert.zip", "bytes " + Num(r.begin) + "-" + Num(r.end), Off(r.begin),
                    hard ? 1.0 : 0.3, hard,
                    Num(r.end - r.begin) + " bytes" + where +
                        " belong to no zip member, central directory or end record (hidden data)"));
  }
  if (holes.size() > kMaxListedFindings) {
    out->findings.push_back(MakeFinding(*item_, "covert.zip", "zip", -1, hard ? 1.0 : 0.3, hard,
                                        Num(holes.size() - kMaxListedFindings) +
                                            " more unused ranges, " + Num(total) +
                                            " bytes in all"));
  }
  AddChild(*item_, ctx, out, "unused", "bytes " + Num(holes[0].begin) + "-" + Num(holes[0].end),
           holes[0].begin, std::move(hidden));
}

// Names that an extractor would write outside its directory.
bool ClimbingName(string_view name) {
  if (name.empty()) return false;
  if (name[0] == '/' || name[0] == '\\') return true;
  if (name.size() >= 2 && name[1] == ':') return true;  // C:
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find_first_of("/\\", start);
    if (end == string_view::npos) end = name.size();
    if (name.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

void ReportNames(const Item& item, const std::vector<std::pair<string, uint64_t>>& names,
                 string_view kind, Parsed* out) {
  std::set<string_view> seen;
  size_t listed = 0;
  for (const auto& [name, at] : names) {
    string problem;
    if (ClimbingName(name)) problem = " is absolute or climbs out of the archive (..)";
    if (!seen.insert(name).second) problem = " appears more than once";
    if (problem.empty() || ++listed > kMaxListedFindings) continue;
    out->findings.push_back(MakeFinding(
        item, "archive.path", string(kind) + " member at byte " + Num(at), Off(at), 0.1, false,
        string(kind) + " member name " + Quoted(name) + problem +
            " (the gate never writes it, but an extractor might)"));
  }
}

}  // namespace

Status ParseZip(const Item& item, ParseContext& ctx, Parsed* out) {
  ZipReader zip;
  RETURN_IF_ERROR(zip.Open(item, ctx.policy, out));
  std::vector<std::pair<string, uint64_t>> names;
  for (const ZipMember& m : zip.members()) names.emplace_back(m.name, m.local_at);
  ReportNames(item, names, "zip", out);
  for (size_t i = 0; i < zip.members().size(); ++i) {
    const ZipMember& m = zip.members()[i];
    if (m.usize == 0 && m.csize == 0) continue;  // directories and empty files
    ASSIGN_OR_RETURN(std::optional<string> bytes, zip.Extract(i, ctx, out));
    if (!bytes || bytes->empty()) continue;
    out->children.push_back(Child{SafeName(m.name),
                                  "zip member " + Quoted(m.name) + " at byte " + Num(m.local_at),
                                  std::move(*bytes)});
  }
  zip.ReportUnused(ctx, out);
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// tar.

namespace {

constexpr uint64_t kBlock = 512;

// An octal (or GNU base-256) numeric header field.
StatusOr<uint64_t> TarNumber(string_view h, size_t at, size_t len, string_view field,
                             uint64_t header_at) {
  const string_view f = h.substr(at, len);
  if (Byte(f, 0) == 0x80) {
    uint64_t v = 0;
    for (size_t i = 1; i < f.size(); ++i) {
      if (v >> 56 != 0) break;
      v = (v << 8) | Byte(f, i);
    }
    return v;
  }
  if (Byte(f, 0) >= 0x80) {
    return InvalidArgument("tar header at byte " + Num(header_at) + ": field " + string(field) +
                           " is a negative base-256 number");
  }
  size_t i = 0;
  while (i < f.size() && f[i] == ' ') ++i;
  uint64_t v = 0;
  for (; i < f.size() && f[i] >= '0' && f[i] <= '7'; ++i) {
    if (v >> 60 != 0) {
      return InvalidArgument("tar header at byte " + Num(header_at) + ": field " + string(field) +
                             " overflows");
    }
    v = v * 8 + static_cast<uint64_t>(f[i] - '0');
  }
  for (; i < f.size(); ++i) {
    if (f[i] != ' ' && f[i] != '\0') {
      return InvalidArgument("tar header at byte " + Num(header_at) + ": field " + string(field) +
                             " is not octal: " + Quoted(f));
    }
  }
  return v;
}

// A NUL-terminated header string: the text before the NUL.
string_view TarString(string_view h, size_t at, size_t len) {
  const string_view f = h.substr(at, len);
  const size_t nul = f.find('\0');
  return nul == string_view::npos ? f : f.substr(0, nul);
}

struct Hidden {
  uint64_t begin = 0;
  uint64_t end = 0;
  string what;
};

// Bytes after a string field's NUL must be zero.
void CheckSlack(string_view h, size_t at, size_t len, uint64_t header_at, string_view field,
                std::vector<Hidden>* hidden) {
  const string_view f = h.substr(at, len);
  const size_t nul = f.find('\0');
  if (nul == string_view::npos) return;
  if (!AllZero(f.substr(nul))) {
    hidden->push_back({header_at + at + nul, header_at + at + len,
                       "after the " + string(field) + " field's terminator in the header at byte " +
                           Num(header_at)});
  }
}

// pax records "LEN key=value\n"; keys we apply are returned.
Status ParsePax(string_view data, uint64_t at, std::map<string, string>* keys) {
  uint64_t p = 0;
  while (p < data.size()) {
    if (data[p] == '\0' && AllZero(data.substr(p))) break;
    uint64_t len = 0;
    uint64_t q = p;
    while (q < data.size() && data[q] >= '0' && data[q] <= '9' && len < (uint64_t{1} << 40)) {
      len = len * 10 + static_cast<uint64_t>(data[q] - '0');
      ++q;
    }
    if (q == p || q >= data.size() || data[q] != ' ' || len <= q - p || len > data.size() - p ||
        data[p + len - 1] != '\n') {
      return InvalidArgument("tar pax header at byte " + Num(at + p) + ": malformed record");
    }
    const string_view record = data.substr(q + 1, p + len - 1 - (q + 1));
    const size_t eq = record.find('=');
    if (eq == string_view::npos) {
      return InvalidArgument("tar pax header at byte " + Num(at + p) + ": record without '='");
    }
    (*keys)[string(record.substr(0, eq))] = string(record.substr(eq + 1));
    p += len;
  }
  return Status::Ok();
}

}  // namespace

Status ParseTar(const Item& item, ParseContext& ctx, Parsed* out) {
  const string_view b = item.bytes;
  const uint64_t n = b.size();
  std::vector<Hidden> hidden;
  std::vector<std::pair<string, uint64_t>> member_names;
  string names;
  string long_name;
  string long_link;
  std::map<string, string> pax;
  std::map<string, string> pax_global;
  size_t devices = 0;
  uint64_t pos = 0;
  uint64_t end = n;  // where the end marker (first zero block) starts
  while (pos < n) {
    if (n - pos < kBlock) {
      if (AllZero(b.substr(pos))) {
        end = pos;
        break;
      }
      return InvalidArgument("tar header at byte " + Num(pos) + ": truncated (" + Num(n - pos) +
                             " of 512 bytes)");
    }
    const string_view h = b.substr(pos, kBlock);
    if (AllZero(h)) {
      end = pos;
      break;
    }
    ASSIGN_OR_RETURN(const uint64_t stored_sum, TarNumber(h, 148, 8, "chksum", pos));
    uint64_t unsigned_sum = 0;
    int64_t signed_sum = 0;
    for (size_t i = 0; i < kBlock; ++i) {
      const bool in_sum = i >= 148 && i < 156;
      unsigned_sum += in_sum ? uint64_t{' '} : Byte(h, i);
      signed_sum += in_sum ? int64_t{' '} : static_cast<int64_t>(static_cast<signed char>(h[i]));
    }
    if (stored_sum != unsigned_sum && static_cast<int64_t>(stored_sum) != signed_sum) {
      return InvalidArgument("tar header at byte " + Num(pos) + ": checksum mismatch (stored " +
                             Num(stored_sum) + ", computed " + Num(unsigned_sum) + ")");
    }
    const char type = h[156];
    const bool ustar = h.substr(257, 6) == string_view("ustar\0", 6);
    const bool gnu = h.substr(257, 8) == string_view("ustar  \0", 8);
    ASSIGN_OR_RETURN(uint64_t size, TarNumber(h, 124, 12, "size", pos));
    string name(TarString(h, 0, 100));
    if (ustar && !TarString(h, 345, 155).empty()) {
      name = string(TarString(h, 345, 155)) + "/" + name;
    }
    string link(TarString(h, 157, 100));
    // Header slack: text fields are NUL-padded; the tail of a ustar header
    // is unused (GNU keeps times and sparse maps up to byte 495).
    CheckSlack(h, 0, 100, pos, "name", &hidden);
    CheckSlack(h, 157, 100, pos, "linkname", &hidden);
    if (ustar || gnu) {
      CheckSlack(h, 265, 32, pos, "uname", &hidden);
      CheckSlack(h, 297, 32, pos, "gname", &hidden);
    }
    if (ustar) CheckSlack(h, 345, 155, pos, "prefix", &hidden);
    // (v7 headers end at byte 257; GNU tar still writes octal device
    // numbers at 329-345 there.)
    const std::vector<std::pair<size_t, size_t>> unused_tail =
        ustar ? std::vector<std::pair<size_t, size_t>>{{500, 512}}
        : gnu ? std::vector<std::pair<size_t, size_t>>{{495, 512}}
              : std::vector<std::pair<size_t, size_t>>{{257, 329}, {345, 512}};
    for (const auto& [from, to] : unused_tail) {
      if (!AllZero(h.substr(from, to - from))) {
        hidden.push_back(
            {pos + from, pos + to, "in an unused area of the header at byte " + Num(pos)});
      }
    }
    // Extended headers override the next entry's fields.
    const bool meta = type == 'x' || type == 'g' || type == 'L' || type == 'K';
    if (!meta) {
      for (const auto* keys : {&pax_global, &pax}) {
        if (auto it = keys->find("path"); it != keys->end()) name = it->second;
        if (auto it = keys->find("linkpath"); it != keys->end()) link = it->second;
        if (auto it = keys->find("size"); it != keys->end()) {
          const string& v = it->second;
          if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != string::npos) {
            return InvalidArgument("tar pax header before byte " + Num(pos) + ": bad size " +
                                   Quoted(v));
          }
          size = std::stoull(v);
        }
      }
      if (!long_name.empty()) name = long_name;
      if (!long_link.empty()) link = long_link;
    }
    const uint64_t data_at = pos + kBlock;
    if (size > n - data_at) {
      return InvalidArgument("tar member " + Quoted(name) + " (header at byte " + Num(pos) +
                             "): size " + Num(size) + " runs past the end (" + Num(n - data_at) +
                             " bytes left)");
    }
    const string_view data = b.substr(data_at, size);
    const uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
    if (padded > n - data_at) {
      return InvalidArgument("tar member " + Quoted(name) + " (header at byte " + Num(pos) +
                             "): padding runs past the end");
    }
    const string_view padding = b.substr(data_at + size, padded - size);
    if (!AllZero(padding)) {
      hidden.push_back(
          {data_at + size, data_at + padded, "in the padding after member " + Quoted(name)});
    }
    const string location = "tar member " + Quoted(name) + " at byte " + Num(pos);
    switch (type) {
      case 'x':
      case 'g': {
        out->texts.push_back(
            TextSpan{item.path, data_at, "tar pax header at byte " + Num(pos), AsUtf8(data)});
        RETURN_IF_ERROR(ParsePax(data, data_at, type == 'x' ? &pax : &pax_global));
        for (const auto& key : {"GNU.sparse.map", "GNU.sparse.size", "GNU.sparse.major"}) {
          if (pax.count(key) != 0 || pax_global.count(key) != 0) {
            return InvalidArgument("cannot parse: tar pax header at byte " + Num(pos) +
                                   ": sparse files are not supported");
          }
        }
        break;
      }
      case 'L':
      case 'K': {
        string value(TarString(data, 0, data.size()));
        (type == 'L' ? long_name : long_link) = std::move(value);
        break;
      }
      case '0':
      case '\0':
      case '7':
        member_names.emplace_back(name, pos);
        names += AsUtf8(name) + "\n";
        if (size > 0) AddChild(item, ctx, out, SafeName(name), location, pos, string(data));
        break;
      case '1':
      case '2':
      case '3':
      case '4':
      case '5':
      case '6':
      case 'V': {
        if (size != 0) {
          // Readers disagree on whether such data is skipped or read.
          return InvalidArgument("tar header at byte " + Num(pos) + ": entry type '" +
                                 string(1, type) + "' with " + Num(size) + " bytes of data");
        }
        names += AsUtf8(name) + (link.empty() ? "" : " -> " + AsUtf8(link)) + "\n";
        member_names.emplace_back(name, pos);
        if ((type == '3' || type == '4') && ++devices <= kMaxListedFindings) {
          ASSIGN_OR_RETURN(const uint64_t major, TarNumber(h, 329, 8, "devmajor", pos));
          ASSIGN_OR_RETURN(const uint64_t minor, TarNumber(h, 337, 8, "devminor", pos));
          out->findings.push_back(MakeFinding(
              item, "type", location, Off(pos), 0.1, false,
              "tar member " + Quoted(name) + " is a " + (type == '3' ? "character" : "block") +
                  " device (" + Num(major) + "," + Num(minor) + ")"));
        }
        break;
      }
      default:
        return InvalidArgument("cannot parse: tar header at byte " + Num(pos) + ": entry type '" +
                               Excerpt(string_view(&type, 1)) + "' is not supported");
    }
    if (!meta) {
      pax.clear();
      long_name.clear();
      long_link.clear();
    }
    pos = data_at + padded;
  }
  // Everything after the end marker must be zero.
  if (end < n) {
    const string_view rest = b.substr(end);
    const size_t first = rest.find_first_not_of('\0');
    if (first != string_view::npos) {
      const size_t last = rest.find_last_not_of('\0');
      hidden.push_back({end + first, end + last + 1, "after the end-of-archive marker"});
    }
  }
  if (!names.empty()) {
    out->texts.push_back(TextSpan{item.path, 0, "tar member names", std::move(names)});
  }
  ReportNames(item, member_names, "tar", out);
  if (!hidden.empty()) {
    uint64_t total = 0;
    string bytes;
    for (const Hidden& r : hidden) {
      total += r.end - r.begin;
      bytes.append(b.substr(r.begin, r.end - r.begin));
    }
    const bool hard = total > ctx.policy.max_trailing_bytes;
    for (size_t i = 0; i < hidden.size() && i < kMaxListedFindings; ++i) {
      const Hidden& r = hidden[i];
      out->findings.push_back(MakeFinding(item, "covert.tar",
                                          "bytes " + Num(r.begin) + "-" + Num(r.end), Off(r.begin),
                                          hard ? 1.0 : 0.3, hard,
                                          Num(r.end - r.begin) + " bytes that should be zero, " +
                                              r.what + ", are not (hidden data)"));
    }
    if (hidden.size() > kMaxListedFindings) {
      out->findings.push_back(MakeFinding(item, "covert.tar", "tar", -1, hard ? 1.0 : 0.3, hard,
                                          Num(hidden.size() - kMaxListedFindings) +
                                              " more ranges of hidden bytes, " + Num(total) +
                                              " bytes in all"));
    }
    AddChild(item, ctx, out, "hidden", "bytes " + Num(hidden[0].begin) + "-" + Num(hidden[0].end),
             hidden[0].begin, std::move(bytes));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// XLSX.

namespace {

// A minimal XML reader: elements, attributes, text, CDATA; comments and
// processing instructions skipped; the five predefined and numeric
// entities only; DOCTYPE (and so any entity declaration) refused.
class XmlReader {
 public:
  enum class Event { kStart, kEnd, kText, kEof };

  XmlReader(string_view xml, string part) : x_(xml), part_(std::move(part)) {
    if (x_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
  }

  StatusOr<Event> Next();

  string_view name() const { return name_; }  // local name (prefix dropped)
  const string& text() const { return text_; }
  uint64_t offset() const { return at_; }
  // Attributes as (qualified name, decoded value).
  const std::vector<std::pair<string_view, string>>& attrs() const { return attrs_; }
  const string* Attr(string_view local) const {
    for (const auto& [qname, value] : attrs_) {
      if (LocalName(qname) == local) return &value;
    }
    return nullptr;
  }
  static string_view LocalName(string_view qname) {
    const size_t colon = qname.find(':');
    return colon == string_view::npos ? qname : qname.substr(colon + 1);
  }
  Status Error(const string& what) const {
    return InvalidArgument(part_ + ": byte " + Num(at_) + ": " + what);
  }

 private:
  Status Decode(string_view raw, string* out) const;

  string_view x_;
  string part_;
  uint64_t pos_ = 0;
  uint64_t at_ = 0;
  std::vector<string_view> stack_;
  bool pending_end_ = false;
  bool seen_root_ = false;
  string_view name_;
  string text_;
  std::vector<std::pair<string_view, string>> attrs_;
};

void AppendUtf8(uint32_t cp, string* out) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

Status XmlReader::Decode(string_view raw, string* out) const {
  out->clear();
  size_t i = 0;
  while (i < raw.size()) {
    const size_t amp = raw.find('&', i);
    if (amp == string_view::npos) {
      out->append(raw.substr(i));
      break;
    }
    out->append(raw.substr(i, amp - i));
    const size_t semi = raw.find(';', amp);
    if (semi == string_view::npos || semi - amp > 12) return Error("unterminated entity reference");
    const string_view ent = raw.substr(amp + 1, semi - amp - 1);
    if (ent == "lt") {
      *out += '<';
    } else if (ent == "gt") {
      *out += '>';
    } else if (ent == "amp") {
      *out += '&';
    } else if (ent == "apos") {
      *out += '\'';
    } else if (ent == "quot") {
      *out += '"';
    } else if (ent.size() >= 2 && ent[0] == '#') {
      const bool hex = ent[1] == 'x';
      const string_view digits = ent.substr(hex ? 2 : 1);
      uint32_t cp = 0;
      if (digits.empty()) return Error("empty character reference");
      for (const char c : digits) {
        uint32_t d = 0;
        if (c >= '0' && c <= '9') {
          d = static_cast<uint32_t>(c - '0');
        } else if (hex && Lower(c) >= 'a' && Lower(c) <= 'f') {
          d = static_cast<uint32_t>(Lower(c) - 'a' + 10);
        } else {
          return Error("bad character reference &" + Excerpt(ent) + ";");
        }
        cp = cp * (hex ? 16 : 10) + d;
        if (cp > 0x10FFFF) return Error("character reference out of range");
      }
      if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) return Error("invalid character reference");
      AppendUtf8(cp, out);
    } else {
      return Error("entity &" + Excerpt(ent) + "; is not one of the five predefined ones");
    }
    i = semi + 1;
  }
  return Status::Ok();
}

StatusOr<XmlReader::Event> XmlReader::Next() {
  if (pending_end_) {
    pending_end_ = false;
    name_ = LocalName(stack_.back());
    stack_.pop_back();
    return Event::kEnd;
  }
  for (;;) {
    at_ = pos_;
    if (pos_ >= x_.size()) {
      if (!stack_.empty()) return Error("end of part inside <" + Excerpt(stack_.back()) + ">");
      if (!seen_root_) return Error("no root element");
      return Event::kEof;
    }
    if (x_[pos_] != '<') {
      size_t lt = x_.find('<', pos_);
      if (lt == string_view::npos) lt = x_.size();
      const string_view raw = x_.substr(pos_, lt - pos_);
      pos_ = lt;
      if (stack_.empty()) {
        if (!Trim(raw).empty()) return Error("text outside the root element");
        continue;
      }
      RETURN_IF_ERROR(Decode(raw, &text_));
      return Event::kText;
    }
    const string_view rest = x_.substr(pos_);
    if (rest.substr(0, 2) == "<?") {
      const size_t e = rest.find("?>");
      if (e == string_view::npos) return Error("unterminated processing instruction");
      pos_ += e + 2;
      continue;
    }
    if (rest.substr(0, 4) == "<!--") {
      const size_t e = rest.find("-->", 4);
      if (e == string_view::npos) return Error("unterminated comment");
      pos_ += e + 3;
      continue;
    }
    if (rest.substr(0, 9) == "<![CDATA[") {
      const size_t e = rest.find("]]>", 9);
      if (e == string_view::npos) return Error("unterminated CDATA section");
      if (stack_.empty()) return Error("CDATA outside the root element");
      text_.assign(rest.substr(9, e - 9));
      pos_ += e + 3;
      return Event::kText;
    }
    if (rest.substr(0, 2) == "<!") {
      return Error("DOCTYPE and other declarations are refused (entity expansion)");
    }
    if (rest.substr(0, 2) == "</") {
      const size_t gt = rest.find('>');
      if (gt == string_view::npos) return Error("unterminated end tag");
      const string_view qname = Trim(rest.substr(2, gt - 2));
      if (stack_.empty() || stack_.back() != qname) {
        return Error("end tag </" + Excerpt(qname) + "> does not match the open element");
      }
      stack_.pop_back();
      name_ = LocalName(qname);
      pos_ += gt + 1;
      return Event::kEnd;
    }
    // Start tag.
    uint64_t p = pos_ + 1;
    auto name_end = [&](char c) { return IsSpace(c) || c == '/' || c == '>' || c == '='; };
    const uint64_t name_at = p;
    while (p < x_.size() && !name_end(x_[p])) ++p;
    const string_view qname = x_.substr(name_at, p - name_at);
    if (qname.empty()) return Error("empty element name");
    attrs_.clear();
    bool self_closing = false;
    for (;;) {
      while (p < x_.size() && IsSpace(x_[p])) ++p;
      if (p >= x_.size()) return Error("unterminated start tag <" + Excerpt(qname) + ">");
      if (x_[p] == '>') {
        ++p;
        break;
      }
      if (x_[p] == '/') {
        if (p + 1 >= x_.size() || x_[p + 1] != '>') return Error("'/' not followed by '>'");
        self_closing = true;
        p += 2;
        break;
      }
      const uint64_t an = p;
      while (p < x_.size() && !name_end(x_[p])) ++p;
      const string_view aname = x_.substr(an, p - an);
      while (p < x_.size() && IsSpace(x_[p])) ++p;
      if (aname.empty() || p >= x_.size() || x_[p] != '=') {
        return Error("attribute without a value in <" + Excerpt(qname) + ">");
      }
      ++p;
      while (p < x_.size() && IsSpace(x_[p])) ++p;
      if (p >= x_.size() || (x_[p] != '"' && x_[p] != '\'')) {
        return Error("unquoted attribute value in <" + Excerpt(qname) + ">");
      }
      const size_t close = x_.find(x_[p], p + 1);
      if (close == string_view::npos) return Error("unterminated attribute value");
      const string_view raw = x_.substr(p + 1, close - p - 1);
      if (raw.find('<') != string_view::npos) return Error("'<' in an attribute value");
      string value;
      RETURN_IF_ERROR(Decode(raw, &value));
      attrs_.emplace_back(aname, std::move(value));
      p = close + 1;
    }
    if (stack_.empty() && seen_root_) return Error("a second root element");
    seen_root_ = true;
    if (stack_.size() >= 256) return Error("elements nested deeper than 256");
    stack_.push_back(qname);
    name_ = LocalName(qname);
    pending_end_ = self_closing;
    pos_ = p;
    return Event::kStart;
  }
}

// An XML part's text and attribute values, one record per line: values of
// leaf elements joined by tabs, a line break where an element with
// children ends (a pivot-cache record, a chart point, a comment).
StatusOr<string> XmlText(string_view xml, const string& part) {
  XmlReader r(xml, part);
  string out;
  std::vector<bool> has_children;
  bool line_empty = true;
  auto add = [&](string_view v) {
    v = Trim(v);
    if (v.empty()) return;
    if (!line_empty) out += '\t';
    out.append(v);
    line_empty = false;
  };
  for (;;) {
    ASSIGN_OR_RETURN(const XmlReader::Event ev, r.Next());
    if (ev == XmlReader::Event::kEof) break;
    if (ev == XmlReader::Event::kStart) {
      if (!has_children.empty()) has_children.back() = true;
      has_children.push_back(false);
      for (const auto& [qname, value] : r.attrs()) {
        if (qname == "xmlns" || qname.substr(0, 6) == "xmlns:") continue;
        add(value);
      }
    } else if (ev == XmlReader::Event::kText) {
      add(r.text());
    } else {
      if (has_children.back() && !line_empty) {
        out += '\n';
        line_empty = true;
      }
      has_children.pop_back();
    }
  }
  return out;
}

bool LooksLikeXml(string_view name, string_view bytes) {
  if (EndsWithNoCase(name, ".xml") || EndsWithNoCase(name, ".rels")) return true;
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
  return Trim(bytes.substr(0, 64)).substr(0, 5) == "<?xml";
}

string DirName(string_view part) {
  const size_t slash = part.rfind('/');
  return slash == string_view::npos ? string() : string(part.substr(0, slash + 1));
}

// A relationship target, relative to the part that owns the .rels file.
string ResolveTarget(string_view owner_dir, string_view target) {
  string joined =
      target.substr(0, 1) == "/" ? string(target.substr(1)) : string(owner_dir) + string(target);
  std::vector<string> segments;
  size_t start = 0;
  while (start <= joined.size()) {
    size_t end = joined.find('/', start);
    if (end == string::npos) end = joined.size();
    const string seg = joined.substr(start, end - start);
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    start = end + 1;
  }
  string out;
  for (const string& s : segments) out += (out.empty() ? "" : "/") + s;
  return out;
}

struct Relationship {
  string type;
  string target;  // resolved part name ("" for external targets)
};

StatusOr<std::map<string, Relationship>> ReadRels(string_view xml, const string& part,
                                                  string_view owner_dir) {
  std::map<string, Relationship> rels;
  XmlReader r(xml, part);
  for (;;) {
    ASSIGN_OR_RETURN(const XmlReader::Event ev, r.Next());
    if (ev == XmlReader::Event::kEof) break;
    if (ev != XmlReader::Event::kStart || r.name() != "Relationship") continue;
    const string* id = r.Attr("Id");
    const string* type = r.Attr("Type");
    const string* target = r.Attr("Target");
    const string* mode = r.Attr("TargetMode");
    if (id == nullptr || target == nullptr) continue;
    Relationship rel;
    if (type != nullptr) rel.type = *type;
    // External targets are never followed.
    if (mode == nullptr || *mode != "External") rel.target = ResolveTarget(owner_dir, *target);
    rels[*id] = std::move(rel);
  }
  return rels;
}

bool TypeEndsWith(const string& type, string_view suffix) {
  return type.size() >= suffix.size() && type.compare(type.size() - suffix.size(), suffix.size(),
                                                      suffix.data(), suffix.size()) == 0;
}

string ColumnName(uint32_t col) {  // 1-based
  string s;
  while (col > 0) {
    s.insert(s.begin(), static_cast<char>('A' + (col - 1) % 26));
    col = (col - 1) / 26;
  }
  return s;
}

constexpr uint32_t kMaxColumns = 16384;  // XFD
constexpr uint64_t kMaxRows = 1048576;

// "C7" -> column 3, row 7 (1-based); false when malformed or out of range.
bool ParseCellRef(string_view ref, uint32_t* col, uint64_t* row) {
  size_t i = 0;
  uint32_t c = 0;
  while (i < ref.size() && i < 3 && ref[i] >= 'A' && ref[i] <= 'Z') {
    c = c * 26 + static_cast<uint32_t>(ref[i] - 'A' + 1);
    ++i;
  }
  if (i == 0 || c > kMaxColumns || i == ref.size() || ref.size() - i > 7) return false;
  uint64_t r = 0;
  for (; i < ref.size(); ++i) {
    if (ref[i] < '0' || ref[i] > '9') return false;
    r = r * 10 + static_cast<uint64_t>(ref[i] - '0');
  }
  if (r == 0 || r > kMaxRows) return false;
  *col = c;
  *row = r;
  return true;
}

bool ParseIndex(string_view s, uint64_t* v) {
  s = Trim(s);
  if (s.empty() || s.size() > 12) return false;
  uint64_t x = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    x = x * 10 + static_cast<uint64_t>(c - '0');
  }
  *v = x;
  return true;
}

StatusOr<std::vector<string>> ReadSharedStrings(string_view xml, const string& part) {
  std::vector<string> strings;
  XmlReader r(xml, part);
  bool in_si = false;
  int in_t = 0;
  int in_rph = 0;
  string current;
  for (;;) {
    ASSIGN_OR_RETURN(const XmlReader::Event ev, r.Next());
    if (ev == XmlReader::Event::kEof) break;
    const string_view name = r.name();
    if (ev == XmlReader::Event::kStart) {
      if (name == "si") {
        in_si = true;
        current.clear();
      } else if (name == "rPh") {
        ++in_rph;  // phonetic guide: not the cell's text
      } else if (name == "t" && in_si) {
        ++in_t;
      }
    } else if (ev == XmlReader::Event::kText) {
      if (in_si && in_t > 0 && in_rph == 0) current += r.text();
    } else {
      if (name == "si") {
        strings.push_back(std::move(current));
        current.clear();
        in_si = false;
      } else if (name == "rPh") {
        --in_rph;
      } else if (name == "t" && in_t > 0) {
        --in_t;
      }
    }
  }
  return strings;
}

struct SheetRef {
  string name;
  string part;
  bool hidden = false;
};

struct SheetCell {
  uint32_t col = 0;  // 1-based
  string value;
  bool is_string = false;
};

struct SheetRow {
  uint64_t number = 0;
  std::vector<SheetCell> cells;
};

Status ParseSheet(const Item& item, ParseContext& ctx, string_view xml, const SheetRef& sheet,
                  uint64_t offset, const std::vector<string>& shared, std::vector<bool>* used,
                  Parsed* out) {
  XmlReader r(xml, "sheet " + Quoted(sheet.name) + " (" + sheet.part + ")");
  std::vector<SheetRow> rows;
  string formulas;
  string stray;
  bool in_data = false;
  bool in_row = false;
  bool in_cell = false;
  int in_v = 0;
  int in_f = 0;
  int in_is = 0;
  int in_t = 0;
  int in_rph = 0;
  uint64_t row_number = 0;
  uint32_t col = 0;
  string type;
  string v;
  string inline_text;
  uint64_t text_bytes = 0;
  for (;;) {
    ASSIGN_OR_RETURN(const XmlReader::Event ev, r.Next());
    if (ev == XmlReader::Event::kEof) break;
    const string_view name = r.name();
    if (ev == XmlReader::Event::kStart) {
      if (name == "sheetData") {
        in_data = true;
      } else if (name == "row" && in_data) {
        uint64_t number = row_number + 1;
        if (const string* ref = r.Attr("r"); ref != nullptr && !ParseIndex(*ref, &number)) {
          return r.Error("row number " + Quoted(*ref) + " is not a number");
        }
        if (number <= row_number || number > kMaxRows) {
          return r.Error("row " + Num(number) + " after row " + Num(row_number) +
                         ": rows must increase (and stay within 1048576)");
        }
        row_number = number;
        rows.push_back(SheetRow{number, {}});
        in_row = true;
        col = 0;
      } else if (name == "c" && in_row) {
        uint32_t c = col + 1;
        if (const string* ref = r.Attr("r"); ref != nullptr) {
          uint64_t ref_row = 0;
          if (!ParseCellRef(*ref, &c, &ref_row) || ref_row != row_number) {
            return r.Error("cell reference " + Quoted(*ref) + " is not a cell of row " +
                           Num(row_number));
          }
        }
        if (c <= col || c > kMaxColumns) {
          return r.Error("cell " + ColumnName(c) + Num(row_number) +
                         " out of order: cells must go left to right");
        }
        col = c;
        const string* t = r.Attr("t");
        type = t == nullptr ? "n" : *t;
        v.clear();
        inline_text.clear();
        in_cell = true;
      } else if (in_cell && name == "v") {
        ++in_v;
      } else if (in_cell && name == "f") {
        ++in_f;
      } else if (in_cell && name == "is") {
        ++in_is;
      } else if (in_is > 0 && name == "rPh") {
        ++in_rph;
      } else if (in_is > 0 && name == "t") {
        ++in_t;
      }
    } else if (ev == XmlReader::Event::kText) {
      const string& text = r.text();
      if (in_v > 0) {
        v += text;
      } else if (in_t > 0 && in_rph == 0) {
        inline_text += text;
      } else if (in_f > 0) {
        formulas += text;
      } else if (in_rph == 0 && !Trim(text).empty()) {
        stray += text;
        stray += '\n';
      }
    } else {
      if (name == "v" && in_v > 0) {
        --in_v;
      } else if (name == "f" && in_f > 0) {
        --in_f;
        formulas += '\n';
      } else if (name == "is" && in_is > 0) {
        --in_is;
      } else if (name == "rPh" && in_rph > 0) {
        --in_rph;
      } else if (name == "t" && in_t > 0) {
        --in_t;
      } else if (name == "row" && in_row) {
        in_row = false;
      } else if (name == "sheetData") {
        in_data = false;
      } else if (name == "c" && in_cell) {
        in_cell = false;
        SheetCell cell;
        cell.col = col;
        const string ref = ColumnName(col) + Num(row_number);
        if (type == "s") {
          uint64_t index = 0;
          if (v.empty()) continue;
          if (!ParseIndex(v, &index) || index >= shared.size()) {
            return r.Error("cell " + ref + ": shared string " + Quoted(v) + " out of range (" +
                           Num(shared.size()) + " strings)");
          }
          cell.value = shared[index];
          (*used)[index] = true;
          cell.is_string = true;
        } else if (type == "inlineStr") {
          cell.value = inline_text;
          cell.is_string = true;
        } else if (type == "str") {
          cell.value = v;
          cell.is_string = true;
        } else if (type == "b") {
          const string_view t = Trim(v);
          if (t.empty()) continue;
          if (t != "0" && t != "1") return r.Error("cell " + ref + ": boolean " + Quoted(v));
          cell.value = t == "1" ? "TRUE" : "FALSE";
        } else if (type == "n" || type == "e" || type == "d") {
          cell.value = v;
        } else {
          return r.Error("cell " + ref + ": unknown cell type " + Quoted(type));
        }
        if (cell.value.empty()) continue;
        text_bytes += cell.value.size();
        rows.back().cells.push_back(std::move(cell));
      }
    }
  }
  const string where = "sheet " + Quoted(sheet.name);
  if (!Trim(formulas).empty()) {
    out->texts.push_back(TextSpan{item.path, offset, where + " formulas", std::move(formulas)});
  }
  if (!stray.empty()) {
    out->findings.push_back(MakeFinding(item, "covert.xlsx", where, Off(offset), 0.3, false,
                                        Num(stray.size()) + " bytes of text outside any cell in " +
                                            where + " (" + sheet.part + ")"));
    out->texts.push_back(
        TextSpan{item.path, offset, where + " text outside cells", std::move(stray)});
  }
  std::erase_if(rows, [](const SheetRow& row) { return row.cells.empty(); });
  if (rows.empty()) return Status::Ok();
  uint64_t width = 0;
  for (const SheetRow& row : rows) width = std::max<uint64_t>(width, row.cells.back().col);
  // The table is dense: charge every cell, empty ones included, before
  // allocating (a cell at XFD on every row would otherwise be a bomb).
  const uint64_t cost = width * rows.size() * sizeof(string) + text_bytes;
  if (cost > ctx.policy.max_child_bytes || !Charge(ctx, cost)) {
    AddBomb(item, out, where, offset,
            where + " spreads " + Num(rows.size()) + " rows over " + Num(width) +
                " columns, over max_child_bytes or the scan's expansion budget");
    return Status::Ok();
  }
  Table table;
  table.file = item.path;
  table.name = sheet.name;
  table.header.assign(width, string());
  size_t first = 0;
  if (std::all_of(rows[0].cells.begin(), rows[0].cells.end(),
                  [](const SheetCell& c) { return c.is_string; })) {
    for (SheetCell& c : rows[0].cells) table.header[c.col - 1] = std::move(c.value);
    first = 1;
  }
  table.rows.reserve(rows.size() - first);
  for (size_t i = first; i < rows.size(); ++i) {
    std::vector<string> cells(width);
    for (SheetCell& c : rows[i].cells) cells[c.col - 1] = std::move(c.value);
    table.rows.push_back(std::move(cells));
    table.row_lines.push_back(rows[i].number);
  }
  out->tables.push_back(std::move(table));
  return Status::Ok();
}

void AddMacroFinding(const Item& item, uint64_t offset, const string& why, bool* reported,
                     Parsed* out) {
  if (*reported) return;
  *reported = true;
  out->findings.push_back(
      MakeFinding(item, "type", why, Off(offset), 1.0, true,
                  "macro-enabled workbook (" + why + "): macros are code and are never released"));
}

}  // namespace

Status ParseXlsx(const Item& item, ParseContext& ctx, Parsed* out) {
  ZipReader zip;
  RETURN_IF_ERROR(zip.Open(item, ctx.policy, out));
  std::vector<std::pair<string, uint64_t>> names;
  for (const ZipMember& m : zip.members()) names.emplace_back(m.name, m.local_at);
  ReportNames(item, names, "xlsx", out);
  struct Part {
    string bytes;
    uint64_t offset = 0;
  };
  std::map<string, Part> parts;
  std::vector<string> order;
  bool macro = false;
  for (size_t i = 0; i < zip.members().size(); ++i) {
    const ZipMember& m = zip.members()[i];
    if (EndsWithNoCase(m.name, "vbaProject.bin")) {
      AddMacroFinding(item, m.local_at, "part " + Quoted(m.name), &macro, out);
      continue;
    }
    if (m.usize == 0 && m.csize == 0 && !m.name.empty() && m.name.back() == '/') continue;
    ASSIGN_OR_RETURN(std::optional<string> bytes, zip.Extract(i, ctx, out));
    if (!bytes) continue;
    if (parts.count(m.name) != 0) {
      return InvalidArgument("XLSX: part " + Quoted(m.name) + " appears twice");
    }
    parts[m.name] = Part{std::move(*bytes), m.local_at};
    order.push_back(m.name);
  }
  zip.ReportUnused(ctx, out);
  auto part = [&](const string& name) -> const Part* {
    auto it = parts.find(name);
    return it == parts.end() ? nullptr : &it->second;
  };
  const Part* types = part("[Content_Types].xml");
  if (types == nullptr) return InvalidArgument("XLSX: no [Content_Types].xml part");
  {
    XmlReader r(types->bytes, "[Content_Types].xml");
    for (;;) {
      ASSIGN_OR_RETURN(const XmlReader::Event ev, r.Next());
      if (ev == XmlReader::Event::kEof) break;
      if (ev != XmlReader::Event::kStart) continue;
      if (const string* ct = r.Attr("ContentType");
          ct != nullptr &&
          (ct->find("macroEnabled") != string::npos || ct->find("vbaProject") != string::npos)) {
        AddMacroFinding(item, types->offset, "content type " + Quoted(*ct), &macro, out);
      }
    }
  }
  // The workbook, through the package relationships.
  string workbook = "xl/workbook.xml";
  if (const Part* rels = part("_rels/.rels"); rels != nullptr) {
    ASSIGN_OR_RETURN(const auto package_rels, ReadRels(rels->bytes, "_rels/.rels", ""));
    for (const auto& [id, rel] : package_rels) {
      if (TypeEndsWith(rel.type, "/officeDocument") && !rel.target.empty()) workbook = rel.target;
    }
  }
  const Part* wb = part(workbook);
  if (wb == nullptr) return InvalidArgument("XLSX: workbook part " + Quoted(workbook) + " missing");
  const string wb_dir = DirName(workbook);
  std::map<string, Relationship> wb_rels;
  const string wb_rels_name = wb_dir + "_rels/" + string(BaseName(workbook)) + ".rels";
  if (const Part* rels = part(wb_rels_name); rels != nullptr) {
    ASSIGN_OR_RETURN(wb_rels, ReadRels(rels->bytes, wb_rels_name, wb_dir));
  }
  string shared_name = wb_dir + "sharedStrings.xml";
  for (const auto& [id, rel] : wb_rels) {
    if (TypeEndsWith(rel.type, "/sharedStrings") && !rel.target.empty()) shared_name = rel.target;
  }
  std::vector<SheetRef> sheets;
  {
    XmlReader r(wb->bytes, workbook);
    for (;;) {
      ASSIGN_OR_RETURN(const XmlReader::Event ev, r.Next());
      if (ev == XmlReader::Event::kEof) break;
      if (ev != XmlReader::Event::kStart || r.name() != "sheet") continue;
      SheetRef s;
      if (const string* name = r.Attr("name"); name != nullptr) s.name = *name;
      if (const string* state = r.Attr("state"); state != nullptr) s.hidden = *state != "visible";
      const string* id = r.Attr("id");
      if (id != nullptr && wb_rels.count(*id) != 0) {
        s.part = wb_rels[*id].target;
      } else {
        s.part = wb_dir + "worksheets/sheet" + std::to_string(sheets.size() + 1) + ".xml";
      }
      sheets.push_back(std::move(s));
    }
  }
  std::set<string> handled;
  std::vector<string> shared;
  const Part* sst = part(shared_name);
  if (sst != nullptr) {
    ASSIGN_OR_RETURN(shared, ReadSharedStrings(sst->bytes, shared_name));
    handled.insert(shared_name);
  }
  std::vector<bool> used(shared.size(), false);
  for (const SheetRef& sheet : sheets) {
    const Part* p = part(sheet.part);
    if (p == nullptr) {
      return InvalidArgument("XLSX: sheet " + Quoted(sheet.name) + ": part " + Quoted(sheet.part) +
                             " missing");
    }
    if (sheet.hidden) {
      out->findings.push_back(MakeFinding(
          item, "covert.xlsx", "sheet " + Quoted(sheet.name), Off(p->offset), 0.1, false,
          "sheet " + Quoted(sheet.name) + " is hidden in Excel (scanned all the same)"));
    }
    if (sheet.part.find("worksheets/") == string::npos) continue;  // chartsheets: text below
    RETURN_IF_ERROR(ParseSheet(item, ctx, p->bytes, sheet, p->offset, shared, &used, out));
    handled.insert(sheet.part);
  }
  // Shared strings no cell shows: Excel drops them on save, so they are
  // data carried past the reader's eye.
  string unused;
  size_t unused_count = 0;
  for (size_t i = 0; i < shared.size(); ++i) {
    if (used[i] || shared[i].empty()) continue;
    ++unused_count;
    unused += shared[i];
    unused += '\n';
  }
  if (unused_count > 0) {
    out->findings.push_back(
        MakeFinding(item, "covert.xlsx", shared_name, Off(sst->offset), 0.3, false,
                    Num(unused_count) + " shared strings are not shown in any cell (hidden text)"));
    out->texts.push_back(TextSpan{item.path, sst->offset, "unused shared strings in " + shared_name,
                                  std::move(unused)});
  }
  // Every other part: XML as text (comments, docProps, custom XML, pivot
  // caches, charts, drawings), the rest (images, OLE objects) as children.
  for (const string& name : order) {
    if (handled.count(name) != 0) continue;
    const Part& p = parts[name];
    if (p.bytes.empty()) continue;
    const string location = "XLSX part " + Quoted(name);
    if (LooksLikeXml(name, p.bytes)) {
      ASSIGN_OR_RETURN(string text, XmlText(p.bytes, name));
      if (!Trim(text).empty()) {
        out->texts.push_back(TextSpan{item.path, p.offset, location, std::move(text)});
      }
      continue;
    }
    out->children.push_back(Child{SafeName(name), location + " at byte " + Num(p.offset),
                                  std::move(parts[name].bytes)});
  }
  return Status::Ok();
}

}  // namespace cce::gate
