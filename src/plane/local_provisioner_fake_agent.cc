// A stand-in for cce-agent in local_provisioner_test: it reports on stderr
// (which the provisioner copies to the job's log file) what an agent sees
// from inside its "VM", one "REPORT key=value" line each, then behaves as
// its test credential asks (which it never prints). The credential (fd 3) is
// a test string:
//   "fake-credential mode=<ok|exit3|sleep> tcp_port=<port of the plane's TCP listener>"
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "crypto/crypto.h"
#include "http/client.h"

extern char** environ;

namespace {

void Report(const std::string& key, const std::string& value) {
  std::fprintf(stderr, "REPORT %s=%s\n", key.c_str(), value.c_str());
  std::fflush(stderr);
}

std::string Field(const std::string& credential, const std::string& name) {
  const std::string key = name + "=";
  const size_t at = credential.find(key);
  if (at == std::string::npos) return "";
  const size_t end = credential.find(' ', at);
  return credential.substr(at + key.size(), end == std::string::npos ? end : end - at - key.size());
}

std::string Arg(int argc, char** argv, const std::string& flag) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == flag) return argv[i + 1];
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  std::string args;
  for (int i = 0; i < argc; ++i) args += std::string(i ? " " : "") + argv[i];
  Report("argv", args);
  std::string env;
  for (char** e = environ; *e != nullptr; ++e) env += std::string(env.empty() ? "" : "|") + *e;
  Report("env", env);

  std::string credential;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(3, buf, sizeof(buf));
    if (n <= 0) break;
    credential.append(buf, static_cast<size_t>(n));
  }
  // Its digest only: a credential is never written to a log, even a test one.
  Report("fd3_sha256", cce::crypto::ToHex(cce::crypto::Sha256(cce::crypto::AsBytes(credential))));
  Report("fd4_open", ::fcntl(4, F_GETFD) == 0 ? "1" : "0");

  std::string ifaces;
  if (struct if_nameindex* list = ::if_nameindex()) {
    for (auto* i = list; i->if_index != 0; ++i) {
      ifaces += std::string(ifaces.empty() ? "" : ",") + i->if_name;
    }
    ::if_freenameindex(list);
  }
  Report("ifaces", ifaces);

  {  // The plane's TCP listener, as the host sees it at 127.0.0.1.
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::stoi("0" + Field(credential, "tcp_port"))));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool connected = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    Report("tcp_connect", connected ? "connected" : std::string("refused:") + std::strerror(errno));
    ::close(s);
  }

  {
    cce::http::ClientOptions o;
    const std::string plane = Arg(argc, argv, "--plane");
    o.base_url = "https://localhost";
    o.unix_socket_path = plane.rfind("unix:", 0) == 0 ? plane.substr(5) : "";
    o.ca_file = Arg(argc, argv, "--ca");
    o.connect_timeout = std::chrono::milliseconds(5000);
    o.timeout = std::chrono::milliseconds(10000);
    auto client = cce::http::Client::Create(o);
    if (!client.ok()) {
      Report("healthz", "error:" + client.status().message());
    } else {
      cce::http::ClientRequest req;
      req.target = "/healthz";
      auto res = client->Send(req);
      Report("healthz", res.ok() ? std::to_string(res->status) + ":" + res->body
                                 : "error:" + res.status().message());
    }
  }

  {
    std::ifstream in("/proc/self/cgroup");
    std::string line, cgroups;
    while (std::getline(in, line)) {
      if (line.find(":memory:") != std::string::npos || line.find(":pids:") != std::string::npos ||
          line.rfind("0::", 0) == 0) {
        cgroups += (cgroups.empty() ? "" : ",") + line;
      }
    }
    Report("cgroups", cgroups);
  }

  const std::string work_dir = Arg(argc, argv, "--work-dir");
  struct statfs sf {};
  if (::statfs(work_dir.c_str(), &sf) == 0) {
    Report("workdir_tmpfs", sf.f_type == TMPFS_MAGIC ? "1" : "0");
    Report("workdir_bytes",
           std::to_string(static_cast<uint64_t>(sf.f_blocks) * static_cast<uint64_t>(sf.f_bsize)));
  } else {
    Report("workdir_tmpfs", std::string("error:") + std::strerror(errno));
  }
  {
    char cwd[4096] = {};
    Report("cwd", ::getcwd(cwd, sizeof(cwd)) != nullptr ? cwd : "?");
    std::ofstream(work_dir + "/plaintext.txt") << "secret result\n";
  }

  const std::string mode = Field(credential, "mode");
  if (mode == "exit3") return 3;
  if (mode == "sleep") {
    const pid_t child = ::fork();
    if (child == 0) {
      for (;;) ::pause();
    }
    Report("child_pid", std::to_string(child));
    Report("pid", std::to_string(::getpid()));
    Report("ready", "1");
    for (;;) ::pause();
  }
  Report("done", "1");
  return 0;
}
