// A script job end to end on real parts (docs/explore/script-jobs.md): the
// python-data base image built by scripts/build-python-data-image.py from
// Debian's packages (cached in the build directory), pushed by an operator
// as library/python-data:3.11 and configured as a base; a consumer submits a
// pandas script with `cce job submit --script`; the plane derives the image,
// the local provisioner runs cce-agent (simulated TEE), the script reads the
// decrypted dataset and writes an aggregate that the Output Gate releases;
// the consumer downloads it. A consumer without a rental is refused.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "e2e/plane_fixture.h"

namespace cce::e2e {
namespace {

using nlohmann::json;

constexpr char kScript[] = R"(import sys
import pandas as pd
df = pd.read_csv("/data/claims/claims.csv")
agg = df.groupby("region")["cost"].agg(["count", "sum"])
agg.to_csv("/output/by_region.csv")
print("args", sys.argv[1:])
)";

std::map<std::string, std::string> UntarBundle(const std::string& tar) {
  std::map<std::string, std::string> files;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, tar.data(), tar.size()), ARCHIVE_OK);
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    std::string data(static_cast<size_t>(archive_entry_size(e)), '\0');
    if (!data.empty()) archive_read_data(a, data.data(), data.size());
    files[archive_entry_pathname(e)] = data;
  }
  archive_read_free(a);
  return files;
}

TEST(ScriptJobE2e, APandasScriptRunsOnThePythonDataBaseAndItsOutputIsReleased) {
  PlaneFixture f("local", /*simulated_tee=*/true);
  ASSERT_TRUE(f.up());
  const TempDir& t = f.dir();

  // The base image, built once per build directory (the .debs are cached).
  const std::string oci = std::string(CCE_BUILD_DIR) + "/python-data-oci";
  if (::access((oci + "/index.json").c_str(), F_OK) != 0) {
    auto built = RunCommand(
        {"/usr/bin/python3", std::string(CCE_SOURCE_DIR) + "/scripts/build-python-data-image.py",
         "--out", oci, "--cache", std::string(CCE_BUILD_DIR) + "/python-data-cache"});
    if (built.exit_code != 0 &&
        built.err.find("neither apt-get download nor dpkg -L gave") != std::string::npos) {
      GTEST_SKIP() << "\n\n*** SKIPPED: the python-data image cannot be built here: "
                      "apt-get download failed and the packages are not installed ***\n"
                   << built.err;
    }
    ASSERT_EQ(built.exit_code, 0) << built.err << built.out;
  }

  // plane.yaml: the base (read at start, so the plane is restarted on the same port).
  ASSERT_EQ(f.Stop(), 0);
  std::string config = ReadFile(f.data_dir() + "/plane.yaml");
  const size_t at = config.find("  script_bases: []");
  ASSERT_NE(at, std::string::npos) << "plane.yaml has no 'jobs: script_bases: []' line";
  config.replace(at, 18,
                 "  script_bases:\n    - {name: python-data, image: \"library/python-data:3.11\", "
                 "command: [\"/usr/bin/python3\"]}");
  WriteFile(f.data_dir() + "/plane.yaml", config);
  BackgroundProcess server({BinPath("cce-plane"), "serve", "--data-dir", f.data_dir()});
  bool up = false;
  for (int i = 0; i < 400 && !up; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    up = f.Login(f.operator_token());
  }
  ASSERT_TRUE(up) << server.Err();
  auto push = f.Cce({"image", "push", oci, "--name", "library/python-data:3.11"});
  ASSERT_EQ(push.exit_code, 0) << push.err;

  const std::string provider = f.AddUser("hospital", "provider");
  const std::string consumer = f.AddUser("analyst", "consumer");
  const std::string stranger = f.AddUser("stranger", "consumer");
  ::mkdir((t / "claims").c_str(), 0755);
  std::string csv = "region,cost\n";
  for (int i = 0; i < 400; ++i) {
    csv += std::string(i % 2 ? "north" : "south") + "," + std::to_string(100 + i) + "\n";
  }
  WriteFile(t / "claims/claims.csv", csv);
  ASSERT_TRUE(f.Login(provider));
  ASSERT_EQ(f.Cce({"key", "generate", "--out", t / "claims.key"}).exit_code, 0);
  ASSERT_EQ(f.Cce({"dataset", "encrypt", "--key", t / "claims.key", t / "claims", t / "claims.enc"})
                .exit_code,
            0);
  auto reg = f.Cce({"dataset", "register", "claims", "--key", t / "claims.key", "--location",
                    "file://" + t / "claims.enc"});
  ASSERT_EQ(reg.exit_code, 0) << reg.err;

  WriteFile(t / "analysis.py", kScript);
  const std::vector<std::string> submit = {
      "job",    "submit", "--script", t / "analysis.py", "--base", "python-data", "--dataset",
      "claims", "--arg",  "--demo",   "--timeout",       "10m",    "--output",    "json"};

  // Without a rental: refused by the job path's rental check (exit 3).
  ASSERT_TRUE(f.Login(stranger));
  auto refused = f.Cce(submit);
  EXPECT_EQ(refused.exit_code, 3) << refused.err;
  EXPECT_NE(refused.err.find("your rental of 'claims' does not cover"), std::string::npos)
      << refused.err;

  ASSERT_TRUE(f.Login(consumer));
  ASSERT_EQ(f.Cce({"rent", "claims", "--days", "1"}).exit_code, 0);
  auto bases = f.Cce({"job", "bases"});
  EXPECT_NE(bases.out.find("python-data  library/python-data:3.11  /usr/bin/python3"),
            std::string::npos)
      << bases.out;
  auto submitted = f.Cce(submit);
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const json job = json::parse(submitted.out);
  const std::string id = job["id"];
  EXPECT_EQ(job["name"], "analysis");

  std::string state;
  for (int i = 0; i < 180; ++i) {
    auto r = f.Cce({"job", "status", id, "--output", "json"});
    state = r.exit_code == 0 ? json::parse(r.out, nullptr, false).value("state", "") : "";
    if (state == "RELEASED" || state == "HELD" || state == "FAILED" || state == "CANCELLED") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_EQ(state, "RELEASED") << f.Cce({"job", "status", id}).out << server.Err();

  auto dl = f.Cce({"job", "download", id, "--out", t / "out"});
  ASSERT_EQ(dl.exit_code, 0) << dl.err;
  auto files = UntarBundle(ReadFile(t / "out/output.bundle"));
  EXPECT_EQ(files["files/by_region.csv"], "region,count,sum\nnorth,200,60000\nsouth,200,59800\n");
  EXPECT_EQ(files["stdout.txt"], "args ['--demo']\n");
}

}  // namespace
}  // namespace cce::e2e
