#include "cli/flags.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "cli/command_table.h"

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

TEST(FlagParser, UintSaysNegativeAndTooSmallInWords) {
  FlagParser p("t", "t", {{"limit", "N", "n"}});
  auto message = [&](const std::string& v) {
    auto f = p.Parse({"--limit", v});
    EXPECT_TRUE(f.ok());
    auto r = f->GetUint("limit", 1, 10000);
    return r.ok() ? std::string("ok") : r.status().message();
  };
  EXPECT_EQ(message("-5"), "--limit: '-5': must not be negative (expected an integer in 1..10000)");
  EXPECT_EQ(message("0"), "--limit: '0': must be at least 1 (expected an integer in 1..10000)");
  EXPECT_EQ(message("10001"), "--limit: '10001': expected an integer in 1..10000");
  EXPECT_EQ(message("ten"), "--limit: 'ten': expected an integer in 1..10000");
  EXPECT_EQ(message("7"), "ok");
}

TEST(FlagParser, ShortOnlyFlagsHaveNoLongSpelling) {
  FlagParser p("t [-o OPTS]", "t",
               {{"mount-options", "OPTS", "mount options", true, 'o', /*short_only=*/true}});
  auto f = p.Parse({"-o", "allow_other", "-o", "x"});
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->All("mount-options"), (std::vector<std::string>{"allow_other", "x"}));
  EXPECT_FALSE(p.Parse({"--mount-options", "allow_other"}).ok());
  EXPECT_FALSE(p.Parse({"--o", "allow_other"}).ok());
  auto missing = p.Parse({"-o"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("-o: missing value OPTS"), std::string::npos)
      << missing.status().message();
  EXPECT_NE(p.Help().find("  -o OPTS "), std::string::npos) << p.Help();
  EXPECT_EQ(p.Help().find("--mount-options"), std::string::npos) << p.Help();
}

// ---- the command machinery (cli/command_table.h) ----

struct Captured {
  int exit = -1;
  std::string out;
  std::string err;
};

template <typename F>
Captured Capture(F run) {
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  Captured c;
  c.exit = run();
  c.out = ::testing::internal::GetCapturedStdout();
  c.err = ::testing::internal::GetCapturedStderr();
  return c;
}

class CommandTableTest : public ::testing::Test {
 protected:
  CommandTableTest() {
    table_.program = "prog";
    table_.description = "A test program.";
    table_.footer = "Exit codes: see docs.\n";
    table_.commands = {
        {{"init"}, "make things", [this](const Args& a) { return Record("init", a, 0); }},
        {{"user", "add"}, "add a user", [this](const Args& a) { return Record("user add", a, 0); }},
        {{"user", "remove"},
         "remove a user",
         [this](const Args& a) { return Record("user remove", a, 3); }},
    };
  }
  int Record(const std::string& name, const Args& args, int exit) {
    ran_ = name;
    args_ = args;
    return exit;
  }
  Captured Run(const Args& args) {
    return Capture([&] { return RunCommand(table_, args); });
  }

  CommandTable table_;
  std::string ran_;
  Args args_;
};

TEST_F(CommandTableTest, DispatchesOneAndTwoWordCommandsWithTheRestOfTheArguments) {
  Captured init = Run({"init", "--data-dir", "d"});
  EXPECT_EQ(init.exit, 0);
  EXPECT_EQ(ran_, "init");
  EXPECT_EQ(args_, (Args{"--data-dir", "d"}));
  Captured add = Run({"user", "add", "alice"});
  EXPECT_EQ(add.exit, 0);
  EXPECT_EQ(ran_, "user add");
  EXPECT_EQ(args_, (Args{"alice"}));
  EXPECT_EQ(Run({"user", "remove"}).exit, 3);  // the verb's exit code is the process's
  EXPECT_EQ(ran_, "user remove");
}

TEST_F(CommandTableTest, HelpAtTheTopAndGroupLevels) {
  for (const char* help : {"--help", "-h", "help"}) {
    Captured c = Run({help});
    EXPECT_EQ(c.exit, 0) << help;
    EXPECT_NE(c.out.find("Usage: prog COMMAND [options]"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("A test program."), std::string::npos);
    EXPECT_NE(c.out.find("  user add              add a user\n"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("Exit codes: see docs."), std::string::npos);
    EXPECT_TRUE(c.err.empty()) << c.err;
  }
  Captured none = Run({});
  EXPECT_EQ(none.exit, 2);  // no command is a usage error, but the listing is what was wanted
  EXPECT_NE(none.out.find("Usage: prog COMMAND"), std::string::npos);
  Captured group = Run({"user", "--help"});
  EXPECT_EQ(group.exit, 0);
  EXPECT_NE(group.out.find("Usage: prog user COMMAND [options]"), std::string::npos) << group.out;
  EXPECT_NE(group.out.find("user remove"), std::string::npos);
  EXPECT_EQ(group.out.find("init"), std::string::npos) << group.out;
  EXPECT_TRUE(ran_.empty());
}

TEST_F(CommandTableTest, UnknownCommandsAreUsageErrorsThatListTheCommands) {
  Captured bogus = Run({"bogus"});
  EXPECT_EQ(bogus.exit, 2);
  EXPECT_TRUE(bogus.out.empty());
  EXPECT_EQ(bogus.err.rfind("prog: error: unknown command 'bogus'\n\n", 0), 0u) << bogus.err;
  EXPECT_NE(bogus.err.find("  init "), std::string::npos) << bogus.err;
  Captured verb = Run({"user", "frob"});
  EXPECT_EQ(verb.exit, 2);
  EXPECT_NE(verb.err.find("unknown command 'user frob'"), std::string::npos) << verb.err;
  EXPECT_NE(verb.err.find("Usage: prog user COMMAND"), std::string::npos) << verb.err;
  Captured bare = Run({"user"});  // a bare group: its commands, as a bare prog lists all
  EXPECT_EQ(bare.exit, 2);
  EXPECT_NE(bare.out.find("Usage: prog user COMMAND [options]"), std::string::npos) << bare.out;
  EXPECT_NE(bare.out.find("user remove"), std::string::npos) << bare.out;
  EXPECT_TRUE(bare.err.empty()) << bare.err;
  EXPECT_EQ(Run({"--version"}).exit, 2);  // only a table with a version knows --version
  EXPECT_TRUE(ran_.empty());
  table_.version = "1.2.3";
  Captured version = Run({"--version"});
  EXPECT_EQ(version.exit, 0);
  EXPECT_EQ(version.out, "prog 1.2.3\n");
}

TEST(ParseArgs, HelpBadFlagsAndArgumentCounts) {
  FlagParser p("prog verb --key FILE A", "Does the verb.", {{"key", "FILE", "key"}});
  int exit = -1;
  std::optional<ParsedFlags> f;
  Captured ok = Capture([&] {
    f = ParseArgs("prog", p, {"--key", "k", "a"}, 1, &exit);
    return 0;
  });
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->Get("key"), "k");
  EXPECT_TRUE(ok.out.empty() && ok.err.empty());

  Captured help = Capture([&] {
    f = ParseArgs("prog", p, {"-h"}, 1, &exit);
    return exit;
  });
  EXPECT_FALSE(f.has_value());
  EXPECT_EQ(help.exit, 0);
  EXPECT_EQ(help.out, p.Help());

  Captured bad = Capture([&] {
    f = ParseArgs("prog", p, {"--bogus", "a"}, 1, &exit);
    return exit;
  });
  EXPECT_FALSE(f.has_value());
  EXPECT_EQ(bad.exit, 2);
  EXPECT_EQ(bad.err, "prog: error: unknown option '--bogus' (try --help)\n");

  Captured count = Capture([&] {
    f = ParseArgs("prog", p, {"a", "b"}, 1, &exit);
    return exit;
  });
  EXPECT_FALSE(f.has_value());
  EXPECT_EQ(count.exit, 2);
  EXPECT_NE(count.err.find("prog: error: expected 1 argument(s), got 2"), std::string::npos)
      << count.err;

  EXPECT_NE(count.err.find("unexpected 'b' (usage: prog verb --key FILE A)"), std::string::npos)
      << count.err;

  // A file given as an argument to a verb that takes it with -f.
  FlagParser submit("prog submit -f FILE", "Submits.", {{"file", "FILE", "spec", false, 'f'}});
  Captured spec = Capture([&] {
    f = ParseArgs("prog", submit, {"job.yaml"}, 0, &exit);
    return exit;
  });
  EXPECT_EQ(spec.exit, 2);
  EXPECT_EQ(spec.err,
            "prog: error: expected 0 argument(s), got 1: unexpected 'job.yaml'; did you mean -f "
            "job.yaml? (usage: prog submit -f FILE)\n");

  Captured any = Capture([&] {
    f = ParseArgs("prog", p, {"a", "b", "c"}, kAnyArgCount, &exit);
    return 0;
  });
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->positional().size(), 3u);
}

TEST(ReportError, PrefixesTheProgramAndUsesTheSharedExitCodes) {
  Captured tampered = Capture([] { return ReportError("tool", DataLoss("seg 3: bad tag")); });
  EXPECT_EQ(tampered.exit, kExitDataLoss);
  EXPECT_EQ(tampered.err, "tool: error: seg 3: bad tag\n");
  EXPECT_EQ(Capture([] { return ReportError("t", PermissionDenied("wrong key")); }).exit, 3);
  EXPECT_EQ(Capture([] { return ReportError("t", InvalidArgument("--x")); }).exit, 2);
  EXPECT_EQ(Capture([] { return ReportError("t", NotFound("no such job")); }).exit, 2);
  EXPECT_EQ(Capture([] { return ReportError("t", ErrnoStatus("read", EIO)); }).exit, 1);
}

}  // namespace
}  // namespace cce::cli
