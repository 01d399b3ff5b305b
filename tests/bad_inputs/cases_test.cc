// The .cases parser (cases.h): the syntax, and errors that name FILE:LINE.
// Also parses every committed tests/bad_inputs/*.cases file, so a malformed
// one fails here, without a plane.
#include "bad_inputs/cases.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace cce::bad_inputs {
namespace {

std::string ErrorOf(const std::string& text) {
  auto r = ParseCases(text, "t.cases");
  return r.ok() ? "parsed" : r.status().message();
}

TEST(ParseCases, RunCaseWithEveryKey) {
  auto r = ParseCases(
      "# a comment\n"
      "\n"
      "case: status of an unknown job\n"
      "run: cce job status 'no such' \"$WORK/x y\" --output=json\n"
      "as: none\n"
      "file: job.yaml\n"
      "| name: x\n"
      "|\n"
      "|   indented: 1 # not a comment\n"
      "stdin: some text\n"
      "exit: 2\n"
      "message: no job 'nonsense'\n"
      "message: second\n"
      "absent: HTTP 404\n"
      "\n\n"
      "case: an http case\n"
      "http: POST /api/v1/jobs/$JOB/cancel\n"
      "header: Idempotency-Key: a b\n"
      "body: {\"spec\": 1}\n"
      "status: 400\n"
      "message: body.spec\n",
      "t.cases");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 2u);
  const Case& a = (*r)[0];
  EXPECT_EQ(a.line, 3);
  EXPECT_EQ(a.where(), "t.cases:3 (status of an unknown job)");
  EXPECT_EQ(a.run, "cce job status 'no such' \"$WORK/x y\" --output=json");
  EXPECT_EQ(a.as, "none");
  ASSERT_EQ(a.files.size(), 1u);
  EXPECT_EQ(a.files[0].first, "job.yaml");
  EXPECT_EQ(a.files[0].second, "name: x\n\n  indented: 1 # not a comment\n");
  EXPECT_EQ(a.stdin_text, "some text\n");
  EXPECT_EQ(a.exit, 2);
  EXPECT_EQ(a.messages, (std::vector<std::string>{"no job 'nonsense'", "second"}));
  EXPECT_EQ(a.absent, std::vector<std::string>{"HTTP 404"});
  EXPECT_FALSE(a.is_http());
  const Case& b = (*r)[1];
  EXPECT_TRUE(b.is_http());
  EXPECT_EQ(b.line, 17);
  EXPECT_EQ(b.method, "POST");
  EXPECT_EQ(b.path, "/api/v1/jobs/$JOB/cancel");
  ASSERT_EQ(b.headers.size(), 1u);
  EXPECT_EQ(b.headers[0].first, "Idempotency-Key");
  EXPECT_EQ(b.headers[0].second, "a b");
  EXPECT_EQ(b.body, "{\"spec\": 1}");
  EXPECT_EQ(b.status, 400);
  EXPECT_EQ(b.as, "consumer");  // the default
}

TEST(ParseCases, CrlfAndNoFinalNewline) {
  auto r = ParseCases("case: a\r\nrun: cce\r\nexit: 2\r\nmessage: Usage", "t.cases");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].messages[0], "Usage");
}

TEST(ParseCases, ErrorsNameFileAndLine) {
  const std::string ok_case = "case: a\nrun: cce\nexit: 2\nmessage: m\n";
  EXPECT_EQ(ErrorOf(ok_case + "\ncase: b\nrun: cce\nexti: 2\nmessage: m\n"),
            "t.cases:8: unknown key 'exti' (expected one of: absent, as, body, case, exit, file, "
            "header, http, message, run, status, stdin)");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce\nmessage: m\n"), "t.cases:1: case 'a': exit: is required");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce\nexit: 2\n"),
            "t.cases:1: case 'a': at least one message: is required");
  EXPECT_EQ(ErrorOf("case: a\nexit: 2\nmessage: m\n"),
            "t.cases:1: case 'a': needs either run: or http:");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce\nhttp: GET /x\nexit: 2\nstatus: 400\nmessage: m\n"),
            "t.cases:1: case 'a': needs either run: or http:");
  EXPECT_EQ(ErrorOf("case: a\nhttp: GET /x\nexit: 2\nstatus: 400\nmessage: m\n"),
            "t.cases:1: case 'a': exit: is for run: cases");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce\nstatus: 400\nexit: 2\nmessage: m\n"),
            "t.cases:1: case 'a': status: is for http: cases");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce\nexit: two\nmessage: m\n"),
            "t.cases:3: exit: 'two': expected an integer in 0..255");
  EXPECT_EQ(ErrorOf("case: a\nhttp: GET /x\nstatus: 99\nmessage: m\n"),
            "t.cases:3: status: '99': expected an integer in 100..599");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce\nexit: 2\nexit: 3\nmessage: m\n"),
            "t.cases:4: exit: given twice in case 'a'");
  EXPECT_EQ(ErrorOf(ok_case + "\n" + ok_case), "t.cases:6: case 'a' appears twice in t.cases");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce\ncase: b\n"),
            "t.cases:3: case: inside case 'a' (a blank line ends a case)");
  EXPECT_EQ(ErrorOf("run: cce\n"), "t.cases:1: run: before any case: line");
  EXPECT_EQ(ErrorOf("case: a\nrun: ls -l\nexit: 2\nmessage: m\n"),
            "t.cases:2: run: 'ls': expected cce, cce-plane, cce-agent or cce-decryptfs first");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce 'open\nexit: 2\nmessage: m\n"),
            "t.cases:2: run: unclosed ' at column 5");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce $NOPE\nexit: 2\nmessage: m\n").substr(0, 43),
            "t.cases:2: run: unknown variable $NOPE (kno");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce\nexit: 2\nmessage: $ALSO_NOPE\n").substr(0, 44),
            "t.cases:4: message: unknown variable $ALSO_N");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce\n| x\nexit: 2\nmessage: m\n"),
            "t.cases:3: a \"| \" line outside a file: block");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce\nfile: j\n|x\nexit: 2\nmessage: m\n"),
            "t.cases:4: a file line starts with \"| \" (or is \"|\" alone)");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce\nfile: ../j\nexit: 2\nmessage: m\n"),
            "t.cases:3: file: '../j': expected a relative name inside $WORK");
  EXPECT_EQ(ErrorOf("case: a\nhttp: post /x\nstatus: 400\nmessage: m\n"),
            "t.cases:2: http: 'post /x': expected METHOD /path (e.g. GET /api/v1/jobs)");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce\nas: admin\nexit: 2\nmessage: m\n"),
            "t.cases:3: as: 'admin': expected operator, provider, consumer, reviewer or none");
  EXPECT_EQ(ErrorOf("case: a\nrun: cce\nexit: 2 # usage\nmessage: m\n"),
            "t.cases:3: exit: '2 # usage': expected an integer in 0..255");
  EXPECT_EQ(ErrorOf("just words\n"), "t.cases:1: expected \"key: value\", got 'just words'");
}

TEST(SplitCommand, QuotesEscapesAndVariables) {
  const std::map<std::string, std::string> vars = {{"WORK", "/w d"}, {"JOB", "job-1"}};
  auto w = SplitCommand(R"(cce  a\ b 'c $JOB' "d \"$JOB\" \$x" $WORK/f "" e$JOB)", vars);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(*w, (std::vector<std::string>{"cce", "a b", "c $JOB", "d \"job-1\" $x", "/w d/f", "",
                                          "ejob-1"}));
  EXPECT_FALSE(SplitCommand("cce \"open", vars).ok());
  EXPECT_FALSE(SplitCommand("cce x\\", vars).ok());
  EXPECT_FALSE(SplitCommand("   ", vars).ok());
  EXPECT_EQ(*Expand("cost $5 and $JOB, $ lone", vars), "cost $5 and job-1, $ lone");
}

// Every committed .cases file parses (the runner needs a plane; this does not).
TEST(ParseCases, CommittedFilesParse) {
  const std::string dir = std::string(CCE_SOURCE_DIR) + "/tests/bad_inputs";
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".cases") continue;
    ++files;
    std::ifstream in(e.path());
    std::stringstream text;
    text << in.rdbuf();
    auto r = ParseCases(text.str(), e.path().filename().string());
    EXPECT_TRUE(r.ok()) << r.status().message();
  }
  EXPECT_GE(files, 1) << "no .cases file in " << dir;
}

}  // namespace
}  // namespace cce::bad_inputs
