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
#include "e2e/plane_fixture.h"

namespace cce::e2e {
namespace {

using nlohmann::json;

TEST(ImageCli, ConsumerPushesAnOciLayoutAndASecondPushUploadsNothing) {
  PlaneFixture plane;
  ASSERT_TRUE(plane.up());
  const TempDir& t = plane.dir();
  auto Cce = [&](std::vector<std::string> args) { return plane.Cce(std::move(args)); };
  std::string carol = plane.AddUser("carol", "consumer"), pat = plane.AddUser("pat", "provider");
  std::string digest = WriteOciLayout(t, t / "app-oci", "team/tool:1.0");

  // Providers may not push images.
  ASSERT_TRUE(plane.Login(pat));
  auto denied = Cce({"image", "push", t / "app-oci"});
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_NE(denied.err.find("plane:"), std::string::npos) << denied.err;

  ASSERT_TRUE(plane.Login(carol));
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
  EXPECT_EQ(again.out, "team/tool:stable -> " + digest + "\n");
  auto again_json = Cce({"image", "push", t / "app-oci", "--output", "json"});
  ASSERT_EQ(again_json.exit_code, 0) << again_json.err;
  json aj = json::parse(again_json.out);
  EXPECT_EQ(aj["skipped_blobs"], 2);  // config and layer
  EXPECT_EQ(aj["uploaded_bytes"], 0);

  auto list = Cce({"image", "list", "--output", "json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  std::vector<json> images = JsonLines(list.out);
  ASSERT_EQ(images.size(), 2u);
  for (const auto& i : images) {
    EXPECT_EQ(i["name"], "team/tool");
    EXPECT_EQ(i["digest"], digest);
    EXPECT_EQ(i["owner"], "carol");
  }
  auto text = Cce({"image", "list"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out.rfind("NAME:TAG  ", 0), 0u) << text.out;  // a header row first
  EXPECT_NE(text.out.find("team/tool:stable  " + digest), std::string::npos) << text.out;

  // A layout whose index names no image (skopeo copy ... oci:DIR without a
  // tag): refused before anything is sent, with its digest and a command to
  // copy; with --name it is pushed and the line says where it went.
  std::filesystem::copy(t / "app-oci", t / "My_Tool.OCI", std::filesystem::copy_options::recursive);
  json index = json::parse(ReadFile(t / "My_Tool.OCI/index.json"));
  index["manifests"][0].erase("annotations");
  WriteFile(t / "My_Tool.OCI/index.json", index.dump());
  auto unnamed = Cce({"image", "push", t / "My_Tool.OCI"});
  EXPECT_EQ(unnamed.exit_code, 2) << unnamed.err;
  for (const std::string& want :
       {digest + " has no name", std::string("no org.opencontainers.image.ref.name"),
        std::string("--name NAME[:TAG]"),
        "cce image push " + (t / "My_Tool.OCI") + " --name my-tool-oci:1.0"}) {
    EXPECT_NE(unnamed.err.find(want), std::string::npos) << want << "\n" << unnamed.err;
  }
  // A bare tag (skopeo copy ... oci:DIR:v2) names no repository either; the
  // example keeps the tag.
  index["manifests"][0]["annotations"] = {{"org.opencontainers.image.ref.name", "v2"}};
  WriteFile(t / "My_Tool.OCI/index.json", index.dump());
  auto bare = Cce({"image", "push", t / "My_Tool.OCI"});
  EXPECT_EQ(bare.exit_code, 2) << bare.err;
  EXPECT_NE(bare.err.find("names only the tag 'v2', no repository"), std::string::npos)
      << bare.err;
  EXPECT_NE(bare.err.find("--name my-tool-oci:v2"), std::string::npos) << bare.err;
  auto named = Cce({"image", "push", t / "My_Tool.OCI", "--name", "team/anon"});
  ASSERT_EQ(named.exit_code, 0) << named.err;
  EXPECT_EQ(named.out, "team/anon:latest -> " + digest + "\n");
  auto removed = Cce({"image", "rm", "team/anon:latest"});
  EXPECT_EQ(removed.exit_code, 0) << removed.err;

  // An unreadable image fails before anything is sent, naming the path.
  auto missing = Cce({"image", "push", t / "nope"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find(t / "nope"), std::string::npos) << missing.err;
  EXPECT_EQ(plane.Stop(), 0) << plane.server().Err();
}

}  // namespace
}  // namespace cce::e2e
