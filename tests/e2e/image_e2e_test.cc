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
  EXPECT_EQ(plane.Stop(), 0) << plane.server().Err();
}

}  // namespace
}  // namespace cce::e2e
