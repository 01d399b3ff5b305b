// Helpers for end-to-end tests that drive the real binaries in build/bin:
// temp dirs that remove themselves, running a command and capturing its
// output, and a FUSE mount guard that always unmounts.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cce::e2e {

std::string BinPath(const std::string& name);  // CCE_BIN_DIR/name

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;  // 128+signal if killed
  std::string out;
  std::string err;
};

// `--output json` output (docs/cli.md "Output": JSON Lines): one value per
// non-empty line; a line that is not JSON is a discarded value
// (is_discarded()), so a test's checks of it fail instead of throwing.
std::vector<nlohmann::json> JsonLines(const std::string& out);

// Runs argv (argv[0] is a path) with stdin from `input`, waits, captures output.
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& input = "");

// A long-running child (e.g. cce-plane serve) with output in files; killed
// with SIGKILL on destruction if still running.
class BackgroundProcess {
 public:
  explicit BackgroundProcess(const std::vector<std::string>& argv);
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  bool running();
  // Sends `sig` and waits up to timeout_ms; returns the exit code (128+sig if
  // killed), or -1 on timeout.
  int Stop(int sig, int timeout_ms);
  std::string Err() const;
  pid_t pid() const { return pid_; }

 private:
  TempDir io_;
  pid_t pid_ = -1;
  int status_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreeLoopbackPort();

void WriteFile(const std::string& path, const std::string& data);
std::string ReadFile(const std::string& path);
bool IsMounted(const std::string& mountpoint);

// Mounts ENC at MNT with cce-decryptfs --key-file KEY; unmounts on destruction.
class DecryptFsMount {
 public:
  DecryptFsMount(const std::string& enc, const std::string& mnt, const std::string& key_file);
  ~DecryptFsMount();
  DecryptFsMount(const DecryptFsMount&) = delete;
  DecryptFsMount& operator=(const DecryptFsMount&) = delete;
  bool mounted() const { return result_.exit_code == 0 && IsMounted(mnt_); }
  const CommandResult& result() const { return result_; }

 private:
  std::string mnt_;
  CommandResult result_;
};

}  // namespace cce::e2e
