// File types by content (docs/gate.md, "Types"). The name only breaks ties
// between text formats that look alike (CSV and TSV, YAML and plain text);
// binary formats are recognised by their magic bytes and structure alone.
#include <algorithm>
#include <array>
#include <cstring>
#include <nlohmann/json.hpp>

#include "gate/content.h"

namespace cce::gate {
namespace {

constexpr size_t kSniffBytes = 64 * 1024;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

bool EndsWithCi(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    const char c = s[s.size() - suffix.size() + i];
    if (std::tolower(static_cast<unsigned char>(c)) != suffix[i]) return false;
  }
  return true;
}

uint32_t Le32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
  return v;
}
uint16_t Le16(std::string_view s, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(s[at]) |
                               (static_cast<uint8_t>(s[at + 1]) << 8));
}

// Member names from a zip's central directory (empty when it cannot be
// found: the zip parser reports why).
std::vector<std::string_view> ZipNames(std::string_view z) {
  std::vector<std::string_view> names;
  if (z.size() < 22) return names;
  const size_t lowest = z.size() > 65557 ? z.size() - 65557 : 0;
  for (size_t at = z.size() - 22 + 1; at-- > lowest;) {
    if (z.compare(at, 4, "PK\x05\x06") != 0) continue;
    const uint32_t cd_size = Le32(z, at + 12);
    const uint32_t cd_offset = Le32(z, at + 16);
    if (uint64_t{cd_offset} + cd_size > at) return names;
    size_t p = cd_offset;
    while (p + 46 <= uint64_t{cd_offset} + cd_size && z.compare(p, 4, "PK\x01\x02") == 0) {
      const size_t name_len = Le16(z, p + 28);
      const size_t next = p + 46 + name_len + Le16(z, p + 30) + Le16(z, p + 32);
      if (p + 46 + name_len > z.size() || names.size() > 100'000) break;
      names.push_back(z.substr(p + 46, name_len));
      p = next;
    }
    return names;
  }
  return names;
}

bool LooksLikeTar(std::string_view s) {
  if (s.size() < 512) return false;
  if (s.compare(257, 5, "ustar") != 0) return false;
  return true;
}

// Valid UTF-8 with few control characters (a cut multi-byte character at the
// end of the sniffed prefix is fine).
bool LooksLikeUtf8Text(std::string_view s, bool prefix_only) {
  size_t controls = 0;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') {
        if (c == 0) return false;
        ++controls;
      }
      ++i;
      continue;
    }
    size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (c == 0xC0 || c == 0xC1 || c > 0xF4)) return false;
    if (i + n > s.size()) return prefix_only;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return controls * 100 <= s.size();
}

// UTF-16 by BOM, or by the NUL pattern of mostly-ASCII text.
bool LooksLikeUtf16(std::string_view s) {
  if (StartsWith(s, "\xFF\xFE") || StartsWith(s, "\xFE\xFF")) return s.size() % 2 == 0;
  if (s.size() < 4 || s.size() % 2 != 0) return false;
  const size_t n = std::min<size_t>(s.size(), 4096);
  size_t even_nul = 0, odd_nul = 0;
  for (size_t i = 0; i + 1 < n; i += 2) {
    even_nul += s[i] == 0;
    odd_nul += s[i + 1] == 0;
  }
  const size_t pairs = n / 2;
  return (odd_nul * 10 >= pairs * 9 && even_nul == 0) ||
         (even_nul * 10 >= pairs * 9 && odd_nul == 0);
}

// The ASCII view of a UTF-16 prefix, good enough to classify the text.
std::string Utf16Ascii(std::string_view s) {
  bool be = StartsWith(s, "\xFE\xFF") || (s.size() > 1 && s[0] == 0);
  std::string out;
  const size_t start = (StartsWith(s, "\xFF\xFE") || StartsWith(s, "\xFE\xFF")) ? 2 : 0;
  for (size_t i = start; i + 1 < s.size() && out.size() < kSniffBytes; i += 2) {
    const uint8_t lo = static_cast<uint8_t>(be ? s[i + 1] : s[i]);
    const uint8_t hi = static_cast<uint8_t>(be ? s[i] : s[i + 1]);
    out.push_back(hi == 0 && lo < 0x80 ? static_cast<char>(lo) : 'x');
  }
  return out;
}

std::string_view TrimLeft(std::string_view s) {
  if (StartsWith(s, "\xEF\xBB\xBF")) s.remove_prefix(3);
  while (!s.empty() && (s[0] == ' ' || s[0] == '\t' || s[0] == '\r' || s[0] == '\n'))
    s.remove_prefix(1);
  return s;
}

std::string Lower(std::string_view s, size_t max) {
  std::string out(s.substr(0, std::min(max, s.size())));
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Counts of `delim` outside quotes on each of the first lines.
bool ConsistentDelimiter(std::string_view text, char delim) {
  size_t lines = 0;
  long first = -1;
  long count = 0;
  bool quoted = false;
  for (size_t i = 0; i < text.size() && lines < 20; ++i) {
    const char c = text[i];
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    if (c == delim) ++count;
    if (c == '\n') {
      if (count == 0 && first != 0) return false;
      if (first < 0)
        first = count;
      else if (count != first)
        return false;
      count = 0;
      ++lines;
    }
  }
  if (first < 1) return false;
  return lines >= 2 || (lines == 1 && count == first);
}

bool LooksLikeYaml(std::string_view text) {
  if (StartsWith(text, "---") || StartsWith(text, "%YAML")) return true;
  size_t lines = 0, mapping = 0;
  size_t start = 0;
  while (start < text.size() && lines < 20) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    while (!line.empty() && line[0] == ' ') line.remove_prefix(1);
    if (line.empty() || line[0] == '#') continue;
    ++lines;
    if (StartsWith(line, "- ")) line.remove_prefix(2);
    const size_t colon = line.find(": ");
    const bool key = colon != std::string_view::npos && colon > 0 &&
                     std::all_of(line.begin(), line.begin() + static_cast<long>(colon), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
                              c == '.' || c == '"' || c == '\'';
                     });
    const bool bare_key =
        !line.empty() && line.back() == ':' && line.find(' ') == std::string_view::npos;
    if (key || bare_key) ++mapping;
  }
  return lines >= 2 && mapping * 10 >= lines * 8;
}

bool LooksLikeMarkdown(std::string_view text) {
  size_t lines = 0, marks = 0, start = 0;
  while (start < text.size() && lines < 200) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    ++lines;
    if (StartsWith(line, "# ") || StartsWith(line, "## ") || StartsWith(line, "### ") ||
        StartsWith(line, "|") || StartsWith(line, "```") || StartsWith(line, "* ") ||
        StartsWith(line, "- ")) {
      ++marks;
    }
  }
  return marks >= 2;
}

FileType ClassifyText(std::string_view whole, std::string_view sniff, std::string_view name) {
  std::string_view t = TrimLeft(sniff);
  if (t.empty()) return FileType::kText;
  const std::string head = Lower(t, 4096);
  if (head[0] == '<') {
    if (head.find("<svg") != std::string::npos) return FileType::kSvg;
    return FileType::kHtml;
  }
  if (head[0] == '{' || head[0] == '[') {
    if (whole.size() == sniff.size() || whole.size() <= (size_t{256} << 20)) {
      if (nlohmann::json::accept(whole)) return FileType::kJson;
      // JSON Lines: every non-empty line of the sniffed prefix is a value.
      size_t start = 0, values = 0;
      bool all = true;
      while (start < t.size() && all) {
        size_t end = t.find('\n', start);
        if (end == std::string_view::npos) {
          if (whole.size() != sniff.size()) break;  // the prefix's last line may be cut
          end = t.size();
        }
        std::string_view line = t.substr(start, end - start);
        start = end + 1;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        all = nlohmann::json::accept(line);
        ++values;
      }
      if (all && values >= 1) return FileType::kJsonLines;
    }
  }
  if (EndsWithCi(name, ".md") || EndsWithCi(name, ".markdown")) return FileType::kMarkdown;
  const bool tsv_name = EndsWithCi(name, ".tsv") || EndsWithCi(name, ".tab");
  if (ConsistentDelimiter(t, '\t')) return FileType::kTsv;
  if (!tsv_name) {
    for (char d : {',', ';', '|'}) {
      if (d == '|' && LooksLikeMarkdown(t)) break;
      if (ConsistentDelimiter(t, d)) return FileType::kCsv;
    }
  }
  if (EndsWithCi(name, ".csv") && ConsistentDelimiter(t, ',')) return FileType::kCsv;
  if (EndsWithCi(name, ".yaml") || EndsWithCi(name, ".yml") || LooksLikeYaml(t)) {
    return FileType::kYaml;
  }
  if (LooksLikeMarkdown(t)) return FileType::kMarkdown;
  return FileType::kText;
}

}  // namespace

std::string_view FileTypeName(FileType type) {
  switch (type) {
    case FileType::kEmpty: return "empty";
    case FileType::kCsv: return "csv";
    case FileType::kTsv: return "tsv";
    case FileType::kJson: return "json";
    case FileType::kJsonLines: return "jsonl";
    case FileType::kYaml: return "yaml";
    case FileType::kText: return "text";
    case FileType::kMarkdown: return "markdown";
    case FileType::kHtml: return "html";
    case FileType::kSvg: return "svg";
    case FileType::kPng: return "png";
    case FileType::kJpeg: return "jpeg";
    case FileType::kPdf: return "pdf";
    case FileType::kXlsx: return "xlsx";
    case FileType::kSqlite: return "sqlite";
    case FileType::kNpy: return "npy";
    case FileType::kNpz: return "npz";
    case FileType::kPickle: return "pickle";
    case FileType::kGzip: return "gzip";
    case FileType::kBzip2: return "bzip2";
    case FileType::kXz: return "xz";
    case FileType::kZip: return "zip";
    case FileType::kTar: return "tar";
    case FileType::kUnknown: return "unknown";
  }
  return "unknown";
}

FileType DetectType(std::string_view bytes, std::string_view name) {
  if (bytes.empty()) return FileType::kEmpty;
  if (StartsWith(bytes, "\x89PNG\r\n\x1a\n")) return FileType::kPng;
  if (StartsWith(bytes, "\xFF\xD8\xFF")) return FileType::kJpeg;
  if (StartsWith(bytes, "%PDF-")) return FileType::kPdf;
  if (StartsWith(bytes, "\x1F\x8B")) return FileType::kGzip;
  if (StartsWith(bytes, "BZh") && bytes.size() > 3 && bytes[3] >= '1' && bytes[3] <= '9') {
    return FileType::kBzip2;
  }
  if (StartsWith(bytes, std::string_view("\xFD"
                                         "7zXZ\0",
                                         6)))
    return FileType::kXz;
  if (StartsWith(bytes, std::string_view("SQLite format 3\0", 16))) return FileType::kSqlite;
  if (StartsWith(bytes, "\x93NUMPY")) return FileType::kNpy;
  if (bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x80 && bytes[1] >= 2 &&
      bytes[1] <= 5) {
    return FileType::kPickle;
  }
  if (StartsWith(bytes, "PK\x03\x04") || StartsWith(bytes, "PK\x05\x06")) {
    const auto names = ZipNames(bytes);
    const bool xlsx = std::any_of(names.begin(), names.end(),
                                  [](std::string_view n) { return n == "xl/workbook.xml"; });
    if (xlsx) return FileType::kXlsx;
    if (!names.empty() && std::all_of(names.begin(), names.end(),
                                      [](std::string_view n) { return EndsWithCi(n, ".npy"); })) {
      return FileType::kNpz;
    }
    return FileType::kZip;
  }
  if (LooksLikeTar(bytes)) return FileType::kTar;
  const std::string_view sniff = bytes.substr(0, std::min(bytes.size(), kSniffBytes));
  if (LooksLikeUtf16(sniff)) {
    const std::string ascii = Utf16Ascii(sniff);
    return ClassifyText(ascii, ascii, name);
  }
  if (!LooksLikeUtf8Text(sniff, sniff.size() < bytes.size())) return FileType::kUnknown;
  return ClassifyText(bytes, sniff, name);
}

}  // namespace cce::gate
