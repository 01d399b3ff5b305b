// plane.yaml's ledger section (config.h, docs/plane.md "Configuration").
#include "plane/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace cce::plane {
namespace {

namespace fs = std::filesystem;

class LedgerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "cce-config-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  StatusOr<PlaneConfig> Load(const std::string& yaml) {
    std::ofstream(dir_ + "/plane.yaml") << yaml;
    return LoadConfig(dir_);
  }
  // The error of loading `yaml` (a failure when it loads).
  std::string Error(const std::string& yaml) {
    auto c = Load(yaml);
    EXPECT_FALSE(c.ok()) << yaml;
    return c.ok() ? "" : c.status().message();
  }

  std::string dir_;
};

const std::string kContract = "0x5FbDB2315678afecb367f032d93F642f64180aa3";  // EIP-55

std::string Ethereum(const std::string& extra = "") {
  return "ledger:\n  backend: ethereum\n  rpc: http://127.0.0.1:8545\n  chain_id: 31337\n"
         "  contract: \"" +
         kContract + "\"\n" + extra;
}

TEST_F(LedgerConfigTest, DefaultsToTheEmbeddedLedger) {
  auto c = Load("listen: 127.0.0.1:1\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->ledger_backend, "embedded");
  EXPECT_EQ(c->ledger_confirmations, 12);
  EXPECT_EQ(c->ledger_poll_seconds, 5);
  // An embedded ledger needs none of the ethereum keys.
  auto e = Load("ledger: {backend: embedded}\n");
  ASSERT_TRUE(e.ok()) << e.status().message();
}

TEST_F(LedgerConfigTest, ReadsEveryEthereumKey) {
  auto c = Load(Ethereum(
      "  start_block: 7\n  confirmations: 2\n  poll_seconds: 1\n  rpc_ca_file: tls/rpc.crt\n"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->ledger_backend, "ethereum");
  EXPECT_EQ(c->ledger_rpc, "http://127.0.0.1:8545");
  EXPECT_EQ(c->ledger_chain_id, 31337);
  EXPECT_EQ(c->ledger_contract, kContract);
  EXPECT_EQ(c->ledger_start_block, 7);
  EXPECT_EQ(c->ledger_confirmations, 2);
  EXPECT_EQ(c->ledger_poll_seconds, 1);
  EXPECT_EQ(c->Path(c->ledger_rpc_ca_file), dir_ + "/tls/rpc.crt");
  // Defaults when absent.
  auto d = Load(Ethereum());
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->ledger_confirmations, 12);
  EXPECT_EQ(d->ledger_poll_seconds, 5);
  EXPECT_EQ(d->ledger_start_block, 0);
}

TEST_F(LedgerConfigTest, ErrorsNameTheField) {
  EXPECT_NE(Error("ledger:\n  backend: embedded\n  rcp: http://x\n")
                .find("plane.yaml:3:3: ledger.rcp: unknown field"),
            std::string::npos);
  EXPECT_NE(
      Error("ledger: {backend: bitcoin}\n").find("ledger.backend: 'bitcoin': expected one of"),
      std::string::npos);
  EXPECT_NE(Error("ledger: embedded\n").find("ledger: expected a mapping"), std::string::npos);
  // ethereum requires rpc, chain_id and contract.
  EXPECT_NE(Error("ledger: {backend: ethereum, chain_id: 1, contract: \"" + kContract + "\"}\n")
                .find("ledger.rpc: required with backend ethereum"),
            std::string::npos);
  EXPECT_NE(
      Error("ledger: {backend: ethereum, rpc: \"http://n\", contract: \"" + kContract + "\"}\n")
          .find("ledger.chain_id: required with backend ethereum"),
      std::string::npos);
  EXPECT_NE(Error("ledger: {backend: ethereum, rpc: \"http://n\", chain_id: 1}\n")
                .find("ledger.contract: required with backend ethereum"),
            std::string::npos);
  // Values.
  EXPECT_NE(Error(Ethereum("  confirmations: 0\n"))
                .find("ledger.confirmations: expected an integer in 1..10000"),
            std::string::npos);
  EXPECT_NE(Error(Ethereum("  poll_seconds: 0\n"))
                .find("ledger.poll_seconds: expected an integer in 1..3600"),
            std::string::npos);
  EXPECT_NE(Error(Ethereum("  start_block: -1\n")).find("ledger.start_block: expected an integer"),
            std::string::npos);
  EXPECT_NE(Error("ledger: {backend: ethereum, rpc: \"http://n\", chain_id: 0, contract: \"" +
                  kContract + "\"}\n")
                .find("ledger.chain_id: expected an integer in 1.."),
            std::string::npos);
  EXPECT_NE(Error("ledger: {backend: ethereum, rpc: \"ftp://n\", chain_id: 1, contract: \"" +
                  kContract + "\"}\n")
                .find("ledger.rpc: 'ftp://n': expected an http:// or https:// URL"),
            std::string::npos);
  // A contract that is not an address, or whose mixed case is not its checksum.
  EXPECT_NE(
      Error("ledger: {backend: ethereum, rpc: \"http://n\", chain_id: 1, contract: \"0x12\"}\n")
          .find("ledger.contract"),
      std::string::npos);
  std::string bad_checksum = kContract;
  bad_checksum[3] = 'f';  // 'F' -> 'f'
  const std::string e = Error(
      "ledger: {backend: ethereum, rpc: \"http://n\", chain_id: 1, "
      "contract: \"" +
      bad_checksum + "\"}\n");
  EXPECT_NE(e.find("ledger.contract"), std::string::npos) << e;
  // All lower case is accepted (no checksum to check).
  std::string lower = kContract;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  auto ok = Load("ledger: {backend: ethereum, rpc: \"https://n\", chain_id: 1, contract: \"" +
                 lower + "\"}\n");
  EXPECT_TRUE(ok.ok()) << ok.status().message();
}

// What `cce-plane init` writes loads back, with or without the ethereum section.
// attestation.max_nonces: the key broker's bound on nonces held in memory.
TEST_F(LedgerConfigTest, ReadsAndBoundsTheKeyBrokersNonceTable) {
  auto d = Load("listen: 127.0.0.1:1\n");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->kbs_max_nonces, 16384);
  auto c = Load("attestation:\n  max_nonces: 100\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->kbs_max_nonces, 100);
  EXPECT_NE(Error("attestation:\n  max_nonces: 15\n")
                .find("attestation.max_nonces: expected an integer in 16..1000000"),
            std::string::npos);
  PlaneConfig rendered;
  rendered.kbs_max_nonces = 4096;
  std::ofstream(dir_ + "/plane.yaml") << RenderConfig(rendered);
  auto back = LoadConfig(dir_);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->kbs_max_nonces, 4096);
}

TEST_F(LedgerConfigTest, RenderedConfigLoadsBack) {
  PlaneConfig embedded;
  std::ofstream(dir_ + "/plane.yaml") << RenderConfig(embedded);
  auto e = LoadConfig(dir_);
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->ledger_backend, "embedded");

  PlaneConfig eth;
  eth.ledger_backend = "ethereum";
  eth.ledger_rpc = "http://127.0.0.1:8545";
  eth.ledger_chain_id = 31337;
  eth.ledger_contract = kContract;
  eth.ledger_start_block = 3;
  eth.ledger_confirmations = 2;
  eth.ledger_poll_seconds = 1;
  std::ofstream(dir_ + "/plane.yaml") << RenderConfig(eth);
  auto c = LoadConfig(dir_);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->ledger_backend, "ethereum");
  EXPECT_EQ(c->ledger_rpc, eth.ledger_rpc);
  EXPECT_EQ(c->ledger_chain_id, 31337);
  EXPECT_EQ(c->ledger_contract, kContract);
  EXPECT_EQ(c->ledger_start_block, 3);
  EXPECT_EQ(c->ledger_confirmations, 2);
  EXPECT_EQ(c->ledger_poll_seconds, 1);
  EXPECT_EQ(c->ledger_rpc_ca_file, "");
}

}  // namespace
}  // namespace cce::plane
