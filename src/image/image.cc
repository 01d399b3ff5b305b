#include "image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>
#include <vector>

namespace cce::image {

using json = nlohmann::json;

namespace internal {

// What ForEachBlob needs to find the bytes again. The JSON blobs are served
// from the copies verified by ReadLocalImage; layers are re-read (and
// re-hashed) from the source.
struct BlobLocations {
  ImageFormat format = ImageFormat::kOciLayout;
  std::string path;
  Descriptor manifest;
  std::string manifest_json;
  Descriptor config;
  std::string config_json;
  std::vector<Descriptor> layers;  // distinct, in manifest order
  // Archives only: the regular member holding each distinct layer.
  std::map<std::string, Descriptor> layer_members;

  static void Attach(LocalImage& image, std::shared_ptr<const BlobLocations> locations) {
    image.locations_ = std::move(locations);
  }
  Status ForEach(const BlobVisitor& visit) const;
};

}  // namespace internal

namespace {

using internal::BlobLocations;

constexpr size_t kChunk = 1 << 20;
constexpr int kMaxIndexDepth = 4;
constexpr size_t kMaxIndexEntries = 1024;
constexpr size_t kMaxLayers = 1024;
constexpr size_t kMaxArchiveMembers = 100000;
constexpr int kMaxLinkHops = 16;
// Small JSON-looking archive members are kept in memory during the single
// scan (we cannot know which blob is a manifest or config until we have
// read the index, which may come last); this bounds that memory.
constexpr uint64_t kMaxBufferedJson = 64ull << 20;

bool IsLowerHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool IsManifestType(std::string_view t) {
  return t == kOciManifest || t == kDockerManifest;
}
bool IsIndexType(std::string_view t) {
  return t == kOciIndex || t == kDockerManifestList;
}
bool IsConfigType(std::string_view t) {
  return t == kOciConfig || t == kDockerConfig;
}

// ---------------------------------------------------------------------------
// JSON

// Parses a JSON document of at most kMaxJsonBytes. Duplicate object keys are
// rejected: two parsers that keep different duplicates would disagree about
// what an image is.
StatusOr<json> ParseJson(std::string_view text, const std::string& what) {
  if (text.size() > kMaxJsonBytes) {
    return InvalidArgument(what + ": " + std::to_string(text.size()) +
                           " bytes, larger than the limit of " + std::to_string(kMaxJsonBytes));
  }
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  json::parser_callback_t track = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default: break;
    }
    return true;
  };
  try {
    json parsed = json::parse(text.begin(), text.end(), track);
    if (!duplicate.empty())
      return InvalidArgument(what + ": duplicate key " + QuoteName(duplicate));
    return parsed;
  } catch (const json::exception& e) {
    return InvalidArgument(what + ": not valid JSON: " + e.what());
  }
}

const json* Field(const json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

StatusOr<std::string> RequireString(const json& object, const char* key, const std::string& what) {
  const json* v = Field(object, key);
  if (v == nullptr) return InvalidArgument(what + ": missing field '" + key + "'");
  if (!v->is_string()) return InvalidArgument(what + "." + key + ": expected a string");
  return v->get<std::string>();
}

StatusOr<std::string> OptionalString(const json& object, const char* key, const std::string& what) {
  const json* v = Field(object, key);
  if (v == nullptr) return std::string();
  if (!v->is_string()) return InvalidArgument(what + "." + key + ": expected a string");
  return v->get<std::string>();
}

Status RequireSchemaVersion2(const json& object, const std::string& what) {
  const json* v = Field(object, "schemaVersion");
  if (v == nullptr) return InvalidArgument(what + ": missing field 'schemaVersion'");
  if (!v->is_number_unsigned() || v->get<uint64_t>() != 2) {
    return InvalidArgument(what + ".schemaVersion: " + v->dump() + ", expected 2");
  }
  return Status::Ok();
}

StatusOr<Descriptor> ParseDescriptor(const json& j, const std::string& what) {
  if (!j.is_object()) return InvalidArgument(what + ": expected a descriptor object");
  Descriptor d;
  ASSIGN_OR_RETURN(d.media_type, RequireString(j, "mediaType", what));
  ASSIGN_OR_RETURN(std::string digest, RequireString(j, "digest", what));
  auto parsed = Digest::Parse(digest);
  if (!parsed.ok()) return parsed.status().WithContext(what + ".digest");
  d.digest = *parsed;
  const json* size = Field(j, "size");
  if (size == nullptr) return InvalidArgument(what + ": missing field 'size'");
  if (!size->is_number_unsigned()) {
    return InvalidArgument(what + ".size: " + size->dump() + ", expected a non-negative integer");
  }
  d.size = size->get<uint64_t>();
  // Foreign layers point at URLs we would have to fetch; we never do.
  const json* urls = Field(j, "urls");
  if (urls != nullptr && !(urls->is_array() && urls->empty())) {
    return InvalidArgument(what + ".urls: blobs fetched from external URLs are not supported");
  }
  return d;
}

struct ParsedManifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};

// Unknown top-level fields (annotations, subject, artifactType, ...) are
// ignored as the OCI spec requires; every field we act on is checked.
StatusOr<ParsedManifest> ParseImageManifest(std::string_view text, const std::string& what,
                                            std::string_view descriptor_media_type) {
  ASSIGN_OR_RETURN(json j, ParseJson(text, what));
  if (!j.is_object()) return InvalidArgument(what + ": expected a JSON object");
  RETURN_IF_ERROR(RequireSchemaVersion2(j, what));
  if (Field(j, "manifests") != nullptr) {
    return InvalidArgument(what + ": has a 'manifests' field: an index, not an image manifest");
  }
  ParsedManifest m;
  ASSIGN_OR_RETURN(m.media_type, OptionalString(j, "mediaType", what));
  if (!m.media_type.empty() && !descriptor_media_type.empty() &&
      m.media_type != descriptor_media_type) {
    return InvalidArgument(what + ".mediaType: " + QuoteName(m.media_type) +
                           ", but the descriptor pointing here says " +
                           QuoteName(descriptor_media_type));
  }
  if (m.media_type.empty()) {
    // OCI made mediaType optional in early manifests; Docker's is mandatory.
    m.media_type = descriptor_media_type.empty() ? kOciManifest : descriptor_media_type;
  }
  if (!IsManifestType(m.media_type)) {
    return InvalidArgument(what + ".mediaType: " + QuoteName(m.media_type) +
                           " is not a supported image manifest type (expected " + kOciManifest +
                           " or " + kDockerManifest + ")");
  }
  const json* config = Field(j, "config");
  if (config == nullptr) return InvalidArgument(what + ": missing field 'config'");
  ASSIGN_OR_RETURN(m.config, ParseDescriptor(*config, what + ".config"));
  if (!IsConfigType(m.config.media_type)) {
    return InvalidArgument(what + ".config.mediaType: " + QuoteName(m.config.media_type) +
                           " is not a supported config type (expected " + kOciConfig + " or " +
                           kDockerConfig + ")");
  }
  if (m.config.size > kMaxJsonBytes) {
    return InvalidArgument(what + ".config.size: " + std::to_string(m.config.size) +
                           " bytes, larger than the limit of " + std::to_string(kMaxJsonBytes));
  }
  const json* layers = Field(j, "layers");
  if (layers == nullptr) return InvalidArgument(what + ": missing field 'layers'");
  if (!layers->is_array()) return InvalidArgument(what + ".layers: expected an array");
  // A runnable image needs a root filesystem.
  if (layers->empty()) return InvalidArgument(what + ".layers: empty; an image needs a layer");
  if (layers->size() > kMaxLayers) {
    return InvalidArgument(what + ".layers: " + std::to_string(layers->size()) +
                           " layers, more than the limit of " + std::to_string(kMaxLayers));
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    std::string here = what + ".layers[" + std::to_string(i) + "]";
    ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor((*layers)[i], here));
    auto compression = LayerCompressionOf(d.media_type);
    if (!compression.ok()) return compression.status().WithContext(here + ".mediaType");
    m.layers.push_back(std::move(d));
  }
  return m;
}

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
  std::string ToString() const {
    return os + "/" + architecture + (variant.empty() ? "" : "/" + variant);
  }
  bool IsLinuxAmd64() const { return os == "linux" && architecture == "amd64"; }
};

struct IndexEntry {
  Descriptor descriptor;
  std::optional<Platform> platform;
  std::vector<std::string> ref_names;
};

StatusOr<std::vector<IndexEntry>> ParseIndex(std::string_view text, const std::string& what,
                                             std::string_view descriptor_media_type) {
  ASSIGN_OR_RETURN(json j, ParseJson(text, what));
  if (!j.is_object()) return InvalidArgument(what + ": expected a JSON object");
  RETURN_IF_ERROR(RequireSchemaVersion2(j, what));
  ASSIGN_OR_RETURN(std::string media_type, OptionalString(j, "mediaType", what));
  if (!media_type.empty() && !IsIndexType(media_type)) {
    return InvalidArgument(what + ".mediaType: " + QuoteName(media_type) +
                           " is not a supported index type (expected " + kOciIndex + " or " +
                           kDockerManifestList + ")");
  }
  if (!media_type.empty() && !descriptor_media_type.empty() &&
      media_type != descriptor_media_type) {
    return InvalidArgument(what + ".mediaType: " + QuoteName(media_type) +
                           ", but the descriptor pointing here says " +
                           QuoteName(descriptor_media_type));
  }
  if (Field(j, "config") != nullptr || Field(j, "layers") != nullptr) {
    return InvalidArgument(what + ": has 'config' or 'layers': an image manifest, not an index");
  }
  const json* manifests = Field(j, "manifests");
  if (manifests == nullptr) return InvalidArgument(what + ": missing field 'manifests'");
  if (!manifests->is_array()) return InvalidArgument(what + ".manifests: expected an array");
  if (manifests->size() > kMaxIndexEntries) {
    return InvalidArgument(what + ".manifests: more than " + std::to_string(kMaxIndexEntries) +
                           " entries");
  }
  std::vector<IndexEntry> entries;
  for (size_t i = 0; i < manifests->size(); ++i) {
    const json& e = (*manifests)[i];
    std::string here = what + ".manifests[" + std::to_string(i) + "]";
    IndexEntry entry;
    ASSIGN_OR_RETURN(entry.descriptor, ParseDescriptor(e, here));
    const std::string& t = entry.descriptor.media_type;
    if (!IsManifestType(t) && !IsIndexType(t)) {
      return InvalidArgument(here + ".mediaType: " + QuoteName(t) +
                             " is not a supported manifest or index type");
    }
    if (const json* p = Field(e, "platform"); p != nullptr) {
      if (!p->is_object()) return InvalidArgument(here + ".platform: expected an object");
      Platform platform;
      ASSIGN_OR_RETURN(platform.os, RequireString(*p, "os", here + ".platform"));
      ASSIGN_OR_RETURN(platform.architecture,
                       RequireString(*p, "architecture", here + ".platform"));
      ASSIGN_OR_RETURN(platform.variant, OptionalString(*p, "variant", here + ".platform"));
      entry.platform = std::move(platform);
    }
    if (const json* a = Field(e, "annotations"); a != nullptr) {
      if (!a->is_object()) return InvalidArgument(here + ".annotations: expected an object");
      for (const char* key : {"org.opencontainers.image.ref.name", "io.containerd.image.name"}) {
        ASSIGN_OR_RETURN(std::string name, OptionalString(*a, key, here + ".annotations"));
        if (!name.empty()) entry.ref_names.push_back(std::move(name));
      }
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

// Checks the image config and returns its rootfs.diff_ids.
StatusOr<std::vector<Digest>> ValidateConfig(std::string_view text, size_t layer_count,
                                             const std::string& what) {
  ASSIGN_OR_RETURN(json j, ParseJson(text, what));
  if (!j.is_object()) return InvalidArgument(what + ": expected a JSON object");
  ASSIGN_OR_RETURN(std::string os, RequireString(j, "os", what));
  ASSIGN_OR_RETURN(std::string arch, RequireString(j, "architecture", what));
  if (os != "linux" || arch != "amd64") {
    return InvalidArgument(what + ": os/architecture is " + QuoteName(os + "/" + arch) +
                           ", expected 'linux/amd64'");
  }
  const json* rootfs = Field(j, "rootfs");
  if (rootfs == nullptr || !rootfs->is_object()) {
    return InvalidArgument(what + ".rootfs: missing or not an object");
  }
  ASSIGN_OR_RETURN(std::string type, RequireString(*rootfs, "type", what + ".rootfs"));
  if (type != "layers") {
    return InvalidArgument(what + ".rootfs.type: " + QuoteName(type) + ", expected 'layers'");
  }
  const json* diff_ids = Field(*rootfs, "diff_ids");
  if (diff_ids == nullptr || !diff_ids->is_array()) {
    return InvalidArgument(what + ".rootfs.diff_ids: missing or not an array");
  }
  if (diff_ids->size() != layer_count) {
    return InvalidArgument(what + ".rootfs.diff_ids: " + std::to_string(diff_ids->size()) +
                           " entries, but the manifest has " + std::to_string(layer_count) +
                           " layers");
  }
  std::vector<Digest> out;
  for (size_t i = 0; i < diff_ids->size(); ++i) {
    std::string here = what + ".rootfs.diff_ids[" + std::to_string(i) + "]";
    if (!(*diff_ids)[i].is_string()) return InvalidArgument(here + ": expected a string");
    auto d = Digest::Parse((*diff_ids)[i].get<std::string>());
    if (!d.ok()) return d.status().WithContext(here);
    out.push_back(*d);
  }
  return out;
}

// An uncompressed layer's digest is its diff_id; anything else means the
// config describes a different filesystem than the manifest delivers.
// (Compressed layers' diff_ids are checked by the executor as it unpacks.)
Status CheckUncompressedDiffIds(const std::vector<Descriptor>& layers,
                                const std::vector<Digest>& diff_ids, const std::string& what) {
  for (size_t i = 0; i < layers.size(); ++i) {
    auto compression = LayerCompressionOf(layers[i].media_type);
    if (!compression.ok()) return compression.status();
    if (*compression == LayerCompression::kNone && layers[i].digest != diff_ids[i]) {
      return DataLoss(what + ": layer " + std::to_string(i) + " is uncompressed with digest " +
                      layers[i].digest.str() + ", but config rootfs.diff_ids[" + std::to_string(i) +
                      "] says " + diff_ids[i].str());
    }
  }
  return Status::Ok();
}

StatusOr<uint64_t> TotalSize(const Descriptor& manifest, const Descriptor& config,
                             const std::vector<Descriptor>& layers, uint64_t limit,
                             const std::string& what) {
  uint64_t total = manifest.size + config.size;
  std::set<Digest> seen;
  for (const Descriptor& l : layers) {
    if (!seen.insert(l.digest).second) continue;
    if (l.size > limit || total + l.size > limit) {
      return InvalidArgument(what + ": image is larger than the limit of " + std::to_string(limit) +
                             " bytes (layer " + l.digest.str() + " is " + std::to_string(l.size) +
                             " bytes)");
    }
    total += l.size;
  }
  if (total > limit) {
    return InvalidArgument(what + ": image is " + std::to_string(total) +
                           " bytes, larger than the limit of " + std::to_string(limit));
  }
  return total;
}

std::vector<Descriptor> DistinctLayers(const std::vector<Descriptor>& layers) {
  std::vector<Descriptor> out;
  std::set<Digest> seen;
  for (const Descriptor& l : layers) {
    if (seen.insert(l.digest).second) out.push_back(l);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Streams

Status SizeMismatch(const std::string& blob, const std::string& role, uint64_t declared,
                    uint64_t actual) {
  return DataLoss(blob + " (" + role + "): size mismatch: descriptor says " +
                  std::to_string(declared) + " bytes, blob has " + std::to_string(actual));
}

Status DigestMismatch(const std::string& blob, const std::string& role, const Digest& declared,
                      const Digest& actual) {
  return DataLoss(blob + " (" + role + "): digest mismatch: descriptor says " + declared.str() +
                  ", content hashes to " + actual.str());
}

// Passes bytes through and, at end of stream, fails unless they were exactly
// the descriptor's size and digest.
class VerifyingSource : public ByteSource {
 public:
  VerifyingSource(Descriptor expected, ByteSource& inner, std::string what)
      : expected_(std::move(expected)), inner_(inner), what_(std::move(what)) {}

  StatusOr<size_t> Read(std::span<uint8_t> buf) override {
    if (done_) return size_t{0};
    ASSIGN_OR_RETURN(size_t n, inner_.Read(buf));
    if (n > 0) {
      total_ += n;
      if (total_ > expected_.size) {
        return SizeMismatch(what_, "changed since it was read", expected_.size, total_);
      }
      hasher_.Update(std::span<const uint8_t>(buf.data(), n));
      return n;
    }
    done_ = true;
    if (total_ != expected_.size) {
      return SizeMismatch(what_, "changed since it was read", expected_.size, total_);
    }
    Digest actual = Digest::FromSha256(hasher_.Finish());
    if (actual != expected_.digest) {
      return DigestMismatch(what_, "changed since it was read", expected_.digest, actual);
    }
    return size_t{0};
  }

 private:
  Descriptor expected_;
  ByteSource& inner_;
  std::string what_;
  crypto::Sha256Hasher hasher_;
  uint64_t total_ = 0;
  bool done_ = false;
};

constexpr size_t kHeadBytes = 8;  // enough to recognise gzip and zstd

// Hashes a source to its end. Keeps all bytes in *content if it is non-null
// (the caller bounds the size beforehand) and the first kHeadBytes in *head.
StatusOr<Digest> HashSource(ByteSource& source, uint64_t* total, std::string* content,
                            std::string* head = nullptr) {
  crypto::Sha256Hasher hasher;
  std::vector<uint8_t> buf(kChunk);
  *total = 0;
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, source.Read(buf));
    if (n == 0) break;
    std::span<const uint8_t> chunk(buf.data(), n);
    hasher.Update(chunk);
    *total += n;
    const char* bytes = reinterpret_cast<const char*>(buf.data());
    if (content != nullptr) content->append(bytes, n);
    if (head != nullptr && head->size() < kHeadBytes) {
      head->append(bytes, std::min(n, kHeadBytes - head->size()));
    }
  }
  return Digest::FromSha256(hasher.Finish());
}

// Opens a regular file without following it into a FIFO or device.
StatusOr<UniqueFd> OpenRegular(const std::string& path, uint64_t* size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    if (errno == ENOENT) return NotFound(path + ": no such file");
    return ErrnoStatus(path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat " + path, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(path + ": not a regular file");
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

// ---------------------------------------------------------------------------
// OCI layouts, as a directory or inside an archive

// Access to an OCI image layout; every blob read is checked against its
// descriptor.
class LayoutReader {
 public:
  virtual ~LayoutReader() = default;
  virtual std::string TopName(const std::string& name) const = 0;
  virtual std::string BlobName(const Digest& digest) const = 0;
  // oci-layout, index.json: at most kMaxJsonBytes.
  virtual StatusOr<std::string> ReadTopFile(const std::string& name) const = 0;
  // Checks the blob's size and digest; returns its bytes when want_content
  // (then at most kMaxJsonBytes).
  virtual StatusOr<std::string> ReadVerifiedBlob(const Descriptor& d, const std::string& role,
                                                 bool want_content) const = 0;
};

Status JsonBlobTooLarge(const std::string& blob, const std::string& role, uint64_t size) {
  return InvalidArgument(blob + " (" + role + "): " + std::to_string(size) +
                         " bytes, larger than the limit of " + std::to_string(kMaxJsonBytes));
}

class DirLayoutReader : public LayoutReader {
 public:
  explicit DirLayoutReader(std::string root) : root_(std::move(root)) {}

  std::string TopName(const std::string& name) const override { return root_ + "/" + name; }
  std::string BlobName(const Digest& digest) const override {
    return root_ + "/blobs/sha256/" + std::string(digest.hex());
  }

  StatusOr<std::string> ReadTopFile(const std::string& name) const override {
    std::string path = TopName(name);
    uint64_t size = 0;
    auto fd = OpenRegular(path, &size);
    if (!fd.ok()) {
      if (fd.status().code() == StatusCode::kNotFound) {
        return NotFound(path + ": missing; not an OCI image layout");
      }
      return fd.status();
    }
    if (size > kMaxJsonBytes) return JsonBlobTooLarge(path, name, size);
    return ReadAll(fd->get(), kMaxJsonBytes, path);
  }

  StatusOr<std::string> ReadVerifiedBlob(const Descriptor& d, const std::string& role,
                                         bool want_content) const override {
    std::string path = BlobName(d.digest);
    uint64_t size = 0;
    auto fd = OpenRegular(path, &size);
    if (!fd.ok()) {
      if (fd.status().code() == StatusCode::kNotFound) {
        return NotFound(path + " (" + role + "): blob missing from the image");
      }
      return fd.status();
    }
    if (size != d.size) return SizeMismatch(path, role, d.size, size);
    if (want_content && size > kMaxJsonBytes) return JsonBlobTooLarge(path, role, size);
    FdSource source(fd->get(), path);
    std::string content;
    uint64_t total = 0;
    ASSIGN_OR_RETURN(Digest actual, HashSource(source, &total, want_content ? &content : nullptr));
    if (total != d.size) return SizeMismatch(path, role, d.size, total);
    if (actual != d.digest) return DigestMismatch(path, role, d.digest, actual);
    return content;
  }

 private:
  std::string root_;
};

// --- tar archives -----------------------------------------------------------

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

// Names inside the archive are relative paths; "./x" and "x" are the same
// member. Absolute names and ".." components are rejected outright: an
// archive that carries them was made to escape wherever it is unpacked.
StatusOr<std::string> NormalizeMemberName(std::string_view raw, const std::string& archive_path) {
  if (raw.empty()) return InvalidArgument(archive_path + ": a member has an empty name");
  auto parts = SplitMemberPath(raw);
  if (!parts.ok()) {
    return InvalidArgument(archive_path + ": member " + QuoteName(raw) + ": " +
                           parts.status().message());
  }
  std::string out;
  for (const std::string& part : *parts) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

// Resolves a symlink's target against the directory holding the link,
// lexically; the result must stay inside the archive.
StatusOr<std::string> ResolveSymlinkTarget(const std::string& link_name, std::string_view target,
                                           const std::string& archive_path) {
  std::string where =
      archive_path + ": symlink " + QuoteName(link_name) + " -> " + QuoteName(target);
  if (target.empty()) return InvalidArgument(where + ": empty target");
  if (target.front() == '/') return InvalidArgument(where + ": absolute target not allowed");
  std::vector<std::string> parts;
  size_t dir_end = link_name.rfind('/');
  std::string joined =
      (dir_end == std::string::npos ? std::string() : link_name.substr(0, dir_end + 1)) +
      std::string(target);
  size_t pos = 0;
  while (pos <= joined.size()) {
    size_t slash = joined.find('/', pos);
    if (slash == std::string::npos) slash = joined.size();
    std::string part = joined.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return InvalidArgument(where + ": target escapes the archive");
      parts.pop_back();
      continue;
    }
    parts.push_back(std::move(part));
  }
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "/") + p;
  if (out.empty()) return InvalidArgument(where + ": target is the archive root");
  return out;
}

// A tar file read front to back through libarchive (tar only; gzip or zstd
// compression of the whole file is accepted).
class TarReader {
 public:
  Status Open(const std::string& path) {
    path_ = path;
    uint64_t size = 0;
    ASSIGN_OR_RETURN(fd_, OpenRegular(path, &size));
    a_.reset(archive_read_new());
    if (!a_) return Internal("archive_read_new failed");
    // Only built-in decoders: a _WARN here means libarchive would fork an
    // external program, which we do not want.
    if (archive_read_support_format_tar(a_.get()) != ARCHIVE_OK ||
        archive_read_support_filter_gzip(a_.get()) != ARCHIVE_OK ||
        archive_read_support_filter_zstd(a_.get()) != ARCHIVE_OK) {
      return Internal(path + ": libarchive lacks built-in tar/gzip/zstd support: " + Error());
    }
    if (archive_read_open_fd(a_.get(), fd_.get(), kChunk) != ARCHIVE_OK) {
      return InvalidArgument(path + ": not a readable tar archive: " + Error());
    }
    return Status::Ok();
  }

  // Advances to the next member; false at the end of the archive.
  StatusOr<bool> Next(archive_entry** entry) {
    int r = archive_read_next_header(a_.get(), entry);
    if (r == ARCHIVE_EOF) return false;
    if (r == ARCHIVE_OK || r == ARCHIVE_WARN) return true;
    return InvalidArgument(path_ + ": bad tar archive: " + Error());
  }

  StatusOr<size_t> ReadData(std::span<uint8_t> buf, const std::string& member) {
    la_ssize_t n = archive_read_data(a_.get(), buf.data(), buf.size());
    if (n < 0) return InvalidArgument(path_ + ":" + member + ": read failed: " + Error());
    return static_cast<size_t>(n);
  }

  std::string Error() const {
    const char* e = archive_error_string(a_.get());
    return e != nullptr ? e : "unknown libarchive error";
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  UniqueFd fd_;
  ArchivePtr a_;
};

// The data of the current tar member.
class MemberSource : public ByteSource {
 public:
  MemberSource(TarReader& reader, std::string member)
      : reader_(reader), member_(std::move(member)) {}
  StatusOr<size_t> Read(std::span<uint8_t> buf) override { return reader_.ReadData(buf, member_); }

 private:
  TarReader& reader_;
  std::string member_;
};

struct ArchiveMember {
  enum class Type { kFile, kSymlink, kHardlink, kOther };
  Type type = Type::kOther;
  std::string link;  // normalized target of a link
  uint64_t size = 0;
  Digest digest;
  std::optional<std::string> content;  // kept for small JSON-looking files
  std::string head;                    // first bytes, to sniff compression
};

// "image.tar:blobs/sha256/ab.. (layer 1)": where an archive error is.
std::string MemberLabel(std::string_view archive_path, std::string_view member,
                        std::string_view role) {
  std::string s(archive_path);
  s.append(":").append(member).append(" (").append(role).append(")");
  return s;
}

bool LooksLikeJson(std::string_view s) {
  size_t i = s.find_first_not_of(" \t\r\n");
  return i != std::string_view::npos && (s[i] == '{' || s[i] == '[');
}

// Everything learnt from one pass over an archive: each regular member's
// size and digest, links, and small JSON members' bytes.
class ArchiveScan {
 public:
  static StatusOr<ArchiveScan> Read(const std::string& path) {
    ArchiveScan scan;
    scan.path_ = path;
    TarReader reader;
    RETURN_IF_ERROR(reader.Open(path));
    uint64_t buffered = 0;
    archive_entry* entry = nullptr;
    for (size_t count = 0;; ++count) {
      ASSIGN_OR_RETURN(bool more, reader.Next(&entry));
      if (!more) break;
      if (count >= kMaxArchiveMembers) {
        return InvalidArgument(path + ": more than " + std::to_string(kMaxArchiveMembers) +
                               " members");
      }
      const char* raw = archive_entry_pathname(entry);
      if (raw == nullptr) return InvalidArgument(path + ": a member name is not readable");
      ASSIGN_OR_RETURN(std::string name, NormalizeMemberName(raw, path));
      ArchiveMember m;
      const char* hardlink = archive_entry_hardlink(entry);
      auto filetype = archive_entry_filetype(entry);
      if (hardlink != nullptr) {
        m.type = ArchiveMember::Type::kHardlink;
        ASSIGN_OR_RETURN(m.link, NormalizeMemberName(hardlink, path));
      } else if (filetype == AE_IFLNK) {
        m.type = ArchiveMember::Type::kSymlink;
        const char* target = archive_entry_symlink(entry);
        ASSIGN_OR_RETURN(m.link, ResolveSymlinkTarget(name, target ? target : "", path));
      } else if (filetype == AE_IFDIR) {
        continue;
      } else if (filetype == AE_IFREG) {
        m.type = ArchiveMember::Type::kFile;
      }
      if (name.empty()) continue;  // "./" as a non-directory: nothing to name
      if (scan.members_.count(name) != 0) {
        // Extractors keep the last copy, we would have checked the first.
        return InvalidArgument(path + ": member " + QuoteName(name) + " appears more than once");
      }
      if (m.type == ArchiveMember::Type::kFile) {
        bool small = archive_entry_size_is_set(entry) != 0 && archive_entry_size(entry) >= 0 &&
                     static_cast<uint64_t>(archive_entry_size(entry)) <= kMaxJsonBytes;
        MemberSource source(reader, name);
        std::string content;
        ASSIGN_OR_RETURN(m.digest,
                         HashSource(source, &m.size, small ? &content : nullptr, &m.head));
        if (small) {
          bool known = name == "oci-layout" || name == "index.json" || name == "manifest.json";
          if (m.size <= kMaxJsonBytes && (known || LooksLikeJson(content))) {
            if (buffered + m.size <= kMaxBufferedJson) {
              buffered += m.size;
              m.content = std::move(content);
            } else {
              scan.json_budget_exhausted_ = true;
            }
          }
        }
      }
      scan.members_.emplace(std::move(name), std::move(m));
    }
    return scan;
  }

  const std::string& path() const { return path_; }
  bool Has(const std::string& name) const { return members_.count(name) != 0; }

  // Follows links to the regular member holding name's bytes.
  StatusOr<std::pair<std::string, const ArchiveMember*>> Resolve(std::string_view name,
                                                                 const std::string& role) const {
    ASSIGN_OR_RETURN(std::string current, NormalizeMemberName(name, path_));
    for (int hops = 0; hops <= kMaxLinkHops; ++hops) {
      auto it = members_.find(current);
      if (it == members_.end()) {
        return NotFound(path_ + ":" + std::string(name) + " (" + role +
                        "): missing from the archive" +
                        (current != name ? " (via link to " + current + ")" : ""));
      }
      const ArchiveMember& m = it->second;
      switch (m.type) {
        case ArchiveMember::Type::kFile: return std::make_pair(current, &m);
        case ArchiveMember::Type::kSymlink:
        case ArchiveMember::Type::kHardlink: current = m.link; break;
        case ArchiveMember::Type::kOther:
          return InvalidArgument(MemberLabel(path_, current, role).append(": not a regular file"));
      }
    }
    return InvalidArgument(path_ + ":" + std::string(name) + " (" + role +
                           "): too many levels of links");
  }

  // The bytes of a small JSON member.
  StatusOr<std::string_view> JsonContent(std::string_view name, const std::string& role) const {
    ASSIGN_OR_RETURN(auto resolved, Resolve(name, role));
    const ArchiveMember& m = *resolved.second;
    std::string where = path_ + ":" + std::string(name);
    if (m.content) return std::string_view(*m.content);
    if (m.size > kMaxJsonBytes) return JsonBlobTooLarge(where, role, m.size);
    if (json_budget_exhausted_) {
      return InvalidArgument(where + " (" + role + "): the archive holds more than " +
                             std::to_string(kMaxBufferedJson) + " bytes of small JSON files");
    }
    return InvalidArgument(where + " (" + role + "): not a JSON document");
  }

 private:
  std::string path_;
  std::map<std::string, ArchiveMember> members_;
  bool json_budget_exhausted_ = false;
};

class ArchiveLayoutReader : public LayoutReader {
 public:
  explicit ArchiveLayoutReader(const ArchiveScan& scan) : scan_(scan) {}

  std::string TopName(const std::string& name) const override { return scan_.path() + ":" + name; }
  std::string BlobName(const Digest& digest) const override {
    return scan_.path() + ":" + MemberName(digest);
  }
  static std::string MemberName(const Digest& digest) {
    return "blobs/sha256/" + std::string(digest.hex());
  }

  StatusOr<std::string> ReadTopFile(const std::string& name) const override {
    if (!scan_.Has(name)) return NotFound(TopName(name) + ": missing; not an OCI image layout");
    ASSIGN_OR_RETURN(std::string_view content, scan_.JsonContent(name, name));
    return std::string(content);
  }

  StatusOr<std::string> ReadVerifiedBlob(const Descriptor& d, const std::string& role,
                                         bool want_content) const override {
    std::string blob = BlobName(d.digest);
    std::string member = MemberName(d.digest);
    if (!scan_.Has(member)) return NotFound(blob + " (" + role + "): blob missing from the image");
    ASSIGN_OR_RETURN(auto resolved, scan_.Resolve(member, role));
    const ArchiveMember& m = *resolved.second;
    if (m.size != d.size) return SizeMismatch(blob, role, d.size, m.size);
    if (m.digest != d.digest) return DigestMismatch(blob, role, d.digest, m.digest);
    if (!want_content) return std::string();
    ASSIGN_OR_RETURN(std::string_view content, scan_.JsonContent(member, role));
    return std::string(content);
  }

 private:
  const ArchiveScan& scan_;
};

struct Candidate {
  Descriptor descriptor;
  std::optional<Platform> platform;
  std::vector<std::string> ref_names;
  std::string where;  // "index.json.manifests[1]"

  std::string Describe() const {
    std::string s = (platform ? platform->ToString() : "(no platform)") + " " +
                    descriptor.digest.str() + " at " + where;
    if (!ref_names.empty()) {
      s += " named";
      for (const std::string& r : ref_names) s += " " + QuoteName(r);
    }
    return s;
  }
};

Status CollectCandidates(const LayoutReader& reader, const std::vector<IndexEntry>& entries,
                         const std::string& where, int depth,
                         const std::vector<std::string>& inherited_refs,
                         std::vector<Candidate>& out) {
  for (size_t i = 0; i < entries.size(); ++i) {
    const IndexEntry& e = entries[i];
    std::string here = where + ".manifests[" + std::to_string(i) + "]";
    std::vector<std::string> refs = inherited_refs;
    refs.insert(refs.end(), e.ref_names.begin(), e.ref_names.end());
    if (IsIndexType(e.descriptor.media_type)) {
      if (depth >= kMaxIndexDepth) {
        return InvalidArgument(here + ": indexes nested more than " +
                               std::to_string(kMaxIndexDepth) + " deep");
      }
      ASSIGN_OR_RETURN(std::string text, reader.ReadVerifiedBlob(e.descriptor, "index", true));
      std::string name = reader.BlobName(e.descriptor.digest);
      ASSIGN_OR_RETURN(auto nested, ParseIndex(text, name, e.descriptor.media_type));
      RETURN_IF_ERROR(CollectCandidates(reader, nested, name, depth + 1, refs, out));
    } else {
      out.push_back({e.descriptor, e.platform, std::move(refs), here});
    }
  }
  return Status::Ok();
}

std::string DescribeAll(const std::vector<const Candidate*>& candidates) {
  std::string s;
  for (const Candidate* c : candidates) s += (s.empty() ? "" : "; ") + c->Describe();
  return s.empty() ? "nothing" : s;
}

// Picks the one linux/amd64 image manifest. Candidates without a platform
// are considered only when no candidate declares linux/amd64; the config
// check then decides. Several entries for the same digest are one image.
StatusOr<Candidate> ChooseCandidate(const std::vector<Candidate>& all, const std::string& what) {
  std::vector<const Candidate*> amd64, bare, everything;
  for (const Candidate& c : all) {
    everything.push_back(&c);
    if (!c.platform) {
      bare.push_back(&c);
    } else if (c.platform->IsLinuxAmd64()) {
      amd64.push_back(&c);
    }
  }
  const std::vector<const Candidate*>& pool = amd64.empty() ? bare : amd64;
  if (pool.empty()) {
    return InvalidArgument(what +
                           ": no linux/amd64 image; the index lists: " + DescribeAll(everything));
  }
  std::set<Digest> digests;
  for (const Candidate* c : pool) digests.insert(c->descriptor.digest);
  if (digests.size() > 1) {
    return InvalidArgument(
        what + ": several candidate linux/amd64 images, choose one by name: " + DescribeAll(pool));
  }
  Candidate chosen = *pool.front();
  for (size_t i = 1; i < pool.size(); ++i) {
    for (const std::string& r : pool[i]->ref_names) {
      if (std::find(chosen.ref_names.begin(), chosen.ref_names.end(), r) ==
          chosen.ref_names.end()) {
        chosen.ref_names.push_back(r);
      }
    }
  }
  return chosen;
}

StatusOr<LocalImage> ReadOci(const LayoutReader& reader, ImageFormat format,
                             const std::string& path, const ReadOptions& options) {
  ASSIGN_OR_RETURN(std::string layout_text, reader.ReadTopFile("oci-layout"));
  std::string layout_name = reader.TopName("oci-layout");
  ASSIGN_OR_RETURN(json layout, ParseJson(layout_text, layout_name));
  if (!layout.is_object()) return InvalidArgument(layout_name + ": expected a JSON object");
  ASSIGN_OR_RETURN(std::string version, RequireString(layout, "imageLayoutVersion", layout_name));
  if (version != "1.0.0") {
    return InvalidArgument(layout_name + ".imageLayoutVersion: " + QuoteName(version) +
                           ", expected '1.0.0'");
  }

  std::string index_name = reader.TopName("index.json");
  ASSIGN_OR_RETURN(std::string index_text, reader.ReadTopFile("index.json"));
  ASSIGN_OR_RETURN(std::vector<IndexEntry> entries, ParseIndex(index_text, index_name, ""));
  if (!options.ref_name.empty()) {
    std::vector<IndexEntry> named;
    std::string available;
    for (const IndexEntry& e : entries) {
      for (const std::string& r : e.ref_names)
        available += (available.empty() ? "" : ", ") + QuoteName(r);
      if (std::find(e.ref_names.begin(), e.ref_names.end(), options.ref_name) !=
          e.ref_names.end()) {
        named.push_back(e);
      }
    }
    if (named.empty()) {
      return NotFound(index_name + ": no image named " + QuoteName(options.ref_name) +
                      " (names: " + (available.empty() ? "none" : available) + ")");
    }
    entries = std::move(named);
  }
  std::vector<Candidate> candidates;
  RETURN_IF_ERROR(CollectCandidates(reader, entries, index_name, 0, {}, candidates));
  ASSIGN_OR_RETURN(Candidate chosen, ChooseCandidate(candidates, index_name));

  LocalImage image;
  image.format = format;
  image.source_path = path;
  image.repo_tags = chosen.ref_names;
  image.manifest = chosen.descriptor;
  if (image.manifest.size > kMaxJsonBytes) {
    return JsonBlobTooLarge(reader.BlobName(image.manifest.digest), "manifest",
                            image.manifest.size);
  }
  ASSIGN_OR_RETURN(image.manifest_json, reader.ReadVerifiedBlob(image.manifest, "manifest", true));
  std::string manifest_name = reader.BlobName(image.manifest.digest);
  ASSIGN_OR_RETURN(ParsedManifest parsed, ParseImageManifest(image.manifest_json, manifest_name,
                                                             chosen.descriptor.media_type));
  image.manifest.media_type = parsed.media_type;
  image.config = parsed.config;
  image.layers = parsed.layers;
  // Before hashing gigabytes, make sure the declared sizes are acceptable.
  ASSIGN_OR_RETURN(image.total_size, TotalSize(image.manifest, image.config, image.layers,
                                               options.max_image_bytes, manifest_name));

  ASSIGN_OR_RETURN(image.config_json, reader.ReadVerifiedBlob(image.config, "config", true));
  ASSIGN_OR_RETURN(
      std::vector<Digest> diff_ids,
      ValidateConfig(image.config_json, image.layers.size(), reader.BlobName(image.config.digest)));
  for (size_t i = 0; i < image.layers.size(); ++i) {
    auto verified = reader.ReadVerifiedBlob(image.layers[i], "layer " + std::to_string(i), false);
    if (!verified.ok()) return verified.status();
  }
  RETURN_IF_ERROR(CheckUncompressedDiffIds(image.layers, diff_ids, manifest_name));
  return image;
}

// --- docker-archive ----------------------------------------------------------

// A digest a member's name claims for its content: "blobs/sha256/<hex>",
// "<hex>.json" (a docker config: the image id is its digest) or
// "<hex>.tar" (skopeo's layer names).
std::optional<std::string> HexClaimedByName(std::string_view name) {
  constexpr std::string_view kBlobs = "blobs/sha256/";
  if (name.substr(0, kBlobs.size()) == kBlobs && IsLowerHex64(name.substr(kBlobs.size()))) {
    return std::string(name.substr(kBlobs.size()));
  }
  size_t slash = name.rfind('/');
  std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  for (std::string_view ext : {std::string_view(".json"), std::string_view(".tar")}) {
    if (base.size() == 64 + ext.size() && base.substr(64) == ext &&
        IsLowerHex64(base.substr(0, 64))) {
      return std::string(base.substr(0, 64));
    }
  }
  return std::nullopt;
}

Status CheckNameClaims(const std::string& archive_path, const std::string& role,
                       const std::vector<std::string>& names, const Digest& actual) {
  for (const std::string& name : names) {
    std::optional<std::string> hex = HexClaimedByName(name);
    if (hex && *hex != actual.hex()) {
      std::string m = MemberLabel(archive_path, name, role);
      m.append(": digest mismatch: its name says sha256:").append(*hex);
      m.append(", content hashes to ").append(actual.str());
      return DataLoss(std::move(m));
    }
  }
  return Status::Ok();
}

LayerCompression SniffCompression(std::string_view head) {
  if (head.size() >= 2 && head[0] == '\x1f' && head[1] == '\x8b') return LayerCompression::kGzip;
  if (head.size() >= 4 && head.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) {
    return LayerCompression::kZstd;
  }
  return LayerCompression::kNone;
}

const char* OciLayerType(LayerCompression c) {
  switch (c) {
    case LayerCompression::kNone: return kOciLayerTar;
    case LayerCompression::kGzip: return kOciLayerTarGzip;
    case LayerCompression::kZstd: return kOciLayerTarZstd;
  }
  return kOciLayerTar;
}

// The OCI manifest for a docker-archive image. nlohmann::json keeps object
// keys sorted and dump() without indentation is compact, so the bytes (and
// the digest) depend only on the config and layers.
std::string ConvertedManifest(const Descriptor& config, const std::vector<Descriptor>& layers) {
  auto descriptor = [](const Descriptor& d) {
    json j = json::object();
    j["mediaType"] = d.media_type;
    j["digest"] = d.digest.str();
    j["size"] = d.size;
    return j;
  };
  json m = json::object();
  m["schemaVersion"] = 2;
  m["mediaType"] = kOciManifest;
  m["config"] = descriptor(config);
  m["layers"] = json::array();
  for (const Descriptor& l : layers) m["layers"].push_back(descriptor(l));
  return m.dump();
}

StatusOr<LocalImage> ReadDocker(const ArchiveScan& scan, const ReadOptions& options,
                                BlobLocations& locations) {
  const std::string label = scan.path() + ":manifest.json";
  ASSIGN_OR_RETURN(std::string_view text, scan.JsonContent("manifest.json", "docker manifest"));
  ASSIGN_OR_RETURN(json list, ParseJson(text, label));
  if (!list.is_array() || list.empty())
    return InvalidArgument(label + ": expected a non-empty array");

  std::vector<size_t> picked;
  std::string listing;
  std::vector<std::vector<std::string>> tags(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    std::string here = label + "[" + std::to_string(i) + "]";
    if (!list[i].is_object()) return InvalidArgument(here + ": expected an object");
    const json* repo_tags = Field(list[i], "RepoTags");
    if (repo_tags != nullptr && !repo_tags->is_null()) {
      if (!repo_tags->is_array()) return InvalidArgument(here + ".RepoTags: expected an array");
      for (const json& t : *repo_tags) {
        if (!t.is_string()) return InvalidArgument(here + ".RepoTags: expected strings");
        tags[i].push_back(t.get<std::string>());
      }
    }
    listing += (listing.empty() ? "" : "; ") + std::string("[") + std::to_string(i) + "]";
    for (const std::string& t : tags[i]) listing += " " + QuoteName(t);
    if (options.ref_name.empty() ||
        std::find(tags[i].begin(), tags[i].end(), options.ref_name) != tags[i].end()) {
      picked.push_back(i);
    }
  }
  if (picked.empty()) {
    return NotFound(label + ": no image tagged " + QuoteName(options.ref_name) +
                    " (images: " + listing + ")");
  }
  if (picked.size() > 1) {
    return InvalidArgument(label + ": holds " + std::to_string(picked.size()) +
                           " images, choose one by tag: " + listing);
  }
  const json& item = list[picked.front()];
  const std::string what = label + "[" + std::to_string(picked.front()) + "]";
  if (const json* sources = Field(item, "LayerSources");
      sources != nullptr && !sources->is_null() && !sources->empty()) {
    return InvalidArgument(what + ".LayerSources: foreign layers are not supported");
  }
  ASSIGN_OR_RETURN(std::string config_name, RequireString(item, "Config", what));
  const json* layer_names = Field(item, "Layers");
  if (layer_names == nullptr || !layer_names->is_array()) {
    return InvalidArgument(what + ".Layers: missing or not an array");
  }
  if (layer_names->empty()) return InvalidArgument(what + ".Layers: empty; an image needs a layer");
  if (layer_names->size() > kMaxLayers) {
    return InvalidArgument(what + ".Layers: more than " + std::to_string(kMaxLayers) + " layers");
  }

  LocalImage image;
  image.format = ImageFormat::kDockerArchive;
  image.source_path = scan.path();
  image.repo_tags = tags[picked.front()];

  // Config: its digest is computed here; a name that claims one must agree.
  ASSIGN_OR_RETURN(auto config_member, scan.Resolve(config_name, "config"));
  ASSIGN_OR_RETURN(std::string_view config_text, scan.JsonContent(config_name, "config"));
  const Digest config_digest = config_member.second->digest;
  RETURN_IF_ERROR(
      CheckNameClaims(scan.path(), "config", {config_name, config_member.first}, config_digest));
  image.config = {kOciConfig, config_digest, config_member.second->size};
  image.config_json = std::string(config_text);
  ASSIGN_OR_RETURN(
      std::vector<Digest> diff_ids,
      ValidateConfig(image.config_json, layer_names->size(), scan.path() + ":" + config_name));

  for (size_t i = 0; i < layer_names->size(); ++i) {
    std::string here = what + ".Layers[" + std::to_string(i) + "]";
    if (!(*layer_names)[i].is_string()) return InvalidArgument(here + ": expected a string");
    std::string name = (*layer_names)[i].get<std::string>();
    std::string role = "layer " + std::to_string(i);
    ASSIGN_OR_RETURN(auto member, scan.Resolve(name, role));
    const ArchiveMember& m = *member.second;
    RETURN_IF_ERROR(CheckNameClaims(scan.path(), role, {name, member.first}, m.digest));
    LayerCompression compression = SniffCompression(m.head);
    // docker save writes uncompressed layers, whose digest is the diff_id.
    if (compression == LayerCompression::kNone && m.digest != diff_ids[i]) {
      std::string msg = MemberLabel(scan.path(), name, role);
      msg.append(": digest mismatch: config rootfs.diff_ids[").append(std::to_string(i));
      msg.append("] says ").append(diff_ids[i].str());
      msg.append(", content hashes to ").append(m.digest.str());
      return DataLoss(std::move(msg));
    }
    Descriptor d{OciLayerType(compression), m.digest, m.size};
    locations.layer_members.emplace(member.first, d);
    image.layers.push_back(std::move(d));
  }

  image.manifest_json = ConvertedManifest(image.config, image.layers);
  image.manifest = {kOciManifest, Digest::Of(image.manifest_json), image.manifest_json.size()};
  ASSIGN_OR_RETURN(image.total_size, TotalSize(image.manifest, image.config, image.layers,
                                               options.max_image_bytes, scan.path()));
  return image;
}

StatusOr<LocalImage> ReadArchive(const std::string& path, const ReadOptions& options,
                                 BlobLocations& locations) {
  ASSIGN_OR_RETURN(ArchiveScan scan, ArchiveScan::Read(path));
  bool has_layout = scan.Has("oci-layout");
  bool has_docker = scan.Has("manifest.json");
  ImageFormat format;
  if (options.format) {
    format = *options.format;
    if (format == ImageFormat::kOciLayout) {
      return InvalidArgument(path + ": is a file; an OCI layout is a directory");
    }
  } else if (has_layout) {
    format = ImageFormat::kOciArchive;
  } else if (has_docker) {
    format = ImageFormat::kDockerArchive;
  } else {
    return InvalidArgument(path +
                           ": neither an oci-archive (no oci-layout member) nor a docker-archive "
                           "(no manifest.json member)");
  }
  if (format == ImageFormat::kDockerArchive) return ReadDocker(scan, options, locations);

  ArchiveLayoutReader reader(scan);
  ASSIGN_OR_RETURN(LocalImage image, ReadOci(reader, format, path, options));
  for (const Descriptor& l : image.layers) {
    ASSIGN_OR_RETURN(auto member, scan.Resolve(ArchiveLayoutReader::MemberName(l.digest), "layer"));
    locations.layer_members.emplace(member.first, l);
  }
  return image;
}

StatusOr<LocalImage> ReadLocalImageImpl(const std::string& path, const ReadOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return NotFound(path + ": no such file or directory");
    return ErrnoStatus(path, errno);
  }
  auto locations = std::make_shared<BlobLocations>();
  LocalImage image;
  if (S_ISDIR(st.st_mode)) {
    if (options.format && *options.format != ImageFormat::kOciLayout) {
      return InvalidArgument(path + ": is a directory; expected an archive file for " +
                             std::string(ImageFormatName(*options.format)));
    }
    ASSIGN_OR_RETURN(image, ReadOci(DirLayoutReader(path), ImageFormat::kOciLayout, path, options));
  } else if (S_ISREG(st.st_mode)) {
    ASSIGN_OR_RETURN(image, ReadArchive(path, options, *locations));
  } else {
    return InvalidArgument(path + ": neither a directory nor a regular file");
  }
  locations->format = image.format;
  locations->path = path;
  locations->manifest = image.manifest;
  locations->manifest_json = image.manifest_json;
  locations->config = image.config;
  locations->config_json = image.config_json;
  locations->layers = DistinctLayers(image.layers);
  BlobLocations::Attach(image, std::move(locations));
  return image;
}

}  // namespace

namespace internal {

Status BlobLocations::ForEach(const BlobVisitor& visit) const {
  {
    BufferSource source(config_json);
    VerifyingSource verifying(config, source, path + " config");
    RETURN_IF_ERROR(visit(config, verifying));
  }
  std::set<Digest> delivered{config.digest};
  if (format == ImageFormat::kOciLayout) {
    DirLayoutReader reader(path);
    for (const Descriptor& layer : layers) {
      if (!delivered.insert(layer.digest).second) continue;
      std::string blob = reader.BlobName(layer.digest);
      uint64_t size = 0;
      ASSIGN_OR_RETURN(UniqueFd fd, OpenRegular(blob, &size));
      FdSource source(fd.get(), blob);
      VerifyingSource verifying(layer, source, blob);
      RETURN_IF_ERROR(visit(layer, verifying));
    }
  } else {
    // One more pass over the archive, in archive order.
    TarReader reader;
    RETURN_IF_ERROR(reader.Open(path));
    archive_entry* entry = nullptr;
    for (;;) {
      ASSIGN_OR_RETURN(bool more, reader.Next(&entry));
      if (!more) break;
      if (archive_entry_filetype(entry) != AE_IFREG || archive_entry_hardlink(entry) != nullptr) {
        continue;
      }
      const char* raw = archive_entry_pathname(entry);
      if (raw == nullptr) continue;
      ASSIGN_OR_RETURN(std::string name, NormalizeMemberName(raw, path));
      auto it = layer_members.find(name);
      if (it == layer_members.end() || !delivered.insert(it->second.digest).second) continue;
      MemberSource source(reader, name);
      VerifyingSource verifying(it->second, source, path + ":" + name);
      RETURN_IF_ERROR(visit(it->second, verifying));
    }
  }
  for (const Descriptor& layer : layers) {
    if (delivered.count(layer.digest) == 0) {
      return DataLoss(path + ": layer " + layer.digest.str() +
                      " is no longer in the archive; did it change since it was read?");
    }
  }
  BufferSource source(manifest_json);
  VerifyingSource verifying(manifest, source, path + " manifest");
  return visit(manifest, verifying);
}

}  // namespace internal

std::string QuoteName(std::string_view s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 200; ++i) {
    char c = s[i];
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (s.size() > 200) out += "...";
  out += "'";
  return out;
}

StatusOr<std::vector<std::string>> SplitMemberPath(std::string_view raw) {
  if (!raw.empty() && raw.front() == '/') return InvalidArgument("absolute path not allowed");
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t slash = raw.find('/', pos);
    if (slash == std::string_view::npos) slash = raw.size();
    std::string_view part = raw.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return InvalidArgument("'..' path component not allowed");
    parts.emplace_back(part);
  }
  return parts;
}

std::string_view ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kOciLayout: return "oci-layout";
    case ImageFormat::kOciArchive: return "oci-archive";
    case ImageFormat::kDockerArchive: return "docker-archive";
  }
  return "unknown";
}

StatusOr<LayerCompression> LayerCompressionOf(std::string_view media_type) {
  if (media_type == kOciLayerTar || media_type == kDockerLayerTar) return LayerCompression::kNone;
  if (media_type == kOciLayerTarGzip || media_type == kDockerLayerTarGzip) {
    return LayerCompression::kGzip;
  }
  if (media_type == kOciLayerTarZstd) return LayerCompression::kZstd;
  return InvalidArgument(QuoteName(media_type) + " is not a supported layer type (expected " +
                         kOciLayerTar + ", " + kOciLayerTarGzip + ", " + kOciLayerTarZstd + ", " +
                         kDockerLayerTar + " or " + kDockerLayerTarGzip + ")");
}

Status LocalImage::ForEachBlob(const BlobVisitor& visit) const {
  if (!locations_) return FailedPrecondition("image: not read by ReadLocalImage");
  try {
    return locations_->ForEach(visit);
  } catch (const json::exception& e) {
    return Internal(std::string("image: unexpected JSON error: ") + e.what());
  }
}

StatusOr<LocalImage> ReadLocalImage(const std::string& path, const ReadOptions& options) {
  // The one boundary where a library exception becomes a Status.
  try {
    return ReadLocalImageImpl(path, options);
  } catch (const json::exception& e) {
    return Internal(path + ": unexpected JSON error: " + e.what());
  }
}

StatusOr<LocalImage> ReadLocalImage(const std::string& path) {
  return ReadLocalImage(path, ReadOptions{});
}

StatusOr<ManifestInfo> ValidateStoredManifest(std::string_view manifest_json,
                                              const BlobStore& store, uint64_t max_image_bytes) {
  return ValidateStoredManifest(manifest_json, store, max_image_bytes, nullptr);
}

StatusOr<std::vector<Digest>> ManifestBlobDigests(std::string_view manifest_json) {
  try {
    const std::string what = "manifest " + Digest::Of(manifest_json).str();
    ASSIGN_OR_RETURN(ParsedManifest parsed, ParseImageManifest(manifest_json, what, ""));
    std::vector<Digest> out{parsed.config.digest};
    for (const Descriptor& d : parsed.layers) out.push_back(d.digest);
    return out;
  } catch (const json::exception& e) {
    return Internal(std::string("manifest: unexpected JSON error: ") + e.what());
  }
}

StatusOr<ManifestInfo> ValidateStoredManifest(std::string_view manifest_json,
                                              const BlobStore& store, uint64_t max_image_bytes,
                                              const BlobVisible& visible) {
  try {
    ManifestInfo info;
    info.digest = Digest::Of(manifest_json);
    const std::string what = "manifest " + info.digest.str();
    ASSIGN_OR_RETURN(ParsedManifest parsed, ParseImageManifest(manifest_json, what, ""));
    info.media_type = parsed.media_type;
    info.config = parsed.config;
    info.layers = parsed.layers;
    Descriptor self{info.media_type, info.digest, manifest_json.size()};
    ASSIGN_OR_RETURN(info.total_size,
                     TotalSize(self, info.config, info.layers, max_image_bytes, what));
    auto check = [&](const Descriptor& d, const std::string& role) -> Status {
      auto size = (visible && !visible(d.digest)) ? StatusOr<uint64_t>(NotFound("not visible"))
                                                  : store.Size(d.digest);
      if (!size.ok()) {
        if (size.status().code() == StatusCode::kNotFound) {
          return NotFound(what + ": " + role + " " + d.digest.str() + ": blob not in the store");
        }
        return size.status().WithContext(what + ": " + role);
      }
      if (*size != d.size) {
        return DataLoss(what + ": " + role + " " + d.digest.str() +
                        ": size mismatch: manifest says " + std::to_string(d.size) +
                        " bytes, stored blob has " + std::to_string(*size));
      }
      return Status::Ok();
    };
    RETURN_IF_ERROR(check(info.config, "config"));
    for (size_t i = 0; i < info.layers.size(); ++i) {
      RETURN_IF_ERROR(check(info.layers[i], "layer " + std::to_string(i)));
    }
    ASSIGN_OR_RETURN(UniqueFd config_fd, store.Open(info.config.digest));
    ASSIGN_OR_RETURN(std::string config_text,
                     ReadAll(config_fd.get(), kMaxJsonBytes, store.Path(info.config.digest)));
    ASSIGN_OR_RETURN(std::vector<Digest> diff_ids,
                     ValidateConfig(config_text, info.layers.size(),
                                    what + ": config " + info.config.digest.str()));
    RETURN_IF_ERROR(CheckUncompressedDiffIds(info.layers, diff_ids, what));
    return info;
  } catch (const json::exception& e) {
    return Internal(std::string("manifest: unexpected JSON error: ") + e.what());
  }
}

}  // namespace cce::image
