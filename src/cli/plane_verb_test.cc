#include "cli/plane_verb.h"

#include <gtest/gtest.h>

#include "cli/cli.h"
#include "cli/plane_client.h"

namespace cce::cli {
namespace {

using nlohmann::json;

json JobDetailJson() {
  return json::parse(R"({
      "id": "job-90fbd0285e3cbbb4", "name": "cohort-stats", "consumer": "carol",
      "state": "HELD", "reason": "held", "image": "sha256:4a1a", "created_at": 1,
      "updated_at": 2, "deadline": 3, "simulated_tee": false,
      "history": [{"seq": 1, "from": "", "to": "SUBMITTED", "reason": "submitted", "at": 1}]})");
}

TEST(DecodeResponse, IgnoresFieldsANewerPlaneAdds) {
  json j = JobDetailJson();
  j["priority"] = 5;
  j["history"][0]["actor"] = "plane";
  auto d = DecodeResponse<api::JobDetail>(j, "GET /api/v1/jobs/job-90fbd0285e3cbbb4");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->job.state, "HELD");
  EXPECT_EQ(d->history.at(0).to, "SUBMITTED");
}

// Drift is the plane's fault: exit 1 with the request and the field named,
// not a usage error (2) and not "internal error" from an escaped exception.
TEST(DecodeResponse, DriftNamesTheRequestAndTheFieldAndExitsOne) {
  json j = JobDetailJson();
  j["state"] = 4;
  auto d = DecodeResponse<api::JobDetail>(j, "GET /api/v1/jobs/job-90fbd0285e3cbbb4");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInternal);
  EXPECT_EQ(d.status().message(),
            "the plane's response to GET /api/v1/jobs/job-90fbd0285e3cbbb4: response.state: "
            "expected a string");
  EXPECT_EQ(ExitCodeFor(d.status()), kExitFailure);

  j = JobDetailJson();
  j["history"][0].erase("to");
  d = DecodeResponse<api::JobDetail>(j, "GET /api/v1/jobs/job-90fbd0285e3cbbb4");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(),
            "the plane's response to GET /api/v1/jobs/job-90fbd0285e3cbbb4: "
            "response.history[0].to: required");
}

// A 404 from the plane's router names the object the user asked for.
TEST(NotFoundMessage, NamesTheObjectAsTyped) {
  EXPECT_EQ(NotFoundMessage("/api/v1/jobs/nonsense"),
            "no job 'nonsense' (job ids look like job-90fbd0285e3cbbb4; see `cce job list`)");
  EXPECT_EQ(NotFoundMessage("/api/v1/jobs/..%2Fx/cancel").substr(0, 14), "no job '../x' ");
  EXPECT_EQ(NotFoundMessage("/api/v1/datasets/a%20b"), "no dataset 'a b' (see `cce dataset list`)");
  EXPECT_EQ(NotFoundMessage("/api/v1/images/team/stats/tags/1.0"),
            "no image 'team/stats:1.0' of yours (see `cce image list`)");
  EXPECT_EQ(NotFoundMessage("/api/v1/reviews/x?y=1"),
            "no output held for review for job 'x' (see `cce review list`)");
  EXPECT_EQ(NotFoundMessage("/api/v1/explore/sessions/xs-1"),
            "no Explore session 'xs-1' (see `cce explore list`)");
  EXPECT_EQ(NotFoundMessage("/api/v1/jobs/%1b%5b2J").substr(0, 13), "no job '?[2J'");
  EXPECT_EQ(NotFoundMessage("/api/v1/whoami"), "");
  EXPECT_EQ(NotFoundMessage("/other"), "");
}

TEST(PathSegment, EncodesSeparatorsAndDotSegments) {
  EXPECT_EQ(PathSegment("job-1"), "job-1");
  EXPECT_EQ(PathSegment("a b/c"), "a%20b%2Fc");
  EXPECT_EQ(PathSegment(".."), "%2E%2E");
  EXPECT_EQ(PathSegment("."), "%2E");
}

}  // namespace
}  // namespace cce::cli
