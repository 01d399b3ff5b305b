#include "explore/sample_policy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace cce::explore {
namespace {

std::string Err(const std::string& yaml) {
  auto p = ParseSamplePolicy(yaml, "p.yaml", "");
  return p.ok() ? std::string("(parsed)") : p.status().message();
}

TEST(SamplePolicy, ParsesTheExampleSchema) {
  auto p = ParseSamplePolicy(R"(seed: 42
rows: {count: 1000}
secret_file: keys/sample.key
k_anonymity:
  k: 5
  quasi_identifiers: [age, zip]
  max_suppression: 0.05
  l_diversity: {column: diagnosis, l: 2}
columns:
  name: {action: drop}
  ssn: {action: mask, keep_last: 4}
  patient_id: {action: hash}
  age: {action: generalize, bands: [0, 18, 30, 45, 65, 120]}
  zip: {action: generalize, prefix: 3}
  visit: {action: date, shift_days_max: 30, entity: patient_id, truncate: month}
  city: {action: top_k, k: 10, other: "other"}
  diagnosis: {action: keep}
)",
                             "p.yaml", "/etc/cce");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->seed, 42u);
  EXPECT_EQ(p->count, 1000u);
  EXPECT_EQ(p->secret_file, "/etc/cce/keys/sample.key");
  ASSERT_EQ(p->columns.size(), 8u);
  EXPECT_EQ(p->columns[1].keep_last, 4);
  EXPECT_EQ(p->columns[2].length, 16);
  EXPECT_EQ(p->columns[3].bands.size(), 6u);
  EXPECT_EQ(p->columns[4].prefix, 3);
  EXPECT_EQ(p->columns[5].truncate, DateUnit::kMonth);
  EXPECT_EQ(p->columns[5].entity, "patient_id");
  EXPECT_EQ(p->columns[6].top_k, 10);
  EXPECT_EQ(p->columns[7].line, 17);
  EXPECT_EQ(p->columns[7].column, 3);
  ASSERT_TRUE(p->k_anonymity.has_value());
  EXPECT_EQ(p->k_anonymity->k, 5);
  EXPECT_DOUBLE_EQ(p->k_anonymity->max_suppression, 0.05);
  EXPECT_EQ(p->k_anonymity->l_diversity->column, "diagnosis");
}

TEST(SamplePolicy, TheDemoPolicyParses) {
  auto p = LoadSamplePolicy(CCE_SOURCE_DIR "/examples/sample-policy.yaml");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->secret_file, CCE_SOURCE_DIR "/examples/sample.key");
  EXPECT_EQ(p->k_anonymity->quasi_identifiers, (std::vector<std::string>{"age", "zip"}));
  EXPECT_EQ(p->columns.size(), 5u);
}

TEST(SamplePolicy, ErrorsNameFileLineColumnAndKey) {
  EXPECT_EQ(Err("seed: 1\ncolumns:\n  a: {action: keep, keep_last: 2}\n"),
            "p.yaml:3:21: columns.a.keep_last: unknown key 'keep_last' (expected one of: action)");
  EXPECT_EQ(Err("sed: 1\ncolumns:\n  a: {action: keep}\n"),
            "p.yaml:1:1: sed: unknown key 'sed' (expected one of: columns, k_anonymity, rows, "
            "secret_file, seed)");
  EXPECT_EQ(Err("columns:\n  a: {action: scramble}\n"),
            "p.yaml:2:15: columns.a.action: expected one of drop, keep, mask, hash, generalize, "
            "date, top_k, got 'scramble'");
  EXPECT_EQ(Err("columns:\n  a: {action: generalize}\n"),
            "p.yaml:2:6: columns.a: generalize needs exactly one of bands, width, prefix");
  EXPECT_EQ(Err("columns:\n  a: {action: generalize, bands: [0, 10, 5]}\n"),
            "p.yaml:2:42: columns.a.bands[2]: band edges must be strictly increasing");
  EXPECT_EQ(Err("columns:\n  a: {action: hash}\n"),
            "p.yaml:1:1: secret_file: required: hash columns and date shifting are keyed by a "
            "provider secret");
  EXPECT_EQ(Err("rows: {rate: 1.5}\ncolumns:\n  a: {action: keep}\n"),
            "p.yaml:1:14: rows.rate: 1.5 is out of range [0, 1]");
  EXPECT_EQ(Err("rows: {rate: 0.1, count: 3}\ncolumns:\n  a: {action: keep}\n"),
            "p.yaml:1:7: rows: give rate or count, not both");
  EXPECT_EQ(Err("columns:\n  a: {action: keep}\n  a: {action: drop}\n"),
            "p.yaml:3:3: columns.a: duplicate column");
  EXPECT_EQ(Err("k_anonymity: {k: 3, quasi_identifiers: [b]}\ncolumns:\n  a: {action: keep}\n"),
            "p.yaml:1:41: k_anonymity.quasi_identifiers[0]: 'b' is not declared under columns");
  EXPECT_EQ(Err("k_anonymity: {k: 3, quasi_identifiers: [a]}\ncolumns:\n  a: {action: drop}\n"),
            "p.yaml:1:41: k_anonymity.quasi_identifiers[0]: 'a' is dropped, so it is not in the "
            "sample: remove it from the list");
  EXPECT_EQ(Err("k_anonymity: {k: 3, quasi_identifiers: [a], l_diversity: {column: a, l: 2}}\n"
                "columns:\n  a: {action: keep}\n"),
            "p.yaml:1:67: k_anonymity.l_diversity.column: 'a' is a quasi-identifier; the "
            "sensitive column must not be");
  EXPECT_EQ(Err("columns:\n  d: {action: date, truncate: week}\n"),
            "p.yaml:2:31: columns.d.truncate: expected day, month or year, got 'week'");
  EXPECT_EQ(Err("columns: [a]\n"),
            "p.yaml:1:10: columns: expected a mapping of column name to {action: ...}");
  EXPECT_EQ(Err("columns:\n  a: {action: keep\n"), "p.yaml:3:1: end of map flow not found");
  EXPECT_EQ(Err(""), "p.yaml:1:1: expected a mapping with key 'columns'");
}

class SecretFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cce-secret-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  SamplePolicy Write(const std::string& contents, mode_t mode) {
    const std::string path = dir_ + "/k";
    std::filesystem::remove(path);
    std::ofstream(path) << contents;
    ::chmod(path.c_str(), mode);
    SamplePolicy p;
    p.source = "p.yaml";
    p.secret_file = path;
    return p;
  }
  std::string dir_;
};

TEST_F(SecretFile, AcceptsOwnerOnlyFilesOfThirtyTwoBytes) {
  auto s = LoadSampleSecret(Write(std::string(32, 'k'), 0600));
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->size(), 32u);
  EXPECT_TRUE(LoadSampleSecret(Write(std::string(40, 'k'), 0400)).ok());
}

TEST_F(SecretFile, RefusesGroupReadableShortAndSymlinkedFiles) {
  auto s = LoadSampleSecret(Write(std::string(32, 'k'), 0644));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.status().message().find("mode 0644"), std::string::npos) << s.status().message();
  s = LoadSampleSecret(Write(std::string(31, 'k'), 0600));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("31 bytes; at least 32"), std::string::npos);
  SamplePolicy p = Write(std::string(32, 'k'), 0600);
  std::filesystem::create_symlink(p.secret_file, dir_ + "/link");
  p.secret_file = dir_ + "/link";
  s = LoadSampleSecret(p);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("symlink"), std::string::npos);
}

}  // namespace
}  // namespace cce::explore
