// Dataset file:// locations (threat model, finding 1): the plane opens a
// manifest only beneath an allowed root, through no symlink or '..', never
// blocks on a FIFO, caps the size, refuses control characters, and tells the
// provider one generic reason whatever went wrong.
#include "plane/dataset_location.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "format/format.h"
#include "plane/config.h"
#include "plane/keys.h"
#include "plane/plane.h"
#include "plane/service_world.h"
#include "plane/services.h"
#include "store/sqlite_store.h"

namespace cce::plane {
namespace {

namespace fs = std::filesystem;
using testing::Must;

// Runs `f` on a detached thread and waits at most 20 s: a call that blocks
// forever (the FIFO of finding 1) fails the test instead of hanging it.
template <typename F>
auto WithinBound(F f) -> std::optional<decltype(f())> {
  auto p = std::make_shared<std::promise<decltype(f())>>();
  auto fut = p->get_future();
  std::thread([p, f]() mutable { p->set_value(f()); }).detach();
  if (fut.wait_for(std::chrono::seconds(20)) != std::future_status::ready) return std::nullopt;
  return fut.get();
}

class DatasetLocationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cce-location-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    tmp_ = tmpl;
    root_ = tmp_ + "/roots/datasets";
    fs::create_directories(root_);
    fs::create_directories(tmp_ + "/outside");
    key_.emplace(Must(format::DatasetKey::Generate(), "key"));
    fs::create_directories(tmp_ + "/src");
    std::ofstream(tmp_ + "/src/a.csv") << "x\n1\n";
    ASSERT_TRUE(format::EncryptDataset(tmp_ + "/src", root_ + "/claims", *key_, {}).ok());
    ASSERT_TRUE(format::EncryptDataset(tmp_ + "/src", tmp_ + "/outside/claims", *key_, {}).ok());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
  StatusOr<UniqueFd> Open(const std::string& path, uint64_t max = 1 << 20) {
    return OpenDatasetManifest({root_}, path, max);
  }

  std::string tmp_, root_;
  std::optional<format::DatasetKey> key_;
};

TEST_F(DatasetLocationTest, OpensAManifestBeneathARoot) {
  auto fd = Open(root_ + "/claims");
  ASSERT_TRUE(fd.ok()) << fd.status().message();
  auto m = format::ReadManifestFromFd(fd->get(), *key_, "manifest");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_TRUE(Open(root_ + "/claims/").ok());  // a trailing '/' is fine
}

TEST_F(DatasetLocationTest, RefusesPathsOutsideTheRoots) {
  auto r = Open(tmp_ + "/outside/claims");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("outside the allowed dataset roots"), std::string::npos);
  EXPECT_FALSE(Open("/etc/shadow").ok());
  // A sibling sharing the root's prefix is not beneath it.
  ASSERT_TRUE(format::EncryptDataset(tmp_ + "/src", root_ + "-x", *key_, {}).ok());
  EXPECT_FALSE(Open(root_ + "-x").ok());
  // No roots: every location is refused.
  EXPECT_FALSE(OpenDatasetManifest({}, root_ + "/claims", 1 << 20).ok());
}

TEST_F(DatasetLocationTest, RefusesDotDotAndDotParts) {
  auto r = Open(root_ + "/../../outside/claims");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'..'"), std::string::npos) << r.status().message();
  EXPECT_FALSE(Open(root_ + "/./claims").ok());
  EXPECT_FALSE(Open(root_ + "//claims").ok());
  EXPECT_FALSE(Open("claims").ok());  // not absolute
}

TEST_F(DatasetLocationTest, RefusesSymlinksBelowTheRoot) {
  // A directory symlink escaping the root.
  fs::create_directory_symlink(tmp_ + "/outside", root_ + "/escape");
  auto r = Open(root_ + "/escape/claims");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("symlink"), std::string::npos) << r.status().message();
  // Even a symlink to a dataset inside the root.
  fs::create_directory_symlink(root_ + "/claims", root_ + "/alias");
  EXPECT_FALSE(Open(root_ + "/alias").ok());
  // A manifest.cce that is a symlink (to a real manifest outside).
  fs::create_directories(root_ + "/linked");
  fs::create_symlink(tmp_ + "/outside/claims/manifest.cce", root_ + "/linked/manifest.cce");
  r = Open(root_ + "/linked");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("symlink"), std::string::npos) << r.status().message();
}

TEST_F(DatasetLocationTest, AFifoManifestDoesNotBlock) {
  fs::create_directories(root_ + "/fifo");
  ASSERT_EQ(::mkfifo((root_ + "/fifo/manifest.cce").c_str(), 0600), 0);
  auto r = WithinBound([this] { return Open(root_ + "/fifo").status(); });
  ASSERT_TRUE(r.has_value()) << "opening a FIFO manifest blocked";
  EXPECT_FALSE(r->ok());
  EXPECT_NE(r->message().find("not a regular file"), std::string::npos) << r->message();
  // A FIFO in place of a directory too.
  ASSERT_EQ(::mkfifo((root_ + "/pipe").c_str(), 0600), 0);
  auto p = WithinBound([this] { return Open(root_ + "/pipe").status(); });
  ASSERT_TRUE(p.has_value()) << "opening a FIFO as a directory blocked";
  EXPECT_FALSE(p->ok());
}

TEST_F(DatasetLocationTest, RefusesOversizedAndNonRegularManifests) {
  fs::create_directories(root_ + "/big");
  { std::ofstream(root_ + "/big/manifest.cce") << "x"; }
  fs::resize_file(root_ + "/big/manifest.cce", (uint64_t{1} << 20) + 1);  // sparse
  auto r = Open(root_ + "/big");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("over the limit"), std::string::npos) << r.status().message();
  EXPECT_TRUE(Open(root_ + "/big", uint64_t{2} << 20).ok());
  fs::create_directories(root_ + "/dir/manifest.cce");
  EXPECT_FALSE(Open(root_ + "/dir").ok());
}

TEST_F(DatasetLocationTest, RefusesControlCharacters) {
  for (const std::string& bad :
       {root_ + "/claims" + std::string(1, '\0'), root_ + "/cla\nims", root_ + "/\x7f"}) {
    auto r = Open(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("control character"), std::string::npos);
  }
}

TEST_F(DatasetLocationTest, ConfigMakesRootsAbsoluteAndRefusesBadOnes) {
  const std::string dir = tmp_ + "/cfg";
  fs::create_directories(dir);
  auto load = [&](const std::string& roots) {
    std::ofstream(dir + "/plane.yaml", std::ios::trunc)
        << "datasets:\n  allowed_roots: " << roots << "\n";
    return LoadConfig(dir);
  };
  auto c = load("[datasets, /srv/data/, \"" + root_ + "\"]");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->dataset_allowed_roots,
            (std::vector<std::string>{dir + "/datasets", "/srv/data", root_}));
  EXPECT_TRUE(load("[]")->dataset_allowed_roots.empty());
  for (const char* bad : {"[/]", "[\"/srv/../etc\"]", "[\"\"]", "[/srv//x]", "datasets"}) {
    auto r = load(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("allowed_roots"), std::string::npos)
        << bad << ": " << r.status().message();
  }
  // The default: DATA_DIR/datasets.
  std::ofstream(dir + "/plane.yaml", std::ios::trunc) << "listen: 127.0.0.1:1\n";
  EXPECT_EQ(LoadConfig(dir)->dataset_allowed_roots, std::vector<std::string>{dir + "/datasets"});
}

// The Catalog over a whole plane (InitPlane), without HTTP.
class CatalogLocationTest : public DatasetLocationTest {
 protected:
  void SetUp() override {
    DatasetLocationTest::SetUp();
    // The plane's own keys lie beneath a root: the attack of finding 1.
    const std::string roots = tmp_ + "/roots";
    world_ = Must(testing::ServiceWorld::Create({
                      .clock = &clock_,
                      .adjust =
                          [&roots](ServiceDeps& d, const std::string& world_tmp) {
                            d.dataset_allowed_roots = {roots, world_tmp + "/plane"};
                            d.dataset_max_manifest_bytes = 65536;
                          },
                  }),
                  "world");
    data_dir_ = world_->init().data_dir;
    services_ = &world_->services();
    pat_ = Must(world_->AddUser("pat", store::Role::kProvider), "user");
  }
  void TearDown() override {
    world_.reset();
    DatasetLocationTest::TearDown();
  }
  StatusOr<api::Dataset> Register(const std::string& name, const std::string& location,
                                  const format::DatasetKey& key) {
    api::RegisterDatasetRequest reg;
    reg.name = name;
    reg.location = location;
    reg.price = "1";
    auto kt = key.EncodeKeyFile();
    reg.key.assign(reinterpret_cast<const char*>(kt.data()), kt.size());
    return services_->catalog.Register(pat_, reg);
  }

  SystemClock clock_;
  std::unique_ptr<testing::ServiceWorld> world_;
  std::string data_dir_;
  Services* services_ = nullptr;
  Caller pat_;
};

TEST_F(CatalogLocationTest, RegistersADatasetBeneathARoot) {
  auto d = Register("claims", "file://" + root_ + "/claims", *key_);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->location, "file://" + root_ + "/claims");
  EXPECT_FALSE(d->dataset_id.empty());
  EXPECT_EQ(d->dataset_version, 1);
}

TEST_F(CatalogLocationTest, EveryRefusedLocationGetsTheSameAnswer) {
  fs::create_directories(root_ + "/fifo");
  ASSERT_EQ(::mkfifo((root_ + "/fifo/manifest.cce").c_str(), 0600), 0);
  fs::create_directory_symlink(tmp_ + "/outside", root_ + "/escape");
  fs::create_directories(root_ + "/big");
  { std::ofstream(root_ + "/big/manifest.cce") << "x"; }
  fs::resize_file(root_ + "/big/manifest.cce", 65537);
  fs::create_directories(root_ + "/dir/manifest.cce");
  fs::create_directories(data_dir_ + "/keys/master.key.d");
  auto other_key = Must(format::DatasetKey::Generate(), "key");
  const std::vector<std::pair<std::string, const format::DatasetKey*>> cases = {
      {"file://" + root_ + "/missing", &*key_},              // does not exist
      {"file:///etc/shadow", &*key_},                        // outside the roots
      {"file:///etc", &*key_},                               // outside, a directory
      {"file://" + tmp_ + "/outside/claims", &*key_},        // a real dataset, outside
      {"file://" + root_ + "/../outside/claims", &*key_},    // '..'
      {"file://" + root_ + "/escape/claims", &*key_},        // a symlink out
      {"file://" + root_ + "/fifo", &*key_},                 // a FIFO manifest
      {"file://" + root_ + "/big", &*key_},                  // oversized
      {"file://" + root_ + "/dir", &*key_},                  // manifest.cce is a directory
      {"file://" + root_ + "/claims/a", &*key_},             // not a directory
      {"file://" + root_ + "/claims", &other_key},           // another key
      {"file://" + data_dir_ + "/keys/master.key", &*key_},  // a file, not a dataset
  };
  std::optional<std::string> first;
  for (const auto& [location, key] : cases) {
    auto r = WithinBound(
        [&, location = location, key = key] { return Register("ds", location, *key).status(); });
    ASSERT_TRUE(r.has_value()) << location << ": registration blocked";
    ASSERT_FALSE(r->ok()) << location;
    EXPECT_EQ(r->code(), StatusCode::kInvalidArgument) << location;
    if (!first) first = r->message();
    EXPECT_EQ(r->message(), *first) << location;
  }
  EXPECT_NE(first->find("body.location"), std::string::npos) << *first;
  EXPECT_EQ(first->find(root_), std::string::npos) << *first;
}

TEST_F(CatalogLocationTest, AStatedDatasetIdOrVersionMustMatchTheManifest) {
  auto reg = [&](const std::string& location, const std::string& id,
                 std::optional<int64_t> version) {
    api::RegisterDatasetRequest r;
    r.name = "claims";
    r.location = location;
    auto kt = key_->EncodeKeyFile();
    r.key.assign(reinterpret_cast<const char*>(kt.data()), kt.size());
    r.dataset_id = id;
    r.dataset_version = version;
    return services_->catalog.Register(pat_, r);
  };
  const std::string location = "file://" + root_ + "/claims";
  auto wrong_id = reg(location, "someone-else", std::nullopt);
  ASSERT_FALSE(wrong_id.ok());
  EXPECT_NE(wrong_id.status().message().find("body.dataset_id"), std::string::npos);
  auto wrong_version = reg(location, "", 2);
  ASSERT_FALSE(wrong_version.ok());
  EXPECT_NE(wrong_version.status().message().find("body.dataset_version: 2"), std::string::npos)
      << wrong_version.status().message();
  auto m = Must(format::ReadManifest(root_ + "/claims", *key_), "manifest");
  auto ok = reg(location, m.dataset_id, 1);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->dataset_id, m.dataset_id);
  // Not opened by the plane: recorded as given.
  auto s3_reg = [&](const std::string& name, const std::string& id, std::optional<int64_t> v) {
    api::RegisterDatasetRequest r;
    r.name = name;
    r.location = "s3://bucket/" + name;
    auto kt = key_->EncodeKeyFile();
    r.key.assign(reinterpret_cast<const char*>(kt.data()), kt.size());
    r.dataset_id = id;
    r.dataset_version = v;
    return services_->catalog.Register(pat_, r);
  };
  auto remote = Must(s3_reg("remote", "remote-2026", 4), "s3");
  EXPECT_EQ(remote.dataset_id, "remote-2026");
  EXPECT_EQ(remote.dataset_version, 4);
  EXPECT_FALSE(s3_reg("bad", std::string("a\0b", 3), 4).ok());
  EXPECT_FALSE(s3_reg("bad", "x", 0).ok());
}

TEST_F(CatalogLocationTest, ANulByteInTheLocationIsRefused) {
  // Finding 1: "file://.../keys/master.key\0" made the plane open that file.
  // Here a NUL after a real dataset's path: without the check the plane
  // would register it.
  auto r = Register("claims", "file://" + root_ + "/claims" + std::string(1, '\0') + "x", *key_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("body.location: control character"), std::string::npos)
      << r.status().message();
  r = Register("claims", "file://" + root_ + "/claims\n", *key_);
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace cce::plane
