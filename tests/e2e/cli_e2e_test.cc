// `cce` as a user meets it: help, exit codes, errors that name the problem,
// JSON output, and the key file's safety properties.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "e2e/harness.h"

namespace cce::e2e {
namespace {

namespace fs = std::filesystem;

CommandResult Cce(std::vector<std::string> args) {
  args.insert(args.begin(), BinPath("cce"));
  return RunCommand(args);
}

TEST(CceCli, HelpEverywhereAndUsageErrorsExitTwo) {
  auto top = Cce({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("dataset encrypt"), std::string::npos);
  for (std::vector<std::string> cmd : {std::vector<std::string>{"key", "generate"},
                                       {"dataset", "encrypt"},
                                       {"dataset", "decrypt"},
                                       {"dataset", "verify"}}) {
    cmd.push_back("--help");
    auto r = Cce(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd[0] << " " << cmd[1];
    EXPECT_NE(r.out.find("Usage: cce " + cmd[0] + " " + cmd[1]), std::string::npos) << r.out;
  }
  auto unknown = Cce({"dataset", "encrypt", "--kye", "x", "a", "b"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("unknown option '--kye'"), std::string::npos) << unknown.err;
  EXPECT_EQ(Cce({"frobnicate"}).exit_code, 2);
  auto no_key = Cce({"dataset", "verify", "/nonexistent"});
  EXPECT_EQ(no_key.exit_code, 2);
  EXPECT_NE(no_key.err.find("--key FILE is required"), std::string::npos) << no_key.err;
}

TEST(CceCli, KeyGenerateIsPrivateAndNeverOverwrites) {
  TempDir t;
  std::string key = t / "k.key";
  auto r = Cce({"key", "generate", "--out", key, "--output", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["key_id"].get<std::string>().size(), 32u);
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string before = ReadFile(key);
  EXPECT_EQ(before.rfind("cce4long-dataset-key-v1 ", 0), 0u);
  auto again = Cce({"key", "generate", "--out", key});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("refusing to overwrite"), std::string::npos);
  EXPECT_EQ(ReadFile(key), before);
  // The key is not echoed anywhere.
  EXPECT_EQ(r.out.find(before.substr(24, 64)), std::string::npos);
}

TEST(CceCli, EncryptVerifyDecryptWithJsonOutputAndClearErrors) {
  TempDir t;
  WriteFile(t / "src/x/one.csv", "a,b\n1,2\n");
  WriteFile(t / "src/two.bin", std::string(200000, 'z'));
  ASSERT_EQ(Cce({"key", "generate", "--out", t / "k"}).exit_code, 0);
  auto enc = Cce({"dataset", "encrypt", "--key", t / "k", "--output", "json", "--dataset-id",
                  "claims", t / "src", t / "enc"});
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  EXPECT_TRUE(enc.err.empty()) << "no progress bar when stderr is not a terminal: " << enc.err;
  auto j = nlohmann::json::parse(enc.out);
  EXPECT_EQ(j["files"], 2);
  EXPECT_EQ(j["directories"], 1);
  EXPECT_EQ(j["plaintext_bytes"], 200008);
  EXPECT_EQ(j["dataset_id"], "claims");

  auto v = Cce({"dataset", "verify", "--key", t / "k", "--output", "json", t / "enc"});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  EXPECT_EQ(nlohmann::json::parse(v.out)["ok"], true);
  auto wrong_id =
      Cce({"dataset", "verify", "--key", t / "k", "--expect-dataset-id", "other", t / "enc"});
  EXPECT_EQ(wrong_id.exit_code, 3);

  auto d = Cce({"dataset", "decrypt", "--key", t / "k", t / "enc", t / "out"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(ReadFile(t / "out/x/one.csv"), "a,b\n1,2\n");
  auto again = Cce({"dataset", "decrypt", "--key", t / "k", t / "enc", t / "out"});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("already exists"), std::string::npos);

  // A malformed key file: the error names the file and the byte.
  WriteFile(t / "bad.key", "cce4long-dataset-key-v1 zz");
  auto bad = Cce({"dataset", "verify", "--key", t / "bad.key", t / "enc"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("bad.key"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("byte 24"), std::string::npos) << bad.err;
  // Not an encrypted dataset.
  auto notds = Cce({"dataset", "verify", "--key", t / "k", t / "src"});
  EXPECT_EQ(notds.exit_code, 2);
  EXPECT_NE(notds.err.find("no manifest"), std::string::npos) << notds.err;
  // Format v2 has one segment size: the option is gone.
  auto badexp = Cce(
      {"dataset", "encrypt", "--key", t / "k", "--segment-exponent", "12", t / "src", t / "enc2"});
  EXPECT_EQ(badexp.exit_code, 2);
  EXPECT_NE(badexp.err.find("unknown option '--segment-exponent'"), std::string::npos)
      << badexp.err;
  EXPECT_FALSE(fs::exists(t / "enc2"));
}

}  // namespace
}  // namespace cce::e2e
