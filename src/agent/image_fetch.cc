#include "agent/image_fetch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <set>

#include "base/fd.h"
#include "image/blob_store.h"

namespace cce::agent {
namespace {

using nlohmann::json;

Status WriteText(const std::string& path, const std::string& text) {
  return WriteNewFile(
      path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
      0644);
}

}  // namespace

Status FetchImageLayout(PlaneAgentClient& plane, const std::string& expected_digest,
                        const std::string& layout_dir) {
  ASSIGN_OR_RETURN(std::string manifest, plane.FetchManifest());
  if (plane.manifest_digest() != expected_digest) {
    return DataLoss("image: the plane served manifest " + plane.manifest_digest() +
                    " but the job pinned " + expected_digest);
  }
  json m = json::parse(manifest, nullptr, false);
  if (!m.is_object()) return InvalidArgument("image manifest: not a JSON object");
  std::vector<std::string> digests;
  auto take = [&](const json& desc, const std::string& field) -> Status {
    if (!desc.is_object() || !desc.contains("digest") || !desc["digest"].is_string() ||
        !image::Digest::Parse(desc["digest"].get<std::string>()).ok()) {
      return InvalidArgument("image manifest: " + field + ".digest: expected sha256:<64 hex>");
    }
    digests.push_back(desc["digest"].get<std::string>());
    return Status::Ok();
  };
  RETURN_IF_ERROR(take(m.value("config", json()), "config"));
  const json layers = m.value("layers", json());
  if (!layers.is_array()) return InvalidArgument("image manifest: layers: expected an array");
  for (size_t i = 0; i < layers.size(); ++i) {
    RETURN_IF_ERROR(take(layers[i], "layers[" + std::to_string(i) + "]"));
  }

  if (mkdir(layout_dir.c_str(), 0755) != 0) return ErrnoStatus("image: mkdir " + layout_dir, errno);
  const std::string blobs = layout_dir + "/blobs/sha256";
  if (mkdir((layout_dir + "/blobs").c_str(), 0755) != 0 || mkdir(blobs.c_str(), 0755) != 0) {
    return ErrnoStatus("image: mkdir " + blobs, errno);
  }
  std::set<std::string> done;
  for (const std::string& d : digests) {
    if (!done.insert(d).second) continue;
    const std::string path = blobs + "/" + d.substr(7);
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd.valid()) return ErrnoStatus("image: create " + path, errno);
    RETURN_IF_ERROR(plane.FetchBlob(d, fd.get()));
  }
  RETURN_IF_ERROR(WriteText(blobs + "/" + expected_digest.substr(7), manifest));
  RETURN_IF_ERROR(WriteText(layout_dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  const std::string media_type =
      m.value("mediaType", std::string("application/vnd.oci.image.manifest.v1+json"));
  json index = {
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.index.v1+json"},
      {"manifests",
       json::array(
           {{{"mediaType", media_type}, {"digest", expected_digest}, {"size", manifest.size()}}})}};
  return WriteText(layout_dir + "/index.json", index.dump());
}

}  // namespace cce::agent
