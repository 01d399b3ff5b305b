#include "escape_harness.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>

namespace cce::escape_test {

namespace fs = std::filesystem;

std::string ProbePath() {
  return cce::e2e::BinPath("cce-escape-probe");
}

std::vector<std::string> ProbeNames() {
  cce::e2e::CommandResult r = cce::e2e::RunCommand({ProbePath(), "--list"});
  std::vector<std::string> names;
  if (r.exit_code != 0) return names;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

ProbeReport ParseProbeOutput(std::string_view text) {
  ProbeReport report;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (line.rfind("PROBE ", 0) == 0) {
      std::istringstream fields(line.substr(6));
      std::string name, verdict;
      fields >> name >> verdict;
      std::string detail;
      std::getline(fields, detail);
      if (!detail.empty() && detail[0] == ' ') detail.erase(0, 1);
      if (name.empty() || verdict.empty()) {
        report.malformed.push_back(line);
      } else if (report.probes.count(name)) {
        report.duplicates.push_back(name);
      } else {
        report.probes[name] = ProbeLine{verdict, detail};
      }
    } else if (line.rfind("SUMMARY ", 0) == 0) {
      int e = -1, b = -1, p = -1, err = -1;
      if (std::sscanf(line.c_str(), "SUMMARY escaped=%d blocked=%d planted=%d error=%d", &e, &b, &p,
                      &err) == 4) {
        report.has_summary = true;
        report.escaped = e;
        report.blocked = b;
        report.planted = p;
        report.error = err;
      } else {
        report.malformed.push_back(line);
      }
    } else {
      report.malformed.push_back(line);
    }
  }
  return report;
}

std::vector<std::string> ConfinedProblems(const ProbeReport& report,
                                          const std::vector<std::string>& names) {
  std::vector<std::string> problems;
  if (names.empty()) problems.push_back("no probe names (cce-escape-probe --list failed)");
  int counts[4] = {0, 0, 0, 0};  // escaped blocked planted error
  for (const auto& name : names) {
    auto it = report.probes.find(name);
    if (it == report.probes.end()) {
      problems.push_back(name + ": no PROBE line (the probe did not get that far?)");
      continue;
    }
    const ProbeLine& line = it->second;
    const bool planted_kind = name.rfind("output_", 0) == 0;
    if (line.verdict == "ESCAPED") ++counts[0];
    if (line.verdict == "BLOCKED") ++counts[1];
    if (line.verdict == "PLANTED") ++counts[2];
    if (line.verdict == "ERROR") ++counts[3];
    const std::string want = planted_kind ? "PLANTED" : "BLOCKED";
    if (line.verdict != want) {
      problems.push_back(name + ": " + line.verdict + " (want " + want + "): " + line.detail);
    }
  }
  for (const auto& [name, line] : report.probes) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      problems.push_back(name + ": unknown probe reported " + line.verdict);
    }
  }
  for (const auto& name : report.duplicates) problems.push_back(name + ": reported twice");
  if (!report.has_summary) {
    problems.push_back("no SUMMARY line (the probe was killed before the end?)");
  } else if (report.escaped != counts[0] || report.blocked != counts[1] ||
             report.planted != counts[2] || report.error != counts[3]) {
    problems.push_back("SUMMARY disagrees with the PROBE lines");
  }
  return problems;
}

std::vector<std::string> SpecialFiles(const std::string& root) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (S_ISLNK(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) ||
        S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      found.push_back(it->path().string());
    }
  }
  if (ec) found.push_back(root + ": walk failed: " + ec.message());
  return found;
}

std::vector<std::string> FilesContaining(const std::string& root,
                                         const std::vector<std::string>& needles) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::string bytes{std::istreambuf_iterator<char>(in), {}};
    for (const auto& needle : needles) {
      if (bytes.find(needle) != std::string::npos) {
        found.push_back(it->path().string() + " contains " + needle);
      }
    }
  }
  if (ec) found.push_back(root + ": walk failed: " + ec.message());
  return found;
}

std::string NewCanary() {
  unsigned char bytes[16];
  if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
    throw std::runtime_error("getrandom failed");
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out = "CCE-CANARY-";
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

TcpListener::TcpListener(const std::string& address) : address_(address) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  if (::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) {
    throw std::runtime_error("not an IPv4 address: " + address);
  }
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd_, 64) != 0) {
    throw std::runtime_error("bind/listen " + address + ": " + std::strerror(errno));
  }
  socklen_t len = sizeof sa;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
  port_ = ntohs(sa.sin_port);
}

TcpListener::~TcpListener() {
  if (fd_ >= 0) ::close(fd_);
}

UnixListener::UnixListener(const std::string& path) : path_(path) {
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) throw std::runtime_error("socket path too long: " + path);
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd_, 64) != 0) {
    throw std::runtime_error("bind/listen " + path + ": " + std::strerror(errno));
  }
}

UnixListener::~UnixListener() {
  if (fd_ >= 0) ::close(fd_);
  ::unlink(path_.c_str());
}

OutsideProcess::OutsideProcess(const std::string& env_canary) {
  std::string env = "CCE_ESCAPE_CANARY=" + env_canary;
  pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    char* const argv[] = {const_cast<char*>("sleep"), const_cast<char*>("3600"), nullptr};
    char* const envp[] = {env.data(), nullptr};
    ::execve("/bin/sleep", argv, envp);
    ::_exit(127);
  }
}

OutsideProcess::~OutsideProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

bool OutsideProcess::Untouched(std::string* why) const {
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  if (!in) {
    *why = "pid " + std::to_string(pid_) + " is gone";
    return false;
  }
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("State:", 0) == 0 && line.find("S (sleeping)") == std::string::npos) {
      *why = "pid " + std::to_string(pid_) + " " + line;
      return false;
    }
    if (line.rfind("TracerPid:", 0) == 0 && line != "TracerPid:\t0") {
      *why = "pid " + std::to_string(pid_) + " " + line;
      return false;
    }
  }
  return true;
}

std::string FirstNonLoopbackIPv4() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* a = list; a && found.empty(); a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    if ((a->ifa_flags & IFF_UP) == 0 || (a->ifa_flags & IFF_LOOPBACK) != 0) continue;
    char buf[INET_ADDRSTRLEN];
    const auto* sin = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    if (::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf)) found = buf;
  }
  ::freeifaddrs(list);
  return found;
}

namespace {
std::string PlaneAddress() {
  std::string ip = FirstNonLoopbackIPv4();
  return ip.empty() ? "127.0.0.1" : ip;
}
}  // namespace

HostTargets::HostTargets() : plane_ip(PlaneAddress()), plane(plane_ip) {
  cce::e2e::WriteFile(host_file, canary_host_file + "\n");
  cce::e2e::WriteFile(forbidden, canary_forbidden + "\n");
  ::chmod(forbidden.c_str(), 0600);
  cce::e2e::WriteFile(data_dir + "/data.csv", "a,b\n1,2\n");
  fs::create_directories(output_dir);
  ::chmod(dir.path().c_str(), 0755);
}

std::vector<std::string> HostTargets::ProbeArgs(const std::string& probe_output_dir,
                                                const std::string& probe_data_dir) const {
  return {"--plane",       plane.host_port(),
          "--host-port",   std::to_string(loopback.port()),
          "--outside-pid", std::to_string(outside.pid()),
          "--host-file",   host_file,
          "--data-dir",    probe_data_dir,
          "--forbidden",   forbidden,
          "--output-dir",  probe_output_dir,
          "--socket",      socket_path};
}

}  // namespace cce::escape_test
