// The Privacy Plane from the command line, as its users meet it: an operator
// initializes and serves it, adds users; a provider logs in and registers an
// encrypted dataset; a consumer browses the catalog and rents it. Real
// binaries, real TLS on a loopback port.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "e2e/harness.h"
#include "e2e/plane_fixture.h"

namespace cce::e2e {
namespace {

using nlohmann::json;

TEST(PlaneCli, ProviderRegistersConsumerRentsAllOverTls) {
  PlaneFixture plane;
  ASSERT_TRUE(plane.up());
  const TempDir& t = plane.dir();
  const std::string url = plane.url(), ca = plane.ca();
  auto Cce = [&](std::vector<std::string> args) { return plane.Cce(std::move(args)); };
  std::string pat = plane.AddUser("pat", "provider"), carol = plane.AddUser("carol", "consumer");

  // Provider: encrypt locally, log in, register with the key.
  WriteFile(t / "src/claims.csv", "id,cost\n1,10\n2,20\n");
  ASSERT_EQ(Cce({"key", "generate", "--out", t / "claims.key"}).exit_code, 0);
  ASSERT_EQ(
      Cce({"dataset", "encrypt", "--key", t / "claims.key", t / "src", t / "claims.enc"}).exit_code,
      0);
  auto login = Cce({"login", "--plane", url, "--token", pat, "--ca", ca});
  ASSERT_EQ(login.exit_code, 0) << login.err;
  EXPECT_NE(login.out.find("as pat (provider)"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat((t / ".config/cce/config.yaml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // it holds the token
  auto bad_login = Cce({"login", "--plane", url, "--token", "cce_nope", "--ca", ca});
  EXPECT_EQ(bad_login.exit_code, 3);
  auto reg = Cce({"dataset", "register", "claims", "--key", t / "claims.key", "--location",
                  "file://" + (t / "claims.enc"), "--price", "2.5", "--max-days", "14",
                  "--description", "synthetic claims"});
  ASSERT_EQ(reg.exit_code, 0) << reg.err;
  auto again = Cce({"dataset", "register", "claims", "--key", t / "claims.key", "--location",
                    "file://" + (t / "claims.enc")});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("plane:"), std::string::npos) << again.err;

  // Consumer: browse and rent.
  ASSERT_EQ(Cce({"login", "--plane", url, "--token", carol, "--ca", ca}).exit_code, 0);
  auto list = Cce({"dataset", "list", "--output", "json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  std::vector<json> lj = JsonLines(list.out);
  ASSERT_EQ(lj.size(), 1u);
  EXPECT_EQ(lj[0]["price"], "2.5");
  auto show = Cce({"dataset", "show", "claims"});
  EXPECT_NE(show.out.find("synthetic claims"), std::string::npos);
  auto too_long = Cce({"rent", "claims", "--days", "15"});
  EXPECT_EQ(too_long.exit_code, 2);
  EXPECT_NE(too_long.err.find("body.days"), std::string::npos) << too_long.err;
  auto rent = Cce({"rent", "claims", "--days", "3", "--output", "json"});
  ASSERT_EQ(rent.exit_code, 0) << rent.err;
  json rj = json::parse(rent.out);
  EXPECT_EQ(rj["end"].get<int64_t>() - rj["start"].get<int64_t>(), 3 * 86400);
  auto rentals = Cce({"rentals", "--output", "json"});
  EXPECT_EQ(JsonLines(rentals.out).size(), 1u);
  // A consumer may not register datasets: refused by the plane, exit 3.
  auto refused = Cce({"dataset", "register", "mine", "--key", t / "claims.key", "--location",
                      "file://" + (t / "claims.enc")});
  EXPECT_EQ(refused.exit_code, 3);
  // Environment variables override the saved config.
  ::setenv("CCE_TOKEN", "cce_bogus", 1);
  EXPECT_EQ(Cce({"rentals"}).exit_code, 3);
  ::unsetenv("CCE_TOKEN");

  EXPECT_EQ(plane.Stop(), 0) << plane.server().Err();
  EXPECT_NE(plane.server().Err().find("\"event\":\"plane.stop\""), std::string::npos)
      << plane.server().Err();
}

// The Done-when of the Privacy Plane issue, from the command line only: a
// provider registers, a consumer rents, pushes an image, submits a job and
// watches it to HELD (fake provisioner, fail-closed gate); nothing can be
// downloaded; the operator verifies the audit log, then sees a tampered row
// named.
TEST(PlaneCli, JobFromSubmitToHeldAndTheAuditLogVerifies) {
  PlaneFixture plane("fake");
  ASSERT_TRUE(plane.up());
  const TempDir& t = plane.dir();
  auto Cce = [&](std::vector<std::string> args) { return plane.Cce(std::move(args)); };
  std::string pat = plane.AddUser("pat", "provider"), carol = plane.AddUser("carol", "consumer"),
              dave = plane.AddUser("dave", "consumer");

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
  ASSERT_EQ(push.out.rfind("team/stats:1.0 -> ", 0), 0u) << push.out;  // NAME:TAG -> DIGEST
  const std::string digest = push.out.substr(18, push.out.size() - 19);
  WriteFile(t / "job.yaml",
            "apiVersion: cce4long/v1\nkind: PrivacyJob\nmetadata: {name: cohort-stats}\n"
            "spec:\n  image: team/stats:1.0\n  command: [python3, /app/run.py]\n"
            "  env: {MODE: full}\n"
            "  datasets:\n    - {name: claims, mountPath: /data/claims}\n"
            "  resources: {cpus: 1, memoryMiB: 512, timeoutSeconds: 600, outputMaxMiB: 16}\n");
  auto submit = Cce({"job", "submit", "-f", t / "job.yaml", "--idempotency-key", "retry-1"});
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  const std::string id = submit.out.substr(0, submit.out.size() - 1);
  ASSERT_EQ(id.rfind("job-", 0), 0u) << submit.out;  // the id alone on stdout
  auto retry = Cce({"job", "submit", "-f", t / "job.yaml", "--idempotency-key", "retry-1"});
  EXPECT_EQ(retry.out, submit.out);  // the same job, not a second one

  auto watch = Cce({"job", "status", id, "--watch", "--interval", "1"});
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  for (const char* state : {"SUBMITTED", "AUTHORIZED", "PROVISIONING", "ATTESTED", "RUNNING",
                            "OUTPUT_SUBMITTED", "HELD"}) {
    EXPECT_NE(watch.out.find(std::string(state) + ":"), std::string::npos) << state << watch.out;
  }
  // A state the job passed through counts; a misspelt one is bad input.
  EXPECT_EQ(Cce({"job", "status", id, "--watch", "--until", "PROVISIONING"}).exit_code, 0);
  EXPECT_EQ(Cce({"job", "status", id, "--watch", "--until", "PROVISONING"}).exit_code, 2);
  auto status = Cce({"job", "status", id, "--output", "json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  json sj = json::parse(status.out);
  EXPECT_EQ(sj["state"], "HELD");
  EXPECT_EQ(sj["image"], digest);  // the tag was pinned to its digest
  EXPECT_EQ(sj["history"].size(), 7u);
  auto text = Cce({"job", "status", id});
  EXPECT_NE(text.out.find("state:    HELD"), std::string::npos) << text.out;
  auto list = Cce({"job", "list", "--output", "json"});
  EXPECT_EQ(JsonLines(list.out).size(), 1u);
  auto dl = Cce({"job", "download", id, "--out", t / "out"});
  EXPECT_EQ(dl.exit_code, 1) << dl.err;  // not RELEASED: refused, nothing written
  EXPECT_NE(dl.err.find("only once RELEASED"), std::string::npos) << dl.err;
  EXPECT_FALSE(std::filesystem::exists(t / "out"));
  auto bad = Cce({"job", "submit", "-f", t / "nope.yaml"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("nope.yaml"), std::string::npos) << bad.err;

  ASSERT_TRUE(plane.Login(dave));  // another consumer sees nothing of it
  EXPECT_NE(Cce({"job", "status", id}).exit_code, 0);
  EXPECT_NE(Cce({"job", "cancel", id}).exit_code, 0);
  ASSERT_TRUE(plane.Login(carol));
  auto cancel = Cce({"job", "cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;

  ASSERT_TRUE(plane.Login(plane.operator_token()));
  auto verify = Cce({"audit", "verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("audit log: OK"), std::string::npos) << verify.out;
  auto trail = Cce({"audit", "list", "--job", id, "--output", "json"});
  ASSERT_EQ(trail.exit_code, 0) << trail.err;
  std::vector<std::string> actions;
  const std::vector<json> entries = JsonLines(trail.out);
  for (const auto& e : entries) actions.push_back(e["action"]);
  for (const char* a : {"job.submit", "job.authorize", "credential.issue", "job.provision",
                        "gate.verdict", "job.gate", "output.download", "job.cancel"}) {
    EXPECT_NE(std::find(actions.begin(), actions.end(), a), actions.end()) << a;
  }

  // Someone with the database rewrites history: the next verify names the row.
  ASSERT_EQ(plane.Stop(), 0);
  auto sql = RunCommand({"sqlite3", plane.data_dir() + "/plane.db",
                         "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET decision = "
                         "'allow' WHERE action = 'output.download';"});
  ASSERT_EQ(sql.exit_code, 0) << sql.err;
  BackgroundProcess again({BinPath("cce-plane"), "serve", "--data-dir", plane.data_dir()});
  CommandResult tampered;
  for (int i = 0; i < 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    tampered = Cce({"audit", "verify", "--output", "json"});
    if (tampered.exit_code != 1) break;  // 1: not up yet
  }
  EXPECT_EQ(tampered.exit_code, 3) << tampered.out << tampered.err;
  json tj = json::parse(tampered.out);
  EXPECT_FALSE(tj["ok"].get<bool>());
  EXPECT_EQ(tj["audit"]["failure"], "edited");
  EXPECT_GT(tj["audit"]["first_bad_seq"].get<int64_t>(), 0);
  EXPECT_EQ(again.Stop(SIGTERM, 10000), 0) << again.Err();
}

// Issue 10, finding 2, from the command line: `cce audit verify` recomputes
// the chains on the client and remembers the signed head it verified, so
// deleting the last entries with their checkpoints (in the database AND the
// checkpoint file), or emptying the log, no longer verifies.
TEST(PlaneCli, AuditVerifyCatchesATruncatedLogAgainstTheRememberedHead) {
  PlaneFixture plane("none");
  ASSERT_TRUE(plane.up());
  plane.AddUser("pat", "provider");
  plane.AddUser("carol", "consumer");
  ASSERT_TRUE(plane.Login(plane.operator_token()));
  auto first = plane.Cce({"audit", "verify"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_NE(first.out.find("audit log: OK"), std::string::npos) << first.out;
  EXPECT_NE(first.err.find("pinned the plane key"), std::string::npos) << first.err;
  // A later `cce login` keeps what was pinned; the file stays private.
  ASSERT_TRUE(plane.Login(plane.operator_token()));
  const std::string config = ReadFile(plane.dir() / ".config/cce/config.yaml");
  EXPECT_NE(config.find("audit_seq"), std::string::npos) << config;
  struct stat st {};
  ASSERT_EQ(::stat((plane.dir() / ".config/cce/config.yaml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A plane presenting another key than the one pinned is refused loudly.
  const std::string config_path = plane.dir() / ".config/cce/config.yaml";
  const size_t at = config.find("public_key: ");
  ASSERT_NE(at, std::string::npos) << config;
  std::string other_key = config;
  const size_t digit = at + std::string("public_key: ").size();
  other_key[digit] = other_key[digit] == 'a' ? 'b' : 'a';
  WriteFile(config_path, other_key);
  auto rekeyed = plane.Cce({"audit", "verify"});
  EXPECT_EQ(rekeyed.exit_code, 3) << rekeyed.out << rekeyed.err;
  EXPECT_NE(rekeyed.err.find("was pinned for it"), std::string::npos) << rekeyed.err;
  WriteFile(config_path, config);
  auto again = plane.Cce({"audit", "verify", "--output", "json"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  const int64_t head = json::parse(again.out)["audit"]["head_seq"].get<int64_t>();
  ASSERT_GE(head, 3);

  auto restart_and_verify = [&]() {
    BackgroundProcess server({BinPath("cce-plane"), "serve", "--data-dir", plane.data_dir()});
    CommandResult r;
    for (int i = 0; i < 200; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      r = plane.Cce({"audit", "verify", "--output", "json"});
      if (r.exit_code != 1) break;  // 1: not up yet
    }
    EXPECT_EQ(server.Stop(SIGTERM, 10000), 0) << server.Err();
    return r;
  };
  // Cut the tail and every checkpoint above what is left, everywhere the
  // plane keeps them: the database and its checkpoint file.
  ASSERT_EQ(plane.Stop(), 0);
  const std::string keep = std::to_string(head - 2);
  auto sql = RunCommand({"sqlite3", plane.data_dir() + "/plane.db",
                         "DROP TRIGGER audit_log_no_delete; DROP TRIGGER "
                         "audit_checkpoints_no_delete; DELETE FROM audit_log WHERE seq > " +
                             keep + "; DELETE FROM audit_checkpoints WHERE seq > " + keep + ";"});
  ASSERT_EQ(sql.exit_code, 0) << sql.err;
  WriteFile(plane.data_dir() + "/checkpoints.log", "");
  CommandResult cut = restart_and_verify();
  EXPECT_EQ(cut.exit_code, 3) << cut.out << cut.err;
  json cj = json::parse(cut.out);
  EXPECT_EQ(cj["audit"]["failure"], "head went backwards") << cut.out;

  // Everything deleted ("OK, 0 entries" before): still refused.
  auto wipe = RunCommand({"sqlite3", plane.data_dir() + "/plane.db",
                          "DELETE FROM audit_log; DELETE FROM audit_checkpoints;"});
  ASSERT_EQ(wipe.exit_code, 0) << wipe.err;
  WriteFile(plane.data_dir() + "/checkpoints.log", "");
  CommandResult empty = restart_and_verify();
  EXPECT_EQ(empty.exit_code, 3) << empty.out << empty.err;
  EXPECT_FALSE(json::parse(empty.out)["audit"]["ok"].get<bool>()) << empty.out;
}

}  // namespace
}  // namespace cce::e2e
