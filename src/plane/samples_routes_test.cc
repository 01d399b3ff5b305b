// The sample routes on a served plane (TLS, real HTTP): the owner's PUT of a
// tar, a non-owner refused before the body, the listing and a file for the
// renter with the headers docs/api.yaml promises, nothing for a non-renter.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "plane/plane.h"
#include "plane/plane_testing.h"
#include "plane/sample_tar_testing.h"

namespace cce::plane {
namespace {

using nlohmann::json;
using testing::MakeTar;
using testing::TarDir;
using testing::TarFile;

class SampleRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto plane =
        TestPlane::Create(clock_, {.dir_prefix = "cce-sample-routes", .datasets_in_tmp = true});
    ASSERT_TRUE(plane.ok()) << plane.status().message();
    plane_ = std::move(*plane);
    ASSERT_TRUE(plane_->Start().ok());
    const std::string dir = plane_->init().data_dir;
    auto pat = AddUser(dir, "pat", store::Role::kProvider, clock_);
    auto carol = AddUser(dir, "carol", store::Role::kConsumer, clock_);
    auto dave = AddUser(dir, "dave", store::Role::kConsumer, clock_);
    ASSERT_TRUE(pat.ok() && carol.ok() && dave.ok());
    pat_ = *pat;
    carol_ = *carol;
    dave_ = *dave;
    ASSERT_TRUE(plane_->AddRentedDataset("claims", pat_, carol_).ok());
  }

  TestClock clock_;
  std::unique_ptr<TestPlane> plane_;
  std::string pat_, carol_, dave_;
};

TEST_F(SampleRoutesTest, OwnerPublishesRenterReadsOthersAreRefused) {
  auto c = plane_->Client();
  const std::string tar =
      MakeTar({TarDir("tables/"), TarFile("tables/people.csv", "id,age\n1,40\n"),
               TarFile("rows.jsonl", "{\"a\":1}\n"), TarFile("blob.bin", "\x01\x02")});
  const std::string path = "/api/v1/datasets/claims/sample";
  // Not the owner: refused before the body is read.
  auto refused = c->Put(path, BearerAuth(dave_), tar, "application/x-tar");
  ASSERT_TRUE(refused) << c->error().message();
  EXPECT_EQ(refused->status, 403) << refused->body;
  auto wrong_type = c->Put(path, BearerAuth(pat_), tar, "application/octet-stream");
  ASSERT_TRUE(wrong_type);
  EXPECT_EQ(wrong_type->status, 400) << wrong_type->body;
  auto put = c->Put(path, BearerAuth(pat_), tar, "application/x-tar");
  ASSERT_TRUE(put) << c->error().message();
  ASSERT_EQ(put->status, 201) << put->body;
  json info = json::parse(put->body);
  EXPECT_EQ(info["version"], 1);
  EXPECT_EQ(info["file_count"], 3);

  auto listing = c->Get(path, BearerAuth(carol_));
  ASSERT_TRUE(listing);
  ASSERT_EQ(listing->status, 200) << listing->body;
  EXPECT_EQ(json::parse(listing->body)["files"].size(), 3u);
  auto csv = c->Get(path + "/files/tables/people.csv", BearerAuth(carol_));
  ASSERT_TRUE(csv);
  ASSERT_EQ(csv->status, 200) << csv->body;
  EXPECT_EQ(csv->body, "id,age\n1,40\n");
  EXPECT_EQ(csv->get_header_value("Content-Type"), "text/csv; charset=utf-8");
  EXPECT_EQ(csv->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(csv->get_header_value("X-Sample-Version"), "1");
  auto jsonl = c->Get(path + "/files/rows.jsonl", BearerAuth(carol_));
  ASSERT_TRUE(jsonl);
  EXPECT_EQ(jsonl->get_header_value("Content-Type"), "application/x-ndjson");
  auto bin = c->Get(path + "/files/blob.bin", BearerAuth(carol_));
  ASSERT_TRUE(bin);
  EXPECT_EQ(bin->get_header_value("Content-Type"), "application/octet-stream");

  // dave rents nothing: neither the listing nor a file.
  auto no_listing = c->Get(path, BearerAuth(dave_));
  ASSERT_TRUE(no_listing);
  EXPECT_EQ(no_listing->status, 403);
  auto no_file = c->Get(path + "/files/tables/people.csv", BearerAuth(dave_));
  ASSERT_TRUE(no_file);
  EXPECT_EQ(no_file->status, 403);
  EXPECT_EQ(no_file->body.find("id,age"), std::string::npos);
  // The operator neither.
  auto op = c->Get(path, BearerAuth(plane_->init().token));
  ASSERT_TRUE(op);
  EXPECT_EQ(op->status, 403);
}

}  // namespace
}  // namespace cce::plane
