// The three binaries (cce, cce-plane, cce-decryptfs) share one command
// machinery (src/cli/command_table.h) and one exit-code table
// (src/base/exit_code.h): --help at every level, "PROG: error: ..." on
// stderr, 2 for bad usage. Tampering and wrong keys (exit 3): tamper_e2e_test.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "e2e/harness.h"

namespace cce::e2e {
namespace {

CommandResult RunBinary(const std::string& binary, std::vector<std::string> args) {
  args.insert(args.begin(), BinPath(binary));
  return RunCommand(args);
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

TEST(CcePlaneCommands, HelpAtEveryLevel) {
  auto top = RunBinary("cce-plane", {"--help"});
  EXPECT_EQ(top.exit_code, 0) << top.err;
  EXPECT_NE(top.out.find("Usage: cce-plane COMMAND [options]"), std::string::npos) << top.out;
  for (const char* verb : {"init", "serve", "user add", "collateral import", "collateral fetch"}) {
    EXPECT_NE(top.out.find(std::string("  ") + verb + " "), std::string::npos) << verb;
  }
  for (std::vector<std::string> cmd : {std::vector<std::string>{"init"},
                                       {"serve"},
                                       {"user", "add"},
                                       {"collateral", "import"},
                                       {"collateral", "fetch"}}) {
    std::string name = cmd.size() == 1 ? cmd[0] : cmd[0] + " " + cmd[1];
    cmd.push_back("--help");
    auto r = RunBinary("cce-plane", cmd);
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err;
    EXPECT_NE(r.out.find("Usage: cce-plane " + name), std::string::npos) << r.out;
  }
  auto group = RunBinary("cce-plane", {"collateral", "-h"});
  EXPECT_EQ(group.exit_code, 0) << group.err;
  EXPECT_NE(group.out.find("Usage: cce-plane collateral COMMAND"), std::string::npos) << group.out;
  EXPECT_EQ(RunBinary("cce-plane", {}).exit_code, 2);
}

TEST(CcePlaneCommands, UsageErrorsExitTwoWithOneErrorLine) {
  auto bogus = RunBinary("cce-plane", {"bogus"});
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_TRUE(StartsWith(bogus.err, "cce-plane: error: unknown command 'bogus'\n")) << bogus.err;
  EXPECT_NE(bogus.err.find("serve"), std::string::npos) << "the listing follows: " << bogus.err;

  auto flag = RunBinary("cce-plane", {"serve", "--bogus"});
  EXPECT_EQ(flag.exit_code, 2);
  EXPECT_EQ(flag.err, "cce-plane: error: unknown option '--bogus' (try --help)\n");

  auto verb = RunBinary("cce-plane", {"user", "delete"});
  EXPECT_EQ(verb.exit_code, 2);
  EXPECT_TRUE(StartsWith(verb.err, "cce-plane: error: unknown command 'user delete'\n"))
      << verb.err;

  auto no_dir = RunBinary("cce-plane", {"serve"});
  EXPECT_EQ(no_dir.exit_code, 2);
  EXPECT_EQ(no_dir.err, "cce-plane: error: --data-dir DIR is required\n");

  auto no_name =
      RunBinary("cce-plane", {"user", "add", "--data-dir", "/nonexistent", "--role", "x"});
  EXPECT_EQ(no_name.exit_code, 2);
  EXPECT_TRUE(StartsWith(no_name.err, "cce-plane: error: expected 1 argument(s), got 0"))
      << no_name.err;
}

TEST(CceDecryptFsCommand, HelpAndUsageErrorsLikeTheOthers) {
  auto help = RunBinary("cce-decryptfs", {"-h"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("Usage: cce-decryptfs (--key-fd N | --key-file FILE)"), std::string::npos)
      << help.out;
  EXPECT_NE(help.out.find("-o allow_other"), std::string::npos) << help.out;

  auto bogus = RunBinary("cce-decryptfs", {"--bogus"});
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_EQ(bogus.err, "cce-decryptfs: error: unknown option '--bogus' (try --help)\n");

  auto no_key = RunBinary("cce-decryptfs", {"/nonexistent", "/nonexistent"});
  EXPECT_EQ(no_key.exit_code, 2);
  EXPECT_TRUE(StartsWith(no_key.err, "cce-decryptfs: error: expected exactly one of --key-fd"))
      << no_key.err;

  // An unreadable key file is a runtime failure for both binaries.
  auto dfs =
      RunBinary("cce-decryptfs", {"--key-file", "/nonexistent/k", "/nonexistent", "/nonexistent"});
  auto cce = RunBinary("cce", {"dataset", "verify", "--key", "/nonexistent/k", "/nonexistent"});
  EXPECT_EQ(dfs.exit_code, 1) << dfs.err;
  EXPECT_EQ(cce.exit_code, dfs.exit_code) << cce.err;
}

}  // namespace
}  // namespace cce::e2e
