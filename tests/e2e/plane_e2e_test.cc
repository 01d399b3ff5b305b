// The Privacy Plane from the command line, as its users meet it: an operator
// initializes and serves it, adds users; a provider logs in and registers an
// encrypted dataset; a consumer browses the catalog and rents it. Real
// binaries, real TLS on a loopback port.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "e2e/harness.h"

namespace cce::e2e {
namespace {

using nlohmann::json;

CommandResult Cce(std::vector<std::string> args) {
  args.insert(args.begin(), BinPath("cce"));
  return RunCommand(args);
}

TEST(PlaneCli, ProviderRegistersConsumerRentsAllOverTls) {
  TempDir t;
  ::setenv("HOME", t.path().c_str(), 1);
  ::unsetenv("XDG_CONFIG_HOME");
  int port = FreeLoopbackPort();
  std::string listen = "127.0.0.1:" + std::to_string(port);
  auto init = RunCommand({BinPath("cce-plane"), "init", "--data-dir", t / "plane", "--listen",
                          listen, "--output", "json"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  json ij = json::parse(init.out);
  std::string op_token = ij["token"], ca = ij["ca_file"];
  BackgroundProcess server({BinPath("cce-plane"), "serve", "--data-dir", t / "plane"});
  std::string url = "https://" + listen;
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    up = Cce({"login", "--plane", url, "--token", op_token, "--ca", ca}).exit_code == 0;
  }
  ASSERT_TRUE(up) << server.Err();

  auto add = [&](const std::string& name, const std::string& role) {
    auto r = RunCommand({BinPath("cce-plane"), "user", "add", "--data-dir", t / "plane", "--role",
                         role, name, "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out)["token"].get<std::string>();
  };
  std::string pat = add("pat", "provider"), carol = add("carol", "consumer");

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
  json lj = json::parse(list.out);
  ASSERT_EQ(lj["datasets"].size(), 1u);
  EXPECT_EQ(lj["datasets"][0]["price"], "2.5");
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
  EXPECT_EQ(json::parse(rentals.out)["rentals"].size(), 1u);
  // A consumer may not register datasets: refused by the plane, exit 3.
  auto refused = Cce({"dataset", "register", "mine", "--key", t / "claims.key", "--location",
                      "file://" + (t / "claims.enc")});
  EXPECT_EQ(refused.exit_code, 3);
  // Environment variables override the saved config.
  ::setenv("CCE_TOKEN", "cce_bogus", 1);
  EXPECT_EQ(Cce({"rentals"}).exit_code, 3);
  ::unsetenv("CCE_TOKEN");

  EXPECT_EQ(server.Stop(SIGTERM, 10000), 0) << server.Err();
  EXPECT_NE(server.Err().find("\"event\":\"plane.stop\""), std::string::npos) << server.Err();
}

}  // namespace
}  // namespace cce::e2e
