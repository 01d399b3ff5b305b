// Real responses of a served plane checked against docs/api.yaml: a world is
// built through the CLI (dataset, rental, image, a job driven to HELD by the
// fake provisioner), then every read endpoint and a few refusals are asked
// over HTTPS and each body is validated by tests/api/validate_schema.py
// (jsonschema, and exactly the declared properties where the response
// carries every optional field).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "e2e/harness.h"
#include "e2e/plane_fixture.h"
#include "http/test_client.h"

namespace cce::e2e {
namespace {

using nlohmann::json;

int PortOf(const std::string& url) {
  return std::stoi(url.substr(url.rfind(':') + 1));
}

TEST(ApiConformance, RealResponsesMatchTheOpenApiDocument) {
  PlaneFixture plane("fake");
  ASSERT_TRUE(plane.up());
  const TempDir& t = plane.dir();
  auto Cce = [&](std::vector<std::string> args) { return plane.Cce(std::move(args)); };
  const std::string pat = plane.AddUser("pat", "provider");
  const std::string carol = plane.AddUser("carol", "consumer");
  WriteFile(t / "src/claims.csv", "id,cost\n1,10\n");
  ASSERT_EQ(Cce({"key", "generate", "--out", t / "claims.key"}).exit_code, 0);
  ASSERT_EQ(
      Cce({"dataset", "encrypt", "--key", t / "claims.key", t / "src", t / "claims.enc"}).exit_code,
      0);
  ASSERT_TRUE(plane.Login(pat));
  ASSERT_EQ(Cce({"dataset", "register", "claims", "--key", t / "claims.key", "--location",
                 "file://" + (t / "claims.enc")})
                .exit_code,
            0);
  ASSERT_TRUE(plane.Login(carol));
  ASSERT_EQ(Cce({"rent", "claims", "--days", "1"}).exit_code, 0);
  WriteOciLayout(t, t / "app-oci", "team/stats:1.0");
  auto push = Cce({"image", "push", t / "app-oci"});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  WriteFile(t / "job.yaml",
            "apiVersion: cce4long/v1\nkind: PrivacyJob\nmetadata: {name: cohort-stats}\n"
            "spec:\n  image: team/stats:1.0\n  command: [python3, /app/run.py]\n"
            "  datasets:\n    - {name: claims, mountPath: /data/claims}\n"
            "  resources: {cpus: 1, memoryMiB: 512, timeoutSeconds: 600, outputMaxMiB: 16}\n");
  auto submit = Cce({"job", "submit", "-f", t / "job.yaml"});
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  const std::string id = submit.out.substr(0, submit.out.size() - 1);
  ASSERT_EQ(Cce({"job", "status", id, "--watch", "--until", "HELD", "--interval", "1"}).exit_code,
            0);
  // A reviewer's decision, so the job's detail carries every field (review).
  const std::string rita = plane.AddUser("rita", "reviewer");
  ASSERT_TRUE(plane.Login(rita));
  auto rejected = Cce({"review", "reject", id, "--reason", "not a real output"});
  ASSERT_EQ(rejected.exit_code, 0) << rejected.err;

  http::testing::TestClient c(PortOf(plane.url()), plane.ca());
  auto as = [](const std::string& token) {
    return http::testing::Headers{{"Authorization", "Bearer " + token}};
  };
  json samples = json::array();
  // Asks `target` and records its body as a sample of `schema` when the
  // status is the expected one.
  auto sample = [&](const std::string& schema, const std::string& target,
                    const http::testing::Headers& h, int want) {
    auto r = c.Get(target, h);
    ASSERT_TRUE(r) << target << ": " << c.error().message();
    ASSERT_EQ(r->status, want) << target << ": " << r->body;
    samples.push_back({{"schema", schema}, {"value", json::parse(r->body)}});
  };
  const auto op = as(plane.operator_token());
  sample("GET /api/v1/whoami 200", "/api/v1/whoami", as(carol), 200);
  sample("GET /api/v1/users 200", "/api/v1/users", op, 200);
  sample("GET /api/v1/datasets 200", "/api/v1/datasets", as(carol), 200);
  sample("GET /api/v1/datasets/{name} 200", "/api/v1/datasets/claims", as(carol), 200);
  sample("GET /api/v1/rentals 200", "/api/v1/rentals", as(carol), 200);
  sample("GET /api/v1/images 200", "/api/v1/images", as(carol), 200);
  sample("GET /api/v1/jobs/{id} 200", "/api/v1/jobs/" + id, as(carol), 200);
  sample("GET /api/v1/audit/verify 200", "/api/v1/audit/verify", op, 200);
  sample("GET /api/v1/jobs 400", "/api/v1/jobs?limit=0", as(carol), 400);
  sample("GET /api/v1/audit 400", "/api/v1/audit?limit=0", op, 400);
  sample("Error", "/api/v1/whoami", {}, 401);
  sample("Error", "/api/v1/users", as(carol), 403);
  sample("Error", "/api/v1/jobs/job-0000000000000000", as(carol), 404);
  sample("GET /api/v1/jobs/{id}/output 409", "/api/v1/jobs/" + id + "/output", as(carol), 409);
  auto kbs = c.Post("/kbs/v0/auth", R"({"credential":"cce-cred-v1.bogus.x"})", "application/json");
  ASSERT_TRUE(kbs);
  ASSERT_EQ(kbs->status, 403);
  samples.push_back({{"schema", "POST /kbs/v0/auth 403"}, {"value", json::parse(kbs->body)}});

  const std::string path = t / "samples.json";
  WriteFile(path, json{{"samples", samples}}.dump(2));
  auto run =
      RunCommand({"/usr/bin/python3", std::string(CCE_SOURCE_DIR) + "/tests/api/validate_schema.py",
                  std::string(CCE_SOURCE_DIR) + "/docs/api.yaml", path});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
}

}  // namespace
}  // namespace cce::e2e
