#include "cli/flags.h"

#include <gtest/gtest.h>

namespace cce::cli {
namespace {

FlagParser Parser() {
  return FlagParser("t [options] A", "test", {{"key", "FILE", "key"}, {"json", "", "json"}});
}

TEST(FlagParser, ParsesValuesBothSpellingsAndPositionals) {
  auto f = Parser().Parse({"--key", "k1", "a", "--json", "--", "--not-a-flag"});
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->Get("key"), "k1");
  EXPECT_TRUE(f->Has("json"));
  EXPECT_EQ(f->positional(), (std::vector<std::string>{"a", "--not-a-flag"}));
  auto g = Parser().Parse({"--key=k2"});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->Get("key"), "k2");
}

TEST(FlagParser, RejectsUnknownMissingAndRepeatedFlags) {
  auto unknown = Parser().Parse({"--kye", "x"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("--kye"), std::string::npos);
  auto missing = Parser().Parse({"--key"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing value FILE"), std::string::npos);
  EXPECT_FALSE(Parser().Parse({"--key", "a", "--key", "b"}).ok());
  EXPECT_FALSE(Parser().Parse({"--json=1"}).ok());
}

TEST(FlagParser, ShortNamesAreAliasesOnlyWhenDeclared) {
  FlagParser p("t -f FILE", "t", {{"file", "FILE", "spec", false, 'f'}});
  auto f = p.Parse({"-f", "job.yaml"});
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->Get("file"), "job.yaml");
  EXPECT_FALSE(p.Parse({"-f", "a", "--file", "b"}).ok());  // the same flag twice
  EXPECT_FALSE(p.Parse({"-x"}).ok());
  EXPECT_FALSE(p.Parse({"-fa"}).ok());
  EXPECT_NE(p.Help().find("-f, --file FILE"), std::string::npos);
}

TEST(FlagParser, UintRangeErrorsNameTheFlag) {
  FlagParser p("t", "t", {{"threads", "N", "n"}});
  auto f = p.Parse({"--threads", "0x"});
  ASSERT_TRUE(f.ok());
  auto v = f->GetUint("threads", 1, 8);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("--threads"), std::string::npos);
}

}  // namespace
}  // namespace cce::cli
