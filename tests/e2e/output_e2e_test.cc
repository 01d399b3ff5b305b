// What `cce` prints, as scripts and people read it (docs/cli.md, "Output"):
// every list command starts with a header row and no line ends in a tab or a
// space; with --output json every line of stdout is one JSON object (a list:
// one per item), errors included; `cce-plane user add --output json` names
// the user and role with the token. Against a real plane (fake provisioner,
// so a job reaches HELD and the review queue has an entry).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "e2e/harness.h"
#include "e2e/plane_fixture.h"

namespace cce::e2e {
namespace {

using nlohmann::json;

std::vector<std::string> Lines(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// Every line a JSON object; returns them.
std::vector<json> Objects(const std::string& what, const CommandResult& r) {
  std::vector<json> out;
  EXPECT_TRUE(r.out.empty() || r.out.back() == '\n') << what << ": " << r.out;
  for (const std::string& l : Lines(r.out)) {
    json j = json::parse(l, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << what << ": not one JSON object per line: " << l;
    out.push_back(std::move(j));
  }
  return out;
}

// A list's text: a header row of upper-case column names first, then rows;
// no tab anywhere, nothing trailing.
void ExpectTable(const std::string& what, const CommandResult& r, const std::string& first_column,
                 size_t min_rows) {
  ASSERT_EQ(r.exit_code, 0) << what << ": " << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_GE(lines.size(), 1 + min_rows) << what << ": " << r.out;
  EXPECT_EQ(lines[0].rfind(first_column + " ", 0), 0u) << what << ": no header row: " << r.out;
  for (char c : lines[0]) {
    EXPECT_TRUE(c == ' ' || c == '-' || c == '/' || c == ':' || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9'))
        << what << ": header row '" << lines[0] << "'";
  }
  for (const std::string& l : lines) {
    EXPECT_EQ(l.find('\t'), std::string::npos) << what << ": a tab in '" << l << "'";
    ASSERT_FALSE(l.empty()) << what << ": an empty line in " << r.out;
    EXPECT_NE(l.back(), ' ') << what << ": trailing space in '" << l << "'";
  }
}

TEST(CliOutput, TablesHaveHeadersAndJsonIsOneObjectPerLine) {
  PlaneFixture plane("fake");
  ASSERT_TRUE(plane.up());
  const TempDir& t = plane.dir();
  auto Cce = [&](std::vector<std::string> args) { return plane.Cce(std::move(args)); };
  const std::string pat = plane.AddUser("pat", "provider");
  const std::string carol = plane.AddUser("carol", "consumer");
  const std::string rita = plane.AddUser("rita", "reviewer");

  // `user add --output json`: the name and role with the token, one line.
  auto added = RunCommand({BinPath("cce-plane"), "user", "add", "--data-dir", plane.data_dir(),
                           "--role", "consumer", "dave", "--output", "json"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  std::vector<json> user = Objects("user add", added);
  ASSERT_EQ(user.size(), 1u);
  EXPECT_EQ(user[0]["user"], "dave");
  EXPECT_EQ(user[0]["role"], "consumer");
  EXPECT_EQ(user[0]["token"].get<std::string>().rfind("cce_", 0), 0u) << added.out;

  WriteFile(t / "src/claims.csv", "id,cost\n1,10\n");
  ASSERT_EQ(Cce({"key", "generate", "--out", t / "claims.key"}).exit_code, 0);
  ASSERT_EQ(
      Cce({"dataset", "encrypt", "--key", t / "claims.key", t / "src", t / "claims.enc"}).exit_code,
      0);
  ASSERT_TRUE(plane.Login(pat));
  // A value's trailing spaces do not reach the end of a table line.
  auto reg = Cce({"dataset", "register", "claims", "--key", t / "claims.key", "--location",
                  "file://" + (t / "claims.enc"), "--price", "2.5", "--description",
                  "synthetic claims  "});
  ASSERT_EQ(reg.exit_code, 0) << reg.err;

  ASSERT_TRUE(plane.Login(carol));
  ASSERT_EQ(Cce({"rent", "claims", "--days", "1"}).exit_code, 0);
  WriteOciLayout(t, t / "app-oci", "team/stats:1.0");
  ASSERT_EQ(Cce({"image", "push", t / "app-oci"}).exit_code, 0);
  WriteFile(t / "job.yaml",
            "apiVersion: cce4long/v1\nkind: PrivacyJob\nmetadata: {name: cohort-stats}\n"
            "spec:\n  image: team/stats:1.0\n  command: [python3, /app/run.py]\n"
            "  datasets:\n    - {name: claims, mountPath: /data/claims}\n"
            "  resources: {cpus: 1, memoryMiB: 512, timeoutSeconds: 600, outputMaxMiB: 16}\n");
  auto submit = Cce({"job", "submit", "-f", t / "job.yaml"});
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  const std::string id = submit.out.substr(0, submit.out.size() - 1);
  ASSERT_EQ(Cce({"job", "status", id, "--watch", "--interval", "1"}).exit_code, 0);

  // The consumer's lists: header first, aligned, nothing trailing.
  auto datasets = Cce({"dataset", "list"});
  ExpectTable("dataset list", datasets, "NAME", 1);
  EXPECT_NE(datasets.out.find("PRICE/DAY"), std::string::npos) << datasets.out;
  EXPECT_NE(datasets.out.find("  2.5  "), std::string::npos) << datasets.out;
  EXPECT_NE(datasets.out.find("synthetic claims\n"), std::string::npos) << datasets.out;
  ExpectTable("rentals", Cce({"rentals"}), "DATASET", 1);
  ExpectTable("image list", Cce({"image", "list"}), "NAME:TAG", 1);
  ExpectTable("job list", Cce({"job", "list"}), "ID", 1);
  ExpectTable("job bases", Cce({"job", "bases"}), "NAME", 0);
  ExpectTable("explore list", Cce({"explore", "list"}), "ID", 0);

  // One object per item, one line each.
  EXPECT_EQ(Objects("dataset list", Cce({"dataset", "list", "--output", "json"})).size(), 1u);
  EXPECT_EQ(Objects("rentals", Cce({"rentals", "--output", "json"})).size(), 1u);
  EXPECT_EQ(Objects("image list", Cce({"image", "list", "--output", "json"})).size(), 1u);
  auto jobs = Objects("job list", Cce({"job", "list", "--output", "json"}));
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["id"], id);
  Objects("job bases", Cce({"job", "bases", "--output", "json"}));
  Objects("explore list", Cce({"explore", "list", "--output", "json"}));
  for (std::vector<std::string> one : {std::vector<std::string>{"dataset", "show", "claims"},
                                       {"job", "status", id},
                                       {"dataset", "list", "--output=json"}}) {
    if (one.back() != "--output=json") {
      one.push_back("--output");
      one.push_back("json");
    }
    auto r = Cce(one);
    EXPECT_EQ(r.exit_code, 0) << one[0] << " " << one[1] << ": " << r.err;
    EXPECT_EQ(Objects(one[0] + " " + one[1], r).size(), 1u) << r.out;
  }

  // Errors: one JSON line on stdout when JSON was asked for, the message on
  // stderr as well; a flag error too; without JSON, stdout stays empty.
  auto missing = Cce({"job", "status", "job-0000000000000000", "--output", "json"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  std::vector<json> err = Objects("job status (missing)", missing);
  ASSERT_EQ(err.size(), 1u) << missing.out;
  EXPECT_EQ(err[0]["error"]["code"], "not_found") << missing.out;
  EXPECT_EQ(err[0]["error"]["exit"], 2);
  EXPECT_FALSE(err[0]["error"]["message"].get<std::string>().empty());
  EXPECT_NE(missing.err.find("cce: error: "), std::string::npos) << missing.err;
  auto bad_flag = Cce({"job", "list", "--limit", "0", "--output=json"});
  EXPECT_EQ(bad_flag.exit_code, 2);
  err = Objects("job list --limit 0", bad_flag);
  ASSERT_EQ(err.size(), 1u) << bad_flag.out;
  EXPECT_EQ(err[0]["error"]["code"], "invalid_argument");
  auto unknown_flag = Cce({"dataset", "list", "--bogus", "--output", "json"});
  EXPECT_EQ(unknown_flag.exit_code, 2);
  EXPECT_EQ(Objects("dataset list --bogus", unknown_flag).size(), 1u) << unknown_flag.out;
  auto text_error = Cce({"job", "status", "job-0000000000000000"});
  EXPECT_EQ(text_error.exit_code, 2);
  EXPECT_EQ(text_error.out, "");

  // The reviewer's queue and the operator's audit trail.
  ASSERT_TRUE(plane.Login(rita));
  ExpectTable("review list", Cce({"review", "list"}), "JOB", 1);
  EXPECT_EQ(Objects("review list", Cce({"review", "list", "--output", "json"})).size(), 1u);
  auto show = Cce({"review", "show", id});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  for (const std::string& l : Lines(show.out)) {
    EXPECT_TRUE(l.empty() || l.back() != ' ') << "review show: '" << l << "'";
    EXPECT_EQ(l.find('\t'), std::string::npos) << "review show: '" << l << "'";
  }
  EXPECT_EQ(Objects("review show", Cce({"review", "show", id, "--output", "json"})).size(), 1u);
  ASSERT_TRUE(plane.Login(plane.operator_token()));
  ExpectTable("audit list", Cce({"audit", "list"}), "SEQ", 3);
  auto entries = Objects("audit list", Cce({"audit", "list", "--job", id, "--output", "json"}));
  EXPECT_GE(entries.size(), 3u);
  for (const json& e : entries) EXPECT_TRUE(e.contains("seq")) << e.dump();
  auto verify = Cce({"audit", "verify", "--output", "json"});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  EXPECT_EQ(Objects("audit verify", verify).size(), 1u) << verify.out;
  // A full page says how to get the next one, on stderr (stdout stays items).
  auto page = Cce({"audit", "list", "--limit", "2", "--output", "json"});
  EXPECT_EQ(Objects("audit list --limit 2", page).size(), 2u);
  EXPECT_NE(page.err.find("cce audit list --after "), std::string::npos) << page.err;
}

}  // namespace
}  // namespace cce::e2e
