// `cce image push` and `cce image list` against a real cce-plane over TLS:
// a consumer pushes a small OCI layout (its layer larger than the plane's
// JSON body limit, so it must stream), lists it, and a second push uploads
// nothing because every blob is already on the plane.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <csignal>
#include <nlohmann/json.hpp>
#include <thread>

#include "e2e/harness.h"
#include "image/image.h"

namespace cce::e2e {
namespace {

using nlohmann::json;

CommandResult Cce(std::vector<std::string> args) {
  args.insert(args.begin(), BinPath("cce"));
  return RunCommand(args);
}

json Descriptor(const std::string& media_type, const std::string& data) {
  return {
      {"mediaType", media_type}, {"digest", image::Digest::Of(data).str()}, {"size", data.size()}};
}

// Writes an OCI layout with one uncompressed layer (a real tar made by
// tar(1)) tagged `ref`; returns the manifest's digest.
std::string WriteOciLayout(const TempDir& t, const std::string& dir, const std::string& ref) {
  std::string big(2u << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 % 251);
  WriteFile(t / "rootfs/bin/tool", big);
  WriteFile(t / "rootfs/etc/motd", "hello from the image\n");
  auto tar = RunCommand({"tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0",
                         "--numeric-owner", "-C", t / "rootfs", "-cf", t / "layer.tar", "."});
  EXPECT_EQ(tar.exit_code, 0) << tar.err;
  std::string layer = ReadFile(t / "layer.tar");
  std::string config =
      json{{"architecture", "amd64"},
           {"os", "linux"},
           {"config", {{"Cmd", {"/bin/tool"}}}},
           {"rootfs", {{"type", "layers"}, {"diff_ids", {image::Digest::Of(layer).str()}}}}}
          .dump();
  std::string manifest = json{{"schemaVersion", 2},
                              {"mediaType", image::kOciManifest},
                              {"config", Descriptor(image::kOciConfig, config)},
                              {"layers", {Descriptor(image::kOciLayerTar, layer)}}}
                             .dump();
  json desc = Descriptor(image::kOciManifest, manifest);
  desc["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
  desc["annotations"] = {{"org.opencontainers.image.ref.name", ref}};
  std::string index =
      json{{"schemaVersion", 2}, {"mediaType", image::kOciIndex}, {"manifests", {desc}}}.dump();
  WriteFile(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  WriteFile(dir + "/index.json", index);
  for (const std::string* blob : {&layer, &config, &manifest}) {
    WriteFile(dir + "/blobs/sha256/" + std::string(image::Digest::Of(*blob).hex()), *blob);
  }
  return image::Digest::Of(manifest).str();
}

TEST(ImageCli, ConsumerPushesAnOciLayoutAndASecondPushUploadsNothing) {
  TempDir t;
  ::setenv("HOME", t.path().c_str(), 1);
  ::unsetenv("XDG_CONFIG_HOME");
  int port = FreeLoopbackPort();
  std::string listen = "127.0.0.1:" + std::to_string(port);
  auto init = RunCommand({BinPath("cce-plane"), "init", "--data-dir", t / "plane", "--listen",
                          listen, "--output", "json"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  json ij = json::parse(init.out);
  std::string op_token = ij["token"], ca = ij["ca_file"];
  BackgroundProcess server({BinPath("cce-plane"), "serve", "--data-dir", t / "plane"});
  std::string url = "https://" + listen;
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    up = Cce({"login", "--plane", url, "--token", op_token, "--ca", ca}).exit_code == 0;
  }
  ASSERT_TRUE(up) << server.Err();
  auto add = [&](const std::string& name, const std::string& role) {
    auto r = RunCommand({BinPath("cce-plane"), "user", "add", "--data-dir", t / "plane", "--role",
                         role, name, "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out)["token"].get<std::string>();
  };
  std::string carol = add("carol", "consumer"), pat = add("pat", "provider");
  std::string digest = WriteOciLayout(t, t / "app-oci", "team/tool:1.0");

  // Providers may not push images.
  ASSERT_EQ(Cce({"login", "--plane", url, "--token", pat, "--ca", ca}).exit_code, 0);
  auto denied = Cce({"image", "push", t / "app-oci"});
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_NE(denied.err.find("plane:"), std::string::npos) << denied.err;

  ASSERT_EQ(Cce({"login", "--plane", url, "--token", carol, "--ca", ca}).exit_code, 0);
  auto push = Cce({"image", "push", t / "app-oci", "--output", "json"});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  json pj = json::parse(push.out);
  EXPECT_EQ(pj["name"], "team/tool");
  EXPECT_EQ(pj["tag"], "1.0");
  EXPECT_EQ(pj["digest"], digest);
  EXPECT_EQ(pj["skipped_blobs"], 0);
  EXPECT_GT(pj["uploaded_bytes"].get<uint64_t>(), 2u << 20);

  // Same image again under another name: every blob is already there.
  auto again = Cce({"image", "push", t / "app-oci", "--name", "team/tool:stable"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, digest + "\n");
  auto again_json = Cce({"image", "push", t / "app-oci", "--output", "json"});
  ASSERT_EQ(again_json.exit_code, 0) << again_json.err;
  json aj = json::parse(again_json.out);
  EXPECT_EQ(aj["skipped_blobs"], 2);  // config and layer
  EXPECT_EQ(aj["uploaded_bytes"], 0);

  auto list = Cce({"image", "list", "--output", "json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  json images = json::parse(list.out)["images"];
  ASSERT_EQ(images.size(), 2u);
  for (const auto& i : images) {
    EXPECT_EQ(i["name"], "team/tool");
    EXPECT_EQ(i["digest"], digest);
    EXPECT_EQ(i["owner"], "carol");
  }
  auto text = Cce({"image", "list"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("team/tool:stable\t" + digest), std::string::npos) << text.out;

  // An unreadable image fails before anything is sent, naming the path.
  auto missing = Cce({"image", "push", t / "nope"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find(t / "nope"), std::string::npos) << missing.err;
  EXPECT_EQ(server.Stop(SIGTERM, 10000), 0) << server.Err();
}

}  // namespace
}  // namespace cce::e2e
