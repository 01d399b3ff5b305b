#include "agent/dataset_mounts.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "base/fd.h"
#include "base/subprocess.h"
#include "format/format.h"

namespace cce::agent {

StatusOr<std::string> LocalPathOfLocation(const std::string& location) {
  constexpr std::string_view kFile = "file://";
  if (location.rfind(kFile, 0) != 0) {
    const size_t colon = location.find("://");
    return InvalidArgument("dataset location '" + location + "': scheme '" +
                           (colon == std::string::npos ? location : location.substr(0, colon)) +
                           "' needs its storage client in the VM, which this agent build lacks "
                           "(supported: file://)");
  }
  std::string path = location.substr(kFile.size());
  if (path.empty() || path[0] != '/') {
    return InvalidArgument("dataset location '" + location + "': expected file:///ABSOLUTE/PATH");
  }
  return path;
}

DatasetMounts& DatasetMounts::operator=(DatasetMounts&& o) noexcept {
  if (this != &o) {
    (void)UnmountAll();
    mountpoints_ = std::move(o.mountpoints_);
    o.mountpoints_.clear();
  }
  return *this;
}

DatasetMounts::~DatasetMounts() {
  Status s = UnmountAll();
  if (!s.ok()) (void)std::fprintf(stderr, "cce-agent: unmount: %s\n", s.ToString().c_str());
}

Status DatasetMounts::UnmountAll() {
  Status first;
  for (auto it = mountpoints_.rbegin(); it != mountpoints_.rend(); ++it) {
    // MNT_DETACH: the FUSE server sees the unmount and exits; a container
    // that still held the mount (it is gone by now) cannot keep it busy.
    if (umount2(it->c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT && first.ok()) {
      first = ErrnoStatus("unmount " + *it, errno);
    }
  }
  mountpoints_.clear();
  return first;
}

StatusOr<DatasetMounts> DatasetMounts::Mount(const std::string& decryptfs_binary,
                                             const std::vector<DatasetSource>& sources,
                                             const std::map<std::string, crypto::SecretBytes>& keys,
                                             const std::map<std::string, DatasetPin>& pins) {
  DatasetMounts mounts;
  for (const DatasetSource& src : sources) {
    const std::string what = "dataset " + src.name;
    auto key = keys.find(src.name);
    auto pin = pins.find(src.name);
    if (key == keys.end()) return NotFound(what + ": no key was released for it");
    if (pin == pins.end()) return NotFound(what + ": no dataset pin came with its key");
    ASSIGN_OR_RETURN(std::string dir, LocalPathOfLocation(src.location));
    ASSIGN_OR_RETURN(format::DatasetKey dk, format::DatasetKey::FromBytes(key->second.span()));
    crypto::SecretBytes key_file = dk.EncodeKeyFile();

    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus(what + ": pipe", errno);
    UniqueFd key_read(p[0]), key_write(p[1]);
    std::vector<std::string> argv = {decryptfs_binary, "--key-fd", "3", "-o", "allow_other"};
    if (!pin->second.dataset_id.empty()) {
      argv.insert(argv.end(), {"--expect-dataset-id", pin->second.dataset_id, "--min-version",
                               std::to_string(pin->second.min_version)});
    }
    argv.insert(argv.end(), {dir, src.mountpoint});
    int err[2];
    if (pipe2(err, O_CLOEXEC) != 0) return ErrnoStatus(what + ": pipe", errno);
    UniqueFd err_read(err[0]), err_write(err[1]);
    ASSIGN_OR_RETURN(Subprocess child,
                     Subprocess::Spawn({.argv = argv,
                                        .env = {"PATH=/usr/local/bin:/usr/bin:/bin"},
                                        .fds = {{3, key_read.get()}, {2, err_write.get()}}}));
    key_read.reset();
    err_write.reset();
    // The key file is 90 bytes: far below the pipe's capacity, so this never
    // blocks on a child that is not reading yet.
    Status wrote = WriteFull(key_write.get(), key_file.span());
    key_write.reset();
    // cce-decryptfs detaches once the mount is up: its first process exits
    // 0 then, or non-zero with the reason on stderr.
    auto message = ReadAll(err_read.get(), 16 << 10, what + ": cce-decryptfs stderr");
    ASSIGN_OR_RETURN(ExitStatus st, child.Wait());
    if (!wrote.ok()) return wrote.WithContext(what + ": passing the key to cce-decryptfs");
    if (!st.success()) {
      std::string text = message.ok() ? *message : "";
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
      const StatusCode code =
          st.code == 3 ? StatusCode::kDataLoss : StatusCode::kFailedPrecondition;
      return Status(code,
                    what + ": cce-decryptfs " + st.ToString() + (text.empty() ? "" : ": " + text));
    }
    mounts.mountpoints_.push_back(src.mountpoint);
  }
  return mounts;
}

}  // namespace cce::agent
