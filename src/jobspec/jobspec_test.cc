// Tests for the job spec parser: every rule in docs/jobspec.md has a negative test that
// asserts the exact message, so a message change is a deliberate, reviewed change.
#include "jobspec/jobspec.h"

#include <gtest/gtest.h>

#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace cce {

// Failing EXPECT_EQs on specs print the canonical JSON.
void PrintTo(const JobSpec& spec, std::ostream* os) {
  *os << JobSpecToJson(spec);
}

namespace {

std::string ReadTestFile(const std::string& name) {
  const std::string path = std::string(CCE_SOURCE_DIR) + "/tests/data/jobspec/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

JobSpec MustParse(std::string_view text, std::string_view source = "job.yaml") {
  StatusOr<JobSpec> r = ParseJobSpec(text, source);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : JobSpec{};
}

// The error message for text that must not parse ("" if it parsed).
std::string ErrorsFor(std::string_view text, std::string_view source = "job.yaml") {
  StatusOr<JobSpec> r = ParseJobSpec(text, source);
  EXPECT_FALSE(r.ok()) << "parsed: " << (r.ok() ? JobSpecToJson(*r) : "");
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status().message();
}

// A valid spec, laid out so tests can point at lines: spec fields start at line 6.
constexpr std::string_view kBase =
    "apiVersion: cce4long/v1\n"         // 1
    "kind: PrivacyJob\n"                // 2
    "metadata:\n"                       // 3
    "  name: job\n"                     // 4
    "spec:\n"                           // 5
    "  image: stats:1.2\n"              // 6
    "  command: [run]\n"                // 7
    "  datasets:\n"                     // 8
    "    - name: claims\n"              // 9
    "      mountPath: /data/claims\n";  // 10

// kBase with `line` (a whole line, without its newline) replaced by `with` ("" deletes it).
std::string Replace(std::string_view line, std::string_view with) {
  std::string doc(kBase);
  const std::string needle = std::string(line) + "\n";
  const size_t at = doc.find(needle);
  EXPECT_NE(at, std::string::npos) << "no line " << line;
  if (at == std::string::npos) return doc;
  doc.replace(at, needle.size(), with.empty() ? "" : std::string(with) + "\n");
  return doc;
}

// kBase with lines appended; they start at line 11.
std::string Append(std::string_view lines) {
  return std::string(kBase) + std::string(lines);
}

// ---- Valid specs ----------------------------------------------------------------

TEST(ParseJobSpec, ValidYamlAndJsonGiveEqualSpecs) {
  const JobSpec from_yaml = MustParse(ReadTestFile("valid.yaml"), "valid.yaml");
  const JobSpec from_json = MustParse(ReadTestFile("valid.json"), "valid.json");
  EXPECT_EQ(from_yaml, from_json);
}

TEST(ParseJobSpec, ReadsEveryField) {
  const JobSpec s = MustParse(ReadTestFile("valid.yaml"));
  EXPECT_EQ(s.name, "cohort-stats");
  EXPECT_EQ(s.labels,
            (std::map<std::string, std::string>{{"team", "a"}, {"app.example/tier", "analytics"}}));
  ASSERT_TRUE(std::holds_alternative<ImageDigest>(s.image));
  EXPECT_EQ(std::get<ImageDigest>(s.image).digest,
            "sha256:0f2a6b3c4d5e6f708192a3b4c5d6e7f80912a3b4c5d6e7f8091a2b3c4d5e6f70");
  EXPECT_EQ(s.command, (std::vector<std::string>{"python3", "/app/run.py"}));
  EXPECT_EQ(s.args, (std::vector<std::string>{"--cohort", "2024"}));
  EXPECT_EQ(s.env, (std::map<std::string, std::string>{{"MODE", "full"}, {"DEBUG", "no"}}));
  EXPECT_EQ(s.working_dir, std::optional<std::string>("/app"));
  ASSERT_EQ(s.datasets.size(), 2u);
  EXPECT_EQ(s.datasets[0], (DatasetMount{"hospital-claims", "/data/claims"}));
  EXPECT_EQ(s.datasets[1], (DatasetMount{"pharmacy-sales", "/data/pharmacy"}));
  EXPECT_EQ(s.resources, (JobResources{500, 2048, 3600, 64}));
}

TEST(ParseJobSpec, OptionalFieldsTakeTheirDefaults) {
  const JobSpec s = MustParse(ReadTestFile("minimal.yaml"));
  EXPECT_TRUE(s.labels.empty());
  EXPECT_TRUE(s.args.empty());
  EXPECT_TRUE(s.env.empty());
  EXPECT_FALSE(s.working_dir.has_value());
  EXPECT_EQ(s.resources, (JobResources{1000, 1024, 3600, 64}));
  EXPECT_EQ(s.image, ImageRef(ImageName{"stats", "1.2"}));
}

TEST(ParseJobSpec, EmptyResourcesMapTakesDefaults) {
  EXPECT_EQ(MustParse(Append("  resources: {}\n")).resources, JobResources{});
}

TEST(ParseJobSpec, ImageNameWithoutTagMeansLatest) {
  const JobSpec s = MustParse(Replace("  image: stats:1.2", "  image: team/stats"));
  EXPECT_EQ(s.image, ImageRef(ImageName{"team/stats", "latest"}));
  EXPECT_EQ(ImageRefToString(s.image), "team/stats:latest");
}

TEST(ParseJobSpec, DigestAndNameStayDistinguishable) {
  const std::string hex(64, 'a');
  const JobSpec by_digest = MustParse(Replace("  image: stats:1.2", "  image: sha256:" + hex));
  ASSERT_TRUE(std::holds_alternative<ImageDigest>(by_digest.image));
  EXPECT_EQ(ImageRefToString(by_digest.image), "sha256:" + hex);
  // A 64-hex tag on another name is a tag, not a digest.
  const JobSpec by_tag = MustParse(Replace("  image: stats:1.2", "  image: stats:" + hex));
  EXPECT_EQ(by_tag.image, ImageRef(ImageName{"stats", hex}));
}

TEST(ParseJobSpec, CpusAreExactThousandths) {
  const std::pair<std::string, int64_t> cases[] = {
      {"1", 1000},    {"2", 2000},  {"0.5", 500},      {"0.125", 125},
      {"1.50", 1500}, {"0.001", 1}, {"5e-1", 500},     {"1.0", 1000},
      {"+3", 3000},   {".25", 250}, {"2.5E2", 250000}, {"1000000", 1000000000}};
  for (const auto& [text, millis] : cases) {
    const JobSpec s = MustParse(Append("  resources: {cpus: " + text + "}\n"));
    EXPECT_EQ(s.resources.cpu_millis, millis) << text;
  }
}

TEST(ParseJobSpec, Yaml11BooleanWordsAreStrings) {
  // The YAML 1.2 core schema: yes/no/on/off are plain strings, as they would be in JSON.
  const JobSpec s = MustParse(Append("  env: {A: yes, B: off, C: y}\n"));
  EXPECT_EQ(s.env, (std::map<std::string, std::string>{{"A", "yes"}, {"B", "off"}, {"C", "y"}}));
}

TEST(ParseJobSpec, QuotedAndBlockScalarsAreStrings) {
  const JobSpec s =
      MustParse(Append("  args: [\"1\", '2.5', \"true\", \"null\"]\n"
                       "  env:\n"
                       "    SCRIPT: |\n"
                       "      print(1)\n"));
  EXPECT_EQ(s.args, (std::vector<std::string>{"1", "2.5", "true", "null"}));
  EXPECT_EQ(s.env.at("SCRIPT"), "print(1)\n");
}

TEST(ParseJobSpec, AcceptsEmptyOptionalCollectionsAndEmptyArgs) {
  const JobSpec s = MustParse(Append("  args: [\"\"]\n  env: {EMPTY: \"\"}\n"));
  EXPECT_EQ(s.args, std::vector<std::string>{""});
  EXPECT_EQ(s.env.at("EMPTY"), "");
}

TEST(ParseJobSpec, AcceptsUnicodeStrings) {
  const JobSpec s = MustParse(Append("  args: [\"K\u00f6ln\", \"\\u00e9\"]\n"));
  EXPECT_EQ(s.args, (std::vector<std::string>{"K\u00f6ln", "\u00e9"}));
}

TEST(ParseJobSpec, MountPathsMaySharePrefixWithoutNesting) {
  const JobSpec s =
      MustParse(Append("    - {name: claims2, mountPath: /data/claims2}\n"
                       "    - {name: out, mountPath: /outputs}\n"));
  EXPECT_EQ(s.datasets.size(), 3u);
}

TEST(ParseJobSpec, WorkingDirMayBeRoot) {
  EXPECT_EQ(MustParse(Append("  workingDir: /\n")).working_dir, std::optional<std::string>("/"));
}

// ---- Structure and YAML features ---------------------------------------------------

TEST(ParseJobSpec, RejectsUnknownFieldsAtEveryLevel) {
  EXPECT_EQ(ErrorsFor(Append("extra: 1\n")),
            "job.yaml:11:1: extra: unknown field (allowed: apiVersion, kind, metadata, spec)");
  EXPECT_EQ(ErrorsFor(Replace("  name: job", "  name: job\n  owner: me")),
            "job.yaml:5:3: metadata.owner: unknown field (allowed: name, labels)");
  EXPECT_EQ(ErrorsFor(Append("  gpus: 1\n")),
            "job.yaml:11:3: spec.gpus: unknown field (allowed: image, command, args, env, "
            "workingDir, datasets, resources)");
  EXPECT_EQ(ErrorsFor(Append("      readOnly: true\n")),
            "job.yaml:11:7: spec.datasets[0].readOnly: unknown field (allowed: name, mountPath)");
  EXPECT_EQ(ErrorsFor(Append("  resources: {gpus: 1}\n")),
            "job.yaml:11:15: spec.resources.gpus: unknown field (allowed: cpus, memoryMiB, "
            "timeoutSeconds, outputMaxMiB)");
}

TEST(ParseJobSpec, RejectsMissingRequiredFields) {
  EXPECT_EQ(ErrorsFor(Replace("  image: stats:1.2", "")),
            "job.yaml:6:3: spec.image: required field is missing");
  EXPECT_EQ(ErrorsFor(Replace("  name: job", "  labels: {}")),
            "job.yaml:4:3: metadata.name: required field is missing");
  EXPECT_EQ(ErrorsFor("apiVersion: cce4long/v1\nkind: PrivacyJob\n"),
            "job.yaml:1:1: metadata: required field is missing\n"
            "job.yaml:1:1: spec: required field is missing");
}

TEST(ParseJobSpec, RejectsWrongApiVersionAndKind) {
  EXPECT_EQ(ErrorsFor(Replace("apiVersion: cce4long/v1", "apiVersion: cce4long/v2")),
            "job.yaml:1:13: apiVersion: expected \"cce4long/v1\", got string \"cce4long/v2\"");
  EXPECT_EQ(ErrorsFor(Replace("kind: PrivacyJob", "kind: Job")),
            "job.yaml:2:7: kind: expected \"PrivacyJob\", got string \"Job\"");
}

TEST(ParseJobSpec, RejectsDocumentThatIsNotAMap) {
  EXPECT_EQ(ErrorsFor("[1, 2]\n"),
            "job.yaml:1:1: expected a map with apiVersion, kind, metadata and spec, got a list");
  EXPECT_EQ(ErrorsFor("just text\n"),
            "job.yaml:1:1: expected a map with apiVersion, kind, metadata and spec, got string "
            "\"just text\"");
}

// A key file named as the spec by mistake (`cce job submit -f claims.key`)
// must not come back in the error: excerpts are short and never show runs that
// look like key material (hex or base64).
TEST(ParseJobSpec, ErrorsNeverQuoteKeyMaterial) {
  const std::string hex = "3f9a0c51e2b84d7f6a1c09e3b5d2f4a87c6e1b0d9f3a2c5e8b7d4f1a0c3e6b92";
  const std::string b64 = "q8Vz3LmP0xR7tYb2Nw5KcJ9hF4sDgA1eUoXiBn6WvTjHlQyMZ";
  const std::vector<std::string> secrets = {
      "cce4long-dataset-key-v1 " + hex + "\n",
      "cce4long-master-key-v1 " + hex + "\n",
      "apiVersion: cce4long/v1\nkind: PrivacyJob\nmetadata: {name: " + hex + "}\n",
      "apiVersion: cce4long/v1\nkind: PrivacyJob\nmetadata:\n  name: job\nspec: {" + hex + ": 1}\n",
      "-----BEGIN PRIVATE KEY-----\n" + b64 + "\n-----END PRIVATE KEY-----\n",
      "token: \"" + b64 + "\"\n",
      "\"" + hex + "\" : [\n",  // a parser error near the secret
  };
  for (const std::string& text : secrets) {
    const std::string err = ErrorsFor(text);
    EXPECT_FALSE(err.empty());
    for (const std::string& secret : {hex, b64}) {
      for (size_t i = 0; i + 8 <= secret.size(); ++i) {
        ASSERT_EQ(err.find(secret.substr(i, 8)), std::string::npos)
            << "shows key material " << secret.substr(i, 8) << ": " << err;
      }
    }
  }
  EXPECT_EQ(ErrorsFor("cce4long-dataset-key-v1 " + hex + "\n"),
            "job.yaml:1:1: expected a map with apiVersion, kind, metadata and spec, got string "
            "\"cce4long-dataset-key-v1 <64 hex digits hidden>\"");
  // Excerpts of long ordinary values are capped at 32 bytes.
  const std::string long_name(200, 'x');
  const std::string err = ErrorsFor(Replace("  name: job", "  name: " + long_name));
  EXPECT_NE(err.find("\"" + std::string(32, 'x') + "\"..."), std::string::npos) << err;
  EXPECT_EQ(err.find(std::string(33, 'x')), std::string::npos) << err;
}

TEST(ParseJobSpec, RejectsEmptyDocument) {
  EXPECT_EQ(ErrorsFor(""), "job.yaml: the job spec is empty");
  EXPECT_EQ(ErrorsFor("# nothing\n---\n"), "job.yaml: the job spec is empty");
}

TEST(ParseJobSpec, RejectsSyntaxErrorsWithPosition) {
  EXPECT_EQ(ErrorsFor(ReadTestFile("invalid-syntax.yaml")),
            "job.yaml:4:5: invalid YAML: end of map flow not found");
  EXPECT_EQ(ErrorsFor("{\"apiVersion\": \"cce4long/v1\"\n", "job.json"),
            "job.json:2:1: invalid YAML: end of map flow not found");
  // Errors found before the syntax error are kept; the half-read document is not checked.
  EXPECT_EQ(ErrorsFor("kind: &k PrivacyJob\nspec: [\n"),
            "job.yaml:1:7: kind: YAML anchors (&k) are not allowed\n"
            "job.yaml:3:1: invalid YAML: end of sequence flow not found");
}

TEST(ParseJobSpec, NamesATabInTheIndentation) {
  // yaml-cpp's own words ("illegal map value", "illegal tab when looking for indentation")
  // do not say what to do.
  EXPECT_EQ(ErrorsFor(Replace("  image: stats:1.2", "\timage: stats:1.2")),
            "job.yaml:6:1: invalid YAML: tab at 6:1; YAML indents with spaces (replace the tab "
            "with spaces)");
  EXPECT_EQ(ErrorsFor(Replace("  command: [run]", "  \tcommand: [run]")),
            "job.yaml:7:3: invalid YAML: tab at 7:3; YAML indents with spaces (replace the tab "
            "with spaces)");
  EXPECT_EQ(ErrorsFor(Replace("    - name: claims", "  \t- name: claims"), "examples/x.yaml"),
            "examples/x.yaml:9:3: invalid YAML: tab at 9:3; YAML indents with spaces (replace "
            "the tab with spaces)");
  EXPECT_EQ(ErrorsFor(ReadTestFile("invalid-tab-indent.yaml")),
            "job.yaml:7:1: invalid YAML: tab at 7:1; YAML indents with spaces (replace the tab "
            "with spaces)");
  EXPECT_EQ(ErrorsFor("\tapiVersion: cce4long/v1\n"),
            "job.yaml:1:1: invalid YAML: tab at 1:1; YAML indents with spaces (replace the tab "
            "with spaces)");
}

TEST(ParseJobSpec, AcceptsTabsOutsideTheIndentation) {
  // Between a key and its value, and anywhere in JSON's flow syntax, a tab is whitespace.
  MustParse(Replace("kind: PrivacyJob", "kind:\tPrivacyJob"));
  MustParse(
      "{\n\t\"apiVersion\": \"cce4long/v1\",\n\t\"kind\": \"PrivacyJob\",\n"
      "\t\"metadata\": {\"name\": \"job\"},\n\t\"spec\": {\n\t\t\"image\": \"stats:1.2\",\n"
      "\t\t\"command\": [\"run\"],\n\t\t\"datasets\": [\n\t\t\t{\"name\": \"claims\", "
      "\"mountPath\": \"/data/claims\"}\n\t\t]\n\t}\n}\n",
      "job.json");
}

TEST(ParseJobSpec, PointsAtTheOffendingValueWithItsFieldPath) {
  // LINE:COL is the value's first character, in block and in flow style.
  EXPECT_EQ(ErrorsFor(Replace("  image: stats:1.2", "  image: 42")),
            "job.yaml:6:10: spec.image: expected an image reference, got integer 42 (quote it "
            "if you meant a string)");
  EXPECT_EQ(ErrorsFor(Replace("  name: job", "  name: Job_1")),
            "job.yaml:4:9: metadata.name: \"Job_1\" is not a valid name: expected "
            "[a-z0-9][a-z0-9-]{0,62}");
  EXPECT_EQ(ErrorsFor(Replace("  command: [run]", "  command: [run, 7]")),
            "job.yaml:7:18: spec.command[1]: expected a string, got integer 7 (quote it if you "
            "meant a string)");
  EXPECT_EQ(ErrorsFor(Replace("      mountPath: /data/claims", "      mountPath: /tmp/x")),
            "job.yaml:10:18: spec.datasets[0].mountPath: \"/tmp/x\" is not allowed: /tmp is "
            "reserved");
  // A missing field points at the map that lacks it.
  EXPECT_EQ(ErrorsFor(Replace("      mountPath: /data/claims", "")),
            "job.yaml:9:7: spec.datasets[0].mountPath: required field is missing");
  // JSON on one line: columns count from the line's start.
  EXPECT_EQ(ErrorsFor("{\"apiVersion\": \"cce4long/v1\", \"kind\": \"Job\", \"metadata\": "
                      "{\"name\": \"j\"}, \"spec\": {\"image\": \"x\", \"command\": [\"r\"], "
                      "\"datasets\": [{\"name\": \"c\", \"mountPath\": \"/c\"}]}}",
                      "job.json"),
            "job.json:1:39: kind: expected \"PrivacyJob\", got string \"Job\"");
}

TEST(ParseJobSpec, RejectsSecondDocument) {
  EXPECT_EQ(ErrorsFor(ReadTestFile("invalid-two-documents.yaml")),
            "job.yaml:9:1: invalid YAML: a second YAML document starts here; a job spec is one");
}

TEST(ParseJobSpec, RejectsDuplicateKeys) {
  EXPECT_EQ(ErrorsFor(ReadTestFile("invalid-duplicate-key.yaml")),
            "job.yaml:9:3: spec.image: duplicate key (first defined at 5:3)");
  EXPECT_EQ(ErrorsFor(Append("  env: {\"A\": \"1\", \"A\": \"2\"}\n")),
            "job.yaml:11:19: spec.env.A: duplicate key (first defined at 11:9)");
}

TEST(ParseJobSpec, RejectsAnchorsAndAliases) {
  EXPECT_EQ(ErrorsFor(ReadTestFile("invalid-anchor.yaml")),
            "job.yaml:6:12: spec.command: YAML anchors (&cmd) are not allowed\n"
            "job.yaml:7:9: spec.args: YAML aliases (*cmd) are not allowed; write the value out");
}

TEST(ParseJobSpec, RejectsMergeKeys) {
  EXPECT_EQ(ErrorsFor(Append("  resources:\n    <<: {cpus: 2}\n")),
            "job.yaml:12:5: spec.resources: YAML merge keys (<<) are not allowed");
}

TEST(ParseJobSpec, RejectsExplicitTags) {
  EXPECT_EQ(ErrorsFor(Append("  resources: {cpus: !!float 2}\n")),
            "job.yaml:11:21: spec.resources.cpus: YAML tags (!!float) are not allowed");
  EXPECT_EQ(ErrorsFor(Append("  args: !custom [a]\n")),
            "job.yaml:11:9: spec.args: YAML tags (!custom) are not allowed");
}

TEST(ParseJobSpec, RejectsNonStringKeys) {
  EXPECT_EQ(ErrorsFor(Replace("  name: job", "  name: job\n  labels: {1: a}")),
            "job.yaml:5:12: metadata.labels: map keys must be strings, got integer 1 (quote it "
            "to use it as a key)");
  EXPECT_EQ(ErrorsFor(Append("  env: {[A]: b}\n")),
            "job.yaml:11:9: spec.env: map keys must be strings, got a list");
  EXPECT_EQ(ErrorsFor(Append("  env: {~: b}\n")),
            "job.yaml:11:9: spec.env: map keys must be strings, got null (quote it to use it as "
            "a key)");
}

TEST(ParseJobSpec, RejectsDeepNesting) {
  std::string deep = "  args: " + std::string(40, '[') + std::string(40, ']') + "\n";
  EXPECT_EQ(ErrorsFor(Append(deep)),
            "job.yaml:11:23: invalid YAML: values are nested more than 16 levels deep");
}

TEST(ParseJobSpec, RejectsTooManyValues) {
  std::string many = "  args: [";
  for (int i = 0; i < 10000; ++i) many += "a,";
  many += "a]\n";
  const std::string message = ErrorsFor(Append(many));
  EXPECT_EQ(message.substr(message.find(": ") + 2),
            "invalid YAML: the document has more than 10000 values");
}

TEST(ParseJobSpec, RejectsInputOverOneMebibyte) {
  std::string big = Append("  # ");
  big += std::string(kMaxJobSpecBytes - big.size(), 'x');
  EXPECT_TRUE(ParseJobSpec(big + "\n", "job.yaml").ok() == false);
  EXPECT_EQ(ErrorsFor(big + "x\n"),
            "job.yaml: the job spec is 1048578 bytes; the limit is 1048576 bytes (1 MiB)");
  big.back() = '\n';  // exactly 1 MiB is accepted
  EXPECT_TRUE(ParseJobSpec(big, "job.yaml").ok());
}

TEST(ParseJobSpec, RejectsNulAndInvalidUtf8InStrings) {
  EXPECT_EQ(ErrorsFor(Append("  args: [\"a\\0b\"]\n")),
            "job.yaml:11:10: spec.args[0]: strings must not contain a NUL character");
  EXPECT_EQ(ErrorsFor(Append("  args: [\"a\xff\"]\n")),
            "job.yaml:11:10: spec.args[0]: text is not valid UTF-8");
}

TEST(ParseJobSpec, MessagesStayPrintableWhateverTheInputBytes) {
  EXPECT_EQ(ErrorsFor("a: \"\\\xff\"\n"),
            "job.yaml:1:7: invalid YAML: unknown escape character: \\xff");
  // A %TAG prefix is copied into the tag byte for byte.
  EXPECT_EQ(ErrorsFor("%TAG !e! x\u00e9\x01:\n---\n" + Append("  args: !e!b [a]\n")),
            "job.yaml:13:9: spec.args: YAML tags (x\\xc3\\xa9\\x01:b) are not allowed");
}

// ---- Types ----------------------------------------------------------------------

TEST(ParseJobSpec, QuotedNumberIsAString) {
  EXPECT_EQ(ErrorsFor(Append("  resources:\n    cpus: \"1\"\n")),
            "job.yaml:12:11: spec.resources.cpus: expected a positive number, got string \"1\"");
  EXPECT_EQ(ErrorsFor(Append("  resources: {memoryMiB: '1024'}\n")),
            "job.yaml:11:26: spec.resources.memoryMiB: expected a positive integer, got string "
            "\"1024\"");
}

TEST(ParseJobSpec, UnquotedNumberIsNotAString) {
  EXPECT_EQ(ErrorsFor(Append("  env: {PORT: 8080}\n")),
            "job.yaml:11:15: spec.env.PORT: expected a string, got integer 8080 (quote it if you "
            "meant a string)");
  EXPECT_EQ(ErrorsFor(Replace("  command: [run]", "  command: [run, 42, true, 1.5]")),
            "job.yaml:7:18: spec.command[1]: expected a string, got integer 42 (quote it if you "
            "meant a string)\n"
            "job.yaml:7:22: spec.command[2]: expected a string, got boolean true (quote it if "
            "you meant a string)\n"
            "job.yaml:7:28: spec.command[3]: expected a string, got number 1.5 (quote it if you "
            "meant a string)");
}

TEST(ParseJobSpec, RejectsNullForOptionalFields) {
  EXPECT_EQ(ErrorsFor(Append("  args:\n")),
            "job.yaml:11:3: spec.args: expected a list of strings, got null");
  EXPECT_EQ(ErrorsFor(Append("  workingDir: ~\n")),
            "job.yaml:11:3: spec.workingDir: expected an absolute path, got null");
}

TEST(ParseJobSpec, RejectsWrongContainerTypes) {
  EXPECT_EQ(ErrorsFor(Append("  args: run\n")),
            "job.yaml:11:9: spec.args: expected a list of strings, got string \"run\"");
  EXPECT_EQ(ErrorsFor(Append("  env: [A]\n")),
            "job.yaml:11:8: spec.env: expected a map of strings, got a list");
  EXPECT_EQ(ErrorsFor(Append("  resources: 2\n")),
            "job.yaml:11:14: spec.resources: expected a map, got integer 2");
  EXPECT_EQ(ErrorsFor("apiVersion: cce4long/v1\nkind: PrivacyJob\nmetadata: job\nspec: [1]\n"),
            "job.yaml:3:11: metadata: expected a map with name and optional labels, got string "
            "\"job\"\n"
            "job.yaml:4:7: spec: expected a map, got a list");
}

TEST(ParseJobSpec, RejectsBadCpus) {
  const std::pair<std::string, std::string> cases[] = {
      {"0", "expected a positive number, got integer 0"},
      {"-1", "expected a positive number, got integer -1"},
      {"0.0", "expected a positive number, got number 0.0"},
      {"0.0005", "expected at most 3 decimal places, got 0.0005"},
      {"1.0001", "expected at most 3 decimal places, got 1.0001"},
      {"1e-4", "expected at most 3 decimal places, got 1e-4"},
      {"1000001", "1000001 is out of range (at most 1000000)"},
      {"1e400", "1e400 is out of range (at most 1000000)"},
      {".inf", "expected a positive number, got number .inf"},
      {".nan", "expected a positive number, got number .nan"},
      {"0x10", "expected a positive decimal number, got integer 0x10"},
      {"true", "expected a positive number, got boolean true"},
      {"\"0.5\"", "expected a positive number, got string \"0.5\""},
  };
  for (const auto& [text, message] : cases) {
    EXPECT_EQ(ErrorsFor(Append("  resources:\n    cpus: " + text + "\n")),
              "job.yaml:12:11: spec.resources.cpus: " + message)
        << text;
  }
}

TEST(ParseJobSpec, RejectsBadIntegers) {
  const std::pair<std::string, std::string> cases[] = {
      {"0", "expected a positive integer, got integer 0"},
      {"-5", "expected a positive integer, got integer -5"},
      {"1.5", "expected a positive integer, got number 1.5"},
      {"1024.0", "expected a positive integer, got number 1024.0"},
      {"1e3", "expected a positive integer, got number 1e3"},
      {"0x400", "expected a positive decimal integer, got 0x400"},
      {"9007199254740992", "9007199254740992 is out of range (at most 9007199254740991)"},
      {"123456789012345678901234567890",
       "123456789012345678901234567890 is out of range (at most 9007199254740991)"},
      {"[1]", "expected a positive integer, got a list"},
  };
  for (const std::string field : {"memoryMiB", "timeoutSeconds", "outputMaxMiB"}) {
    for (const auto& [text, message] : cases) {
      EXPECT_EQ(ErrorsFor(Append("  resources:\n    " + field + ": " + text + "\n")),
                "job.yaml:12:" + std::to_string(7 + field.size()) + ": spec.resources." + field +
                    ": " + message)
          << field << " " << text;
    }
  }
}

TEST(ParseJobSpec, AcceptsLargestInteger) {
  EXPECT_EQ(MustParse(Append("  resources: {timeoutSeconds: 9007199254740991}\n"))
                .resources.timeout_seconds,
            9007199254740991);
}

// ---- Field rules ----------------------------------------------------------------

TEST(ParseJobSpec, RejectsBadJobName) {
  EXPECT_EQ(ErrorsFor(Replace("  name: job", "  name: Cohort_Stats")),
            "job.yaml:4:9: metadata.name: \"Cohort_Stats\" is not a valid name: expected "
            "[a-z0-9][a-z0-9-]{0,62}");
  EXPECT_EQ(ErrorsFor(Replace("  name: job", "  name: -job")),
            "job.yaml:4:9: metadata.name: \"-job\" is not a valid name: expected "
            "[a-z0-9][a-z0-9-]{0,62}");
  EXPECT_EQ(ErrorsFor(Replace("  name: job", "  name: " + std::string(64, 'a'))),
            "job.yaml:4:9: metadata.name: \"" + std::string(32, 'a') +
                "\"... is not a valid name: expected [a-z0-9][a-z0-9-]{0,62}");
  EXPECT_TRUE(ParseJobSpec(Replace("  name: job", "  name: " + std::string(63, 'a')), "j").ok());
}

TEST(ParseJobSpec, RejectsBadLabels) {
  EXPECT_EQ(ErrorsFor(Replace("  name: job", "  name: job\n  labels: {\"bad key\": a}")),
            "job.yaml:5:12: metadata.labels[\"bad key\"]: label keys must match "
            "[A-Za-z0-9][A-Za-z0-9._/-]{0,62}");
  EXPECT_EQ(ErrorsFor(Replace("  name: job", "  name: job\n  labels: {team: 7}")),
            "job.yaml:5:18: metadata.labels.team: expected a string, got integer 7 (quote it if "
            "you meant a string)");
  EXPECT_EQ(ErrorsFor(Replace("  name: job",
                              "  name: job\n  labels: {team: " + std::string(257, 'a') + "}")),
            "job.yaml:5:18: metadata.labels.team: label values are at most 256 characters");
  EXPECT_EQ(ErrorsFor(Replace("  name: job", "  name: job\n  labels: {team: \"a\\tb\"}")),
            "job.yaml:5:18: metadata.labels.team: \"a\\tb\" contains a control character");
}

TEST(ParseJobSpec, RejectsBadImageReferences) {
  const std::string kDigestError =
      " is not a valid digest: expected \"sha256:\" followed by 64 lowercase hex digits";
  const std::string kNameError =
      " is not a valid image reference: expected \"sha256:<64 hex digits>\" or a name matching "
      "[a-z0-9][a-z0-9._/-]* (at most 255 characters) with an optional :tag";
  const std::string kTagError =
      " is not a valid image reference: the tag must match "
      "[A-Za-z0-9_.-]{1,128}";
  const std::string upper = "sha256:" + std::string(64, 'A');
  const std::pair<std::string, std::string> cases[] = {
      {"sha256:0f2a", "\"sha256:0f2a\"" + kDigestError},
      {upper, "\"sha256:" + std::string(25, 'A') + "\"..." + kDigestError},
      {"Stats:1.2", "\"Stats:1.2\"" + kNameError},
      {"stats@sha256:abc", "\"stats@sha256:abc\"" + kNameError},
      {"registry.example.com:5000/stats", "\"registry.example.com:5000/stats\"" + kTagError},
      {"\"stats:\"", "\"stats:\"" + kTagError},
      {"stats:a:b", "\"stats:a:b\"" + kTagError},
      {"stats:" + std::string(129, 't'), "\"stats:" + std::string(26, 't') + "\"..." + kTagError},
      {"\":1\"", "\":1\"" + kNameError},
  };
  for (const auto& [image, message] : cases) {
    EXPECT_EQ(ErrorsFor(Replace("  image: stats:1.2", "  image: " + image)),
              "job.yaml:6:10: spec.image: " + message)
        << image;
  }
  EXPECT_EQ(ErrorsFor(Replace("  image: stats:1.2", "  image: 1.2")),
            "job.yaml:6:10: spec.image: expected an image reference, got number 1.2 (quote it "
            "if you meant a string)");
}

TEST(ParseJobSpec, RejectsBadCommand) {
  EXPECT_EQ(ErrorsFor(Replace("  command: [run]", "  command: []")),
            "job.yaml:7:12: spec.command: expected a non-empty list of strings, got an empty "
            "list");
  EXPECT_EQ(ErrorsFor(Replace("  command: [run]", "  command: [\"\", x]")),
            "job.yaml:7:13: spec.command[0]: expected the program to run, got an empty string");
  EXPECT_EQ(ErrorsFor(Replace("  command: [run]", "  command: python3 run.py")),
            "job.yaml:7:12: spec.command: expected a list of strings, got string \"python3 "
            "run.py\"");
}

TEST(ParseJobSpec, RejectsBadEnv) {
  EXPECT_EQ(ErrorsFor(Append("  env: {CCE_TOKEN: x}\n")),
            "job.yaml:11:9: spec.env.CCE_TOKEN: the CCE_ prefix is reserved for the platform");
  EXPECT_EQ(ErrorsFor(Append("  env: {1ST: x, \"A-B\": y, \"\": z}\n")),
            "job.yaml:11:9: spec.env.1ST: variable names must match [A-Za-z_][A-Za-z0-9_]*\n"
            "job.yaml:11:17: spec.env.A-B: variable names must match [A-Za-z_][A-Za-z0-9_]*\n"
            "job.yaml:11:27: spec.env[\"\"]: variable names must match [A-Za-z_][A-Za-z0-9_]*");
  // Only the exact prefix is reserved; cce_ and CCEX are the job's own.
  EXPECT_EQ(MustParse(Append("  env: {cce_x: a, CCEX: b}\n")).env.size(), 2u);
}

TEST(ParseJobSpec, RejectsBadWorkingDir) {
  EXPECT_EQ(ErrorsFor(Append("  workingDir: app\n")),
            "job.yaml:11:15: spec.workingDir: \"app\" is not an absolute path");
  EXPECT_EQ(ErrorsFor(Append("  workingDir: /app/\n")),
            "job.yaml:11:15: spec.workingDir: \"/app/\" is not a normalized absolute path");
  EXPECT_EQ(ErrorsFor(Append("  workingDir: \"/a\\nb\"\n")),
            "job.yaml:11:15: spec.workingDir: \"/a\\nb\" contains a control character");
}

TEST(ParseJobSpec, RejectsMissingOrEmptyDatasets) {
  EXPECT_EQ(ErrorsFor(ReadTestFile("invalid-no-datasets.json"), "job.json"),
            "job.json:8:17: spec.datasets: expected a non-empty list of datasets, got an empty "
            "list");
  // The old list items become a map under spec.x: two errors.
  EXPECT_EQ(ErrorsFor(Replace("  datasets:", "  datasets: claims\n  x:")),
            "job.yaml:8:13: spec.datasets: expected a non-empty list of datasets, got string "
            "\"claims\"\n"
            "job.yaml:9:3: spec.x: unknown field (allowed: image, command, args, env, workingDir, "
            "datasets, resources)");
}

TEST(ParseJobSpec, RejectsBadDatasetEntries) {
  EXPECT_EQ(ErrorsFor(Append("    - claims\n")),
            "job.yaml:11:7: spec.datasets[1]: expected a map with name and mountPath, got string "
            "\"claims\"");
  EXPECT_EQ(ErrorsFor(Append("    - {mountPath: /data/x}\n")),
            "job.yaml:11:7: spec.datasets[1].name: required field is missing");
  EXPECT_EQ(ErrorsFor(Append("    - {name: x}\n")),
            "job.yaml:11:7: spec.datasets[1].mountPath: required field is missing");
  EXPECT_EQ(ErrorsFor(Append("    - {name: Claims, mountPath: /data/x}\n")),
            "job.yaml:11:14: spec.datasets[1].name: \"Claims\" is not a valid dataset name: "
            "expected [a-z0-9][a-z0-9-]{0,62}");
  EXPECT_EQ(ErrorsFor(Append("    - {name: claims, mountPath: /data/x}\n")),
            "job.yaml:11:14: spec.datasets[1].name: dataset \"claims\" is also "
            "spec.datasets[0].name");
}

TEST(ParseJobSpec, RejectsUnnormalizedMountPath) {
  EXPECT_EQ(ErrorsFor(ReadTestFile("invalid-mount-path.json"), "job.json"),
            "job.json:10:47: spec.datasets[1].mountPath: \"/data/../etc\" is not a normalized "
            "absolute path");
  for (const std::string path : {"/data//x", "/data/./x", "/data/x/", "/data/..", "/."}) {
    EXPECT_EQ(ErrorsFor(Replace("      mountPath: /data/claims", "      mountPath: " + path)),
              "job.yaml:10:18: spec.datasets[0].mountPath: \"" + path +
                  "\" is not a normalized absolute path")
        << path;
  }
  EXPECT_EQ(ErrorsFor(Replace("      mountPath: /data/claims", "      mountPath: data")),
            "job.yaml:10:18: spec.datasets[0].mountPath: \"data\" is not an absolute path");
}

TEST(ParseJobSpec, RejectsRootAndReservedMountPaths) {
  EXPECT_EQ(ErrorsFor(Replace("      mountPath: /data/claims", "      mountPath: /")),
            "job.yaml:10:18: spec.datasets[0].mountPath: \"/\" is not allowed: a dataset cannot "
            "be mounted over the root");
  const std::pair<std::string, std::string> cases[] = {
      {"/output", "/output"}, {"/output/x", "/output"}, {"/tmp", "/tmp"},     {"/tmp/a/b", "/tmp"},
      {"/proc/1", "/proc"},   {"/sys", "/sys"},         {"/dev/shm", "/dev"}, {"/etc/ssl", "/etc"},
  };
  for (const auto& [path, reserved] : cases) {
    EXPECT_EQ(ErrorsFor(Replace("      mountPath: /data/claims", "      mountPath: " + path)),
              "job.yaml:10:18: spec.datasets[0].mountPath: \"" + path +
                  "\" is not allowed: " + reserved + " is reserved")
        << path;
  }
}

TEST(ParseJobSpec, RejectsDuplicateAndNestedMountPaths) {
  EXPECT_EQ(ErrorsFor(Append("    - {name: b, mountPath: /data/claims}\n")),
            "job.yaml:11:28: spec.datasets[1].mountPath: \"/data/claims\" is also the mountPath "
            "of spec.datasets[0]");
  EXPECT_EQ(ErrorsFor(Append("    - {name: b, mountPath: /data/claims/2024}\n")),
            "job.yaml:11:28: spec.datasets[1].mountPath: \"/data/claims/2024\" is inside "
            "spec.datasets[0] \"/data/claims\"");
  EXPECT_EQ(ErrorsFor(Append("    - {name: b, mountPath: /data}\n")),
            "job.yaml:11:28: spec.datasets[1].mountPath: \"/data\" contains spec.datasets[0] "
            "\"/data/claims\"");
}

// ---- Many errors ----------------------------------------------------------------

TEST(ParseJobSpec, ReportsEveryErrorInDocumentOrder) {
  EXPECT_EQ(
      ErrorsFor(ReadTestFile("invalid-many-errors.yaml")),
      "job.yaml:1:13: apiVersion: expected \"cce4long/v1\", got string \"cce4long/v2\"\n"
      "job.yaml:4:9: metadata.name: \"Cohort_Stats\" is not a valid name: expected "
      "[a-z0-9][a-z0-9-]{0,62}\n"
      "job.yaml:7:12: spec.command: expected a non-empty list of strings, got an empty list\n"
      "job.yaml:9:5: spec.env.CCE_TOKEN: the CCE_ prefix is reserved for the platform\n"
      "job.yaml:10:11: spec.env.PORT: expected a string, got integer 8080 (quote it if you "
      "meant a string)\n"
      "job.yaml:14:13: spec.datasets[1].name: dataset \"hospital-claims\" is also "
      "spec.datasets[0].name\n"
      "job.yaml:15:18: spec.datasets[1].mountPath: \"/data/claims\" is inside spec.datasets[0] "
      "\"/data\"\n"
      "job.yaml:16:7: spec.datasets[2].name: required field is missing\n"
      "job.yaml:16:18: spec.datasets[2].mountPath: \"tmp\" is not an absolute path\n"
      "job.yaml:18:11: spec.resources.cpus: expected a positive number, got string \"1\"\n"
      "job.yaml:19:16: spec.resources.memoryMiB: expected a positive integer, got number 1.5\n"
      "job.yaml:20:21: spec.resources.timeoutSeconds: expected a positive integer, got integer "
      "0\n"
      "job.yaml:21:5: spec.resources.gpus: unknown field (allowed: cpus, memoryMiB, "
      "timeoutSeconds, outputMaxMiB)");
}

TEST(ParseJobSpec, CapsTheErrorListAtFifty) {
  std::string doc(kBase);
  for (int i = 0; i < 60; ++i) doc += "x" + std::to_string(i) + ": 1\n";
  const std::string message = ErrorsFor(doc);
  std::vector<std::string> lines;
  std::stringstream ss(message);
  for (std::string line; std::getline(ss, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 51u);
  EXPECT_EQ(lines[0],
            "job.yaml:11:1: x0: unknown field (allowed: apiVersion, kind, metadata, spec)");
  EXPECT_EQ(lines[49],
            "job.yaml:60:1: x49: unknown field (allowed: apiVersion, kind, metadata, spec)");
  EXPECT_EQ(lines[50], "job.yaml: too many errors: showing the first 50 of 60");
}

TEST(ParseJobSpec, InvalidSampleFilesFail) {
  // The invalid-*.json files are also rejected by docs/jobspec.schema.json (CTest
  // jobspec_schema); here, by the parser, with the message a user would see.
  const std::pair<std::string, std::string> cases[] = {
      {"invalid-unknown-field.json",
       "9:5: spec.gpus: unknown field (allowed: image, command, args, env, workingDir, "
       "datasets, resources)"},
      {"invalid-cpus-string.json",
       "9:27: spec.resources.cpus: expected a positive number, got string \"1\""},
      {"invalid-mount-path.json",
       "10:47: spec.datasets[1].mountPath: \"/data/../etc\" is not a normalized absolute path"},
      {"invalid-reserved-env.json",
       "8:13: spec.env.CCE_TOKEN: the CCE_ prefix is reserved for the platform"},
      {"invalid-no-datasets.json",
       "8:17: spec.datasets: expected a non-empty list of datasets, got an empty list"},
      {"invalid-image-digest.json",
       "6:14: spec.image: \"sha256:0F2A\" is not a valid digest: expected \"sha256:\" followed "
       "by 64 lowercase hex digits"},
      {"invalid-reserved-mount.json",
       "8:59: spec.datasets[0].mountPath: \"/output/claims\" is not allowed: /output is "
       "reserved"},
  };
  for (const auto& [file, message] : cases) {
    EXPECT_EQ(ErrorsFor(ReadTestFile(file), file), file + ":" + message);
  }
}

// ---- Canonical JSON -------------------------------------------------------------

TEST(JobSpecToJson, IsSortedCompactAndFillsDefaults) {
  EXPECT_EQ(JobSpecToJson(MustParse(ReadTestFile("minimal.yaml"))),
            "{\"apiVersion\":\"cce4long/v1\",\"kind\":\"PrivacyJob\",\"metadata\":{\"labels\":{},"
            "\"name\":\"cohort-stats\"},\"spec\":{\"args\":[],\"command\":[\"python3\",\"/app/"
            "run.py\"],\"datasets\":[{\"mountPath\":\"/data/claims\",\"name\":\"hospital-claims\"}"
            "],\"env\":{},\"image\":\"stats:1.2\",\"resources\":{\"cpus\":1,\"memoryMiB\":1024,"
            "\"outputMaxMiB\":64,\"timeoutSeconds\":3600}}}");
}

TEST(JobSpecToJson, WritesWorkingDirOnlyWhenSetAndFractionalCpusAsDecimals) {
  const std::string json = JobSpecToJson(MustParse(ReadTestFile("valid.yaml")));
  EXPECT_NE(json.find("\"workingDir\":\"/app\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"cpus\":0.5,"), std::string::npos) << json;
  EXPECT_EQ(JobSpecToJson(MustParse(ReadTestFile("minimal.yaml"))).find("workingDir"),
            std::string::npos);
}

TEST(JobSpecToJson, ParsesBackToTheSameSpec) {
  for (const char* file : {"valid.yaml", "valid.json", "minimal.yaml"}) {
    const JobSpec spec = MustParse(ReadTestFile(file));
    const std::string json = JobSpecToJson(spec);
    EXPECT_EQ(MustParse(json, "canonical.json"), spec) << file;
    EXPECT_EQ(JobSpecToJson(MustParse(json)), json) << file;  // a fixed point
  }
}

TEST(JobSpecToJson, RoundTripsEveryCpuValueExactly) {
  JobSpec spec = MustParse(ReadTestFile("minimal.yaml"));
  std::vector<int64_t> millis;
  for (int64_t m = 1; m <= 3000; ++m) millis.push_back(m);
  for (int64_t m : {int64_t{123456789}, int64_t{999999999}, int64_t{1000000000}, int64_t{987654321},
                    int64_t{100000001}}) {
    millis.push_back(m);
  }
  for (int64_t m : millis) {
    spec.resources.cpu_millis = m;
    const StatusOr<JobSpec> back = ParseJobSpec(JobSpecToJson(spec), "canonical.json");
    ASSERT_TRUE(back.ok()) << m << ": " << back.status().ToString();
    ASSERT_EQ(back->resources.cpu_millis, m) << JobSpecToJson(spec);
  }
}

TEST(JobSpecToJson, EscapesStringsAndRoundTripsThem) {
  JobSpec spec = MustParse(ReadTestFile("minimal.yaml"));
  spec.args = {"a\"b", "line\nbreak", "tab\t", "back\\slash", "K\u00f6ln", "{[*&!|>'%@`]}", "#x"};
  spec.env = {{"Q", "\"quoted\""}, {"Y", "yes"}, {"N", "1"}};
  spec.labels = {{"app.example/tier", "a: b"}};
  EXPECT_EQ(MustParse(JobSpecToJson(spec)), spec);
}

TEST(JobSpecToJson, NeverThrowsOnInvalidUtf8InAHandBuiltSpec) {
  JobSpec spec = MustParse(ReadTestFile("minimal.yaml"));
  spec.args = {"\xff\xfe"};
  EXPECT_NE(JobSpecToJson(spec).find("\"args\":[\"\xef\xbf\xbd\xef\xbf\xbd\"]"), std::string::npos);
}

// ---- Plane limits ---------------------------------------------------------------

TEST(ValidateAgainstLimits, AcceptsSpecWithinDefaultLimits) {
  EXPECT_TRUE(ValidateAgainstLimits(MustParse(ReadTestFile("valid.yaml")), PlaneLimits{}).ok());
}

TEST(ValidateAgainstLimits, AcceptsValuesExactlyAtTheLimit) {
  JobSpec spec = MustParse(ReadTestFile("minimal.yaml"));
  spec.resources = {8000, 65536, 604800, 4096};
  spec.datasets.assign(16, spec.datasets[0]);
  EXPECT_TRUE(ValidateAgainstLimits(spec, PlaneLimits{}).ok());
}

TEST(ValidateAgainstLimits, NamesEachFieldOverItsLimit) {
  JobSpec spec = MustParse(ReadTestFile("minimal.yaml"));
  spec.resources = {8001, 65537, 604801, 4097};
  spec.datasets.assign(17, spec.datasets[0]);
  const Status s = ValidateAgainstLimits(spec, PlaneLimits{});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "spec.resources.cpus: 8.001 exceeds the plane's limit of 8\n"
            "spec.resources.memoryMiB: 65537 exceeds the plane's limit of 65536\n"
            "spec.resources.timeoutSeconds: 604801 exceeds the plane's limit of 604800\n"
            "spec.resources.outputMaxMiB: 4097 exceeds the plane's limit of 4096\n"
            "spec.datasets: 17 datasets exceed the plane's limit of 16");
}

TEST(ValidateAgainstLimits, UsesConfiguredLimitsAndSourceName) {
  const JobSpec spec = MustParse(ReadTestFile("valid.yaml"));  // 0.5 cpus, 2048 MiB, 2 datasets
  PlaneLimits limits;
  limits.max_memory_mib = 1024;
  limits.max_datasets = 1;
  EXPECT_EQ(ValidateAgainstLimits(spec, limits, "job.yaml").message(),
            "job.yaml: spec.resources.memoryMiB: 2048 exceeds the plane's limit of 1024\n"
            "job.yaml: spec.datasets: 2 datasets exceed the plane's limit of 1");
  limits = PlaneLimits{};
  limits.max_cpus = 0;
  EXPECT_EQ(ValidateAgainstLimits(spec, limits).message(),
            "spec.resources.cpus: 0.5 exceeds the plane's limit of 0");
}

TEST(ValidateAgainstLimits, HugeConfiguredLimitsDoNotOverflow) {
  PlaneLimits limits;
  limits.max_cpus = std::numeric_limits<int64_t>::max();
  JobSpec spec = MustParse(ReadTestFile("minimal.yaml"));
  spec.resources.cpu_millis = 1000000000;
  EXPECT_TRUE(ValidateAgainstLimits(spec, limits).ok());
}

}  // namespace
}  // namespace cce
