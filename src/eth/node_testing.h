// Tests only: Ethereum nodes for tests. AnvilNode is a real local node,
// anvil (npm @foundry-rs/anvil, pinned in package.json), on a free loopback
// port, started and stopped by the test (eth_anvil_test,
// cce_plane_init_test). FakeRpcNode is a plain-HTTP JSON-RPC responder of a
// few lines whose every answer the test decides, including answers no real
// node gives (eth_rpc_test, ledger_routes_test); http::Server speaks only TLS.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "base/fd.h"
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

struct RpcAnswer {
  int status = 200;  // the HTTP status
  std::string body;
};

// Answers each POST on 127.0.0.1 with handler(request JSON, request target),
// one request per connection (Connection: close), until destroyed. A port
// that cannot be had is a test failure (ADD_FAILURE).
class FakeRpcNode {
 public:
  using Handler =
      std::function<RpcAnswer(const nlohmann::json& request, const std::string& target)>;
  // A handler answering each method with the JSON-RPC result `results`
  // gives for it, or a JSON-RPC error -32601 when it gives nullopt.
  static Handler Results(std::function<std::optional<nlohmann::json>(const std::string&)> results);

  explicit FakeRpcNode(Handler handler);
  ~FakeRpcNode();
  FakeRpcNode(const FakeRpcNode&) = delete;
  FakeRpcNode& operator=(const FakeRpcNode&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string last_target();  // of the last request ("/", "/v3/KEY", ...)

 private:
  void Run();
  void Serve(int fd);

  Handler handler_;
  UniqueFd listener_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string last_target_;  // guarded by mu_
};

}  // namespace cce::eth::testing
