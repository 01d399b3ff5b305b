#include "eth/node_testing.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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

FakeRpcNode::Handler FakeRpcNode::Results(
    std::function<std::optional<nlohmann::json>(const std::string&)> results) {
  return [results = std::move(results)](const nlohmann::json& req, const std::string&) {
    nlohmann::json answer = {{"jsonrpc", "2.0"}, {"id", req.value("id", nlohmann::json(nullptr))}};
    auto result = results(req.value("method", std::string()));
    if (result) {
      answer["result"] = *result;
    } else {
      answer["error"] = {{"code", -32601}, {"message", "method not found"}};
    }
    return RpcAnswer{200, answer.dump()};
  };
}

FakeRpcNode::FakeRpcNode(Handler handler) : handler_(std::move(handler)) {
  listener_ = UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (!listener_.valid() ||
      bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener_.get(), 16) != 0 ||
      getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "cannot listen on 127.0.0.1";
    return;
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Run(); });
}

FakeRpcNode::~FakeRpcNode() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::string FakeRpcNode::last_target() {
  std::lock_guard lock(mu_);
  return last_target_;
}

void FakeRpcNode::Run() {
  while (!stop_) {
    pollfd p{listener_.get(), POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    UniqueFd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (conn.valid()) Serve(conn.get());
  }
}

void FakeRpcNode::Serve(int fd) {
  std::string in;
  char buf[4096];
  size_t body_at = std::string::npos;
  size_t content_length = 0;
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return;
    in.append(buf, static_cast<size_t>(n));
    if (body_at == std::string::npos) {
      const size_t end = in.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      body_at = end + 4;
      const size_t cl = in.find("Content-Length: ");
      if (cl != std::string::npos) content_length = std::stoul(in.substr(cl + 16));
    }
    if (in.size() >= body_at + content_length) break;
  }
  const std::string target = in.substr(5, in.find(' ', 5) - 5);  // "POST /..."
  {
    std::lock_guard lock(mu_);
    last_target_ = target;
  }
  const RpcAnswer a =
      handler_(nlohmann::json::parse(in.substr(body_at, content_length), nullptr, false), target);
  const std::string out = "HTTP/1.1 " + std::to_string(a.status) +
                          " X\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(a.body.size()) + "\r\nConnection: close\r\n\r\n" +
                          a.body;
  size_t sent = 0;
  while (sent < out.size()) {
    const ssize_t n = write(fd, out.data() + sent, out.size() - sent);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

}  // namespace cce::eth::testing
