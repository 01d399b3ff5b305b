#include "plane/plane_testing.h"

#include <algorithm>

#include "image/blob_store.h"
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
  so.checkpoint_file = c.Path("checkpoints.log");
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

}  // namespace cce::plane
