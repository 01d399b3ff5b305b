#include "eth/anvil_testing.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "base/fd.h"
#include "eth/rpc.h"

namespace cce::eth::testing {

int FreeLoopbackPort() {
  UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (!s.valid() || bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return 0;
  }
  return ntohs(addr.sin_port);
}

StatusOr<std::unique_ptr<AnvilNode>> AnvilNode::Start(const std::string& source_dir,
                                                      const std::string& dir, uint64_t chain_id) {
  const std::string anvil = source_dir + "/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";
  if (!std::filesystem::exists(anvil)) {
    return NotFound(anvil +
                    " is missing: run `npm ci` in the repository (package.json pins "
                    "@foundry-rs/anvil)");
  }
  const int port = FreeLoopbackPort();
  if (port == 0) return Unavailable("no free loopback port for anvil");
  const std::string log = dir + "/anvil.log";
  UniqueFd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!log_fd.valid()) return Unavailable(log + ": cannot create");
  SpawnOptions so;
  so.argv = {anvil,         "--host", "127.0.0.1", "--port", std::to_string(port), "--chain-id",
             std::to_string(chain_id)};
  so.env = {"HOME=" + dir};
  so.fds = {{1, log_fd.get()}, {2, log_fd.get()}};
  so.die_with_parent = true;
  ASSIGN_OR_RETURN(Subprocess p, Subprocess::Spawn(so));
  std::unique_ptr<AnvilNode> node(
      new AnvilNode(std::move(p), "http://127.0.0.1:" + std::to_string(port)));
  ASSIGN_OR_RETURN(RpcClient rpc, RpcClient::Create({.url = node->url_,
                                                     .ca_file = "",
                                                     .timeout = std::chrono::seconds(2)}));
  for (int i = 0; i < 200; ++i) {
    if (rpc.ChainId().ok()) return node;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return Unavailable("anvil did not answer on " + node->url_ + " within 20 s; its log:\n" + text);
}

AnvilNode::~AnvilNode() {
  if (!process_) return;
  (void)process_->Signal(SIGTERM);
  (void)process_->WaitFor(std::chrono::seconds(5));
  process_.reset();  // SIGKILL and reap if it is still there
}

}  // namespace cce::eth::testing
