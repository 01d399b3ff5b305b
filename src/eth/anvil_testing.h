// Tests only: a real local Ethereum node, anvil (npm @foundry-rs/anvil,
// pinned in package.json), on a free loopback port, started and stopped by
// the test. One place for what eth_anvil_test and cce_plane_init_test need.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "base/subprocess.h"

namespace cce::eth::testing {

// Anvil's well-known development accounts ("test test ... junk" mnemonic):
// 0 deploys and operates, 1 provides, 2 consumes. Never use them elsewhere.
inline constexpr char kAnvilKey0[] =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
inline constexpr char kAnvilKey1[] =
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
inline constexpr char kAnvilKey2[] =
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
inline constexpr uint64_t kAnvilChainId = 31337;

// A loopback TCP port that was free a moment ago; 0 when none could be had.
int FreeLoopbackPort();

class AnvilNode {
 public:
  // Starts `source_dir`/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
  // with `chain_id` on 127.0.0.1, its output in `dir`/anvil.log (`dir` must
  // exist; it is also anvil's HOME), and waits until it answers eth_chainId
  // (20 s). Errors: kNotFound naming the binary and `npm ci` when it is
  // missing; kUnavailable with the log's text when it does not answer.
  static StatusOr<std::unique_ptr<AnvilNode>> Start(const std::string& source_dir,
                                                    const std::string& dir,
                                                    uint64_t chain_id = kAnvilChainId);
  // SIGTERM, 5 s, then SIGKILL; reaped.
  ~AnvilNode();
  AnvilNode(const AnvilNode&) = delete;
  AnvilNode& operator=(const AnvilNode&) = delete;

  const std::string& url() const { return url_; }  // http://127.0.0.1:PORT

 private:
  AnvilNode(Subprocess process, std::string url)
      : process_(std::move(process)), url_(std::move(url)) {}
  std::optional<Subprocess> process_;
  std::string url_;
};

}  // namespace cce::eth::testing
