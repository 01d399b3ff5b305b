// `cce-agent attest --simulate` against a served plane (docs/agent.md, "By
// hand"): a provider's dataset, a consumer's rental, image and job (which
// waits in PROVISIONING: provisioner none), its credential from `cce-plane job
// credential`, then the three key broker requests. The printed key
// fingerprint must be the SHA-256 of the provider's key file, the key and the
// credential must appear nowhere in the output, and every refusal (no
// credential, a forged or used one, no TDX without --simulate, a plane that
// does not trust the simulated TEE, a credential asked for a job that is not
// waiting for its agent) has its exit code and a message that names it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "crypto/crypto.h"
#include "e2e/plane_fixture.h"

namespace cce::e2e {
namespace {

using nlohmann::json;

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// The key's hex digits from a key file ("cce4long-dataset-key-v1 <hex>\n").
std::string KeyHex(const std::string& key_file) {
  std::string text = ReadFile(key_file);
  const size_t space = text.find(' ');
  if (space == std::string::npos) return "";
  std::string hex = text.substr(space + 1, 64);
  return hex;
}

std::string Sha256OfHex(const std::string& hex) {
  crypto::Bytes raw;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    raw.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return crypto::ToHex(crypto::Sha256(raw));
}

const json* Step(const std::vector<json>& lines, const std::string& step) {
  for (const json& j : lines) {
    if (j.is_object() && j.value("step", "") == step) return &j;
  }
  return nullptr;
}

// A provider's dataset "claims" (key in DIR/claims.key), rented by the
// consumer, who is logged in with an image "probe/attest:1" pushed.
void SetUpWorld(PlaneFixture& f) {
  ASSERT_TRUE(f.up());
  const TempDir& t = f.dir();
  const std::string provider = f.AddUser("hospital", "provider");
  const std::string consumer = f.AddUser("analyst", "consumer");
  WriteFile(t / "claims/claims.csv", "patient_id,cost\nP1,10.00\nP2,12.50\n");
  ASSERT_TRUE(f.Login(provider));
  ASSERT_EQ(f.Cce({"key", "generate", "--out", t / "claims.key"}).exit_code, 0);
  auto enc = f.Cce({"dataset", "encrypt", "--key", t / "claims.key", t / "claims", t / "claims.enc"});
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  auto reg = f.Cce({"dataset", "register", "claims", "--key", t / "claims.key", "--location",
                    "file://" + t / "claims.enc"});
  ASSERT_EQ(reg.exit_code, 0) << reg.err;
  ASSERT_TRUE(f.Login(consumer));
  ASSERT_EQ(f.Cce({"rent", "claims", "--days", "1"}).exit_code, 0);
  WriteOciLayout(t, t / "image", "probe/attest:1");
  auto push = f.Cce({"image", "push", t / "image"});
  ASSERT_EQ(push.exit_code, 0) << push.err;
  WriteFile(t / "job.yaml",
            "apiVersion: cce4long/v1\nkind: PrivacyJob\nmetadata:\n  name: attest\n"
            "spec:\n  image: probe/attest:1\n  command: [\"/bin/tool\"]\n"
            "  datasets:\n    - name: claims\n      mountPath: /data/claims\n"
            "  resources:\n    memoryMiB: 256\n    timeoutSeconds: 300\n");
}

std::string JobState(PlaneFixture& f, const std::string& job, std::string* reason = nullptr) {
  auto r = f.Cce({"job", "status", job, "--output", "json"});
  if (r.exit_code != 0) return "";
  json j = json::parse(r.out, nullptr, false);
  if (reason) *reason = j.value("reason", "");
  return j.value("state", "");
}

// Submits job.yaml and waits until it is PROVISIONING; returns its id.
std::string SubmitAndWait(PlaneFixture& f) {
  auto submit = f.Cce({"job", "submit", "-f", f.dir() / "job.yaml", "--output", "json"});
  EXPECT_EQ(submit.exit_code, 0) << submit.err;
  if (submit.exit_code != 0) return "";
  const std::string job = json::parse(submit.out)["id"].get<std::string>();
  for (int i = 0; i < 200 && JobState(f, job) != "PROVISIONING"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(JobState(f, job), "PROVISIONING");
  return job;
}

CommandResult IssueCredential(const std::string& data_dir, const std::string& job) {
  return RunCommand(
      {BinPath("cce-plane"), "job", "credential", "--data-dir", data_dir, job});
}

std::string Credential(PlaneFixture& f, const std::string& job) {
  auto r = IssueCredential(f.data_dir(), job);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string token = r.out;
  while (!token.empty() && token.back() == '\n') token.pop_back();
  EXPECT_EQ(token.rfind("cce-cred-v1.", 0), 0u) << token;
  return token;
}

// cce-agent attest --simulate against f, the credential on stdin.
CommandResult Attest(PlaneFixture& f, const std::string& credential,
                     const std::vector<std::string>& extra = {"--output", "json"},
                     const std::string& sim_dir = "") {
  std::vector<std::string> argv = {BinPath("cce-agent"), "attest", "--simulate", "--sim-dir",
                                   sim_dir.empty() ? f.data_dir() + "/attestation/sim" : sim_dir,
                                   "--plane", f.url(), "--ca", f.ca(), "--credential-file", "-"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return RunCommand(argv, credential);
}

class AgentAttestTest : public ::testing::Test {
 protected:
  PlaneFixture f_{"none", /*simulated_tee=*/true};
};

TEST_F(AgentAttestTest, PrintsEachStepAndTheKeyFingerprintNeverTheKey) {
  SetUpWorld(f_);
  const std::string job = SubmitAndWait(f_);
  const std::string credential = Credential(f_, job);
  auto r = Attest(f_, credential);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("SIMULATED TEE"), std::string::npos) << r.err;

  auto lines = JsonLines(r.out);
  for (const json& j : lines) EXPECT_TRUE(j.is_object()) << r.out;
  const json* auth = Step(lines, "auth");
  ASSERT_NE(auth, nullptr) << r.out;
  EXPECT_EQ((*auth)["job"], job);
  EXPECT_EQ((*auth)["nonce"].get<std::string>().size(), 43u);  // 32 bytes, base64url
  const json* quote = Step(lines, "quote");
  ASSERT_NE(quote, nullptr) << r.out;
  EXPECT_EQ((*quote)["simulated"], true);
  EXPECT_EQ((*quote)["provider"], "simulated");
  EXPECT_EQ((*quote)["version"], 4);
  EXPECT_EQ((*quote)["debug"], false);
  EXPECT_EQ((*quote)["report_data"].get<std::string>().size(), 128u);
  EXPECT_EQ((*quote)["rtmr"].size(), 4u);
  EXPECT_GT((*quote)["bytes"].get<int>(), 1000);
  const json* attested = Step(lines, "attested");
  ASSERT_NE(attested, nullptr) << r.out;
  EXPECT_EQ((*attested)["simulated_tee"], true);
  EXPECT_EQ((*attested)["tcb_status"], "UpToDate");
  EXPECT_EQ((*attested)["session_sha256"].get<std::string>().size(), 64u);
  const json* key = Step(lines, "key");
  ASSERT_NE(key, nullptr) << r.out;
  EXPECT_EQ((*key)["dataset"], "claims");
  EXPECT_EQ((*key)["key_bytes"], 32);

  // The fingerprint is the SHA-256 of the provider's key...
  const std::string key_hex = KeyHex(f_.dir() / "claims.key");
  ASSERT_EQ(key_hex.size(), 64u);
  EXPECT_EQ((*key)["key_sha256"], Sha256OfHex(key_hex));
  // ...and neither the key nor the credential is printed anywhere.
  for (const std::string* s : {&r.out, &r.err}) {
    EXPECT_EQ(s->find(key_hex), std::string::npos);
    EXPECT_EQ(s->find(Upper(key_hex)), std::string::npos);
    EXPECT_EQ(s->find(credential.substr(12, 40)), std::string::npos);
  }

  // The job was not run: the command closed it.
  const json* closed = Step(lines, "closed");
  ASSERT_NE(closed, nullptr) << r.out;
  std::string reason;
  EXPECT_EQ(JobState(f_, job, &reason), "FAILED");
  EXPECT_NE(reason.find("cce-agent attest"), std::string::npos) << reason;

  // The credential was single use; the job is no longer waiting for one.
  auto again = Attest(f_, credential);
  EXPECT_EQ(again.exit_code, 3) << again.err;
  EXPECT_NE(again.err.find("kbs auth: credential: already used"), std::string::npos) << again.err;
  auto reissue = IssueCredential(f_.data_dir(), job);
  EXPECT_EQ(reissue.exit_code, 1);
  EXPECT_NE(reissue.err.find("is FAILED, not PROVISIONING"), std::string::npos) << reissue.err;
  EXPECT_EQ(reissue.out, "");

  // Text output, on a second job: one labelled line per step.
  const std::string job2 = SubmitAndWait(f_);
  auto text = Attest(f_, Credential(f_, job2), {});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const std::string label : {"auth ", "quote ", "attested ", "job ", "key ", "closed "}) {
    EXPECT_NE(("\n" + text.out).find("\n" + label), std::string::npos) << label << "\n" << text.out;
  }
  EXPECT_NE(text.out.find("SIMULATED"), std::string::npos);
  EXPECT_NE(text.out.find("key sha256:" + Sha256OfHex(key_hex)), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find(key_hex), std::string::npos);
}

TEST_F(AgentAttestTest, RefusesWithoutAUsableCredential) {
  SetUpWorld(f_);
  const std::string sim = f_.data_dir() + "/attestation/sim";
  // No credential flag at all.
  auto none = RunCommand({BinPath("cce-agent"), "attest", "--simulate", "--sim-dir", sim,
                          "--plane", f_.url(), "--ca", f_.ca()});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("expected exactly one of --credential-fd N or --credential-file FILE"),
            std::string::npos)
      << none.err;
  // An empty one on stdin: says where to get one.
  auto empty = Attest(f_, "", {});
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.err.find("the Job Credential is empty (--credential-file -)"), std::string::npos)
      << empty.err;
  EXPECT_NE(empty.err.find("cce-plane job credential"), std::string::npos) << empty.err;
  // A forged one: the plane refuses it (exit 3), as one JSON error line too.
  auto forged = Attest(f_, "cce-cred-v1.eyJqb2IiOiJ4In0.AAAA");
  EXPECT_EQ(forged.exit_code, 3) << forged.err;
  EXPECT_NE(forged.err.find("kbs auth: credential"), std::string::npos) << forged.err;
  auto lines = JsonLines(forged.out);
  ASSERT_EQ(lines.size(), 1u) << forged.out;
  EXPECT_EQ(lines[0]["error"]["exit"], 3) << forged.out;
  // A credential file that does not exist names it.
  auto missing = RunCommand({BinPath("cce-agent"), "attest", "--simulate", "--sim-dir", sim,
                             "--plane", f_.url(), "--ca", f_.ca(), "--credential-file",
                             f_.dir() / "nope.cred"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("nope.cred"), std::string::npos) << missing.err;
  // --simulate without the simulated TEE directory.
  auto no_sim = RunCommand({BinPath("cce-agent"), "attest", "--simulate", "--plane", f_.url(),
                            "--ca", f_.ca(), "--credential-file", "-"});
  EXPECT_EQ(no_sim.exit_code, 2);
  EXPECT_NE(no_sim.err.find("--simulate: --sim-dir DIR is required"), std::string::npos)
      << no_sim.err;

  // cce-plane job credential: an unknown job; a plane whose provisioner
  // hands credentials to its own agents.
  auto unknown = IssueCredential(f_.data_dir(), "job-nonsense");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("no job 'job-nonsense'"), std::string::npos) << unknown.err;
  const std::string other = f_.dir() / "fake-plane";
  ASSERT_EQ(RunCommand({BinPath("cce-plane"), "init", "--data-dir", other}).exit_code, 0);
  std::string config = ReadFile(other + "/plane.yaml");
  const size_t at = config.find("  backend: none");
  ASSERT_NE(at, std::string::npos);
  config.replace(at, 15, "  backend: fake");
  WriteFile(other + "/plane.yaml", config);
  auto fake = IssueCredential(other, "job-x");
  EXPECT_EQ(fake.exit_code, 1);
  EXPECT_NE(fake.err.find("provisioner is 'fake'"), std::string::npos) << fake.err;
}

TEST_F(AgentAttestTest, RefusesWithoutTdxUnlessSimulated) {
  if (access("/sys/kernel/config/tsm/report", F_OK) == 0) {
    GTEST_SKIP() << "this machine has configfs-tsm (a TDX guest?): the no-TDX refusal does "
                    "not apply here";
  }
  ASSERT_TRUE(f_.up());
  // Refused before the credential is read: stdin is not consumed.
  auto r = RunCommand({BinPath("cce-agent"), "attest", "--plane", f_.url(), "--ca", f_.ca(),
                       "--credential-file", "-"},
                      "cce-cred-v1.x.y");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no TDX here: /sys/kernel/config/tsm/report does not exist"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--simulate"), std::string::npos) << r.err;
  auto sim_dir_alone = RunCommand({BinPath("cce-agent"), "attest", "--sim-dir", "/tmp", "--plane",
                                   f_.url(), "--ca", f_.ca(), "--credential-file", "-"});
  EXPECT_EQ(sim_dir_alone.exit_code, 2);
  EXPECT_NE(sim_dir_alone.err.find("--sim-dir: only with --simulate"), std::string::npos);
}

// A plane initialized without --simulated-tee does not trust the simulated
// chain: the quote is refused at step 2, after it is shown.
TEST(AgentAttestPlainPlaneTest, APlaneWithoutSimulatedTeeRefusesTheQuote) {
  TempDir other;
  ASSERT_EQ(RunCommand({BinPath("cce-plane"), "init", "--data-dir", other / "sim-plane",
                        "--simulated-tee"})
                .exit_code,
            0);
  PlaneFixture plain("none", /*simulated_tee=*/false);
  SetUpWorld(plain);
  const std::string job = SubmitAndWait(plain);
  auto r = Attest(plain, Credential(plain, job), {"--output", "json"},
                  other / "sim-plane/attestation/sim");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("kbs attest: quote"), std::string::npos) << r.err;
  auto lines = JsonLines(r.out);
  const json* quote = Step(lines, "quote");
  ASSERT_NE(quote, nullptr) << r.out;
  EXPECT_EQ((*quote)["simulated"], true);
  EXPECT_EQ(Step(lines, "key"), nullptr);
  EXPECT_EQ(JobState(plain, job), "PROVISIONING");  // nothing was attested
}

}  // namespace
}  // namespace cce::e2e
