// configfs-tsm against a plain directory standing in for
// /sys/kernel/config/tsm/report (there is no TDX guest here): the provider's
// file protocol, not the kernel's quote generation.
#include "agent/quote_provider.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "base/fd.h"

namespace cce::agent {
namespace {

namespace fs = std::filesystem;

class ConfigfsTsmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = (fs::temp_directory_path() / "cce-tsm-XXXXXX").string();
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    root_ = t;
  }
  void TearDown() override { fs::remove_all(root_); }
  // What the kernel would create with the entry.
  std::function<void(const std::string&)> Kernel(const std::string& provider,
                                                 const std::string& outblob) {
    return [this, provider, outblob](const std::string& dir) {
      entry_ = dir;
      std::ofstream(dir + "/provider") << provider << "\n";
      std::ofstream(dir + "/generation") << "1\n";
      std::ofstream(dir + "/inblob");
      std::ofstream(dir + "/outblob", std::ios::binary) << outblob;
    };
  }
  std::string root_;
  std::string entry_;
};

TEST_F(ConfigfsTsmTest, WritesTheReportDataAndReturnsTheOutblob) {
  auto p = MakeConfigfsTsmProvider(root_, Kernel("tdx_guest", "QUOTE-BYTES"));
  EXPECT_EQ(p->name(), "configfs-tsm");
  EXPECT_FALSE(p->simulated());
  ReportData rd{};
  for (size_t i = 0; i < rd.size(); ++i) rd[i] = static_cast<uint8_t>(i * 3);
  auto q = p->GetQuote(rd);
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(std::string(q->begin(), q->end()), "QUOTE-BYTES");
  auto in = ReadFile(entry_ + "/inblob", 1024);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(*in, std::string(rd.begin(), rd.end()));
  EXPECT_EQ(entry_.rfind(root_ + "/cce-", 0), 0u);
}

TEST_F(ConfigfsTsmTest, RefusesAnotherProviderAndAnEmptyQuote) {
  auto sev = MakeConfigfsTsmProvider(root_, Kernel("sev_guest", "Q"));
  auto r = sev->GetQuote({});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("sev_guest"), std::string::npos);
  auto empty = MakeConfigfsTsmProvider(root_, Kernel("tdx_guest", ""));
  EXPECT_FALSE(empty->GetQuote({}).ok());
}

TEST_F(ConfigfsTsmTest, NoConfigfsIsAClearError) {
  auto p = MakeConfigfsTsmProvider(root_ + "/missing");
  auto r = p->GetQuote({});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("TDX guest"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace cce::agent
