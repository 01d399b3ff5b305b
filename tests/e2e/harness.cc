#include "e2e/harness.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <stdexcept>

extern char** environ;

namespace cce::e2e {

namespace fs = std::filesystem;

std::string BinPath(const std::string& name) {
  return std::string(CCE_BIN_DIR) + "/" + name;
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "cce-e2e-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void WriteFile(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), {}};
}

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& input) {
  TempDir io;
  std::string in_path = io / "stdin", out_path = io / "stdout", err_path = io / "stderr";
  WriteFile(in_path, input);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  CommandResult r;
  if (rc != 0) {
    r.err = "spawn failed: " + argv[0];
    return r;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  return r;
}

bool IsMounted(const std::string& mountpoint) {
  std::ifstream in("/proc/self/mounts");
  std::string dev, mnt, rest;
  std::string want = fs::weakly_canonical(mountpoint).string();
  while (in >> dev >> mnt && std::getline(in, rest)) {
    if (mnt == want) return true;
  }
  return false;
}

DecryptFsMount::DecryptFsMount(const std::string& enc, const std::string& mnt,
                               const std::string& key_file)
    : mnt_(mnt) {
  fs::create_directories(mnt);
  result_ = RunCommand({BinPath("cce-decryptfs"), "--key-file", key_file, enc, mnt});
}

DecryptFsMount::~DecryptFsMount() {
  if (IsMounted(mnt_)) {
    RunCommand({"fusermount3", "-u", mnt_});
    if (IsMounted(mnt_)) ::umount2(mnt_.c_str(), MNT_DETACH);
  }
}

}  // namespace cce::e2e
