// The Samples service called directly: only the owner publishes; a tar with
// anything but plain files and directories is refused naming the member and
// leaves nothing behind; the owner and consumers whose rental covers now
// read, everyone else is refused and audited; two versions are kept; a
// publication or read whose audit record cannot be written is refused.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "plane/sample_tar.h"
#include "plane/sample_tar_testing.h"
#include "plane/service_world.h"
#include "plane/services.h"
#include "store/store_testing.h"

namespace cce::plane {
namespace {

namespace fs = std::filesystem;
using store::Role;
using testing::MakeTar;
using testing::MessageContains;
using testing::Must;
using testing::TarDir;
using testing::TarFile;
using testing::TarMember;

// Forwards to the real store; a test can make the sample record or every
// audit append fail (as a full disk would).
class SampleTestStore final : public store::testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<bool> fail_record{false};
  std::atomic<bool> fail_audit{false};
  StatusOr<store::Sample> RecordSample(const store::Sample& s,
                                       const store::AuditRecord& audit) override {
    if (fail_record) return Status(StatusCode::kIo, "audit table: disk full (test)");
    return ForwardingStore::RecordSample(s, audit);
  }
  StatusOr<store::AuditEntry> AppendAudit(const store::AuditRecord& r) override {
    if (fail_audit) return Status(StatusCode::kIo, "audit table: disk full (test)");
    return ForwardingStore::AppendAudit(r);
  }
};

class SamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = Must(testing::ServiceWorld::Create({
                      .clock = &clock_,
                      .wrap_store =
                          [this](store::Store& inner) {
                            auto s = std::make_unique<SampleTestStore>(inner);
                            db_ = s.get();
                            return std::unique_ptr<store::Store>(std::move(s));
                          },
                      .adjust =
                          [this](ServiceDeps& d, const std::string&) {
                            d.samples_dir = world_dir_ = DataDir(d) + "/samples";
                            d.max_sample_bytes = 1 << 20;
                          },
                  }),
                  "world");
    s_ = &world_->services();
    pat_ = Must(world_->AddUser("pat", Role::kProvider), "pat");
    paula_ = Must(world_->AddUser("paula", Role::kProvider), "paula");
    carol_ = Must(world_->AddUser("carol", Role::kConsumer), "carol");
    dave_ = Must(world_->AddUser("dave", Role::kConsumer), "dave");
    olga_ = Must(world_->AddUser("olga", Role::kOperator), "olga");
    rita_ = Must(world_->AddUser("rita", Role::kReviewer), "rita");
    claims_ = AddDataset("claims", pat_);
    labs_ = AddDataset("labs", paula_);
  }

  // Unpacked samples are read-only: removed here, whoever runs the test.
  void TearDown() override {
    const std::string parent = fs::path(world_dir_).parent_path().string();
    UniqueFd fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.valid()) {
      EXPECT_TRUE(RemoveSampleTree(fd.get(), "samples").ok());
    }
  }

  // The data directory the world's fingerprint_dir sits in.
  static std::string DataDir(const ServiceDeps& d) {
    return fs::path(d.fingerprint_dir).parent_path().string();
  }

  store::Dataset AddDataset(const std::string& name, const Caller& owner) {
    store::Dataset d;
    d.name = name;
    d.owner_id = owner.user.id;
    d.location = "s3://bucket/" + name;
    d.price = "1";
    d.max_days = 30;
    d.key_id = "00112233";
    d.wrapped_key = {1, 2, 3};
    d.created_at = clock_.NowUnix();
    return Must(world_->db().CreateDataset(d, world_->Rec("dataset.register", name)), "dataset");
  }

  // `tar` in a memfd at offset 0, as the route's kToFile body is.
  static UniqueFd TarFd(const std::string& tar) {
    UniqueFd fd(::memfd_create("sample", MFD_CLOEXEC));
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(::write(fd.get(), tar.data(), tar.size()), static_cast<ssize_t>(tar.size()));
    return fd;
  }
  StatusOr<api::SampleInfo> Publish(const Caller& c, const std::string& dataset,
                                    const std::vector<TarMember>& members) {
    UniqueFd fd = TarFd(MakeTar(members));
    return s_->samples.Publish(c, dataset, fd.get());
  }
  std::vector<TarMember> SampleV(int v) {
    return {TarDir("tables/"),
            TarFile("tables/people.csv", "id,age\n" + std::to_string(v) + ",40\n"),
            TarFile("notes.txt", "version " + std::to_string(v))};
  }
  std::string Read(const Caller& c, const std::string& dataset, const std::string& path) {
    auto f = s_->samples.OpenFile(c, dataset, path);
    EXPECT_TRUE(f.ok()) << f.status().message();
    if (!f.ok()) return "";
    std::string out(f->size, '\0');
    EXPECT_EQ(::pread(f->fd.get(), out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
    return out;
  }
  int64_t Denials(const std::string& action, const std::string& object) {
    return Must(world_->Denials(action, object), "denials");
  }
  int64_t Allowed(const std::string& action) {
    store::AuditFilter f;
    f.limit = 10000;
    int64_t n = 0;
    for (const auto& e : Must(world_->db().ListAudit(f), "audit")) {
      n += e.record.action == action && e.record.decision == store::AuditDecision::kAllow;
    }
    return n;
  }
  // Entries of the dataset's sample directory (v1, v1.json, ...).
  std::vector<std::string> Entries(const store::Dataset& d) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(world_dir_ + "/" + std::to_string(d.id), ec)) {
      out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  TestClock clock_;
  SampleTestStore* db_ = nullptr;
  std::string world_dir_;
  std::unique_ptr<testing::ServiceWorld> world_;
  Services* s_ = nullptr;
  Caller pat_, paula_, carol_, dave_, olga_, rita_;
  store::Dataset claims_, labs_;
};

TEST_F(SamplesTest, OwnerPublishesAndTheFilesAreReadOnlyWithAListing) {
  auto info = Publish(pat_, "claims", SampleV(1));
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->dataset, "claims");
  EXPECT_EQ(info->version, 1);
  EXPECT_EQ(info->file_count, 2);
  ASSERT_EQ(info->files.size(), 2u);
  EXPECT_EQ(info->files[0].path, "notes.txt");
  EXPECT_EQ(info->files[1].path, "tables/people.csv");
  EXPECT_EQ(info->files[1].sha256,
            crypto::ToHex(crypto::Sha256(crypto::AsBytes(std::string("id,age\n1,40\n")))));
  EXPECT_EQ(Allowed("dataset.sample.publish"), 1);
  auto loc = Must(s_->samples.Latest(claims_.id), "latest");
  EXPECT_EQ(loc.version, 1);
  EXPECT_EQ(loc.dataset, "claims");
  EXPECT_EQ(loc.dir, world_dir_ + "/" + std::to_string(claims_.id) + "/v1");
  EXPECT_TRUE(fs::path(loc.dir).is_absolute());
  struct stat st {};
  ASSERT_EQ(::stat((loc.dir + "/tables/people.csv").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444);
  ASSERT_EQ(::stat((loc.dir + "/tables").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555);
  ASSERT_EQ(::stat(loc.dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555);
  EXPECT_EQ(Entries(claims_), (std::vector<std::string>{"v1", "v1.json"}));
  // The owner reads its own sample.
  auto got = Must(s_->samples.Get(pat_, "claims"), "get");
  EXPECT_EQ(got.files.size(), 2u);
  EXPECT_EQ(Read(pat_, "claims", "notes.txt"), "version 1");
}

TEST_F(SamplesTest, NonOwnersCannotPublish) {
  for (const Caller* c : {&paula_, &carol_, &olga_}) {
    auto r = Publish(*c, "claims", SampleV(1));
    EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << c->user.name;
    EXPECT_TRUE(MessageContains(r.status(), "only its owner")) << r.status().message();
  }
  EXPECT_EQ(Denials("dataset.sample.publish", "dataset:claims"), 3);
  EXPECT_EQ(s_->samples.Latest(claims_.id).status().code(), StatusCode::kNotFound);
  // AdmitPublish is the same check, before the body.
  EXPECT_EQ(s_->samples.AdmitPublish(carol_, "claims", 10).code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(s_->samples.AdmitPublish(pat_, "claims", 10).ok());
  EXPECT_EQ(s_->samples.AdmitPublish(pat_, "claims", s_->samples.max_upload_bytes() + 1).code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(s_->samples.AdmitPublish(pat_, "nope", 10).code(), StatusCode::kNotFound);
}

TEST_F(SamplesTest, RefusesBadMembersNamingThemAndLeavesNothingBehind) {
  struct Case {
    std::vector<TarMember> members;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{TarFile("a.csv", "x"), {"b.csv", "/etc/passwd", TarMember::Kind::kSymlink}},
       "'b.csv': a symbolic link"},
      {{TarFile("a.csv", "x"), {"b.csv", "a.csv", TarMember::Kind::kHardlink}},
       "'b.csv': a hard link"},
      {{TarFile("a.csv", "x"), TarFile("../../../../etc/x", "x")}, "a '..' part"},
      {{TarFile("/abs.csv", "x")}, "'/abs.csv': an absolute path"},
      {{{"dev/null", "", TarMember::Kind::kCharDevice}}, "'dev/null': a device"},
      {{TarFile(std::string(300, 'n'), "x")}, "300 bytes"},
  };
  for (const Case& c : cases) {
    auto r = Publish(pat_, "claims", c.members);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.expected;
    EXPECT_TRUE(MessageContains(r.status(), c.expected)) << r.status().message();
    // Not even a temporary directory is left.
    EXPECT_TRUE(Entries(claims_).empty()) << c.expected;
  }
  EXPECT_EQ(Denials("dataset.sample.publish", "dataset:claims"),
            static_cast<int64_t>(cases.size()));
  EXPECT_EQ(s_->samples.Latest(claims_.id).status().code(), StatusCode::kNotFound);
}

TEST_F(SamplesTest, RefusesASampleOverTheByteLimit) {
  auto r = Publish(pat_, "claims", {TarFile("big.bin", std::string((1 << 20) + 1, 'b'))});
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(MessageContains(r.status(), "explore.max_sample_bytes")) << r.status().message();
  EXPECT_TRUE(Entries(claims_).empty());
}

TEST_F(SamplesTest, ARenterReadsWhileTheRentalIsActive) {
  ASSERT_TRUE(Publish(pat_, "claims", SampleV(1)).ok());
  Must(s_->rentals.Rent(carol_, {"claims", 1}), "rent");
  const int64_t reads = Allowed("dataset.sample.read");
  auto info = s_->samples.Get(carol_, "claims");
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->version, 1);
  EXPECT_EQ(Read(carol_, "claims", "tables/people.csv"), "id,age\n1,40\n");
  EXPECT_EQ(Read(carol_, "claims", "notes.txt"), "version 1");
  // One record per listing, none per file.
  EXPECT_EQ(Allowed("dataset.sample.read"), reads + 1);
  // Once the rental has ended: refused, and audited.
  clock_.offset = 86400 + 1;
  auto late = s_->samples.Get(carol_, "claims");
  EXPECT_EQ(late.status().code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(MessageContains(late.status(), "cce rent claims")) << late.status().message();
  EXPECT_EQ(s_->samples.OpenFile(carol_, "claims", "notes.txt").status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(Denials("dataset.sample.read", "dataset:claims"), 2);
}

TEST_F(SamplesTest, NonRentersOtherConsumersOperatorsAndReviewersAreRefusedAndAudited) {
  ASSERT_TRUE(Publish(pat_, "claims", SampleV(1)).ok());
  ASSERT_TRUE(Publish(paula_, "labs", SampleV(1)).ok());
  // carol rents labs, not claims; dave rents nothing. The operator and the
  // reviewer hold rentals of claims (the service lets any role rent; the
  // route does not): their role still refuses them.
  Must(s_->rentals.Rent(carol_, {"labs", 1}), "rent");
  Must(s_->rentals.Rent(olga_, {"claims", 1}), "rent");
  Must(s_->rentals.Rent(rita_, {"claims", 1}), "rent");
  int64_t expected = 0;
  for (const Caller* c : {&carol_, &dave_, &olga_, &rita_, &paula_}) {
    EXPECT_EQ(s_->samples.Get(*c, "claims").status().code(), StatusCode::kPermissionDenied)
        << c->user.name;
    EXPECT_EQ(s_->samples.OpenFile(*c, "claims", "notes.txt").status().code(),
              StatusCode::kPermissionDenied)
        << c->user.name;
    expected += 2;
  }
  EXPECT_EQ(Denials("dataset.sample.read", "dataset:claims"), expected);
  // The rule itself: carol may read labs, which she rents.
  EXPECT_TRUE(s_->samples.Get(carol_, "labs").ok());
  EXPECT_TRUE(s_->samples.CheckRead(carol_, labs_, "test.read").ok());
  EXPECT_EQ(s_->samples.CheckRead(carol_, claims_, "test.read").code(),
            StatusCode::kPermissionDenied);
}

TEST_F(SamplesTest, AnUnknownOrUnpublishedDatasetIsNotFound) {
  Must(s_->rentals.Rent(carol_, {"claims", 1}), "rent");
  auto none = s_->samples.Get(carol_, "claims");
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(MessageContains(none.status(), "dataset claims has no published sample"));
  EXPECT_EQ(s_->samples.Get(carol_, "nope").status().code(), StatusCode::kNotFound);
  auto latest = s_->samples.Latest(claims_.id);
  EXPECT_EQ(latest.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(MessageContains(latest.status(), "dataset claims has no published sample"));
}

TEST_F(SamplesTest, OnlyListedFilesAreServedAndNothingOutsideTheVersion) {
  ASSERT_TRUE(Publish(pat_, "claims", SampleV(1)).ok());
  for (const char* p : {"missing.csv", "tables", "../v1.json", "tables/../notes.txt", "/etc/passwd",
                        "./notes.txt", "", "tables/"}) {
    EXPECT_EQ(s_->samples.OpenFile(pat_, "claims", p).status().code(), StatusCode::kNotFound) << p;
  }
}

TEST_F(SamplesTest, KeepsTheLatestTwoVersions) {
  for (int v = 1; v <= 4; ++v) {
    auto r = Publish(pat_, "claims", SampleV(v));
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->version, v);
  }
  EXPECT_EQ(Entries(claims_), (std::vector<std::string>{"v3", "v3.json", "v4", "v4.json"}));
  EXPECT_EQ(Must(s_->samples.Latest(claims_.id), "latest").version, 4);
  EXPECT_EQ(Read(pat_, "claims", "notes.txt"), "version 4");
  EXPECT_EQ(Must(s_->samples.Get(pat_, "claims"), "get").version, 4);
}

TEST_F(SamplesTest, APublicationWhoseRecordFailsIsRefusedAndRemoved) {
  ASSERT_TRUE(Publish(pat_, "claims", SampleV(1)).ok());
  db_->fail_record = true;
  auto r = Publish(pat_, "claims", SampleV(2));
  EXPECT_FALSE(r.ok());
  db_->fail_record = false;
  EXPECT_EQ(Entries(claims_), (std::vector<std::string>{"v1", "v1.json"}));
  EXPECT_EQ(Must(s_->samples.Latest(claims_.id), "latest").version, 1);
  EXPECT_EQ(Read(pat_, "claims", "notes.txt"), "version 1");
  // The next publication takes version 2 after all.
  EXPECT_EQ(Must(Publish(pat_, "claims", SampleV(2)), "publish").version, 2);
}

TEST_F(SamplesTest, AReadWhoseAuditRecordFailsIsRefused) {
  ASSERT_TRUE(Publish(pat_, "claims", SampleV(1)).ok());
  Must(s_->rentals.Rent(carol_, {"claims", 1}), "rent");
  db_->fail_audit = true;
  EXPECT_FALSE(s_->samples.Get(carol_, "claims").ok());
  db_->fail_audit = false;
  EXPECT_TRUE(s_->samples.Get(carol_, "claims").ok());
}

TEST_F(SamplesTest, AnEditedListingIsDataLoss) {
  ASSERT_TRUE(Publish(pat_, "claims", SampleV(1)).ok());
  const std::string listing = world_dir_ + "/" + std::to_string(claims_.id) + "/v1.json";
  std::string text;
  {
    std::ifstream in(listing);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t at = text.find("\"size\":9");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 8, "\"size\":8");
  ASSERT_EQ(::chmod(listing.c_str(), 0644), 0);
  { std::ofstream(listing, std::ios::trunc) << text; }
  EXPECT_EQ(s_->samples.Get(pat_, "claims").status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace cce::plane
