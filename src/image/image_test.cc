#include "image/image.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "image/image_testing.h"

namespace cce::image {

// gtest printers (found by ADL), so failures show digests, not bytes.
void PrintTo(const Digest& d, std::ostream* os) {
  *os << (d.empty() ? "(empty)" : d.str());
}
void PrintTo(const Descriptor& d, std::ostream* os) {
  *os << "{" << d.media_type << ", " << d.digest.str() << ", " << d.size << "}";
}

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::DescriptorJson;
using testing::Dir;
using testing::ExpectError;
using testing::File;
using testing::Gzip;
using testing::Hex;
using testing::MakeTar;
using testing::RandomData;
using testing::Symlink;
using testing::TarMember;
using testing::TempDir;
using testing::WriteFile;

// ---------------------------------------------------------------------------
// Fixtures, built at test time.

struct ImageSpec {
  std::string os = "linux";
  std::string arch = "amd64";
  uint64_t seed = 1;
  int layer_count = 2;
  bool gzip_layers = false;
  std::string layer_media_type = "";  // overrides the natural one if set
  int64_t layer0_size_delta = 0;      // makes the manifest lie about layer 0's size
  bool wrong_diff_id = false;
};

// A small image: layers are real tars, the manifest is compact JSON with
// sorted keys (the same form the docker-archive conversion produces).
struct TestImage {
  std::vector<std::string> layers;  // blob bytes (compressed if gzip)
  std::vector<std::string> layer_tars;
  std::string config;
  std::string manifest;

  Descriptor ManifestDescriptor() const {
    return {kOciManifest, Digest::Of(manifest), manifest.size()};
  }
  Digest ConfigDigest() const { return Digest::Of(config); }
  std::map<std::string, std::string> Blobs() const {
    std::map<std::string, std::string> blobs;
    for (const std::string& l : layers) blobs[Hex(l)] = l;
    blobs[Hex(config)] = config;
    blobs[Hex(manifest)] = manifest;
    return blobs;
  }
};

TestImage MakeImage(const ImageSpec& spec = {}) {
  TestImage img;
  json diff_ids = json::array();
  for (int i = 0; i < spec.layer_count; ++i) {
    std::string tag = std::to_string(spec.seed) + "-" + std::to_string(i);
    std::string tar = MakeTar(
        {Dir("etc/"), File("etc/layer-" + tag, "layer " + tag + "\n"),
         File("bin/tool-" + tag, RandomData(3000, spec.seed * 100 + static_cast<uint64_t>(i)))});
    img.layer_tars.push_back(tar);
    img.layers.push_back(spec.gzip_layers ? Gzip(tar) : tar);
    diff_ids.push_back(Digest::Of(tar).str());
  }
  if (spec.wrong_diff_id) diff_ids[0] = Digest::Of("not the layer").str();
  img.config = json{{"architecture", spec.arch},
                    {"os", spec.os},
                    {"config", {{"Cmd", {"/bin/tool"}}, {"Env", {"PATH=/bin"}}}},
                    {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}}
                   .dump();
  json layers = json::array();
  for (size_t i = 0; i < img.layers.size(); ++i) {
    std::string type = spec.layer_media_type;
    if (type.empty()) type = spec.gzip_layers ? kOciLayerTarGzip : kOciLayerTar;
    json d = DescriptorJson(type, img.layers[i]);
    if (i == 0) {
      d["size"] = static_cast<uint64_t>(static_cast<int64_t>(img.layers[i].size()) +
                                        spec.layer0_size_delta);
    }
    layers.push_back(d);
  }
  img.manifest = json{
      {"schemaVersion", 2},
      {"mediaType", kOciManifest},
      {"config", DescriptorJson(kOciConfig, img.config)},
      {"layers",
       layers}}.dump();
  return img;
}

struct IndexRef {
  Descriptor descriptor;
  std::string platform;  // "os/arch[/variant]" or empty
  std::string ref_name;
};

std::string IndexJson(const std::vector<IndexRef>& refs) {
  json manifests = json::array();
  for (const IndexRef& r : refs) {
    json d = {{"mediaType", r.descriptor.media_type},
              {"digest", r.descriptor.digest.str()},
              {"size", r.descriptor.size}};
    if (!r.platform.empty()) {
      size_t a = r.platform.find('/');
      size_t b = r.platform.find('/', a + 1);
      d["platform"] = {
          {"os", r.platform.substr(0, a)},
          {"architecture",
           r.platform.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1)}};
      if (b != std::string::npos) d["platform"]["variant"] = r.platform.substr(b + 1);
    }
    if (!r.ref_name.empty()) d["annotations"] = {{"org.opencontainers.image.ref.name", r.ref_name}};
    manifests.push_back(d);
  }
  return json{{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", manifests}}.dump();
}

const std::string kOciLayoutFile = R"({"imageLayoutVersion":"1.0.0"})";

std::vector<TarMember> LayoutMembers(const std::map<std::string, std::string>& blobs,
                                     const std::string& index_json) {
  std::vector<TarMember> m = {File("oci-layout", kOciLayoutFile), File("index.json", index_json),
                              Dir("blobs/"), Dir("blobs/sha256/")};
  for (const auto& [hex, data] : blobs) m.push_back(File("blobs/sha256/" + hex, data));
  return m;
}

void WriteLayout(const std::string& dir, const std::map<std::string, std::string>& blobs,
                 const std::string& index_json) {
  for (const TarMember& m : LayoutMembers(blobs, index_json)) {
    if (m.kind == TarMember::Kind::kFile) WriteFile(fs::path(dir) / m.name, m.data);
  }
}

std::string SimpleIndex(const TestImage& img, const std::string& ref = "1.0") {
  return IndexJson({{img.ManifestDescriptor(), "linux/amd64", ref}});
}

// `docker save` before Docker 25: <v1 id>/layer.tar, <config hex>.json.
std::vector<TarMember> DockerLegacyMembers(const TestImage& img,
                                           const std::string& tag = "example.com/app:1") {
  std::vector<TarMember> m;
  json layer_names = json::array();
  for (size_t i = 0; i < img.layers.size(); ++i) {
    std::string v1 = Hex("v1 id " + std::to_string(i) + img.config);
    m.push_back(Dir(v1 + "/"));
    m.push_back(File(v1 + "/VERSION", "1.0"));
    m.push_back(File(v1 + "/json", json{{"id", v1}}.dump()));
    m.push_back(File(v1 + "/layer.tar", img.layers[i]));
    layer_names.push_back(v1 + "/layer.tar");
  }
  m.push_back(File(Hex(img.config) + ".json", img.config));
  m.push_back(File("manifest.json", json::array({{{"Config", Hex(img.config) + ".json"},
                                                  {"RepoTags", {tag}},
                                                  {"Layers", layer_names}}})
                                        .dump()));
  m.push_back(File("repositories", R"({"example.com/app":{"1":"x"}})"));
  return m;
}

// `docker save` since Docker 25: an OCI layout plus manifest.json naming
// blobs/sha256/<hex>.
std::vector<TarMember> DockerBlobsMembers(const TestImage& img,
                                          const std::string& tag = "example.com/app:1") {
  std::vector<TarMember> m = LayoutMembers(img.Blobs(), SimpleIndex(img, "1"));
  json layer_names = json::array();
  for (const std::string& l : img.layers) layer_names.push_back("blobs/sha256/" + Hex(l));
  m.push_back(File("manifest.json", json::array({{{"Config", "blobs/sha256/" + Hex(img.config)},
                                                  {"RepoTags", {tag}},
                                                  {"Layers", layer_names}}})
                                        .dump()));
  return m;
}

void ExpectImage(const LocalImage& got, const TestImage& want) {
  EXPECT_EQ(got.manifest.digest, Digest::Of(want.manifest));
  EXPECT_EQ(got.manifest.media_type, kOciManifest);
  EXPECT_EQ(got.manifest_json, want.manifest);
  EXPECT_EQ(got.config.digest, want.ConfigDigest());
  EXPECT_EQ(got.config.size, want.config.size());
  EXPECT_EQ(got.config_json, want.config);
  ASSERT_EQ(got.layers.size(), want.layers.size());
  uint64_t total = want.manifest.size() + want.config.size();
  for (size_t i = 0; i < want.layers.size(); ++i) {
    EXPECT_EQ(got.layers[i].digest, Digest::Of(want.layers[i])) << i;
    EXPECT_EQ(got.layers[i].size, want.layers[i].size()) << i;
    total += want.layers[i].size();
  }
  EXPECT_EQ(got.total_size, total);
}

// Every blob ForEachBlob yields, read to the end, by digest; order recorded.
struct Collected {
  std::vector<Descriptor> order;
  std::map<Digest, std::string> content;
};
StatusOr<Collected> CollectBlobs(const LocalImage& image) {
  Collected c;
  Status s = image.ForEachBlob([&](const Descriptor& d, ByteSource& src) -> Status {
    std::string data;
    std::vector<uint8_t> buf(4096);
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, src.Read(buf));
      if (n == 0) break;
      data.append(reinterpret_cast<const char*>(buf.data()), n);
    }
    c.order.push_back(d);
    c.content[d.digest] = data;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return c;
}

void ExpectBlobsMatch(const LocalImage& image) {
  auto c = CollectBlobs(image);
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_GE(c->order.size(), 3u);
  EXPECT_EQ(c->order.front(), image.config);
  EXPECT_EQ(c->order.back(), image.manifest);
  std::set<Digest> expected{image.config.digest, image.manifest.digest};
  for (const Descriptor& l : image.layers) expected.insert(l.digest);
  EXPECT_EQ(c->order.size(), expected.size());
  for (const auto& [digest, data] : c->content) {
    EXPECT_TRUE(expected.count(digest)) << digest.str();
    EXPECT_EQ(Digest::Of(data), digest);
  }
  EXPECT_EQ(c->content[image.manifest.digest], image.manifest_json);
}

std::string FlipByte(std::string s, size_t at) {
  s[at] = static_cast<char>(s[at] ^ 0x40);
  return s;
}

// ---------------------------------------------------------------------------
// Reading each format

TEST(ReadLocalImage, ReadsAnOciLayoutDirectory) {
  TempDir dir("image-test");
  TestImage img = MakeImage();
  WriteLayout(dir.path(), img.Blobs(), SimpleIndex(img, "1.0"));
  auto got = ReadLocalImage(dir.path());
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->format, ImageFormat::kOciLayout);
  ExpectImage(*got, img);
  EXPECT_EQ(got->repo_tags, std::vector<std::string>{"1.0"});
  ExpectBlobsMatch(*got);
}

TEST(ReadLocalImage, ReadsAnOciArchivePlainAndGzipped) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 2});
  for (bool gzip : {false, true}) {
    std::string path = dir.path() + (gzip ? "/img.tar.gz" : "/img.tar");
    WriteFile(path, MakeTar(LayoutMembers(img.Blobs(), SimpleIndex(img)), gzip));
    auto got = ReadLocalImage(path);
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_EQ(got->format, ImageFormat::kOciArchive);
    ExpectImage(*got, img);
    ExpectBlobsMatch(*got);
  }
}

TEST(ReadLocalImage, ArchiveMemberNamesMayStartWithDotSlash) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 3});
  std::vector<TarMember> members = LayoutMembers(img.Blobs(), SimpleIndex(img));
  for (TarMember& m : members) m.name = "./" + m.name;
  std::string path = dir.path() + "/img.tar";
  WriteFile(path, MakeTar(members));
  auto got = ReadLocalImage(path);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ExpectImage(*got, img);
  ExpectBlobsMatch(*got);
}

// The manifest a docker-archive converts to, written out by hand: the
// documented form (docs/images.md), independent of the JSON library.
std::string ExpectedConvertedManifest(const TestImage& img, const std::string& layer_type) {
  auto desc = [](const std::string& type, const std::string& data) {
    return R"({"digest":")" + Digest::Of(data).str() + R"(","mediaType":")" + type +
           R"(","size":)" + std::to_string(data.size()) + "}";
  };
  std::string layers;
  for (const std::string& l : img.layers)
    layers += (layers.empty() ? "" : ",") + desc(layer_type, l);
  return R"({"config":)" + desc(kOciConfig, img.config) + R"(,"layers":[)" + layers +
         R"(],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2})";
}

TEST(ReadLocalImage, ConvertsALegacyDockerArchive) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 4});
  std::string path = dir.path() + "/docker.tar";
  WriteFile(path, MakeTar(DockerLegacyMembers(img)));
  auto got = ReadLocalImage(path);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->format, ImageFormat::kDockerArchive);
  EXPECT_EQ(got->manifest_json, ExpectedConvertedManifest(img, kOciLayerTar));
  // The fixture's OCI manifest has the same canonical form, so the
  // converted image is the very same image.
  ExpectImage(*got, img);
  EXPECT_EQ(got->config.media_type, kOciConfig);
  for (const Descriptor& l : got->layers) EXPECT_EQ(l.media_type, kOciLayerTar);
  EXPECT_EQ(got->repo_tags, std::vector<std::string>{"example.com/app:1"});
  ExpectBlobsMatch(*got);
}

TEST(ReadLocalImage, ReadsADockerArchiveWithBlobsLayout) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 5});
  std::string path = dir.path() + "/docker25.tar";
  WriteFile(path, MakeTar(DockerBlobsMembers(img)));

  // Both an OCI layout and manifest.json: read as OCI by default...
  auto as_oci = ReadLocalImage(path);
  ASSERT_TRUE(as_oci.ok()) << as_oci.status().message();
  EXPECT_EQ(as_oci->format, ImageFormat::kOciArchive);
  ExpectImage(*as_oci, img);

  // ...and through manifest.json on request, to the same digests.
  ReadOptions docker;
  docker.format = ImageFormat::kDockerArchive;
  auto as_docker = ReadLocalImage(path, docker);
  ASSERT_TRUE(as_docker.ok()) << as_docker.status().message();
  EXPECT_EQ(as_docker->format, ImageFormat::kDockerArchive);
  ExpectImage(*as_docker, img);
  EXPECT_EQ(as_docker->repo_tags, std::vector<std::string>{"example.com/app:1"});
  ExpectBlobsMatch(*as_docker);

  // Without the OCI files it is a plain docker-archive.
  std::vector<TarMember> members;
  for (const TarMember& m : DockerBlobsMembers(img)) {
    if (m.name != "oci-layout" && m.name != "index.json") members.push_back(m);
  }
  WriteFile(path, MakeTar(members));
  auto plain = ReadLocalImage(path);
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_EQ(plain->format, ImageFormat::kDockerArchive);
  ExpectImage(*plain, img);
}

TEST(ReadLocalImage, DockerConversionIsDeterministic) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 6, .layer_count = 3});
  // Same image, different member order, tags and v1 ids: same manifest.
  std::vector<TarMember> a = DockerLegacyMembers(img, "a:1");
  std::vector<TarMember> b = DockerLegacyMembers(img, "b:2");
  std::reverse(b.begin(), b.end());
  WriteFile(dir.path() + "/a.tar", MakeTar(a));
  WriteFile(dir.path() + "/b.tar", MakeTar(b));
  auto first = ReadLocalImage(dir.path() + "/a.tar");
  auto again = ReadLocalImage(dir.path() + "/a.tar");
  auto other = ReadLocalImage(dir.path() + "/b.tar");
  ASSERT_TRUE(first.ok() && again.ok() && other.ok());
  EXPECT_EQ(first->manifest_json, again->manifest_json);
  EXPECT_EQ(first->manifest_json, other->manifest_json);
  EXPECT_EQ(first->manifest.digest, other->manifest.digest);
  EXPECT_EQ(other->repo_tags, std::vector<std::string>{"b:2"});
}

TEST(ReadLocalImage, DockerArchiveFollowsSymlinkedLayers) {
  // skopeo and docker write a layer once and link duplicates to it.
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 7, .layer_count = 1});
  std::string layer_hex = Hex(img.layers[0]);
  std::vector<TarMember> m = {
      File(layer_hex + ".tar", img.layers[0]), Dir("v1/"),
      Symlink("v1/layer.tar", "../" + layer_hex + ".tar"),
      File(Hex(img.config) + ".json", img.config),
      File("manifest.json", json::array({{{"Config", Hex(img.config) + ".json"},
                                          {"RepoTags", nullptr},
                                          {"Layers", {"v1/layer.tar"}}}})
                                .dump())};
  std::string path = dir.path() + "/linked.tar";
  WriteFile(path, MakeTar(m));
  auto got = ReadLocalImage(path);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ExpectImage(*got, img);
  EXPECT_TRUE(got->repo_tags.empty());
  ExpectBlobsMatch(*got);
}

TEST(ReadLocalImage, ArchiveHardlinksResolveToTheirTarget) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 34});
  std::vector<TarMember> m = LayoutMembers(img.Blobs(), SimpleIndex(img));
  for (TarMember& member : m) {
    if (member.data == img.layers[0]) {
      member.kind = TarMember::Kind::kHardlink;
      member.link = "store/layer0";
      member.data.clear();
    }
  }
  m.insert(m.begin(), File("store/layer0", img.layers[0]));
  std::string path = dir.path() + "/hard.tar";
  WriteFile(path, MakeTar(m));
  auto got = ReadLocalImage(path);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ExpectImage(*got, img);
  ExpectBlobsMatch(*got);
}

TEST(ReadLocalImage, LargeLayersStreamAndLargeConfigsAreRefused) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 35, .layer_count = 1});
  // Re-make the layer bigger than the in-memory threshold.
  std::string big = MakeTar({File("blob.bin", RandomData((5 << 20) + 123, 35))});
  json config = json::parse(img.config);
  config["rootfs"]["diff_ids"] = {Digest::Of(big).str()};
  img.layers = {big};
  img.config = config.dump();
  img.manifest = json{{"schemaVersion", 2},
                      {"mediaType", kOciManifest},
                      {"config", DescriptorJson(kOciConfig, img.config)},
                      {"layers", {DescriptorJson(kOciLayerTar, big)}}}
                     .dump();
  WriteFile(dir.path() + "/oci.tar", MakeTar(LayoutMembers(img.Blobs(), SimpleIndex(img))));
  WriteFile(dir.path() + "/docker.tar", MakeTar(DockerLegacyMembers(img)));
  for (const char* name : {"/oci.tar", "/docker.tar"}) {
    SCOPED_TRACE(name);
    auto got = ReadLocalImage(dir.path() + name);
    ASSERT_TRUE(got.ok()) << got.status().message();
    ExpectImage(*got, img);
    ExpectBlobsMatch(*got);
  }

  // A docker config over 4 MiB is never taken into memory.
  config["padding"] = std::string(kMaxJsonBytes, 'x');
  img.config = config.dump();
  WriteFile(dir.path() + "/fat.tar", MakeTar(DockerLegacyMembers(img)));
  ExpectError(ReadLocalImage(dir.path() + "/fat.tar"), StatusCode::kInvalidArgument,
              {Hex(img.config) + ".json (config)", "larger than the limit"});
}

TEST(ReadLocalImage, DockerArchiveWithGzipLayersKeepsTheirMediaType) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 8, .gzip_layers = true});
  std::string path = dir.path() + "/gz.tar";
  WriteFile(path, MakeTar(DockerLegacyMembers(img)));
  auto got = ReadLocalImage(path);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->manifest_json, ExpectedConvertedManifest(img, kOciLayerTarGzip));
  for (const Descriptor& l : got->layers) EXPECT_EQ(l.media_type, kOciLayerTarGzip);
}

TEST(ReadLocalImage, DockerArchiveWithSeveralImagesNeedsATag) {
  TempDir dir("image-test");
  TestImage a = MakeImage({.seed = 9});
  TestImage b = MakeImage({.seed = 10});
  std::vector<TarMember> ma = DockerLegacyMembers(a, "a:1");
  std::vector<TarMember> mb = DockerLegacyMembers(b, "b:1");
  json both = json::parse(ma.at(ma.size() - 2).data);
  both.push_back(json::parse(mb.at(mb.size() - 2).data)[0]);
  std::vector<TarMember> members;
  for (const auto* list : {&ma, &mb}) {
    for (const TarMember& m : *list) {
      if (m.name != "manifest.json" && m.name != "repositories") members.push_back(m);
    }
  }
  members.push_back(File("manifest.json", both.dump()));
  std::string path = dir.path() + "/two.tar";
  WriteFile(path, MakeTar(members));
  ExpectError(ReadLocalImage(path), StatusCode::kInvalidArgument, {"2 images", "'a:1'", "'b:1'"});
  ReadOptions pick;
  pick.ref_name = "b:1";
  auto got = ReadLocalImage(path, pick);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ExpectImage(*got, b);
  pick.ref_name = "c:1";
  ExpectError(ReadLocalImage(path, pick), StatusCode::kNotFound, {"'c:1'"});
}

// ---------------------------------------------------------------------------
// Tampering: each flipped byte is caught, naming the blob and both digests

struct FlipCase {
  const char* role;
  std::function<std::string(const TestImage&)> victim;
};

TEST(ReadLocalImage, FlippedByteInAnyOciBlobNamesTheBlobAndBothDigests) {
  TestImage img = MakeImage({.seed = 11});
  std::vector<FlipCase> cases = {
      {"layer 1", [](const TestImage& i) { return i.layers[1]; }},
      {"config", [](const TestImage& i) { return i.config; }},
      {"manifest", [](const TestImage& i) { return i.manifest; }},
  };
  for (const FlipCase& c : cases) {
    SCOPED_TRACE(c.role);
    std::string original = c.victim(img);
    std::string flipped = FlipByte(original, original.size() / 2);
    auto blobs = img.Blobs();
    blobs[Hex(original)] = flipped;
    std::string needles_blob = "blobs/sha256/" + Hex(original);

    TempDir dir("image-test");
    WriteLayout(dir.path() + "/layout", blobs, SimpleIndex(img));
    ExpectError(ReadLocalImage(dir.path() + "/layout"), StatusCode::kDataLoss,
                {needles_blob, std::string("(") + c.role + ")", Digest::Of(original).str(),
                 Digest::Of(flipped).str()});

    WriteFile(dir.path() + "/img.tar", MakeTar(LayoutMembers(blobs, SimpleIndex(img))));
    ExpectError(ReadLocalImage(dir.path() + "/img.tar"), StatusCode::kDataLoss,
                {needles_blob, Digest::Of(original).str(), Digest::Of(flipped).str()});
  }
}

TEST(ReadLocalImage, FlippedByteInADockerLayerOrConfig) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 12});
  // Layer: its digest no longer matches the config's diff_id.
  std::vector<TarMember> m = DockerLegacyMembers(img);
  for (TarMember& member : m) {
    if (member.data == img.layers[1]) member.data = FlipByte(member.data, 700);
  }
  WriteFile(dir.path() + "/layer.tar", MakeTar(m));
  ExpectError(ReadLocalImage(dir.path() + "/layer.tar"), StatusCode::kDataLoss,
              {"layer.tar (layer 1)", Digest::Of(img.layers[1]).str(),
               Digest::Of(FlipByte(img.layers[1], 700)).str()});

  // Config: its name claims its digest.
  m = DockerLegacyMembers(img);
  std::string flipped_config = FlipByte(img.config, 5);
  for (TarMember& member : m) {
    if (member.data == img.config) member.data = flipped_config;
  }
  WriteFile(dir.path() + "/config.tar", MakeTar(m));
  ExpectError(ReadLocalImage(dir.path() + "/config.tar"), StatusCode::kDataLoss,
              {Hex(img.config) + ".json (config)", img.ConfigDigest().str(),
               Digest::Of(flipped_config).str()});
}

TEST(ReadLocalImage, FlippedByteInANewerDockerArchiveBlob) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 13});
  std::vector<TarMember> m = DockerBlobsMembers(img);
  std::string flipped = FlipByte(img.layers[0], 100);
  for (TarMember& member : m) {
    if (member.data == img.layers[0]) member.data = flipped;
  }
  WriteFile(dir.path() + "/d.tar", MakeTar(m));
  ReadOptions docker;
  docker.format = ImageFormat::kDockerArchive;
  ExpectError(ReadLocalImage(dir.path() + "/d.tar", docker), StatusCode::kDataLoss,
              {"blobs/sha256/" + Hex(img.layers[0]), Digest::Of(img.layers[0]).str(),
               Digest::Of(flipped).str()});
}

TEST(ReadLocalImage, SizeMismatchIsAnError) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 14, .layer0_size_delta = 1});
  WriteLayout(dir.path(), img.Blobs(), SimpleIndex(img));
  ExpectError(ReadLocalImage(dir.path()), StatusCode::kDataLoss,
              {"blobs/sha256/" + Hex(img.layers[0]), "(layer 0)", "size mismatch",
               std::to_string(img.layers[0].size() + 1) + " bytes",
               "blob has " + std::to_string(img.layers[0].size())});
  // The index's descriptor for the manifest is checked the same way.
  TestImage ok = MakeImage({.seed = 14});
  Descriptor lying = ok.ManifestDescriptor();
  lying.size -= 1;
  WriteLayout(dir.path() + "/2", ok.Blobs(), IndexJson({{lying, "linux/amd64", ""}}));
  ExpectError(ReadLocalImage(dir.path() + "/2"), StatusCode::kDataLoss,
              {"(manifest)", "size mismatch"});
}

TEST(ReadLocalImage, MissingBlobIsAnError) {
  TestImage img = MakeImage({.seed = 15});
  for (const std::string& missing : {img.layers[1], img.config, img.manifest}) {
    auto blobs = img.Blobs();
    blobs.erase(Hex(missing));
    TempDir dir("image-test");
    WriteLayout(dir.path() + "/l", blobs, SimpleIndex(img));
    ExpectError(ReadLocalImage(dir.path() + "/l"), StatusCode::kNotFound,
                {"blobs/sha256/" + Hex(missing), "missing"});
    WriteFile(dir.path() + "/a.tar", MakeTar(LayoutMembers(blobs, SimpleIndex(img))));
    ExpectError(ReadLocalImage(dir.path() + "/a.tar"), StatusCode::kNotFound,
                {"blobs/sha256/" + Hex(missing), "missing"});
  }
  // docker-archive: a layer named in manifest.json that is not there.
  TempDir dir("image-test");
  std::vector<TarMember> m;
  for (const TarMember& member : DockerLegacyMembers(img)) {
    if (member.data != img.layers[0]) m.push_back(member);
  }
  WriteFile(dir.path() + "/d.tar", MakeTar(m));
  ExpectError(ReadLocalImage(dir.path() + "/d.tar"), StatusCode::kNotFound,
              {"layer.tar (layer 0)", "missing"});
}

TEST(ReadLocalImage, UncompressedLayerMustMatchItsDiffId) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 16, .wrong_diff_id = true});
  WriteLayout(dir.path(), img.Blobs(), SimpleIndex(img));
  ExpectError(ReadLocalImage(dir.path()), StatusCode::kDataLoss,
              {"rootfs.diff_ids[0]", Digest::Of(img.layers[0]).str()});
}

// ---------------------------------------------------------------------------
// Platform selection

TEST(ReadLocalImage, WrongPlatformIsRejected) {
  TempDir dir("image-test");
  TestImage arm = MakeImage({.arch = "arm64", .seed = 17});
  WriteLayout(dir.path() + "/declared", arm.Blobs(),
              IndexJson({{arm.ManifestDescriptor(), "linux/arm64", ""}}));
  ExpectError(ReadLocalImage(dir.path() + "/declared"), StatusCode::kInvalidArgument,
              {"no linux/amd64 image", "linux/arm64 " + arm.ManifestDescriptor().digest.str()});

  // No platform in the index: the config has the last word.
  WriteLayout(dir.path() + "/undeclared", arm.Blobs(),
              IndexJson({{arm.ManifestDescriptor(), "", ""}}));
  ExpectError(ReadLocalImage(dir.path() + "/undeclared"), StatusCode::kInvalidArgument,
              {"blobs/sha256/" + Hex(arm.config), "'linux/arm64'", "expected 'linux/amd64'"});

  TestImage windows = MakeImage({.os = "windows", .seed = 18});
  WriteLayout(dir.path() + "/win", windows.Blobs(),
              IndexJson({{windows.ManifestDescriptor(), "linux/amd64", ""}}));
  ExpectError(ReadLocalImage(dir.path() + "/win"), StatusCode::kInvalidArgument,
              {"'windows/amd64'"});
}

TEST(ReadLocalImage, MultiPlatformIndexChoosesAmd64) {
  TempDir dir("image-test");
  TestImage amd = MakeImage({.seed = 19});
  TestImage arm = MakeImage({.arch = "arm64", .seed = 20});
  // Only the amd64 image's blobs are present: the others are never touched.
  std::string index = IndexJson({{arm.ManifestDescriptor(), "linux/arm64/v8", ""},
                                 {amd.ManifestDescriptor(), "linux/amd64", ""},
                                 {arm.ManifestDescriptor(), "linux/arm/v7", ""}});
  WriteLayout(dir.path() + "/flat", amd.Blobs(), index);
  auto flat = ReadLocalImage(dir.path() + "/flat");
  ASSERT_TRUE(flat.ok()) << flat.status().message();
  ExpectImage(*flat, amd);

  // The same list as a nested index behind index.json, as buildx writes it.
  std::string nested = IndexJson({{arm.ManifestDescriptor(), "linux/arm64", ""},
                                  {amd.ManifestDescriptor(), "linux/amd64", ""},
                                  {arm.ManifestDescriptor(), "unknown/unknown", ""}});
  auto blobs = amd.Blobs();
  blobs[Hex(nested)] = nested;
  WriteLayout(dir.path() + "/nested", blobs,
              IndexJson({{{kOciIndex, Digest::Of(nested), nested.size()}, "", "app:2"}}));
  auto got = ReadLocalImage(dir.path() + "/nested");
  ASSERT_TRUE(got.ok()) << got.status().message();
  ExpectImage(*got, amd);
  EXPECT_EQ(got->repo_tags, std::vector<std::string>{"app:2"});

  // A tampered nested index is caught like any blob.
  blobs[Hex(nested)] = FlipByte(nested, 10);
  WriteLayout(dir.path() + "/nested-bad", blobs,
              IndexJson({{{kOciIndex, Digest::Of(nested), nested.size()}, "", ""}}));
  ExpectError(ReadLocalImage(dir.path() + "/nested-bad"), StatusCode::kDataLoss,
              {"(index)", Digest::Of(nested).str()});
}

TEST(ReadLocalImage, SeveralAmd64ImagesAreAmbiguousUnlessNamed) {
  TempDir dir("image-test");
  TestImage a = MakeImage({.seed = 21});
  TestImage b = MakeImage({.seed = 22});
  auto blobs = a.Blobs();
  blobs.merge(b.Blobs());
  WriteLayout(dir.path(), blobs,
              IndexJson({{a.ManifestDescriptor(), "linux/amd64", "a"},
                         {b.ManifestDescriptor(), "linux/amd64", "b"}}));
  ExpectError(ReadLocalImage(dir.path()), StatusCode::kInvalidArgument,
              {"several", a.ManifestDescriptor().digest.str(), b.ManifestDescriptor().digest.str(),
               "'a'", "'b'"});
  ReadOptions pick;
  pick.ref_name = "b";
  auto got = ReadLocalImage(dir.path(), pick);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ExpectImage(*got, b);
  pick.ref_name = "c";
  ExpectError(ReadLocalImage(dir.path(), pick), StatusCode::kNotFound, {"'c'", "'a'", "'b'"});
}

// ---------------------------------------------------------------------------
// Hostile archives and documents

TEST(ReadLocalImage, PathTraversalInAnArchiveIsRejected) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 23});
  struct Case {
    TarMember evil;
    std::string needle;
  };
  std::vector<Case> cases = {
      {File("../evil", "x"), "'..' path component"},
      {File("blobs/../../evil", "x"), "'..' path component"},
      {File("/etc/evil", "x"), "absolute path"},
      {Symlink("link", "/etc/passwd"), "absolute target"},
      {Symlink("blobs/sha256/link", "../../../etc/passwd"), "escapes the archive"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.evil.name);
    std::vector<TarMember> m = LayoutMembers(img.Blobs(), SimpleIndex(img));
    m.insert(m.begin() + 2, c.evil);
    std::string path = dir.path() + "/evil.tar";
    WriteFile(path, MakeTar(m));
    ExpectError(ReadLocalImage(path), StatusCode::kInvalidArgument, {c.needle});
  }
  // A docker manifest.json cannot point outside either.
  std::vector<TarMember> m = DockerLegacyMembers(img);
  m.back() =
      File("manifest.json", json::array({{{"Config", "../x.json"}, {"Layers", {"a"}}}}).dump());
  m.erase(m.end() - 2);  // keep manifest.json last
  WriteFile(dir.path() + "/d.tar", MakeTar(m));
  ExpectError(ReadLocalImage(dir.path() + "/d.tar"), StatusCode::kInvalidArgument, {"'..'"});
}

TEST(ReadLocalImage, DuplicateArchiveMembersAreRejected) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 24});
  std::vector<TarMember> m = LayoutMembers(img.Blobs(), SimpleIndex(img));
  m.push_back(File("./index.json", SimpleIndex(img)));
  WriteFile(dir.path() + "/dup.tar", MakeTar(m));
  ExpectError(ReadLocalImage(dir.path() + "/dup.tar"), StatusCode::kInvalidArgument,
              {"'index.json' appears more than once"});
}

// Writes an OCI layout whose manifest is `manifest` (config/layers of img).
void WriteLayoutWithManifest(const std::string& dir, const TestImage& img,
                             const std::string& manifest,
                             const std::string& media_type = kOciManifest) {
  auto blobs = img.Blobs();
  blobs[Hex(manifest)] = manifest;
  WriteLayout(
      dir, blobs,
      IndexJson({{{media_type, Digest::Of(manifest), manifest.size()}, "linux/amd64", ""}}));
}

TEST(ReadLocalImage, RejectsUnsupportedDocuments) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 25});
  json base = json::parse(img.manifest);
  struct Case {
    std::string name;
    json manifest;
    std::string needle;
  };
  std::vector<Case> cases;
  {
    json m = base;
    m["schemaVersion"] = 1;
    cases.push_back({"schema1", m, "schemaVersion: 1, expected 2"});
  }
  {
    json m = base;
    m["layers"][1]["mediaType"] = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    cases.push_back({"layer type", m, "layers[1].mediaType"});
  }
  {
    json m = base;
    m["config"]["mediaType"] = "application/vnd.example+json";
    cases.push_back({"config type", m, "config.mediaType"});
  }
  {
    json m = base;
    m["layers"][0]["digest"] = "sha512:" + std::string(128, 'a');
    cases.push_back({"sha512", m, "unsupported algorithm 'sha512'"});
  }
  {
    json m = base;
    m["layers"][0]["urls"] = {"https://example.com/layer"};
    cases.push_back({"urls", m, "external URLs"});
  }
  {
    json m = base;
    m["layers"][0]["size"] = -1;
    cases.push_back({"negative size", m, "layers[0].size"});
  }
  {
    json m = base;
    m["layers"] = json::array();
    cases.push_back({"no layers", m, "layers: empty"});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string d = dir.path() + "/" + std::to_string(&c - cases.data());
    WriteLayoutWithManifest(d, img, c.manifest.dump());
    ExpectError(ReadLocalImage(d), StatusCode::kInvalidArgument, {c.needle});
  }

  // Duplicate keys: the two readings of this document disagree.
  std::string dup = img.manifest;
  dup.insert(1, R"("schemaVersion":2,)");
  WriteLayoutWithManifest(dir.path() + "/dup", img, dup);
  ExpectError(ReadLocalImage(dir.path() + "/dup"), StatusCode::kInvalidArgument,
              {"duplicate key 'schemaVersion'"});

  // Media type in the index disagrees with the manifest's own.
  WriteLayoutWithManifest(dir.path() + "/mt", img, img.manifest, kDockerManifest);
  ExpectError(ReadLocalImage(dir.path() + "/mt"), StatusCode::kInvalidArgument,
              {"descriptor pointing here says"});

  // oci-layout version.
  WriteLayout(dir.path() + "/v2", img.Blobs(), SimpleIndex(img));
  WriteFile(dir.path() + "/v2/oci-layout", R"({"imageLayoutVersion":"2.0.0"})");
  ExpectError(ReadLocalImage(dir.path() + "/v2"), StatusCode::kInvalidArgument,
              {"imageLayoutVersion: '2.0.0', expected '1.0.0'"});

  // Not an image at all.
  fs::create_directories(dir.path() + "/empty");
  ExpectError(ReadLocalImage(dir.path() + "/empty"), StatusCode::kNotFound, {"oci-layout"});
  WriteFile(dir.path() + "/junk.tar", MakeTar({File("hello", "world")}));
  ExpectError(ReadLocalImage(dir.path() + "/junk.tar"), StatusCode::kInvalidArgument,
              {"neither an oci-archive"});
  WriteFile(dir.path() + "/junk.bin", RandomData(5000, 1));
  ExpectError(ReadLocalImage(dir.path() + "/junk.bin"), StatusCode::kInvalidArgument, {"junk.bin"});
}

TEST(ReadLocalImage, ZstdLayersAreAcceptedAsStoredBlobs) {
  TempDir dir("image-test");
  // Content is not checked here (only digests): the executor refuses zstd.
  TestImage img = MakeImage({.seed = 26, .layer_media_type = kOciLayerTarZstd});
  WriteLayout(dir.path(), img.Blobs(), SimpleIndex(img));
  auto got = ReadLocalImage(dir.path());
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->layers[0].media_type, kOciLayerTarZstd);
  auto c = LayerCompressionOf(got->layers[0].media_type);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, LayerCompression::kZstd);
}

TEST(ReadLocalImage, DockerSchema2ManifestIsAccepted) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 27, .gzip_layers = true});
  json m = json::parse(img.manifest);
  m["mediaType"] = kDockerManifest;
  m["config"]["mediaType"] = kDockerConfig;
  for (json& l : m["layers"]) l["mediaType"] = kDockerLayerTarGzip;
  std::string manifest = m.dump();
  WriteLayoutWithManifest(dir.path(), img, manifest, kDockerManifest);
  auto got = ReadLocalImage(dir.path());
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->manifest.media_type, kDockerManifest);
  EXPECT_EQ(got->manifest.digest, Digest::Of(manifest));
  EXPECT_EQ(got->config.media_type, kDockerConfig);
}

TEST(ReadLocalImage, ImageSizeLimitIsEnforced) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 28});
  WriteLayout(dir.path(), img.Blobs(), SimpleIndex(img));
  WriteFile(dir.path() + "/d.tar", MakeTar(DockerLegacyMembers(img)));
  ReadOptions small;
  small.max_image_bytes = 4096;
  ExpectError(ReadLocalImage(dir.path(), small), StatusCode::kInvalidArgument,
              {"larger than the limit of 4096"});
  ExpectError(ReadLocalImage(dir.path() + "/d.tar", small), StatusCode::kInvalidArgument,
              {"larger than the limit of 4096"});
  // A config declared over 4 MiB is refused before it is read.
  json m = json::parse(img.manifest);
  m["config"]["size"] = kMaxJsonBytes + 1;
  WriteLayoutWithManifest(dir.path() + "/big", img, m.dump());
  ExpectError(ReadLocalImage(dir.path() + "/big"), StatusCode::kInvalidArgument, {"config.size"});
}

// ---------------------------------------------------------------------------
// Streaming blobs out, and the server side

TEST(ForEachBlob, DetectsABlobChangedAfterReading) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 29});
  WriteLayout(dir.path(), img.Blobs(), SimpleIndex(img));
  auto got = ReadLocalImage(dir.path());
  ASSERT_TRUE(got.ok()) << got.status().message();
  WriteFile(dir.path() + "/blobs/sha256/" + Hex(img.layers[1]), FlipByte(img.layers[1], 9));
  ExpectError(CollectBlobs(*got), StatusCode::kDataLoss,
              {Hex(img.layers[1]), "changed since it was read",
               Digest::Of(FlipByte(img.layers[1], 9)).str()});
}

TEST(ForEachBlob, VisitorErrorsStopTheWalk) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 30});
  WriteFile(dir.path() + "/d.tar", MakeTar(DockerLegacyMembers(img)));
  auto got = ReadLocalImage(dir.path() + "/d.tar");
  ASSERT_TRUE(got.ok());
  int calls = 0;
  Status s = got->ForEachBlob([&](const Descriptor&, ByteSource&) -> Status {
    ++calls;
    return calls == 2 ? Internal("upload failed") : Status::Ok();  // skip without reading
  });
  ExpectError(s, StatusCode::kInternal, {"upload failed"});
  EXPECT_EQ(calls, 2);
}

// The `cce image push` path end to end: read, upload every blob into a
// BlobStore (which re-hashes), validate the manifest there.
TEST(ValidateStoredManifest, AcceptsAPushedImageFromEveryFormat) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 31});
  WriteLayout(dir.path() + "/layout", img.Blobs(), SimpleIndex(img));
  WriteFile(dir.path() + "/oci.tar", MakeTar(LayoutMembers(img.Blobs(), SimpleIndex(img))));
  WriteFile(dir.path() + "/docker.tar", MakeTar(DockerLegacyMembers(img)));
  for (const char* name : {"/layout", "/oci.tar", "/docker.tar"}) {
    SCOPED_TRACE(name);
    auto image = ReadLocalImage(dir.path() + name);
    ASSERT_TRUE(image.ok()) << image.status().message();
    auto store = BlobStore::Create(dir.path() + "/store" + (name + 1));
    ASSERT_TRUE(store.ok());
    Status pushed = image->ForEachBlob([&](const Descriptor& d, ByteSource& content) -> Status {
      return store->Put(content, d.digest, d.size).status();
    });
    ASSERT_TRUE(pushed.ok()) << pushed.message();
    auto info = ValidateStoredManifest(image->manifest_json, *store);
    ASSERT_TRUE(info.ok()) << info.status().message();
    EXPECT_EQ(info->digest, Digest::Of(img.manifest));
    EXPECT_EQ(info->media_type, kOciManifest);
    EXPECT_EQ(info->config.digest, img.ConfigDigest());
    EXPECT_EQ(info->layers, image->layers);
    EXPECT_EQ(info->total_size, image->total_size);
  }
}

TEST(ValidateStoredManifest, RejectsMissingBlobsWrongSizesAndWrongPlatforms) {
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 32});
  auto store = BlobStore::Create(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(store->PutBytes(img.config, img.ConfigDigest()).ok());
  ASSERT_TRUE(store->PutBytes(img.layers[0], Digest::Of(img.layers[0])).ok());
  ExpectError(ValidateStoredManifest(img.manifest, *store), StatusCode::kNotFound,
              {"layer 1", Digest::Of(img.layers[1]).str(), "not in the store",
               Digest::Of(img.manifest).str()});

  ASSERT_TRUE(store->PutBytes(img.layers[1], Digest::Of(img.layers[1])).ok());
  ASSERT_TRUE(ValidateStoredManifest(img.manifest, *store).ok());

  TestImage lying = MakeImage({.seed = 32, .layer0_size_delta = -1});
  ExpectError(ValidateStoredManifest(lying.manifest, *store), StatusCode::kDataLoss,
              {"layer 0", "size mismatch"});

  TestImage arm = MakeImage({.arch = "arm64", .seed = 32});
  ASSERT_TRUE(store->PutBytes(arm.config, arm.ConfigDigest()).ok());
  ExpectError(ValidateStoredManifest(arm.manifest, *store), StatusCode::kInvalidArgument,
              {"'linux/arm64'"});

  ExpectError(ValidateStoredManifest(R"({"schemaVersion":2,"schemaVersion":2})", *store),
              StatusCode::kInvalidArgument, {"duplicate key"});
  std::string index = SimpleIndex(img);
  ExpectError(ValidateStoredManifest(index, *store), StatusCode::kInvalidArgument,
              {"an index, not an image manifest"});
  ExpectError(ValidateStoredManifest(img.manifest, *store, 100), StatusCode::kInvalidArgument,
              {"larger than the limit of 100"});
}

// ---------------------------------------------------------------------------
// Interoperability with skopeo (containers/image), when installed

struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  r.status = ::pclose(p);
  return r;
}

TEST(Interop, SkopeoConvertsOurLayoutAndWeReadItBack) {
  // `make deps` installs skopeo; its absence is a failure, never a silent skip.
  ASSERT_EQ(RunCommand("command -v skopeo").status, 0) << "skopeo is not installed";
  TempDir dir("image-test");
  TestImage img = MakeImage({.seed = 33});
  WriteLayout(dir.path() + "/layout", img.Blobs(), SimpleIndex(img, "latest"));
  std::string skopeo = "skopeo --insecure-policy --tmpdir " + dir.path() + " copy --quiet ";

  // OCI layout -> docker-archive (skopeo's own layout: <hex>.tar, <hex>.json, links).
  CommandResult r =
      RunCommand(skopeo + "oci:" + dir.path() + "/layout:latest docker-archive:" + dir.path() +
                 "/docker.tar:example.com/app:1");
  ASSERT_EQ(r.status, 0) << r.output;
  auto docker = ReadLocalImage(dir.path() + "/docker.tar");
  ASSERT_TRUE(docker.ok()) << docker.status().message();
  EXPECT_EQ(docker->format, ImageFormat::kDockerArchive);
  EXPECT_EQ(docker->repo_tags, std::vector<std::string>{"example.com/app:1"});
  ASSERT_EQ(docker->layers.size(), img.layers.size());
  for (size_t i = 0; i < img.layers.size(); ++i) {
    EXPECT_EQ(docker->layers[i].digest, Digest::Of(img.layers[i]));
  }
  EXPECT_EQ(docker->config.digest, img.ConfigDigest());
  ExpectBlobsMatch(*docker);

  // Our docker-archive fixture -> OCI layout. containers/image re-serializes
  // the config (Go field order) and gzips the layers on the way, so compare
  // meaning rather than digests.
  WriteFile(dir.path() + "/ours.tar", MakeTar(DockerLegacyMembers(img)));
  r = RunCommand(skopeo + "docker-archive:" + dir.path() + "/ours.tar oci:" + dir.path() +
                 "/back:v1");
  ASSERT_EQ(r.status, 0) << r.output;
  auto back = ReadLocalImage(dir.path() + "/back");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->format, ImageFormat::kOciLayout);
  EXPECT_EQ(back->repo_tags, std::vector<std::string>{"v1"});
  EXPECT_EQ(json::parse(back->config_json), json::parse(img.config));
  ASSERT_EQ(back->layers.size(), img.layers.size());
  for (const Descriptor& l : back->layers) EXPECT_EQ(l.media_type, kOciLayerTarGzip);
  ExpectBlobsMatch(*back);

  // OCI layout -> oci-archive: our config bytes survive, layers are gzipped.
  r = RunCommand(skopeo + "oci:" + dir.path() + "/layout:latest oci-archive:" + dir.path() +
                 "/oci.tar:latest");
  ASSERT_EQ(r.status, 0) << r.output;
  auto oci_archive = ReadLocalImage(dir.path() + "/oci.tar");
  ASSERT_TRUE(oci_archive.ok()) << oci_archive.status().message();
  EXPECT_EQ(oci_archive->format, ImageFormat::kOciArchive);
  EXPECT_EQ(oci_archive->config.digest, img.ConfigDigest());
  ASSERT_EQ(oci_archive->layers.size(), img.layers.size());
  for (const Descriptor& l : oci_archive->layers) EXPECT_EQ(l.media_type, kOciLayerTarGzip);
  ExpectBlobsMatch(*oci_archive);
}

}  // namespace
}  // namespace cce::image
