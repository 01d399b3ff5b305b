// A Privacy Mode job end to end on real parts (docs/agent.md): a served
// plane with a simulated TEE and the `local` provisioner; a provider's
// encrypted dataset; a consumer's image built from busybox; `cce job
// submit`. The plane provisions cce-agent in its own namespaces; the agent
// attests, mounts the dataset with cce-decryptfs, runs the algorithm under
// runc with the isolation policy and submits the signed bundle, which the
// fail-closed gate holds. The test then opens the sealed bundle as the plane
// would (its master key) and checks what the algorithm could and could not
// do: read its dataset, but not phone home, see another dataset, or write
// outside /output.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "e2e/plane_fixture.h"
#include "plane/master_key.h"
#include "plane/output_store.h"

namespace cce::e2e {
namespace {

using nlohmann::json;

// What the algorithm tries, each printed as "NAME BLOCKED|ESCAPED" into
// /output/attempts.txt, plus the dataset's header line into /output/head.txt.
constexpr char kAlgorithm[] = R"(#!/bin/sh
out=/output/attempts.txt
try() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "$name ESCAPED"; else echo "$name BLOCKED"; fi >> $out; }
head -n 1 /data/claims/claims.csv > /output/head.txt
wc -l < /data/claims/claims.csv > /output/rows.txt
try phone_home_plane nc -w 2 127.0.0.1 "$PLANE_PORT"
try phone_home_internet nc -w 2 1.1.1.1 443
try read_other_dataset_mount ls /data/other
try read_other_dataset_host cat "$OTHER_MANIFEST"
try write_etc touch /etc/cce-escape
try write_root touch /cce-escape
try write_dataset touch /data/claims/cce-escape
try write_output touch /output/ok
ls /output/ok >/dev/null 2>&1 && echo "write_output_works yes" >> $out
echo "algorithm done"
exit 3
)";

std::string JobState(PlaneFixture& f, const std::string& job) {
  auto r = f.Cce({"job", "status", job, "--output", "json"});
  if (r.exit_code != 0) return "";
  return json::parse(r.out, nullptr, false).value("state", "");
}

// The bundle's members (path -> bytes).
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

// A plane with the local provisioner, the provider's "claims" (rented by the
// consumer) and "other" (not rented), and the consumer logged in with an
// image "probe/contained:1" whose /app/run.sh is `algorithm`.
class JobE2eTest : public ::testing::Test {
 protected:
  void SetUpWorld(const std::string& algorithm) {
    ASSERT_TRUE(f_.up());
    const TempDir& t = f_.dir();
    const std::string provider = f_.AddUser("hospital", "provider");
    const std::string consumer = f_.AddUser("analyst", "consumer");
    ::mkdir((t / "claims").c_str(), 0755);
    ::mkdir((t / "other").c_str(), 0755);
    std::string csv = "patient_id,age,diagnosis,cost\n";
    for (int i = 0; i < 500; ++i) {
      csv += "P" + std::to_string(1000 + i) + "," + std::to_string(20 + i % 60) + ",ICD-" +
             std::to_string(i % 7) + "," + std::to_string(i * 13 % 5000) + ".00\n";
    }
    WriteFile(t / "claims/claims.csv", csv);
    WriteFile(t / "other/secret.csv", "name,secret\nalice,OTHER-DATASET-CANARY\n");
    ASSERT_TRUE(f_.Login(provider));
    for (const std::string ds : {"claims", "other"}) {
      ASSERT_EQ(f_.Cce({"key", "generate", "--out", t / (ds + ".key")}).exit_code, 0);
      auto enc =
          f_.Cce({"dataset", "encrypt", "--key", t / (ds + ".key"), t / ds, t / (ds + ".enc")});
      ASSERT_EQ(enc.exit_code, 0) << enc.err;
      auto reg = f_.Cce({"dataset", "register", ds, "--key", t / (ds + ".key"), "--location",
                         "file://" + t / (ds + ".enc")});
      ASSERT_EQ(reg.exit_code, 0) << reg.err;
    }
    ASSERT_TRUE(f_.Login(consumer));
    ASSERT_EQ(f_.Cce({"rent", "claims", "--days", "1"}).exit_code, 0);
    WriteFile(t / "run.sh", algorithm);
    ::chmod((t / "run.sh").c_str(), 0755);
    auto built = RunCommand({"/usr/bin/python3",
                             std::string(CCE_SOURCE_DIR) + "/examples/algorithm/build-image.py",
                             "--out", t / "image", "--ref", "probe/contained:1", "--busybox",
                             "/bin/busybox", "--add", t / "run.sh" + ":/app/run.sh"});
    ASSERT_EQ(built.exit_code, 0) << built.err;
    auto push = f_.Cce({"image", "push", t / "image"});
    ASSERT_EQ(push.exit_code, 0) << push.err;
  }

  // Submits /app/run.sh over "claims" with `env` lines; returns the job id.
  std::string Submit(const std::string& env_yaml) {
    const TempDir& t = f_.dir();
    WriteFile(t / "job.yaml",
              "apiVersion: cce4long/v1\nkind: PrivacyJob\nmetadata:\n  name: contained\n"
              "spec:\n  image: probe/contained:1\n  command: [\"/app/run.sh\"]\n" +
                  env_yaml +
                  "  datasets:\n    - name: claims\n      mountPath: /data/claims\n"
                  "  resources:\n    memoryMiB: 256\n    timeoutSeconds: 300\n");
    auto submit = f_.Cce({"job", "submit", "-f", t / "job.yaml", "--output", "json"});
    EXPECT_EQ(submit.exit_code, 0) << submit.err;
    if (submit.exit_code != 0) return "";
    return json::parse(submit.out)["id"].get<std::string>();
  }

  // Polls until the job is in one of `states` (or 120 s pass); returns the state.
  std::string WaitFor(const std::string& job, const std::vector<std::string>& states) {
    std::string state;
    for (int i = 0; i < 240; ++i) {
      state = JobState(f_, job);
      if (std::find(states.begin(), states.end(), state) != states.end()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return state;
  }

  // Nothing of the job is left: its cgroups and its mounts.
  void ExpectCleanedUp(const std::string& job) {
    for (const char* kind : {"platform", "workload"}) {
      struct stat st {};
      const std::string cg = std::string("/sys/fs/cgroup/pids/cce/") + kind + "/" + job;
      EXPECT_NE(::stat(cg.c_str(), &st), 0) << cg << " left behind";
    }
    EXPECT_EQ(ReadFile("/proc/self/mountinfo").find(job), std::string::npos);
  }

  PlaneFixture f_{"local", /*simulated_tee=*/true};
};

TEST_F(JobE2eTest, AJobRunsEndToEndAndItsAlgorithmIsContained) {
  ASSERT_NO_FATAL_FAILURE(SetUpWorld(kAlgorithm));
  const TempDir& t = f_.dir();
  const std::string port = f_.url().substr(f_.url().rfind(':') + 1);
  const std::string job =
      Submit("  env:\n    PLANE_PORT: \"" + port + "\"\n    OTHER_MANIFEST: \"" +
             t / "other.enc/manifest.cce" + "\"\n");
  ASSERT_FALSE(job.empty());

  // HELD or RELEASED: the bundle arrived and the gate decided (the probes'
  // reports copy no data; the gate's own verdicts are tested below).
  const std::string state = WaitFor(job, {"HELD", "RELEASED", "FAILED", "CANCELLED"});
  // The plane records the output before the agent logs "submitted" (it
  // logs after the plane's answer): give the agent's last line a moment.
  const std::string log_path = f_.data_dir() + "/logs/jobs/" + job + ".log";
  std::string agent_log = ReadFile(log_path);
  for (int i = 0; i < 100 && agent_log.find("\"submitted\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    agent_log = ReadFile(log_path);
  }
  ASSERT_TRUE(state == "HELD" || state == "RELEASED")
      << state << "\n"
      << f_.Cce({"job", "status", job}).out << "\nagent log:\n"
      << agent_log;
  for (const char* step : {"\"attested\"", "\"mounted\"", "\"running\"", "\"submitted\""}) {
    EXPECT_NE(agent_log.find(step), std::string::npos) << step << " missing:\n" << agent_log;
  }
  // The credential never reaches the log.
  EXPECT_EQ(agent_log.find("eyJ"), std::string::npos) << agent_log;

  // Open the sealed bundle as the plane does.
  auto mk = plane::LoadFileMasterKey(f_.data_dir() + "/keys/master.key");
  ASSERT_TRUE(mk.ok()) << mk.status().ToString();
  auto outputs = plane::OutputStore::Open(f_.data_dir() + "/outputs", **mk);
  ASSERT_TRUE(outputs.ok()) << outputs.status().ToString();
  auto bundle = outputs->Get(job);
  ASSERT_TRUE(bundle.ok()) << bundle.status().ToString();
  auto files =
      UntarBundle(std::string(reinterpret_cast<const char*>(bundle->data()), bundle->size()));
  ASSERT_TRUE(files.count("result.json")) << "bundle members: " << files.size();
  json result = json::parse(files["result.json"]);
  EXPECT_EQ(result["exit_code"], 3) << result.dump();  // the algorithm's own exit code
  EXPECT_EQ(result["simulated_tee"], true);
  EXPECT_EQ(files["files/head.txt"], "patient_id,age,diagnosis,cost\n");
  EXPECT_EQ(files["files/rows.txt"], "501\n");
  EXPECT_NE(files["stdout.txt"].find("algorithm done"), std::string::npos);
  const std::string attempts = files["files/attempts.txt"];
  for (const char* name : {"phone_home_plane", "phone_home_internet", "read_other_dataset_mount",
                           "read_other_dataset_host", "write_etc", "write_root", "write_dataset"}) {
    EXPECT_NE(attempts.find(std::string(name) + " BLOCKED"), std::string::npos)
        << name << " was not contained:\n"
        << attempts;
  }
  EXPECT_NE(attempts.find("write_output_works yes"), std::string::npos) << attempts;
  for (const auto& [path, data] : files) {
    EXPECT_EQ(data.find("OTHER-DATASET-CANARY"), std::string::npos) << path;
  }

  ExpectCleanedUp(job);
}

// The Output Gate on real jobs: an aggregate with every cell >= 10 is
// RELEASED and downloadable by its consumer; an algorithm that copies the
// dataset gets its output HELD with the copy named, and nothing downloads.
TEST_F(JobE2eTest, TheGateReleasesAnAggregateAndHoldsACopy) {
  ASSERT_NO_FATAL_FAILURE(SetUpWorld(
      "#!/bin/sh\nif [ \"$MODE\" = copy ]; then cat /data/claims/claims.csv > /output/copy.csv; "
      "else awk -F, 'NR>1 {n[$3]++} END {print \"diagnosis,claims\"; for (d in n) print d \",\" "
      "n[d]}' /data/claims/claims.csv > /output/counts.csv; fi\n"));
  const std::string aggregate = Submit("  env:\n    MODE: \"count\"\n");
  const std::string copy = Submit("  env:\n    MODE: \"copy\"\n");
  ASSERT_FALSE(aggregate.empty());
  ASSERT_FALSE(copy.empty());
  EXPECT_EQ(WaitFor(aggregate, {"HELD", "RELEASED", "FAILED", "CANCELLED"}), "RELEASED")
      << f_.Cce({"job", "status", aggregate}).out;
  EXPECT_EQ(WaitFor(copy, {"HELD", "RELEASED", "FAILED", "CANCELLED"}), "HELD")
      << f_.Cce({"job", "status", copy}).out;
  auto out = f_.Cce({"job", "download", aggregate, "--out", f_.dir() / "released"});
  EXPECT_EQ(out.exit_code, 0) << out.err;
  EXPECT_NE(ReadFile(f_.dir() / "released/output.bundle").find("diagnosis,claims"),
            std::string::npos);
  auto held = f_.Cce({"job", "download", copy, "--out", f_.dir() / "held"});
  EXPECT_NE(held.exit_code, 0) << held.out;
  auto status = f_.Cce({"job", "status", copy, "--output", "json"});
  EXPECT_NE(status.out.find("\"hold\""), std::string::npos) << status.out;
}

// The dataset pin: the plane released the key with the dataset id it recorded
// at registration, and the agent mounts only that dataset. A storage
// operator who swaps in another encryption under the same key (an older
// copy, another dataset) gets the job FAILED, not run on the wrong data.
TEST_F(JobE2eTest, ASwappedCiphertextIsRefusedByTheDatasetPin) {
  ASSERT_NO_FATAL_FAILURE(SetUpWorld("#!/bin/sh\ncat /data/claims/claims.csv > /output/copy\n"));
  const TempDir& t = f_.dir();
  WriteFile(t / "claims/claims.csv", "patient_id,age,diagnosis,cost\nSWAPPED,1,x,0\n");
  auto enc =
      f_.Cce({"dataset", "encrypt", "--key", t / "claims.key", t / "claims", t / "claims.swapped"});
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  ASSERT_EQ(::rename((t / "claims.enc").c_str(), (t / "claims.registered").c_str()), 0);
  ASSERT_EQ(::rename((t / "claims.swapped").c_str(), (t / "claims.enc").c_str()), 0);
  const std::string job = Submit("");
  ASSERT_FALSE(job.empty());
  ASSERT_EQ(WaitFor(job, {"HELD", "FAILED", "CANCELLED"}), "FAILED");
  const std::string status = f_.Cce({"job", "status", job}).out;
  EXPECT_NE(status.find("dataset id"), std::string::npos) << status;
  ExpectCleanedUp(job);
}

// The plane enforces cancellation: a running job is CANCELLED, its agent and
// container are killed and everything they had is destroyed.
TEST_F(JobE2eTest, CancellingARunningJobKillsItAndCleansUp) {
  ASSERT_NO_FATAL_FAILURE(SetUpWorld("#!/bin/sh\necho started > /output/started\nsleep 300\n"));
  const std::string job = Submit("");
  ASSERT_FALSE(job.empty());
  ASSERT_EQ(WaitFor(job, {"RUNNING", "FAILED", "HELD"}), "RUNNING");
  // RUNNING is reported just before runc starts; give the container a moment.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto cancel = f_.Cce({"job", "cancel", job});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_EQ(JobState(f_, job), "CANCELLED");
  // The engine destroys cancelled jobs on its next pass.
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    struct stat st {};
    gone = ::stat(("/sys/fs/cgroup/pids/cce/platform/" + job).c_str(), &st) != 0 &&
           ::stat(("/sys/fs/cgroup/pids/cce/workload/" + job).c_str(), &st) != 0;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(gone) << "the job's cgroups outlived the cancel";
  ExpectCleanedUp(job);
  EXPECT_EQ(JobState(f_, job), "CANCELLED");  // the dying agent cannot move it again
}

}  // namespace
}  // namespace cce::e2e
