// The Images service called directly: images and blobs belong to their
// owner (or are public, curated by operators), a job runs only a manifest
// its consumer may see, uploads count against a quota, unreferenced blobs
// are collected, and names and tags follow the OCI grammar.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "image/image.h"
#include "plane/config.h"
#include "plane/keys.h"
#include "plane/plane.h"
#include "plane/plane_testing.h"
#include "plane/service_world.h"
#include "plane/services.h"
#include "store/sqlite_store.h"

namespace cce::plane {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Must;

class SteppedClock : public Clock {
 public:
  int64_t NowUnix() const override { return now.load(); }
  std::atomic<int64_t> now{1'800'000'000};
};

class ImagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = Must(
        testing::ServiceWorld::Create({
            .clock = &clock_,
            .adjust = [](ServiceDeps& d, const std::string&) { d.image_quota_bytes = 1 << 20; },
        }),
        "world");
    services_ = &world_->services();
    db_ = &world_->db();
    alice_ = Must(world_->AddUser("alice", store::Role::kConsumer), "user");
    bob_ = Must(world_->AddUser("bob", store::Role::kConsumer), "user");
    olga_ = Must(world_->AddUser("olga", store::Role::kOperator), "user");
  }
  Images& images() { return services_->images; }

  // What the HTTP front hands PutBlob: an anonymous file under the store's tmp/.
  StatusOr<api::StoredBlob> Upload(const Caller& who, const std::string& data) {
    return UploadAs(who, image::Digest::Of(data).str(), data);
  }
  StatusOr<api::StoredBlob> UploadAs(const Caller& who, const std::string& digest,
                                     const std::string& data) {
    UniqueFd fd(::open(images().blob_upload_dir().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!fd.valid()) return ErrnoStatus("O_TMPFILE", errno);
    if (::write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
      return ErrnoStatus("write", errno);
    }
    return images().PutBlob(who, digest, fd.get());
  }
  // Uploads the config and layer, then tags the manifest.
  StatusOr<api::TaggedImage> Push(const Caller& who, const std::string& name,
                                  const std::string& tag, const TestImage& img) {
    RETURN_IF_ERROR(Upload(who, img.config).status());
    RETURN_IF_ERROR(Upload(who, img.layer).status());
    return images().Tag(who, name, tag, img.manifest);
  }
  bool Present(const Caller& who, const std::string& digest) {
    return Must(images().BlobStatus(who, digest), "blob status").present;
  }
  bool Stored(const std::string& digest) {
    return world_->blobs().Has(Must(image::Digest::Parse(digest), "digest"));
  }
  int64_t Audited(const std::string& action) {
    store::AuditFilter f;
    f.limit = 10000;
    int64_t n = 0;
    for (const auto& e : Must(db_->ListAudit(f), "audit")) n += e.record.action == action;
    return n;
  }

  SteppedClock clock_;
  std::unique_ptr<testing::ServiceWorld> world_;
  Services* services_ = nullptr;
  store::Store* db_ = nullptr;
  Caller alice_, bob_, olga_;
};

TEST_F(ImagesTest, AConsumerCannotSeeProbeBorrowOrRunAnothersImage) {
  TestImage img = MakeTestImage("alice-app");
  Must(Push(alice_, "app", "1", img), "alice's push");
  ASSERT_TRUE(Present(alice_, img.layer_digest()));
  ASSERT_TRUE(Present(alice_, img.manifest_digest()));

  // Listing: bob sees nothing of alice's; an operator sees all.
  EXPECT_TRUE(Must(images().List(bob_), "list").images.empty());
  EXPECT_EQ(Must(images().List(alice_), "list").images.size(), 1u);
  EXPECT_EQ(Must(images().List(olga_), "list").images.size(), 1u);

  // Probing: alice's blobs are absent for bob, exactly like unknown ones.
  for (const std::string& d : {img.layer_digest(), img.config_digest(), img.manifest_digest()}) {
    auto probe = Must(images().BlobStatus(bob_, d), "probe");
    EXPECT_FALSE(probe.present) << d;
    EXPECT_FALSE(probe.size.has_value()) << d;
  }

  // Running: neither alice's name:tag nor her manifest digest resolves for bob.
  const std::string field = "job spec: spec.image";
  auto by_name = images().ResolveForJob(bob_, ImageName{"app", "1"}, field);
  ASSERT_FALSE(by_name.ok());
  EXPECT_EQ(by_name.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(by_name.status().message().find("no image app:1"), std::string::npos);
  auto by_digest = images().ResolveForJob(bob_, ImageDigest{img.manifest_digest()}, field);
  ASSERT_FALSE(by_digest.ok());
  EXPECT_EQ(by_digest.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Must(images().ResolveForJob(alice_, ImageName{"app", "1"}, field), "alice"),
            img.manifest_digest());
  EXPECT_EQ(Must(images().ResolveForJob(alice_, ImageDigest{img.manifest_digest()}, field), "a"),
            img.manifest_digest());

  // Borrowing: bob's manifest naming alice's blobs is refused as if they
  // were missing, with the same message an unknown blob gets.
  auto borrowed = images().Tag(bob_, "mine", "1", img.manifest);
  ASSERT_FALSE(borrowed.ok());
  EXPECT_EQ(borrowed.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(borrowed.status().message().find(img.config_digest() + ": blob not in the store"),
            std::string::npos)
      << borrowed.status().message();
  TestImage never = MakeTestImage("never-uploaded");
  auto missing = images().Tag(bob_, "mine", "1", never.manifest);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), borrowed.status().code());
  EXPECT_TRUE(Must(images().List(bob_), "list").images.empty());

  // Bob may upload the same bytes himself: then they are his too.
  Must(Push(bob_, "mine", "1", img), "bob's own push");
  EXPECT_TRUE(Present(bob_, img.layer_digest()));
}

TEST_F(ImagesTest, TagsAreNamespacedPerOwnerSoNobodyCanSquatOne) {
  TestImage bobs = MakeTestImage("bob-squats");
  TestImage alices = MakeTestImage("alice-real");
  // Bob takes "app:1" first; alice's push of the same name:tag is hers.
  Must(Push(bob_, "app", "1", bobs), "bob");
  Must(Push(alice_, "app", "1", alices), "alice");
  const std::string field = "job spec: spec.image";
  EXPECT_EQ(Must(images().ResolveForJob(alice_, ImageName{"app", "1"}, field), "alice"),
            alices.manifest_digest());
  EXPECT_EQ(Must(images().ResolveForJob(bob_, ImageName{"app", "1"}, field), "bob"),
            bobs.manifest_digest());

  // The public library/ namespace is the operators' alone.
  auto squat = images().Tag(bob_, "library/base", "1", bobs.manifest);
  ASSERT_FALSE(squat.ok());
  EXPECT_EQ(squat.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(squat.status().message().find("only operators"), std::string::npos);
  EXPECT_EQ(Audited("image.push"), 3);  // two pushes allowed, the squat audited as a deny

  // An operator's public image: every consumer sees, probes and runs it;
  // a consumer's own name wins over the public one.
  TestImage base = MakeTestImage("library-base");
  Must(Push(olga_, "library/base", "1", base), "operator");
  EXPECT_TRUE(Present(bob_, base.layer_digest()));
  EXPECT_EQ(Must(images().List(bob_), "list").images.size(), 2u);
  EXPECT_EQ(Must(images().ResolveForJob(bob_, ImageName{"base", "1"}, field), "public"),
            base.manifest_digest());
  EXPECT_EQ(Must(images().ResolveForJob(bob_, ImageName{"library/base", "1"}, field), "public"),
            base.manifest_digest());
  EXPECT_EQ(Must(images().ResolveForJob(alice_, ImageDigest{base.manifest_digest()}, field), "d"),
            base.manifest_digest());
  Must(Push(bob_, "base", "1", bobs), "bob's own base");
  EXPECT_EQ(Must(images().ResolveForJob(bob_, ImageName{"base", "1"}, field), "own first"),
            bobs.manifest_digest());
  // A consumer builds on a public image's layer without uploading it.
  TestImage derived = base;
  derived.manifest = json::parse(base.manifest).dump(2);  // another manifest, the same blobs
  Must(images().Tag(alice_, "derived", "1", derived.manifest), "derived");
}

TEST_F(ImagesTest, OnlyAManifestDigestIsAJobImage) {
  TestImage img = MakeTestImage("alice-app");
  Must(Push(alice_, "app", "1", img), "push");
  const std::string field = "job spec: spec.image";
  for (const std::string& d : {img.layer_digest(), img.config_digest()}) {
    auto r = images().ResolveForJob(alice_, ImageDigest{d}, field);
    ASSERT_FALSE(r.ok()) << d << " was accepted as a job image";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(
        r.status().message().find("job spec: spec.image: " + d + " is not the manifest digest"),
        std::string::npos)
        << r.status().message();
  }
  EXPECT_TRUE(images().ResolveForJob(alice_, ImageDigest{img.manifest_digest()}, field).ok());
}

TEST_F(ImagesTest, UploadsBeyondTheQuotaAreRefusedWithAClearError) {
  // Quota 1 MiB: a 600 KiB layer fits, a second one does not.
  TestImage a = MakeTestImage("first", 600 << 10);
  TestImage b = MakeTestImage("second", 600 << 10);
  Must(Upload(alice_, a.layer), "first layer");
  Must(Upload(alice_, a.layer), "the same layer again is not counted twice");
  auto over = Upload(alice_, b.layer);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(over.status().message().find("image storage quota exceeded: 614400 bytes stored"),
            std::string::npos)
      << over.status().message();
  EXPECT_NE(over.status().message().find("quota 1048576 bytes"), std::string::npos);
  EXPECT_FALSE(Stored(b.layer_digest())) << "refused bytes were kept";
  EXPECT_EQ(Audited("image.quota"), 1);
  // Before the body: an announced length that does not fit is refused.
  Status admit = images().AdmitUpload(alice_, 600 << 10);
  EXPECT_EQ(admit.code(), StatusCode::kResourceExhausted) << admit.message();
  EXPECT_TRUE(images().AdmitUpload(alice_, 100 << 10).ok());
  // The quota is per user: bob's is untouched.
  Must(Upload(bob_, b.layer), "bob's layer");
}

TEST_F(ImagesTest, UnreferencedBlobsAreCollectedAndReferencedOnesKept) {
  TestImage v1 = MakeTestImage("version-1");
  TestImage v2 = MakeTestImage("version-2");
  TestImage pinned = MakeTestImage("pinned-by-a-job");
  TestImage shared = MakeTestImage("shared");
  Must(Push(alice_, "app", "1", v1), "v1");
  Must(Push(alice_, "job", "1", pinned), "pinned");
  Must(Push(alice_, "shared", "1", shared), "alice shared");
  Must(Push(bob_, "shared", "1", shared), "bob shared");
  // A job of alice's, not finished, pins `pinned`.
  store::Job job;
  job.id = "job-00000000000000aa";
  job.consumer_id = alice_.user.id;
  job.name = "t";
  job.spec_json = "{}";
  job.image_digest = pinned.manifest_digest();
  job.reason = "submitted";
  job.created_at = clock_.NowUnix();
  job.deadline = job.created_at + 3600;
  job.timeout_seconds = 3600;
  Must(db_->CreateJob(job, services_->audit_log.Record("t", "job.submit", "job:x",
                                                       store::AuditDecision::kInfo)),
       "job");
  clock_.now += Images::kUploadGraceSeconds + 1;
  // A push in progress: its layer is uploaded, its manifest not yet tagged.
  TestImage in_progress = MakeTestImage("in-progress");
  Must(Upload(alice_, in_progress.layer), "in-progress layer");

  // The tag moves to v2, alice removes the other tags: v1's blobs and
  // alice's records of the shared ones go; bob's shared image and the
  // job's image stay, and so does the fresh upload.
  Must(Push(alice_, "app", "1", v2), "v2");
  Must(images().Untag(alice_, "job", "1"), "untag job");
  Must(images().Untag(alice_, "shared", "1"), "untag shared");
  for (const std::string& d : {v1.layer_digest(), v1.config_digest(), v1.manifest_digest()}) {
    EXPECT_FALSE(Stored(d)) << d << " is referenced by nothing and was kept";
  }
  for (const TestImage* kept : {&v2, &pinned, &shared}) {
    for (const std::string& d :
         {kept->layer_digest(), kept->config_digest(), kept->manifest_digest()}) {
      EXPECT_TRUE(Stored(d)) << d << " is referenced and was removed";
    }
  }
  EXPECT_TRUE(Stored(in_progress.layer_digest()));
  EXPECT_FALSE(Present(alice_, shared.layer_digest())) << "alice's record outlived her tag";
  EXPECT_TRUE(Present(bob_, shared.layer_digest()));
  EXPECT_TRUE(Present(alice_, pinned.layer_digest())) << "the job's blobs stay alice's";

  // The job finishes; the next collection, past the grace period, takes its
  // image and the abandoned upload.
  Must(db_->TransitionJob(
           job.id, store::JobState::kSubmitted, store::JobState::kCancelled, "x",
           services_->audit_log.Record("t", "job.cancel", "job:x", store::AuditDecision::kInfo)),
       "cancel");
  clock_.now += Images::kUploadGraceSeconds + 1;
  auto report = Must(images().CollectGarbage("test"), "gc");
  EXPECT_EQ(report.blobs_removed, 4);  // pinned's three and the abandoned layer
  EXPECT_FALSE(Stored(pinned.manifest_digest()));
  EXPECT_FALSE(Stored(in_progress.layer_digest()));
  EXPECT_TRUE(Stored(v2.layer_digest()));
  EXPECT_TRUE(Stored(shared.layer_digest()));
  EXPECT_GE(Audited("image.gc"), 1);
}

TEST_F(ImagesTest, BadNamesAndTagsAreRefusedNamingTheRule) {
  TestImage img = MakeTestImage("names");
  Must(Upload(alice_, img.config), "config");
  Must(Upload(alice_, img.layer), "layer");
  for (const std::string name :
       {"a/../../b", "a//b", "..", "a/./b", "/a", "a/", "A", "a..b", "a.-b", "-a", "a_", ""}) {
    auto r = images().Tag(alice_, name, "1", img.manifest);
    ASSERT_FALSE(r.ok()) << "'" << name << "' was accepted";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("path.name: '" + name +
                                        "' is not a valid image name: "
                                        "expected path components [a-z0-9]+(?:[._-][a-z0-9]+)* "
                                        "joined by single '/'"),
              std::string::npos)
        << r.status().message();
  }
  for (const std::string& tag :
       std::vector<std::string>{"..", ".x", "-x", "a/b", std::string(129, 'a'), ""}) {
    auto r = images().Tag(alice_, "app", tag, img.manifest);
    ASSERT_FALSE(r.ok()) << "'" << tag << "' was accepted";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("path.tag: "), std::string::npos);
    EXPECT_NE(r.status().message().find("expected [A-Za-z0-9_][A-Za-z0-9._-]{0,127}"),
              std::string::npos)
        << r.status().message();
  }
  for (const std::string name : {"a", "a/b", "team/app-1", "a.b_c-d/e_f", "x9/y0"}) {
    EXPECT_TRUE(images().Tag(alice_, name, "v1.0_rc-1", img.manifest).ok()) << name;
  }
  EXPECT_TRUE(images().Tag(alice_, "app", std::string(128, 'a'), img.manifest).ok());
  EXPECT_TRUE(images().Untag(alice_, "..", "1").status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cce::plane
