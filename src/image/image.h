// image: consumer container images. Reads an image from local files (OCI
// layout directory, oci-archive, docker-archive) and checks every blob's
// digest and size on the client before `cce image push`; checks an uploaded
// manifest against the plane's BlobStore on the server. docs/images.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "image/blob_store.h"

namespace cce::image {

// Media types we accept. Anything else in a manifest or index is an error.
inline constexpr char kOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kOciIndex[] = "application/vnd.oci.image.index.v1+json";
inline constexpr char kDockerManifest[] = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr char kDockerManifestList[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kOciConfig[] = "application/vnd.oci.image.config.v1+json";
inline constexpr char kDockerConfig[] = "application/vnd.docker.container.image.v1+json";
inline constexpr char kOciLayerTar[] = "application/vnd.oci.image.layer.v1.tar";
inline constexpr char kOciLayerTarGzip[] = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr char kOciLayerTarZstd[] = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr char kDockerLayerTar[] = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr char kDockerLayerTarGzip[] = "application/vnd.docker.image.rootfs.diff.tar.gzip";

inline constexpr uint64_t kMaxJsonBytes = 4ull << 20;          // manifest, index, config
inline constexpr uint64_t kDefaultMaxImageBytes = 8ull << 30;  // manifest + config + layers

enum class ImageFormat { kOciLayout, kOciArchive, kDockerArchive };
std::string_view ImageFormatName(ImageFormat format);  // "oci-layout", ...

// A name from an image (a path in a layer, a tag, a media type) made safe
// for an error message: in single quotes, at most 200 bytes, bytes outside
// printable ASCII as '?'.
std::string QuoteName(std::string_view s);

// The components of a path inside an archive or layer, "." and empty ones
// dropped ("./a//b" -> {"a", "b"}). An absolute path or a ".." component is
// kInvalidArgument ("absolute path not allowed" / "'..' path component not
// allowed"; callers add where): whoever made it meant to escape.
StatusOr<std::vector<std::string>> SplitMemberPath(std::string_view raw);

// How a layer blob is compressed, from its media type. zstd layers are
// accepted and stored; the executor refuses to unpack them.
enum class LayerCompression { kNone, kGzip, kZstd };
// kInvalidArgument for a media type that is not a supported layer type.
StatusOr<LayerCompression> LayerCompressionOf(std::string_view media_type);

struct Descriptor {
  std::string media_type;
  Digest digest;
  uint64_t size = 0;

  friend bool operator==(const Descriptor&, const Descriptor&) = default;
};

struct ReadOptions {
  // Upper bound on manifest + config + distinct layers of the chosen image.
  uint64_t max_image_bytes = kDefaultMaxImageBytes;
  // Force a format instead of detecting it. An archive that holds both an
  // OCI layout and a docker manifest.json (`docker save` since Docker 25) is
  // read as OCI unless this says kDockerArchive.
  std::optional<ImageFormat> format;
  // Selects one image when the input holds several: matched against the
  // top-level index entries' org.opencontainers.image.ref.name or
  // io.containerd.image.name annotations (OCI) or RepoTags (docker-archive).
  // Empty: the input must hold exactly one linux/amd64 image.
  std::string ref_name;
};

// Called once per distinct blob of the image (config, layers, then the
// manifest last, so a receiver can check the manifest against blobs it
// already has). `content` yields exactly blob.size bytes; if those bytes no
// longer hash to blob.digest (the file changed since ReadLocalImage), the
// final Read returns kDataLoss instead of end-of-stream. The visitor may stop
// reading early (e.g. the server already has the blob).
using BlobVisitor = std::function<Status(const Descriptor& blob, ByteSource& content)>;

namespace internal {
struct BlobLocations;
}

// An image read from local files, every blob checked. Copyable and cheap to
// copy; ForEachBlob is const and may run on several threads at once.
struct LocalImage {
  ImageFormat format = ImageFormat::kOciLayout;
  std::string source_path;
  // The image manifest exactly as uploaded (for docker-archive: generated, an
  // OCI manifest with deterministic bytes). manifest.digest = SHA-256 of it.
  std::string manifest_json;
  Descriptor manifest;
  Descriptor config;
  std::string config_json;
  std::vector<Descriptor> layers;  // in manifest order (may repeat a digest)
  // docker-archive: RepoTags; OCI: the ref.name annotations naming the image.
  std::vector<std::string> repo_tags;
  uint64_t total_size = 0;  // manifest + config + distinct layers

  Status ForEachBlob(const BlobVisitor& visit) const;

 private:
  friend struct internal::BlobLocations;
  std::shared_ptr<const internal::BlobLocations> locations_;
};

// Reads a directory (OCI layout) or a file (tar, optionally gzip/zstd
// compressed: oci-archive or docker-archive), chooses the linux/amd64 image
// and verifies every blob it references. Errors name the file and field.
StatusOr<LocalImage> ReadLocalImage(const std::string& path, const ReadOptions& options);
StatusOr<LocalImage> ReadLocalImage(const std::string& path);

// What the server learns from a manifest it has received.
struct ManifestInfo {
  std::string media_type;
  Digest digest;  // SHA-256 of the manifest bytes
  Descriptor config;
  std::vector<Descriptor> layers;
  uint64_t total_size = 0;  // manifest + config + distinct layers
};

// For the Privacy Plane: parses an uploaded image manifest (OCI or Docker
// schema 2), checks media types, that the config and every layer are in the
// store with the declared size, and that the config (read from the store) is
// linux/amd64 with one diff_id per layer. The store verified each digest on
// Put, so blobs are not re-hashed here (BlobStore::Verify does that).
StatusOr<ManifestInfo> ValidateStoredManifest(std::string_view manifest_json,
                                              const BlobStore& store,
                                              uint64_t max_image_bytes = kDefaultMaxImageBytes);
// The same, where a blob for which `visible` is false counts as absent, with
// exactly the error an absent blob gets (the plane passes "uploaded by this
// user or public", so a manifest cannot borrow, or probe for, another
// tenant's blobs).
using BlobVisible = std::function<bool(const Digest&)>;
StatusOr<ManifestInfo> ValidateStoredManifest(std::string_view manifest_json,
                                              const BlobStore& store, uint64_t max_image_bytes,
                                              const BlobVisible& visible);

// The config and layer digests of a stored manifest (parsed with the rules
// above; the blobs themselves are not looked at). For garbage collection.
StatusOr<std::vector<Digest>> ManifestBlobDigests(std::string_view manifest_json);

}  // namespace cce::image
