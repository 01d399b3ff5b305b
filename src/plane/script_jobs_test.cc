// The ScriptJobs service called directly: a script on a curated (public)
// base becomes a derived image -- exactly the base plus one layer holding
// /job/<script> -- stored in the consumer's scope under its quota, and an
// ordinary job submitted through Jobs::Submit (the same rental check and
// audit). Requests that cannot be served are refused naming the field.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "format/format.h"
#include "image/image.h"
#include "plane/config.h"
#include "plane/plane_testing.h"
#include "plane/service_world.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Must;

class FixedClock : public Clock {
 public:
  int64_t NowUnix() const override { return 1'800'000'000; }
};

std::string Base64(const std::string& in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t n = (static_cast<uint8_t>(in[i]) << 16) |
                       (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kAlphabet[(n >> k) & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t n = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

struct TarEntry {
  std::string path;
  mode_t mode = 0;
  int64_t uid = -1;
  int64_t gid = -1;
  int64_t mtime = -1;
  std::string data;
};

// Every entry of a gzip'd tar, read by libarchive (not by the code under test).
std::vector<TarEntry> ReadLayer(const std::string& gz) {
  std::vector<TarEntry> out;
  struct archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, gz.data(), gz.size()), ARCHIVE_OK);
  struct archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    TarEntry t;
    t.path = archive_entry_pathname(e);
    t.mode = archive_entry_mode(e);
    t.uid = archive_entry_uid(e);
    t.gid = archive_entry_gid(e);
    t.mtime = archive_entry_mtime(e);
    char buf[4096];
    la_ssize_t n = 0;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0)
      t.data.append(buf, static_cast<size_t>(n));
    out.push_back(t);
  }
  archive_read_free(a);
  return out;
}

class ScriptJobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = Must(testing::ServiceWorld::Create({
                      .clock = &clock_,
                      .adjust =
                          [](ServiceDeps& d, const std::string& tmp) {
                            d.dataset_allowed_roots = {tmp};
                            d.image_quota_bytes = 1 << 20;
                            d.script_bases = {
                                {"python-data", "python-data:1", {"/usr/bin/python3"}, "/job"},
                                {"digest-base",
                                 MakeTestImage("python-data-base").manifest_digest(),
                                 {"/bin/sh", "-e"},
                                 "/job"},
                                {"private", "app:1", {"/usr/bin/python3"}, "/job"},
                                {"private-digest",
                                 MakeTestImage("bobs-app").manifest_digest(),
                                 {"/usr/bin/python3"},
                                 "/job"},
                            };
                          },
                  }),
                  "world");
    s_ = &world_->services();
    alice_ = Must(world_->AddUser("alice", store::Role::kConsumer), "user");
    bob_ = Must(world_->AddUser("bob", store::Role::kConsumer), "user");
    olga_ = Must(world_->AddUser("olga", store::Role::kOperator), "user");
    pat_ = Must(world_->AddUser("pat", store::Role::kProvider), "user");
    base_ = MakeTestImage("python-data-base");
    Must(Push(olga_, "library/python-data", "1", base_), "operator's push");
    AddDataset("claims");
    Must(s_->rentals.Rent(alice_, {"claims", 2}), "rent");
  }

  StatusOr<api::StoredBlob> Upload(const Caller& who, const std::string& data) {
    UniqueFd fd(::open(s_->images.blob_upload_dir().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!fd.valid()) return ErrnoStatus("O_TMPFILE", errno);
    if (::write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
      return ErrnoStatus("write", errno);
    }
    return s_->images.PutBlob(who, image::Digest::Of(data).str(), fd.get());
  }
  StatusOr<api::TaggedImage> Push(const Caller& who, const std::string& name,
                                  const std::string& tag, const TestImage& img) {
    RETURN_IF_ERROR(Upload(who, img.config).status());
    RETURN_IF_ERROR(Upload(who, img.layer).status());
    return s_->images.Tag(who, name, tag, img.manifest);
  }
  void AddDataset(const std::string& name) {
    const std::string dir = world_->tmp() + "/" + name;
    fs::create_directories(dir);
    { std::ofstream(dir + "/a.csv") << "id,x\n1,2\n"; }
    auto key = Must(format::DatasetKey::Generate(), "key");
    ASSERT_TRUE(format::EncryptDataset(dir, dir + ".enc", key, {}).ok());
    api::RegisterDatasetRequest reg;
    reg.name = name;
    reg.location = "file://" + dir + ".enc";
    auto kt = key.EncodeKeyFile();
    reg.key.assign(reinterpret_cast<const char*>(kt.data()), kt.size());
    Must(s_->catalog.Register(pat_, reg), "register");
  }
  std::string Blob(const std::string& digest) {
    auto fd = Must(world_->blobs().Open(Must(image::Digest::Parse(digest), "digest")), "open");
    return Must(ReadAll(fd.get(), 64 << 20, digest), "read");
  }

  static api::ScriptJobRequest Request(const std::string& content = "print('hi')\n") {
    api::ScriptJobRequest r;
    r.base = "python-data";
    r.script = {"analysis.py", Base64(content)};
    r.datasets = {{"claims", ""}};
    r.args = {"--rows", "5"};
    return r;
  }
  StatusOr<Jobs::Submitted> Submit(const Caller& who, const api::ScriptJobRequest& r) {
    return s_->script_jobs.Submit(who, r, "");
  }

  FixedClock clock_;
  std::unique_ptr<testing::ServiceWorld> world_;
  Services* s_ = nullptr;
  Caller alice_, bob_, olga_, pat_;
  TestImage base_;
};

TEST_F(ScriptJobsTest, TheDerivedImageIsTheBasePlusOneLayerHoldingTheScript) {
  const std::string script = "import pandas\nprint('hello')\n";
  auto job = Must(Submit(alice_, Request(script)), "submit").job;
  EXPECT_EQ(job.state, "SUBMITTED");
  EXPECT_EQ(job.name, "analysis");

  json manifest = json::parse(Blob(job.image));
  json base_manifest = json::parse(base_.manifest);
  ASSERT_EQ(manifest["layers"].size(), base_manifest["layers"].size() + 1);
  for (size_t i = 0; i < base_manifest["layers"].size(); ++i) {
    EXPECT_EQ(manifest["layers"][i], base_manifest["layers"][i]) << i;  // the base's, unchanged
  }
  const json& added = manifest["layers"].back();
  EXPECT_EQ(added["mediaType"], image::kOciLayerTarGzip);
  const std::string layer = Blob(added["digest"]);
  EXPECT_EQ(added["size"], layer.size());

  // The layer holds exactly /job/analysis.py: root's, 0444, mtime 0.
  auto entries = ReadLayer(layer);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].path, "job/analysis.py");
  EXPECT_EQ(entries[0].mode, S_IFREG | 0444);
  EXPECT_EQ(entries[0].uid, 0);
  EXPECT_EQ(entries[0].gid, 0);
  EXPECT_EQ(entries[0].mtime, 0);
  EXPECT_EQ(entries[0].data, script);

  // The config: the base's, its diff_ids plus the new layer's, WorkingDir
  // /job and no Cmd.
  json config = json::parse(Blob(manifest["config"]["digest"]));
  json base_config = json::parse(base_.config);
  auto diff_ids = config["rootfs"]["diff_ids"];
  ASSERT_EQ(diff_ids.size(), base_config["rootfs"]["diff_ids"].size() + 1);
  EXPECT_EQ(diff_ids.back(), "sha256:" + crypto::ToHex(crypto::Sha256(crypto::AsBytes([&] {
                               // the uncompressed tar, re-read from the gzip
                               std::string tar;
                               struct archive* a = archive_read_new();
                               archive_read_support_filter_gzip(a);
                               archive_read_support_format_raw(a);
                               archive_read_open_memory(a, layer.data(), layer.size());
                               struct archive_entry* e = nullptr;
                               archive_read_next_header(a, &e);
                               char buf[4096];
                               la_ssize_t n = 0;
                               while ((n = archive_read_data(a, buf, sizeof buf)) > 0) {
                                 tar.append(buf, static_cast<size_t>(n));
                               }
                               archive_read_free(a);
                               return tar;
                             }()))));
  EXPECT_EQ(config["config"]["WorkingDir"], "/job");
  EXPECT_FALSE(config["config"].contains("Cmd"));
  EXPECT_EQ(config["architecture"], base_config["architecture"]);
  EXPECT_EQ(config["os"], base_config["os"]);

  // The job runs base command + the script + args, datasets at /data/<name>.
  auto spec = json::parse(Must(world_->db().GetJob(job.id), "job").spec_json)["spec"];
  EXPECT_EQ(spec["command"], json({"/usr/bin/python3", "/job/analysis.py"}));
  EXPECT_EQ(spec["args"], json({"--rows", "5"}));
  EXPECT_EQ(spec["workingDir"], "/job");
  EXPECT_EQ(spec["datasets"], json::parse(R"([{"name":"claims","mountPath":"/data/claims"}])"));
  EXPECT_EQ(spec["image"], job.image);

  // Tagged in alice's scope as script/<job name>:<digest12>.
  auto img = Must(world_->db().GetImage(alice_.user.id, "script/analysis", job.image.substr(7, 12)),
                  "tag");
  EXPECT_EQ(img.digest, job.image);
  EXPECT_FALSE(img.is_public);

  // Deterministic: the same base, script and name give the same digest.
  auto again = Must(Submit(alice_, Request(script)), "again").job;
  EXPECT_NE(again.id, job.id);
  EXPECT_EQ(again.image, job.image);
  auto other = Must(Submit(alice_, Request(script + "#\n")), "other").job;
  EXPECT_NE(other.image, job.image);
}

TEST_F(ScriptJobsTest, TheDerivedImageCountsAgainstTheConsumersQuota) {
  auto job = Must(Submit(alice_, Request()), "submit").job;
  json manifest = json::parse(Blob(job.image));
  const std::string layer = manifest["layers"].back()["digest"];
  const std::string config = manifest["config"]["digest"];
  std::map<std::string, int64_t> mine;
  for (const auto& b : Must(world_->db().ListImageBlobs(alice_.user.id), "blobs")) {
    mine[b.digest] = b.size;
  }
  EXPECT_EQ(mine.size(), 3u);  // the layer, the config, the manifest: not the base's blobs
  EXPECT_EQ(mine[layer], static_cast<int64_t>(Blob(layer).size()));
  EXPECT_EQ(mine[config], static_cast<int64_t>(Blob(config).size()));
  EXPECT_EQ(mine[job.image], static_cast<int64_t>(Blob(job.image).size()));

  // Incompressible content past the 1 MiB quota: refused, no job.
  std::string noise(900'000, '\0');
  uint64_t x = 88172645463325252ull;
  for (char& c : noise) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  auto r = Request();
  r.script.content_base64 = Base64(noise);
  Must(Submit(alice_, r), "first big one fits");
  r.script.content_base64 = Base64(noise + "x");
  auto over = Submit(alice_, r);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted) << over.status().message();
  EXPECT_TRUE(testing::MessageContains(over.status(), "quota"));
  EXPECT_EQ(Must(s_->jobs.List(alice_, {}), "jobs").jobs.size(), 2u);
}

TEST_F(ScriptJobsTest, BadRequestsAreRefusedNamingTheField) {
  struct Case {
    std::function<void(api::ScriptJobRequest&)> change;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {[](auto& r) { r.base = "nope"; }, "body.base: unknown base 'nope'"},
      {[](auto& r) { r.script.name = "../x.py"; }, "body.script.name: '../x.py'"},
      {[](auto& r) { r.script.name = ".hidden.py"; }, "body.script.name"},
      {[](auto& r) { r.script.name = "a b.py"; }, "body.script.name"},
      {[](auto& r) { r.script.name = "run.exe"; }, "body.script.name"},
      {[](auto& r) { r.script.name = std::string(98, 'a') + ".py"; }, "body.script.name"},
      {[](auto& r) { r.script.name = ""; }, "body.script.name"},
      {[](auto& r) { r.script.content_base64 = "aGk"; }, "body.script.content_base64: not base64"},
      {[](auto& r) { r.script.content_base64 = "aG k"; }, "body.script.content_base64: not base64"},
      {[](auto& r) { r.script.content_base64 = "aGl="; }, "body.script.content_base64: not canon"},
      {[](auto& r) { r.script.content_base64 = Base64(std::string((1 << 20) + 1, 'a')); },
       "body.script.content_base64: the script is 1048577 bytes, more than the 1048576"},
      {[](auto& r) { r.datasets[0].mount_path = "/output"; }, "spec.datasets[0].mountPath"},
      {[](auto& r) { r.name = "Bad_Name"; }, "metadata.name"},
      {[](auto& r) {
         r.datasets = {{"unknown-ds", ""}};
       },
       "unknown dataset 'unknown-ds'"},
  };
  for (const auto& c : cases) {
    auto r = Request();
    c.change(r);
    auto out = Submit(alice_, r);
    ASSERT_FALSE(out.ok()) << c.needle;
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << out.status().message();
    EXPECT_TRUE(testing::MessageContains(out.status(), c.needle)) << out.status().message();
  }
  // Exactly 1 MiB is fine; so is .sh.
  auto r = Request(std::string(1 << 20, 'a'));
  r.script.name = "run.sh";
  r.base = "python-data";
  Must(Submit(alice_, r), "1 MiB .sh");
  // Nothing of the refused requests was stored: only that job's image.
  EXPECT_EQ(Must(s_->images.List(alice_), "images").images.size(), 2u);  // + library/python-data
}

TEST_F(ScriptJobsTest, WithoutARentalTheJobsSubmitPathRefusesAndAudits) {
  auto out = Submit(bob_, Request());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kPermissionDenied);
  // Jobs::Submit's own message and audit record (rental.check, deny).
  EXPECT_TRUE(testing::MessageContains(out.status(),
                                       "job spec: spec.datasets[0].name: your "
                                       "rental of 'claims' does not cover"))
      << out.status().message();
  EXPECT_EQ(Must(world_->Denials("rental.check", "dataset:claims"), "denials"), 1);
  EXPECT_TRUE(Must(s_->jobs.List(bob_, {}), "jobs").jobs.empty());
  // The derived image it made for the job is untagged again.
  for (const auto& i : Must(s_->images.List(bob_), "images").images) {
    EXPECT_FALSE(i.name.starts_with("script/")) << i.name;
  }
}

TEST_F(ScriptJobsTest, AcceptedScriptJobsAreAuditedWithBaseScriptAndImage) {
  const std::string script = "print(1)\n";
  auto job = Must(Submit(alice_, Request(script)), "submit").job;
  store::AuditFilter f;
  f.limit = 10000;
  int found = 0;
  for (const auto& e : Must(world_->db().ListAudit(f), "audit")) {
    if (e.record.action != "job.script.submit") continue;
    ++found;
    EXPECT_EQ(e.record.object, "job:" + job.id);
    EXPECT_EQ(e.record.actor, "user:alice");
    EXPECT_EQ(e.record.decision, store::AuditDecision::kAllow);
    json d = json::parse(e.record.details_json);
    EXPECT_EQ(d["base"], "python-data");
    EXPECT_EQ(d["base_image"], base_.manifest_digest());
    EXPECT_EQ(d["script"], "/job/analysis.py");
    EXPECT_EQ(d["script_sha256"], crypto::ToHex(crypto::Sha256(crypto::AsBytes(script))));
    EXPECT_EQ(d["image"], job.image);
  }
  EXPECT_EQ(found, 1);
}

TEST_F(ScriptJobsTest, OnlyPublicImagesAreBasesAndDerivedImagesStayPrivate) {
  // "private" names app:1, which bob pushed: not a base for anyone, bob included.
  TestImage bobs = MakeTestImage("bobs-app");
  Must(Push(bob_, "app", "1", bobs), "bob's push");
  Must(s_->rentals.Rent(bob_, {"claims", 2}), "rent");
  for (const Caller* who : {&alice_, &bob_}) {
    auto r = Request();
    r.base = "private";
    auto out = Submit(*who, r);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_TRUE(testing::MessageContains(out.status(), "no public image library/app:1"))
        << out.status().message();
  }

  // Alice's derived image is alice's: bob can neither probe its blobs nor run it.
  auto job = Must(Submit(alice_, Request("secret_analysis()\n")), "submit").job;
  json manifest = json::parse(Blob(job.image));
  for (const std::string& d : {job.image, manifest["config"]["digest"].get<std::string>(),
                               manifest["layers"].back()["digest"].get<std::string>()}) {
    EXPECT_FALSE(Must(s_->images.BlobStatus(bob_, d), "probe").present) << d;
  }
  auto run = s_->images.ResolveForJob(bob_, ImageDigest{job.image}, "spec.image");
  EXPECT_EQ(run.status().code(), StatusCode::kInvalidArgument);
  // The base's blobs are public, which is what lets alice's manifest name them.
  EXPECT_TRUE(Must(s_->images.BlobStatus(bob_, base_.layer_digest()), "probe").present);
}

TEST_F(ScriptJobsTest, ABaseByDigestMustBeAPublicManifest) {
  auto bases = s_->script_jobs.Bases();
  ASSERT_EQ(bases.bases.size(), 4u);
  EXPECT_EQ(bases.bases[0].name, "python-data");
  EXPECT_EQ(bases.bases[0].image, "python-data:1");
  EXPECT_EQ(bases.bases[0].command, std::vector<std::string>{"/usr/bin/python3"});

  // The public base's manifest digest: fine, and the same image as by name.
  auto r = Request();
  r.base = "digest-base";
  r.script.name = "run.sh";
  auto job = Must(Submit(alice_, r), "by digest").job;
  auto spec = json::parse(Must(world_->db().GetJob(job.id), "job").spec_json)["spec"];
  EXPECT_EQ(spec["command"], json({"/bin/sh", "-e", "/job/run.sh"}));
  // bob's private image by digest: refused for bob as for alice.
  TestImage bobs = MakeTestImage("bobs-app");
  Must(Push(bob_, "app", "1", bobs), "bob's push");
  Must(s_->rentals.Rent(bob_, {"claims", 2}), "rent");
  for (const Caller* who : {&alice_, &bob_}) {
    r.base = "private-digest";
    auto out = Submit(*who, r);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_TRUE(testing::MessageContains(out.status(), "is not the digest of a public image"))
        << out.status().message();
  }
}

// plane.yaml jobs.script_bases: read, rendered back, and checked at load.
TEST(ScriptBasesConfig, AreReadRenderedAndCheckedNamingTheField) {
  const std::string dir = ::testing::TempDir() + "script-bases-config";
  fs::create_directories(dir);
  auto load = [&](const std::string& yaml) {
    { std::ofstream(dir + "/plane.yaml") << yaml; }
    return LoadConfig(dir);
  };
  auto ok = load(
      "jobs:\n  script_bases:\n"
      "    - {name: python-data, image: \"library/python-data:3.11\", command: "
      "[/usr/bin/python3]}\n"
      "    - {name: shell, image: \"sha256:" +
      std::string(64, 'a') + "\", command: [/bin/sh, -e], workdir: /work/scripts}\n");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  ASSERT_EQ(ok->script_bases.size(), 2u);
  EXPECT_EQ(ok->script_bases[0].workdir, "/job");
  EXPECT_EQ(ok->script_bases[1].command, (std::vector<std::string>{"/bin/sh", "-e"}));
  EXPECT_EQ(ok->script_bases[1].workdir, "/work/scripts");
  // RenderConfig writes them so that LoadConfig reads them back.
  { std::ofstream(dir + "/plane.yaml") << RenderConfig(*ok); }
  auto again = LoadConfig(dir);
  ASSERT_TRUE(again.ok()) << again.status().message();
  ASSERT_EQ(again->script_bases.size(), 2u);
  EXPECT_EQ(again->script_bases[1].image, ok->script_bases[1].image);
  EXPECT_EQ(again->script_bases[1].workdir, "/work/scripts");

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{name: Py, image: a:1, command: [x]}", "jobs.script_bases[0].name: 'Py'"},
      {"{name: a, image: a:1, command: []}", "jobs.script_bases[0].command"},
      {"{name: a, image: a:1, command: [\"\"]}", "jobs.script_bases[0].command"},
      {"{name: a, image: \"\", command: [x]}", "jobs.script_bases[0].image"},
      {"{name: a, image: a:1, command: [x], workdir: job}", "jobs.script_bases[0].workdir"},
      {"{name: a, image: a:1, command: [x], workdir: /a/../b}", "jobs.script_bases[0].workdir"},
      {"{name: a, image: a:1, command: [x], workdir: /}", "jobs.script_bases[0].workdir"},
      {"{name: a, image: a:1, command: [x], user: root}", "jobs.script_bases[0].user: unknown"},
      {"{name: a, image: a:1, command: [x]}, {name: a, image: b:1, command: [x]}",
       "jobs.script_bases[1].name: 'a' is used by an earlier base"},
  };
  for (const auto& [items, needle] : bad) {
    auto r = load("jobs:\n  script_bases: [" + items + "]\n");
    ASSERT_FALSE(r.ok()) << items;
    EXPECT_TRUE(testing::MessageContains(r.status(), needle)) << r.status().message();
  }
  fs::remove_all(dir);
}
}  // namespace
}  // namespace cce::plane
