// The dataset manifest: JSON plaintext inside an encrypted file of kind 2
// (docs/format.md §5). Parsing is strict: unknown fields, bad paths, bad ids,
// duplicates and unsorted entries are all errors naming the entry.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <set>

#include "format/format.h"
#include "format/internal.h"

namespace cce::format {
namespace {

using nlohmann::json;

constexpr std::string_view kManifestFormat = "cce4long-dataset-manifest";
constexpr size_t kMaxManifestBytes = size_t{256} << 20;

bool IsHexId(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace

Status ValidateRelativePath(std::string_view path) {
  if (path.empty()) return InvalidArgument("empty path");
  if (path.front() == '/' || path.back() == '/') {
    return InvalidArgument("path must be relative without a trailing '/'");
  }
  if (!IsValidUtf8(path)) return InvalidArgument("path is not valid UTF-8");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return InvalidArgument("path component '" + std::string(part) + "' is not allowed");
    }
    if (part.find('\0') != std::string_view::npos) return InvalidArgument("NUL in path");
    start = end + 1;
  }
  return Status::Ok();
}

std::string Manifest::ToJson() const {
  json files = json::array();
  for (const ManifestEntry& e : entries) {
    json j;
    j["path"] = e.path;
    j["type"] = e.type == ManifestEntry::Type::kFile ? "file" : "dir";
    j["mode"] = e.mode;
    j["mtime"] = e.mtime;
    if (e.type == ManifestEntry::Type::kFile) {
      j["id"] = e.id;
      j["size"] = e.size;
      j["header_sha256"] = crypto::ToHex(e.header_sha256);
    }
    files.push_back(std::move(j));
  }
  json root;
  root["format"] = kManifestFormat;
  root["format_version"] = 1;
  root["dataset_id"] = dataset_id;
  root["dataset_version"] = dataset_version;
  root["segment_size"] = segment_size;
  root["created_at"] = created_at;
  root["entries"] = std::move(files);
  return root.dump();
}

namespace {

// Field access that names the field and what was expected.
class Fields {
 public:
  Fields(const json& obj, std::string where, std::set<std::string> allowed)
      : obj_(obj), where_(std::move(where)), allowed_(std::move(allowed)) {}

  Status CheckKnown() const {
    if (!obj_.is_object()) return DataLoss(where_ + ": expected an object");
    for (const auto& [k, v] : obj_.items()) {
      if (!allowed_.count(k)) return DataLoss(where_ + "." + k + ": unknown field");
    }
    return Status::Ok();
  }
  StatusOr<std::string> String(const std::string& k) const {
    auto it = obj_.find(k);
    if (it == obj_.end() || !it->is_string())
      return DataLoss(where_ + "." + k + ": expected a string");
    return it->get<std::string>();
  }
  StatusOr<uint64_t> Unsigned(const std::string& k) const {
    auto it = obj_.find(k);
    if (it == obj_.end() || !it->is_number_unsigned()) {
      return DataLoss(where_ + "." + k + ": expected a non-negative integer");
    }
    return it->get<uint64_t>();
  }
  StatusOr<int64_t> Integer(const std::string& k) const {
    auto it = obj_.find(k);
    if (it == obj_.end() || !it->is_number_integer()) {
      return DataLoss(where_ + "." + k + ": expected an integer");
    }
    return it->get<int64_t>();
  }
  const std::string& where() const { return where_; }

 private:
  const json& obj_;
  std::string where_;
  std::set<std::string> allowed_;
};

StatusOr<ManifestEntry> ParseEntry(const json& j, size_t index) {
  Fields f(j, "manifest: entries[" + std::to_string(index) + "]",
           {"path", "type", "mode", "mtime", "id", "size", "header_sha256"});
  RETURN_IF_ERROR(f.CheckKnown());
  ManifestEntry e;
  ASSIGN_OR_RETURN(e.path, f.String("path"));
  Status ps = ValidateRelativePath(e.path);
  if (!ps.ok()) return DataLoss(f.where() + ".path: " + ps.message());
  ASSIGN_OR_RETURN(std::string type, f.String("type"));
  ASSIGN_OR_RETURN(uint64_t mode, f.Unsigned("mode"));
  if (mode > 07777) return DataLoss(f.where() + ".mode: expected permission bits <= 07777");
  e.mode = static_cast<uint32_t>(mode);
  ASSIGN_OR_RETURN(e.mtime, f.Integer("mtime"));
  if (type == "dir") {
    e.type = ManifestEntry::Type::kDirectory;
    for (const char* k : {"id", "size", "header_sha256"}) {
      if (j.contains(k)) return DataLoss(f.where() + "." + k + ": not allowed on a directory");
    }
    return e;
  }
  if (type != "file") return DataLoss(f.where() + ".type: expected \"file\" or \"dir\"");
  e.type = ManifestEntry::Type::kFile;
  ASSIGN_OR_RETURN(e.id, f.String("id"));
  if (!IsHexId(e.id)) return DataLoss(f.where() + ".id: expected 32 lower-case hex digits");
  ASSIGN_OR_RETURN(e.size, f.Unsigned("size"));
  if (e.size > (uint64_t{1} << 62)) return DataLoss(f.where() + ".size: exceeds 2^62");
  ASSIGN_OR_RETURN(std::string digest, f.String("header_sha256"));
  auto bytes = crypto::FromHex(digest);
  if (!bytes.ok() || bytes->size() != 32 || crypto::ToHex(*bytes) != digest) {
    return DataLoss(f.where() + ".header_sha256: expected 64 lower-case hex digits");
  }
  std::copy(bytes->begin(), bytes->end(), e.header_sha256.begin());
  return e;
}

}  // namespace

StatusOr<Manifest> Manifest::FromJson(std::string_view text) {
  json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return DataLoss("manifest: not valid JSON");
  Fields f(root, "manifest",
           {"format", "format_version", "dataset_id", "dataset_version", "segment_size",
            "created_at", "entries"});
  RETURN_IF_ERROR(f.CheckKnown());
  ASSIGN_OR_RETURN(std::string format, f.String("format"));
  if (format != kManifestFormat) {
    return DataLoss("manifest.format: expected \"" + std::string(kManifestFormat) + "\"");
  }
  ASSIGN_OR_RETURN(uint64_t fv, f.Unsigned("format_version"));
  if (fv != 1) return DataLoss("manifest.format_version: " + std::to_string(fv) + ", expected 1");
  Manifest m;
  ASSIGN_OR_RETURN(m.dataset_id, f.String("dataset_id"));
  if (m.dataset_id.empty() || m.dataset_id.size() > 128) {
    return DataLoss("manifest.dataset_id: expected 1..128 characters");
  }
  ASSIGN_OR_RETURN(m.dataset_version, f.Unsigned("dataset_version"));
  ASSIGN_OR_RETURN(uint64_t seg, f.Unsigned("segment_size"));
  if (seg != kBlockSize) {
    return DataLoss("manifest.segment_size: " + std::to_string(seg) +
                    ", expected 4096 (the only segment size in format v2)");
  }
  m.segment_size = static_cast<uint32_t>(seg);
  ASSIGN_OR_RETURN(m.created_at, f.String("created_at"));
  auto it = root.find("entries");
  if (it == root.end() || !it->is_array()) return DataLoss("manifest.entries: expected an array");
  std::set<std::string> ids;
  std::set<std::string> dirs;
  for (size_t i = 0; i < it->size(); ++i) {
    ASSIGN_OR_RETURN(ManifestEntry e, ParseEntry((*it)[i], i));
    std::string where = "manifest: entries[" + std::to_string(i) + "]";
    if (!m.entries.empty() && !(m.entries.back().path < e.path)) {
      return DataLoss(where + ".path: not in strictly increasing order (duplicate or unsorted)");
    }
    size_t slash = e.path.rfind('/');
    if (slash != std::string::npos && !dirs.count(e.path.substr(0, slash))) {
      return DataLoss(where + ".path: parent directory is not listed before it");
    }
    if (e.type == ManifestEntry::Type::kDirectory) {
      dirs.insert(e.path);
    } else if (!ids.insert(e.id).second) {
      return DataLoss(where + ".id: duplicate object id");
    }
    m.entries.push_back(std::move(e));
  }
  return m;
}

std::string ObjectPath(const std::string& dataset_dir, const std::string& id) {
  return dataset_dir + "/" + kObjectsDir + "/" + id;
}

// Reads a whole small encrypted file (the manifest) into memory.
StatusOr<std::string> ReadSealedFile(int fd, const DatasetKey& key, FileKind kind,
                                     const std::string& what) {
  std::array<uint8_t, kHeaderSize> hb{};
  ASSIGN_OR_RETURN(size_t got, PreadFull(fd, hb, 0));
  if (got != kHeaderSize) return DataLoss(what + ": shorter than the 68-byte header");
  auto cipher = FileCipher::ForReading(key, hb, kind);
  if (!cipher.ok()) return cipher.status().WithContext(what);
  const Geometry& g = cipher->geometry();
  if (g.plaintext_size > kMaxManifestBytes) {
    return DataLoss(what + ": header byte 60: size " + std::to_string(g.plaintext_size) +
                    " exceeds the manifest limit");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus(what, errno);
  if (static_cast<uint64_t>(st.st_size) != g.CiphertextSize()) {
    return DataLoss(what + ": " + std::to_string(st.st_size) + " bytes, expected " +
                    std::to_string(g.CiphertextSize()) + " (truncated or extended)");
  }
  std::string plain(g.plaintext_size, '\0');
  // Runs of up to 256 segments (1 MiB): one pread and one OpenRun each.
  constexpr uint64_t kRun = 256;
  const uint64_t segments = g.SegmentCount();
  std::vector<uint8_t> sealed(static_cast<size_t>(g.RunSealedSize(0, std::min(kRun, segments))));
  for (uint64_t first = 0; first < segments; first += kRun) {
    const uint64_t count = std::min(kRun, segments - first);
    std::span<uint8_t> s(sealed.data(), static_cast<size_t>(g.RunSealedSize(first, count)));
    ASSIGN_OR_RETURN(size_t r, PreadFull(fd, s, g.SegmentOffset(first)));
    auto* out = reinterpret_cast<uint8_t*>(plain.data()) + first * g.segment_size;
    // A short read (the file shrank) is named as a truncated segment.
    Status st2 = cipher->OpenRun(first, count, s.first(r),
                                 {out, static_cast<size_t>(g.RunPlainSize(first, count))});
    if (!st2.ok()) return st2.WithContext(what);
  }
  return plain;
}

StatusOr<Manifest> ReadManifestFromFd(int fd, const DatasetKey& key, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus(what, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(what + ": not a regular file");
  ASSIGN_OR_RETURN(std::string json_text, ReadSealedFile(fd, key, FileKind::kManifest, what));
  auto m = Manifest::FromJson(json_text);
  if (!m.ok()) return m.status().WithContext(what);
  return m;
}

StatusOr<Manifest> ReadManifest(const std::string& dataset_dir, const DatasetKey& key) {
  std::string path = dataset_dir + "/" + kManifestName;
  // O_NONBLOCK: a FIFO (or device) named manifest.cce must not block the
  // open; ReadManifestFromFd then refuses anything but a regular file.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    if (errno == ENOENT) {
      return NotFound(path + ": no manifest: not an encrypted dataset (or an incomplete one)");
    }
    return ErrnoStatus(path, errno);
  }
  return ReadManifestFromFd(fd.get(), key, path);
}

}  // namespace cce::format
