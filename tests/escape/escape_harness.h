// Shared by the escape tests: running cce-escape-probe, parsing its report,
// the host-side targets it aims at (listeners, an outside process, canary
// files) and the checks on a sandbox's copied output. The checks return the
// problems they found, so a test can show they fire (unconfined) and pass
// (confined) with the same code.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "e2e/harness.h"

namespace cce::escape_test {

// build/bin/cce-escape-probe
std::string ProbePath();

// The probe's names in run order (`cce-escape-probe --list`); empty if it fails.
std::vector<std::string> ProbeNames();

struct ProbeLine {
  std::string verdict;  // BLOCKED, ESCAPED, PLANTED or ERROR
  std::string detail;
};

struct ProbeReport {
  std::map<std::string, ProbeLine> probes;  // by probe name
  std::vector<std::string> duplicates;      // names reported more than once
  std::vector<std::string> malformed;       // lines that are neither PROBE nor SUMMARY
  bool has_summary = false;
  int escaped = -1, blocked = -1, planted = -1, error = -1;  // from SUMMARY
};

// Parses the probe's stdout (other lines, e.g. a runtime's, are `malformed`).
ProbeReport ParseProbeOutput(std::string_view text);

// What is wrong with `report` for a confined run: a missing or duplicated
// probe, any ESCAPED or ERROR, an output_* probe not PLANTED, a missing or
// inconsistent SUMMARY. Empty: nothing escaped.
std::vector<std::string> ConfinedProblems(const ProbeReport& report,
                                          const std::vector<std::string>& names);

// Every symlink, FIFO, socket or device node below `root` (lstat walk).
std::vector<std::string> SpecialFiles(const std::string& root);
// Every regular file below `root` whose bytes contain one of `needles`.
std::vector<std::string> FilesContaining(const std::string& root,
                                         const std::vector<std::string>& needles);

// A random marker ("CCE-CANARY-" + 32 hex) written into host-only places.
std::string NewCanary();

// A listening TCP socket on `address` (numeric IPv4), port chosen by the
// kernel. Connections complete in the backlog; nothing is accepted.
class TcpListener {
 public:
  explicit TcpListener(const std::string& address);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;
  int port() const { return port_; }
  std::string host_port() const { return address_ + ":" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::string address_;
};

// A listening unix stream socket at `path` (removed on destruction).
class UnixListener {
 public:
  explicit UnixListener(const std::string& path);
  ~UnixListener();
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

 private:
  int fd_ = -1;
  std::string path_;
};

// A host process outside any sandbox (`sleep`), with `env_canary` in its
// environment; SIGKILLed and reaped on destruction.
class OutsideProcess {
 public:
  explicit OutsideProcess(const std::string& env_canary);
  ~OutsideProcess();
  OutsideProcess(const OutsideProcess&) = delete;
  OutsideProcess& operator=(const OutsideProcess&) = delete;
  pid_t pid() const { return pid_; }
  // Alive, not stopped, not traced (the probe must have left it as it was).
  bool Untouched(std::string* why) const;

 private:
  pid_t pid_ = -1;
};

// The first up, non-loopback IPv4 address of this host ("" if none): the
// stand-in for the plane's address in tcp_plane.
std::string FirstNonLoopbackIPv4();

// Everything the probe aims at on the host, made fresh per test in a temp
// dir (mode 0755 so the sandbox's or nobody's uid can traverse it): canary
// files, a dataset dir, another dataset's file, an output dir, a loopback
// listener, a "plane" listener on the host's address, a unix socket, a
// process outside the sandbox with a canary in its environment.
struct HostTargets {
  HostTargets();
  // The probe's arguments aiming at all of the above, with output_dir and
  // data_dir as given (the container-side paths for a confined run).
  std::vector<std::string> ProbeArgs(const std::string& probe_output_dir,
                                     const std::string& probe_data_dir) const;
  std::vector<std::string> Canaries() const {
    return {canary_host_file, canary_forbidden, canary_env};
  }

  cce::e2e::TempDir dir;
  std::string canary_host_file = NewCanary();
  std::string canary_forbidden = NewCanary();
  std::string canary_env = NewCanary();
  std::string host_file = dir / "host/canary.txt";
  std::string data_dir = dir / "data";
  std::string forbidden = dir / "other-dataset/secret.bin";
  std::string output_dir = dir / "output";
  std::string socket_path = dir / "runtime.sock";
  TcpListener loopback{"127.0.0.1"};
  std::string plane_ip;
  TcpListener plane;
  UnixListener runtime_socket{socket_path};
  OutsideProcess outside{canary_env};
};

}  // namespace cce::escape_test
