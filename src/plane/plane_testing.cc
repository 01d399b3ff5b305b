#include "plane/plane_testing.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "image/blob_store.h"
#include "image/image.h"
#include "plane/config.h"
#include "plane/serve_internal.h"
#include "store/sqlite_store.h"

namespace cce::plane {

Status ServeForTest(const ServeOptions& options, const Clock& clock, const TestDoubles& doubles) {
  return ServeWith(options, clock, doubles.gate, doubles.provisioner, doubles.fake_output_bytes);
}

StatusOr<std::string> AddPublicTestImage(const std::string& data_dir, const std::string& tag,
                                         const std::string& manifest, const Clock& clock) {
  ASSIGN_OR_RETURN(auto blobs, image::BlobStore::Create(data_dir + "/images"));
  ASSIGN_OR_RETURN(image::Digest digest, blobs.PutBytes(manifest, image::Digest::Of(manifest)));
  ASSIGN_OR_RETURN(PlaneConfig c, LoadConfig(data_dir));
  store::SqliteStoreOptions so;
  so.path = c.Path(c.database_path);
  so.checkpoint_file = c.Path(c.audit_checkpoint_file);
  ASSIGN_OR_RETURN(auto db, store::SqliteStore::Open(so));
  ASSIGN_OR_RETURN(auto users, db->ListUsers());
  auto op = std::find_if(users.begin(), users.end(),
                         [](const store::User& u) { return u.role == store::Role::kOperator; });
  if (op == users.end()) return FailedPrecondition("no operator to own the test image");
  store::Image img{"library/test", tag, digest.str(), op->id, clock.NowUnix(), true};
  store::AuditRecord audit;
  audit.at = clock.NowUnix();
  audit.actor = "test";
  audit.action = "image.push";
  audit.object = "image:library/test:" + tag;
  RETURN_IF_ERROR(db->PutImage(img, audit).status());
  return digest.str();
}

std::string TestImage::layer_digest() const {
  return image::Digest::Of(layer).str();
}
std::string TestImage::config_digest() const {
  return image::Digest::Of(config).str();
}
std::string TestImage::manifest_digest() const {
  return image::Digest::Of(manifest).str();
}

TestImage MakeTestImage(const std::string& seed, size_t layer_bytes) {
  using nlohmann::json;
  TestImage img;
  img.layer.resize(layer_bytes);
  for (size_t i = 0; i < layer_bytes; ++i) {
    img.layer[i] = static_cast<char>('a' + (i * 7 + seed.size()) % 26);
  }
  img.layer.replace(0, std::min(seed.size(), layer_bytes), seed.substr(0, layer_bytes));
  const std::string layer_digest = img.layer_digest();
  img.config = json{{"architecture", "amd64"},
                    {"os", "linux"},
                    {"rootfs", {{"type", "layers"}, {"diff_ids", {layer_digest}}}}}
                   .dump();
  img.manifest =
      json{
          {"schemaVersion", 2},
          {"mediaType", image::kOciManifest},
          {"config",
           {{"mediaType", image::kOciConfig},
            {"digest", img.config_digest()},
            {"size", img.config.size()}}},
          {"layers",
           {{{"mediaType", image::kOciLayerTar}, {"digest", layer_digest}, {"size", layer_bytes}}}}}
          .dump();
  return img;
}

}  // namespace cce::plane
