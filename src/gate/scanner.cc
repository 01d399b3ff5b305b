// The scan: every output file, and everything unpacked or decoded from it,
// is an item on one work stack (depth first, so a member's bytes are freed
// before the next member's are produced). Each item is typed by content,
// checked against the type and size policy and parsed; what the parsers
// extract is collected for the whole output, and the detectors run over the
// whole collection at the end (copies spread over many files add up).
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include "gate/content.h"
#include "gate/fingerprint.h"
#include "gate/gate.h"
#include "gate/sdc.h"

namespace cce::gate {
namespace {

// Runs of non-space text at least this long, with more than this many bits
// of entropy per character, are an encoding the decoders do not know
// (base85, a custom alphabet): covert.text_entropy.
constexpr size_t kTextRunChars = 1024;
constexpr double kTextRunBits = 5.5;
// Decoded runs of at most kShortRunBytes (a SHA-512 digest) count toward
// encoding.opaque only past the first kShortRunsFree of them.
constexpr size_t kShortRunBytes = 64;
constexpr uint64_t kShortRunsFree = 256;

ParseFn ParserFor(FileType type) {
  switch (type) {
    case FileType::kCsv:
    case FileType::kTsv: return ParseCsv;
    case FileType::kJson:
    case FileType::kJsonLines: return ParseJson;
    case FileType::kYaml: return ParseYaml;
    case FileType::kText:
    case FileType::kMarkdown: return ParseText;
    case FileType::kHtml:
    case FileType::kSvg: return ParseHtml;
    case FileType::kPng: return ParsePng;
    case FileType::kJpeg: return ParseJpeg;
    case FileType::kPdf: return ParsePdf;
    case FileType::kXlsx: return ParseXlsx;
    case FileType::kSqlite: return ParseSqlite;
    case FileType::kNpy: return ParseNpy;
    case FileType::kNpz:
    case FileType::kZip: return ParseZip;
    case FileType::kPickle: return ParsePickle;
    case FileType::kGzip: return ParseGzip;
    case FileType::kBzip2: return ParseBzip2;
    case FileType::kXz: return ParseXz;
    case FileType::kTar: return ParseTar;
    case FileType::kEmpty:
    case FileType::kUnknown: return nullptr;
  }
  return nullptr;
}

std::string BaseName(std::string_view path) {
  const size_t cut = path.find_last_of("/!");
  return std::string(cut == std::string_view::npos ? path : path.substr(cut + 1));
}

std::string Bits(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

class Collector {
 public:
  explicit Collector(const Policy& policy)
      : p_(policy),
        budget_(policy.max_expanded_bytes),
        deadline_(std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(policy.max_scan_millis)),
        allowed_(policy.allowed_types.begin(), policy.allowed_types.end()) {}

  void Run(const std::vector<OutputFile>& files) {
    uint64_t total = 0;
    for (const OutputFile& f : files) total += f.bytes.size();
    if (files.size() > p_.max_files) {
      Hold("limits", "", "",
           "the output has " + std::to_string(files.size()) + " files; the policy allows " +
               std::to_string(p_.max_files));
    }
    if (total > p_.max_bundle_bytes) {
      Hold("limits", "", "",
           "the output has " + std::to_string(total) + " bytes; the policy allows " +
               std::to_string(p_.max_bundle_bytes));
      return;  // not scanned: a reviewer looks at it whole
    }
    const size_t n = std::min<size_t>(files.size(), p_.max_files);
    for (size_t i = n; i-- > 0;) {
      stack_.push_back({files[i].path, nullptr, files[i].bytes, 0, false});
    }
    while (!stack_.empty()) {
      Work w = std::move(stack_.back());
      stack_.pop_back();
      if (++items_ > p_.max_items) {
        Hold("limits", w.path, "",
             "more than " + std::to_string(p_.max_items) +
                 " items (files, members, decoded runs): scan stopped");
        break;
      }
      if (std::chrono::steady_clock::now() > deadline_) {
        Hold("limits", w.path, "",
             "the scan took longer than " + std::to_string(p_.max_scan_millis) +
                 " ms: scan stopped");
        break;
      }
      ScanItem(w);
    }
    if (opaque_bytes_ >= p_.entropy_min_bytes) {
      Finding f =
          Make("encoding.opaque", opaque_first_.file, opaque_first_.location,
               std::to_string(opaque_bytes_) + " bytes of decoded content have no known type (" +
                   std::to_string(opaque_runs_) + " runs; first shown): encrypted or " +
                   "compressed data hidden in encoded text");
      f.offset = opaque_first_.offset;
      findings.push_back(std::move(f));
    }
  }

  Collected collected;
  std::vector<Finding> findings;
  uint64_t bytes_scanned = 0;
  uint64_t items() const { return std::min(items_, p_.max_items); }

 private:
  struct Work {
    std::string path;
    std::shared_ptr<const std::string> owner;  // keeps `bytes` alive for unpacked items
    std::string_view bytes;
    int depth = 0;
    bool decoded = false;  // from an encoded run (base64, hex) rather than a container
  };

  Finding Make(std::string detector, std::string file, std::string location, std::string message,
               double score = 1.0, bool hard = true) {
    Finding f;
    f.detector = std::move(detector);
    f.file = std::move(file);
    f.location = std::move(location);
    f.message = std::move(message);
    f.score = score;
    f.hard = hard;
    return f;
  }
  void Hold(std::string detector, std::string file, std::string location, std::string message) {
    findings.push_back(
        Make(std::move(detector), std::move(file), std::move(location), std::move(message)));
  }

  void ScanItem(const Work& w) {
    bytes_scanned += w.bytes.size();
    collected.paths.push_back(w.path);
    const uint64_t cap = w.depth == 0 ? p_.max_file_bytes : p_.max_child_bytes;
    if (w.bytes.size() > cap) {
      Hold("limits", w.path, "",
           std::to_string(w.bytes.size()) + " bytes; the policy allows " + std::to_string(cap) +
               " per " + (w.depth == 0 ? "file" : "member"));
      return;
    }
    const FileType type = DetectType(w.bytes, BaseName(w.path));
    if (type == FileType::kEmpty) return;
    if (type == FileType::kUnknown) {
      Unknown(w);
      return;
    }
    const std::string_view name = FileTypeName(type);
    if (allowed_.count(std::string(name)) == 0) {
      Hold("type", w.path, "",
           "file type '" + std::string(name) + "' is not allowed by the policy");
      return;
    }
    Parsed parsed;
    ParseContext ctx{p_, budget_};
    Item item{w.path, w.bytes, w.depth};
    Status s = ParserFor(type)(item, ctx, &parsed);
    for (Finding& f : parsed.findings) {
      if (f.file.empty()) f.file = w.path;
      findings.push_back(std::move(f));
    }
    if (!s.ok()) {
      Hold("type", w.path, "", "cannot parse as " + std::string(name) + ": " + s.message());
      return;
    }
    std::vector<Child> decoded;
    for (TextSpan& t : parsed.texts) {
      if (t.file.empty()) t.file = w.path;
      FindEncodedRuns(t, ctx, &decoded, &findings);
      TextEntropy(t);
      collected.texts.push_back(std::move(t));
    }
    // Tables whose cells no text span carries (the text parsers search
    // their own text, CSV and JSON included): workbooks and databases.
    const bool search_cells = type == FileType::kXlsx || type == FileType::kSqlite;
    for (Table& t : parsed.tables) {
      if (t.file.empty()) t.file = w.path;
      for (size_t r = 0; search_cells && r < t.rows.size(); ++r) {
        for (size_t c = 0; c < t.rows[r].size(); ++c) {
          if (t.rows[r][c].size() < p_.min_encoded_chars) continue;
          TextSpan cell{t.file, 0, t.CellLocation(r, c), t.rows[r][c]};
          FindEncodedRuns(cell, ctx, &decoded, &findings);
          TextEntropy(cell);
        }
      }
      collected.tables.push_back(std::move(t));
    }
    for (NumericArray& a : parsed.arrays) {
      if (a.file.empty()) a.file = w.path;
      collected.arrays.push_back(std::move(a));
    }
    Push(w, std::move(parsed.children), false);
    Push(w, std::move(decoded), true);
  }

  void Push(const Work& parent, std::vector<Child> children, bool decoded) {
    if (children.empty()) return;
    if (parent.depth + 1 > p_.max_depth) {
      Hold("encoding.depth", parent.path, children.front().location,
           "nested deeper than " + std::to_string(p_.max_depth) +
               " levels of containers and encodings: not unpacked further");
      return;
    }
    for (size_t i = children.size(); i-- > 0;) {
      auto owner = std::make_shared<const std::string>(std::move(children[i].bytes));
      Work w;
      w.path = parent.path + "!" + children[i].name;
      w.bytes = *owner;
      w.owner = std::move(owner);
      w.depth = parent.depth + 1;
      w.decoded = decoded;
      stack_.push_back(std::move(w));
    }
  }

  // Bytes of no known type. An output file or container member of unknown
  // type is held (the gate cannot tell what it carries); a decoded run is
  // counted, and the whole output is held once those add up.
  void Unknown(const Work& w) {
    const double bits = EntropyBitsPerByte(w.bytes);
    if (w.decoded) {
      // Digests (32 or 64 bytes decoded) are listed in honest outputs: short
      // runs count only once there are more than kShortRunsFree of them.
      const bool short_run = w.bytes.size() <= kShortRunBytes;
      if (short_run && ++short_runs_ <= kShortRunsFree) return;
      if (opaque_runs_++ == 0) {
        opaque_first_.file = w.path;
        opaque_first_.location = "decoded run";
      }
      opaque_bytes_ += w.bytes.size();
      return;
    }
    const bool high = w.bytes.size() >= p_.entropy_min_bytes && bits > p_.entropy_bits_per_byte;
    Hold(high ? "covert.entropy" : "type", w.path, "",
         std::string(high ? "high-entropy content" : "unrecognised binary content") + " (" +
             Bits(bits) + " bits/byte over " + std::to_string(w.bytes.size()) +
             " bytes) of no type the gate can parse: encrypted, compressed or proprietary data is "
             "held for review");
  }

  // Long runs of non-space characters with the entropy of an encoding.
  void TextEntropy(const TextSpan& t) {
    const std::string& s = t.text;
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      const size_t start = i;
      while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      if (i - start < kTextRunChars) continue;
      const double bits = EntropyBitsPerByte(std::string_view(s).substr(start, i - start));
      if (bits <= kTextRunBits) continue;
      Finding f = Make("covert.text_entropy", t.file,
                       t.location.empty() ? "byte " + std::to_string(t.offset + start) : t.location,
                       "a run of " + std::to_string(i - start) + " characters without spaces at " +
                           Bits(bits) + " bits/character: an encoding of binary data");
      if (t.location.empty()) f.offset = static_cast<int64_t>(t.offset + start);
      findings.push_back(std::move(f));
    }
  }

  const Policy& p_;
  uint64_t budget_;
  std::chrono::steady_clock::time_point deadline_;
  std::set<std::string> allowed_;
  std::vector<Work> stack_;
  uint64_t items_ = 0;
  uint64_t opaque_bytes_ = 0;
  uint64_t opaque_runs_ = 0;
  uint64_t short_runs_ = 0;
  struct {
    std::string file;
    std::string location;
    int64_t offset = -1;
  } opaque_first_;
};

double Combine(const std::vector<Finding>& findings) {
  double keep = 1;
  for (const Finding& f : findings) keep *= 1 - std::clamp(f.score, 0.0, 1.0);
  return std::clamp(1 - keep, 0.0, 1.0);
}

}  // namespace

std::string_view VerdictName(Verdict verdict) {
  return verdict == Verdict::kRelease ? "release" : "hold";
}

nlohmann::json ReportToJson(const Report& report) {
  nlohmann::json findings = nlohmann::json::array();
  for (const Finding& f : report.findings) {
    nlohmann::json j = {{"detector", f.detector}, {"file", f.file}, {"location", f.location},
                        {"score", f.score},       {"hard", f.hard}, {"message", f.message}};
    if (f.row >= 0) j["row"] = f.row;
    if (f.column >= 0) j["column"] = f.column;
    if (f.line >= 0) j["line"] = f.line;
    if (f.offset >= 0) j["offset"] = f.offset;
    findings.push_back(std::move(j));
  }
  return {{"verdict", VerdictName(report.verdict)},
          {"score", report.score},
          {"findings", std::move(findings)},
          {"files", report.files},
          {"bytes_scanned", report.bytes_scanned}};
}

Report Scan(const ScanInputs& inputs, const Policy& policy) {
  Collector c(policy);
  c.findings = inputs.findings;
  c.Run(inputs.files);
  DetectCopies(c.collected, inputs.references, policy, &c.findings);
  DetectDisclosure(c.collected.tables, inputs.released_tables, policy, &c.findings);
  Report r;
  r.findings = std::move(c.findings);
  for (Finding& f : r.findings)
    f.score = std::isfinite(f.score) ? std::clamp(f.score, 0.0, 1.0) : 1.0;
  std::stable_sort(r.findings.begin(), r.findings.end(), [](const Finding& a, const Finding& b) {
    if (a.hard != b.hard) return a.hard;
    return a.score > b.score;
  });
  r.score = Combine(r.findings);
  const bool hard =
      std::any_of(r.findings.begin(), r.findings.end(), [](const Finding& f) { return f.hard; });
  r.verdict = !hard && r.score <= policy.threshold ? Verdict::kRelease : Verdict::kHold;
  if (r.verdict == Verdict::kHold && r.findings.empty()) {  // a hold always says why
    Finding f;
    f.detector = "gate";
    f.message = "held: combined score over the threshold";
    f.score = r.score;
    r.findings.push_back(f);
  }
  r.files = c.items();
  r.bytes_scanned = c.bytes_scanned;
  return r;
}

std::vector<Table> ExtractTables(const std::vector<OutputFile>& files, const Policy& policy) {
  Collector c(policy);
  c.Run(files);
  return std::move(c.collected.tables);
}

StatusOr<std::vector<OutputFile>> ReadOutputDir(const std::string& dir, const Policy& policy) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(dir, ec))) {
    return InvalidArgument(dir + ": not a directory");
  }
  std::vector<OutputFile> out;
  uint64_t total = 0;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  if (ec) return InvalidArgument(dir + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return InvalidArgument(dir + ": " + ec.message());
    const fs::path& p = it->path();
    const std::string rel = fs::relative(p, dir, ec).generic_string();
    const fs::file_status st = it->symlink_status(ec);
    if (fs::is_directory(st)) continue;
    if (!fs::is_regular_file(st)) {
      return InvalidArgument(p.string() + ": not a regular file (symlinks, devices and FIFOs are " +
                             "not part of an output)");
    }
    const uint64_t size = fs::file_size(p, ec);
    if (ec) return InvalidArgument(p.string() + ": " + ec.message());
    total += size;
    if (out.size() + 1 > policy.max_files || total > policy.max_bundle_bytes) {
      return InvalidArgument(dir + ": over the policy's limits (" +
                             std::to_string(policy.max_files) + " files, " +
                             std::to_string(policy.max_bundle_bytes) + " bytes)");
    }
    std::ifstream in(p, std::ios::binary);
    std::string bytes(size, '\0');
    if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) {
      return InvalidArgument(p.string() + ": cannot read");
    }
    out.push_back({rel, std::move(bytes)});
  }
  std::sort(out.begin(), out.end(),
            [](const OutputFile& a, const OutputFile& b) { return a.path < b.path; });
  return out;
}

StatusOr<std::vector<OutputFile>> ReadOutputBundle(std::string_view tar, const Policy& policy) {
  if (tar.size() > policy.max_bundle_bytes + (uint64_t{64} << 20)) {
    return InvalidArgument("bundle: " + std::to_string(tar.size()) + " bytes, over the policy's " +
                           std::to_string(policy.max_bundle_bytes));
  }
  Policy unpack = policy;
  unpack.max_child_bytes = policy.max_bundle_bytes;
  unpack.max_expansion_ratio = 1e6;
  uint64_t budget = policy.max_bundle_bytes;
  ParseContext ctx{unpack, budget};
  Parsed parsed;
  RETURN_IF_ERROR(ParseTar(Item{"bundle", tar, 0}, ctx, &parsed).WithContext("bundle"));
  for (const Finding& f : parsed.findings) {
    if (f.hard) return InvalidArgument("bundle: " + f.message);
  }
  std::vector<OutputFile> out;
  for (Child& c : parsed.children) {
    std::string path = c.name;
    while (path.rfind("./", 0) == 0) path.erase(0, 2);
    if (path == "manifest.json" || path == "result.json") continue;  // the agent's own
    out.push_back({std::move(path), std::move(c.bytes)});
  }
  return out;
}

}  // namespace cce::gate
