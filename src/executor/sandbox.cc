#include "executor/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "base/fd.h"
#include "base/subprocess.h"
#include "crypto/crypto.h"
#include "executor/apparmor.h"
#include "executor/capture.h"
#include "executor/cgroups.h"
#include "executor/oci_spec.h"
#include "executor/runc.h"
#include "executor/seccomp.h"

namespace cce::executor {
namespace {

using nlohmann::json;

constexpr char kDefaultPathEnv[] =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// The overlay's upper layer only ever holds the mount points we create.
constexpr uint64_t kOverlayTmpfsBytes = 16ull << 20;

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool ValidJobId(const std::string& id) {
  if (id.empty() || id.size() > 64 || !IsLowerAlnum(id[0])) return false;
  for (char c : id) {
    if (!IsLowerAlnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

bool ValidDataName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// "/a/b" -> {"a", "b"}; refuses relative paths, ".", ".." and empty parts.
StatusOr<std::vector<std::string>> SplitAbsolute(const std::string& path, const std::string& what) {
  if (path.empty() || path[0] != '/')
    return InvalidArgument(what + ": '" + path + "' is not absolute");
  std::vector<std::string> parts;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    std::string part = path.substr(pos, next - pos);
    if (part.empty() && next != path.size()) {
      return InvalidArgument(what + ": '" + path + "' has an empty component");
    }
    if (part == "." || part == "..") {
      return InvalidArgument(what + ": '" + path + "' has a '" + part + "' component");
    }
    if (!part.empty()) parts.push_back(part);
    pos = next + 1;
  }
  return parts;
}

// The mapped container user reaches bundle/rootfs through every ancestor of
// work_dir (runc mounts the rootfs from inside the user namespace), so each
// must be searchable by others.
Status CheckSearchableByOthers(const std::string& dir, const std::string& what) {
  ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitAbsolute(dir, what));
  std::string prefix;
  for (size_t i = 0; i <= parts.size(); ++i) {
    if (i > 0) prefix += "/" + parts[i - 1];
    std::string p = prefix.empty() ? "/" : prefix;
    struct stat st {};
    if (stat(p.c_str(), &st) != 0) return ErrnoStatus(what + ": stat " + p, errno);
    if (!S_ISDIR(st.st_mode)) return InvalidArgument(what + ": " + p + " is not a directory");
    if ((st.st_mode & S_IXOTH) == 0) {
      return FailedPrecondition(what + ": " + p +
                                " is not searchable by others (o+x): the container's mapped "
                                "user could not reach its root filesystem below it");
    }
  }
  return Status::Ok();
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

// True when `path` is the root of a mount other than its parent's.
bool IsMountPoint(const std::string& path) {
  struct stat st {};
  struct stat parent {};
  if (lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  if (stat((path + "/..").c_str(), &parent) != 0) return false;
  return st.st_dev != parent.st_dev;
}

// Removes a directory tree without following symlinks and without crossing
// into another filesystem (a mount left behind is an error, never emptied).
Status RemoveTreeAt(int parent_fd, const std::string& name, dev_t dev, const std::string& shown) {
  struct stat st {};
  if (fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("cleanup: stat " + shown, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(parent_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoStatus("cleanup: unlink " + shown, errno);
    }
    return Status::Ok();
  }
  if (st.st_dev != dev) {
    return FailedPrecondition("cleanup: " + shown + " is still a mount point; not removed");
  }
  UniqueFd fd(openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("cleanup: open " + shown, errno);
  // The container may have left a directory without write or search bits.
  if ((st.st_mode & 0700) != 0700) (void)fchmod(fd.get(), 0700);
  int dup_fd = dup(fd.get());
  if (dup_fd < 0) return ErrnoStatus("cleanup: dup", errno);
  DIR* dir = fdopendir(dup_fd);
  if (dir == nullptr) {
    close(dup_fd);
    return ErrnoStatus("cleanup: opendir " + shown, errno);
  }
  std::vector<std::string> names;
  while (struct dirent* e = readdir(dir)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(dir);
  for (const std::string& n : names) {
    RETURN_IF_ERROR(RemoveTreeAt(fd.get(), n, dev, shown + "/" + n));
  }
  if (unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoStatus("cleanup: rmdir " + shown, errno);
  }
  return Status::Ok();
}

// Removes work_dir/name (a tree on work_dir's filesystem).
Status RemoveTree(const std::string& work_dir, const std::string& name) {
  UniqueFd parent(open(work_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent.valid()) return ErrnoStatus("cleanup: open " + work_dir, errno);
  struct stat st {};
  if (fstat(parent.get(), &st) != 0) return ErrnoStatus("cleanup: stat " + work_dir, errno);
  return RemoveTreeAt(parent.get(), name, st.st_dev, work_dir + "/" + name);
}

Status Unmount(const std::string& path) {
  if (!IsMountPoint(path)) return Status::Ok();
  if (umount2(path.c_str(), UMOUNT_NOFOLLOW) == 0) return Status::Ok();
  int err = errno;
  if (err == EBUSY && umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) {
    return Status::Ok();
  }
  return ErrnoStatus("cleanup: umount " + path, err);
}

// Creates the directory `path` (absolute, container side) beneath rootfs_fd,
// one component at a time with O_NOFOLLOW: the image is untrusted, and a
// symlink it planted (/tmp -> /etc) must not make us create anything outside
// it. A symlink on the way is refused. With `file_leaf`, the last component
// is an empty regular file (a bind target for a file).
Status MakeMountPoint(int rootfs_fd, const std::string& path, bool file_leaf) {
  const std::string what = "rootfs: mount point " + path;
  ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitAbsolute(path, what));
  if (parts.empty()) return InvalidArgument(what + ": is the root");
  UniqueFd dir(dup(rootfs_fd));
  if (!dir.valid()) return ErrnoStatus("dup", errno);
  std::string done;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    done += "/" + part;
    bool last = i + 1 == parts.size();
    if (last && file_leaf) {
      UniqueFd f(openat(dir.get(), part.c_str(),
                        O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0755));
      if (!f.valid()) return ErrnoStatus(what + ": create " + done, errno);
      struct stat st {};
      if (fstat(f.get(), &st) != 0) return ErrnoStatus(what + ": stat " + done, errno);
      if (!S_ISREG(st.st_mode))
        return InvalidArgument(what + ": " + done + " is not a regular file");
      return Status::Ok();
    }
    if (mkdirat(dir.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(what + ": mkdir " + done, errno);
    }
    UniqueFd next(openat(dir.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) {
      if (errno == ELOOP || errno == ENOTDIR) {
        return InvalidArgument(what + ": the image has " + done +
                               " as a symlink or a file; a mount point must be a directory");
      }
      return ErrnoStatus(what + ": open " + done, errno);
    }
    dir = std::move(next);
  }
  return Status::Ok();
}

// The directory of the running executable (for cce-sandbox-init).
StatusOr<std::string> ExecutableDir() {
  std::array<char, 4096> buf{};
  ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return ErrnoStatus("readlink /proc/self/exe", errno);
  std::string exe(buf.data(), static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/'));
}

// Image env, then the request's: a later NAME= replaces an earlier one in
// place; PATH gets the usual default when nobody set it.
StatusOr<std::vector<std::string>> MergeEnv(const std::vector<std::string>& image_env,
                                            const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  std::map<std::string, size_t> index;
  auto add = [&](const std::string& kv, const std::string& what) -> Status {
    size_t eq = kv.find('=');
    if (eq == 0 || eq == std::string::npos) {
      return InvalidArgument(what + ": '" + kv + "' is not NAME=VALUE");
    }
    std::string name = kv.substr(0, eq);
    if (auto it = index.find(name); it != index.end()) {
      out[it->second] = kv;
    } else {
      index[name] = out.size();
      out.push_back(kv);
    }
    return Status::Ok();
  };
  for (size_t i = 0; i < image_env.size(); ++i) {
    RETURN_IF_ERROR(add(image_env[i], "image config env[" + std::to_string(i) + "]"));
  }
  for (size_t i = 0; i < extra.size(); ++i) {
    RETURN_IF_ERROR(add(extra[i], "env[" + std::to_string(i) + "]"));
  }
  if (index.count("PATH") == 0) out.insert(out.begin(), kDefaultPathEnv);
  return out;
}

StatusOr<OutputEntry> HashFile(const std::string& dir, const std::string& name) {
  std::string path = dir + "/" + name;
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + path, errno);
  crypto::Sha256Hasher hasher;
  std::vector<uint8_t> buf(64 << 10);
  uint64_t size = 0;
  while (true) {
    ssize_t n = read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + path, errno);
    }
    if (n == 0) break;
    hasher.Update(crypto::ByteSpan(buf.data(), static_cast<size_t>(n)));
    size += static_cast<uint64_t>(n);
  }
  crypto::Sha256Digest d = hasher.Finish();
  return OutputEntry{name, size, crypto::ToHex(d)};
}

class SandboxRun {
 public:
  SandboxRun(const SandboxRequest& req, const SandboxHost& host)
      : req_(req),
        host_(host),
        container_id_("cce-" + req.job_id),
        cgroup_path_("/cce/workload/" + req.job_id),
        rootfs_(req.work_dir + "/rootfs"),
        bundle_(req.work_dir + "/bundle"),
        output_tmp_(req.work_dir + "/output"),
        overlay_(req.work_dir + "/overlay") {}

  StatusOr<SandboxResult> Execute();
  // Undoes everything Execute set up, whatever state it reached. Idempotent.
  Status Cleanup();

 private:
  Status Validate();
  Status PrepareOutputDir();
  Status MakeRootfs(ImageConfig* config);
  Status MakeMountPoints(bool landlock);
  Status MountOutputTmpfs();
  Status WriteManifest(const SandboxResult& result);

  const SandboxRequest& req_;
  const SandboxHost& host_;
  const std::string container_id_;
  const std::string cgroup_path_;
  const std::string rootfs_, bundle_, output_tmp_, overlay_;
  std::optional<Runc> runc_;
  std::vector<DatasetBind> data_;
  std::string apparmor_file_;    // non-empty once a profile was loaded
  bool work_dir_owned_ = false;  // we created entries in work_dir: clean them up
};

Status SandboxRun::Validate() {
  if (geteuid() != 0) {
    return FailedPrecondition("sandbox: must run as root (runc, mounts and cgroups need it)");
  }
  RETURN_IF_ERROR(ValidateIsolationPolicy(req_.policy));
  if (!ValidJobId(req_.job_id)) {
    return InvalidArgument("sandbox: job_id '" + req_.job_id +
                           "' must match [a-z0-9][a-z0-9_-]{0,63}");
  }
  if (req_.work_dir.empty() || req_.work_dir[0] != '/') {
    return InvalidArgument("sandbox: work_dir '" + req_.work_dir + "' must be an absolute path");
  }
  RETURN_IF_ERROR(CheckSearchableByOthers(req_.work_dir, "sandbox: work_dir"));
  if (req_.output_dir.empty() || req_.output_dir[0] != '/') {
    return InvalidArgument("sandbox: output_dir '" + req_.output_dir +
                           "' must be an absolute path");
  }
  if (req_.output_dir == req_.work_dir || req_.output_dir.rfind(req_.work_dir + "/", 0) == 0) {
    return InvalidArgument("sandbox: output_dir " + req_.output_dir +
                           " may not be inside work_dir (its contents are removed)");
  }
  for (const std::string& p : {rootfs_, bundle_, output_tmp_, overlay_}) {
    if (Exists(p)) {
      return FailedPrecondition("sandbox: " + p +
                                " already exists (a leftover run? `CleanupSandbox` removes it)");
    }
  }
  if (req_.image.kind == ImageRef::Kind::kDir) {
    // overlayfs option syntax: these characters would need escaping.
    if (req_.image.path.find_first_of(",:\\") != std::string::npos || req_.image.path.empty()) {
      return InvalidArgument("sandbox: image dir:" + req_.image.path +
                             ": the path may not contain ',', ':' or '\\'");
    }
    struct stat st {};
    if (stat(req_.image.path.c_str(), &st) != 0) {
      if (errno == ENOENT)
        return NotFound("sandbox: image dir:" + req_.image.path + " does not exist");
      return ErrnoStatus("sandbox: image dir:" + req_.image.path, errno);
    }
    if (!S_ISDIR(st.st_mode)) {
      return InvalidArgument("sandbox: image dir:" + req_.image.path + " is not a directory");
    }
  }
  std::set<std::string> names;
  for (size_t i = 0; i < req_.data.size(); ++i) {
    const DataMount& d = req_.data[i];
    std::string what = "sandbox: data[" + std::to_string(i) + "]";
    if (!ValidDataName(d.name)) {
      return InvalidArgument(what + ".name '" + d.name + "' must match [A-Za-z0-9._-]{1,64}");
    }
    if (!names.insert(d.name).second)
      return InvalidArgument(what + ".name '" + d.name + "' repeated");
    if (d.host_dir.empty() || d.host_dir[0] != '/') {
      return InvalidArgument(what + ".host_dir '" + d.host_dir + "' must be an absolute path");
    }
    struct stat st {};
    if (stat(d.host_dir.c_str(), &st) != 0) {
      if (errno == ENOENT) return NotFound(what + ".host_dir " + d.host_dir + " does not exist");
      return ErrnoStatus(what + ".host_dir " + d.host_dir, errno);
    }
    if (!S_ISDIR(st.st_mode))
      return InvalidArgument(what + ".host_dir " + d.host_dir + " is not a directory");
    std::string cpath = d.container_path.empty() ? "/data/" + d.name : d.container_path;
    RETURN_IF_ERROR(SplitAbsolute(cpath, what + ".container_path").status());
    data_.push_back({d.host_dir, cpath});
  }
  return Status::Ok();
}

Status SandboxRun::PrepareOutputDir() {
  struct stat st {};
  if (lstat(req_.output_dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return ErrnoStatus("sandbox: output_dir " + req_.output_dir, errno);
    if (mkdir(req_.output_dir.c_str(), 0700) != 0) {
      return ErrnoStatus("sandbox: mkdir output_dir " + req_.output_dir, errno);
    }
    return Status::Ok();
  }
  if (!S_ISDIR(st.st_mode)) {
    return InvalidArgument("sandbox: output_dir " + req_.output_dir + " is not a directory");
  }
  UniqueFd fd(open(req_.output_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("sandbox: open output_dir " + req_.output_dir, errno);
  DIR* dir = fdopendir(fd.release());
  if (dir == nullptr) return ErrnoStatus("sandbox: opendir " + req_.output_dir, errno);
  bool empty = true;
  while (struct dirent* e = readdir(dir)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = false;
  }
  closedir(dir);
  if (!empty) return FailedPrecondition("sandbox: output_dir " + req_.output_dir + " is not empty");
  return Status::Ok();
}

Status SandboxRun::MakeRootfs(ImageConfig* config) {
  if (mkdir(rootfs_.c_str(), 0755) != 0) return ErrnoStatus("sandbox: mkdir " + rootfs_, errno);
  if (chmod(rootfs_.c_str(), 0755) != 0) return ErrnoStatus("sandbox: chmod " + rootfs_, errno);
  ASSIGN_OR_RETURN(
      *config, UnpackImage(req_.image, rootfs_, req_.unpack_limits, req_.expected_manifest_digest));
  if (req_.image.kind != ImageRef::Kind::kDir) return Status::Ok();
  // dir: is never modified: an overlay whose upper layer (on a small tmpfs)
  // receives the mount points we create.
  if (mkdir(overlay_.c_str(), 0700) != 0) return ErrnoStatus("sandbox: mkdir " + overlay_, errno);
  std::string opts = "size=" + std::to_string(kOverlayTmpfsBytes) + ",mode=0700";
  if (mount("tmpfs", overlay_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
    return ErrnoStatus("sandbox: mount tmpfs on " + overlay_, errno);
  }
  for (const char* d : {"/upper", "/work"}) {
    if (mkdir((overlay_ + d).c_str(), 0755) != 0)
      return ErrnoStatus("sandbox: mkdir " + overlay_ + d, errno);
  }
  std::string ovl = "lowerdir=" + req_.image.path + ",upperdir=" + overlay_ +
                    "/upper,workdir=" + overlay_ + "/work";
  if (mount("overlay", rootfs_.c_str(), "overlay", MS_NOSUID | MS_NODEV, ovl.c_str()) != 0) {
    return ErrnoStatus("sandbox: mount overlay of dir:" + req_.image.path + " on " + rootfs_,
                       errno);
  }
  if (chmod(rootfs_.c_str(), 0755) != 0) return ErrnoStatus("sandbox: chmod " + rootfs_, errno);
  return Status::Ok();
}

Status SandboxRun::MakeMountPoints(bool landlock) {
  UniqueFd root(open(rootfs_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid()) return ErrnoStatus("sandbox: open " + rootfs_, errno);
  // The container's mapped root cannot mkdir in a root-owned rootfs, so runc
  // needs every mount point to exist already.
  for (const char* p : {"/proc", "/dev", "/sys", "/tmp", "/output", "/.cce"}) {
    RETURN_IF_ERROR(MakeMountPoint(root.get(), p, false));
  }
  // runc gives a tmpfs the mode of the directory it is mounted on, and /tmp
  // must be writable by the container's user: 1777, as on any system.
  UniqueFd tmp(openat(root.get(), "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!tmp.valid() || fchmod(tmp.get(), 01777) != 0) {
    return ErrnoStatus("sandbox: chmod 1777 " + rootfs_ + "/tmp", errno);
  }
  if (landlock) RETURN_IF_ERROR(MakeMountPoint(root.get(), kSandboxInitPath, true));
  for (const DatasetBind& d : data_) {
    RETURN_IF_ERROR(MakeMountPoint(root.get(), d.container_path, false));
  }
  return Status::Ok();
}

Status SandboxRun::MountOutputTmpfs() {
  if (mkdir(output_tmp_.c_str(), 0700) != 0)
    return ErrnoStatus("sandbox: mkdir " + output_tmp_, errno);
  // The container's user, as the host sees it through the id mapping.
  const uint64_t uid = uint64_t{req_.policy.host_id_base} + req_.policy.uid;
  const uint64_t gid = uint64_t{req_.policy.host_id_base} + req_.policy.gid;
  std::string opts = "size=" + std::to_string(req_.policy.output_max_bytes) +
                     ",mode=0700,uid=" + std::to_string(uid) + ",gid=" + std::to_string(gid);
  // A tmpfs: /output's plaintext stays in memory and its size is capped.
  if (mount("tmpfs", output_tmp_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            opts.c_str()) != 0) {
    return ErrnoStatus("sandbox: mount tmpfs on " + output_tmp_, errno);
  }
  return Status::Ok();
}

Status SandboxRun::WriteManifest(const SandboxResult& r) {
  json files = json::array();
  for (const OutputEntry& e : r.output.files) {
    files.push_back({{"path", "files/" + e.path}, {"size", e.size}, {"sha256", e.sha256}});
  }
  for (const char* name : {"stderr.txt", "stdout.txt"}) {
    ASSIGN_OR_RETURN(OutputEntry e, HashFile(req_.output_dir, name));
    files.push_back({{"path", e.path}, {"size", e.size}, {"sha256", e.sha256}});
  }
  json m = {
      {"files", files},
      {"skipped", r.output.skipped},
      {"stdout_truncated", r.stdout_truncated},
      {"stderr_truncated", r.stderr_truncated},
      {"exit_code", r.exit_code},
      {"signal", r.signal},
      {"timed_out", r.timed_out},
      {"cancelled", r.cancelled},
      {"oom_killed", r.oom_killed},
      {"image_manifest_digest", r.image_manifest_digest},
  };
  std::string text = m.dump(2) + "\n";
  return WriteNewFile(
      req_.output_dir + "/manifest.json",
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()), 0644);
}

StatusOr<SandboxResult> SandboxRun::Execute() {
  RETURN_IF_ERROR(Validate());
  // Everything that can be checked without touching the disk first.
  ASSIGN_OR_RETURN(Runc runc, Runc::Create(host_.runc_path, host_.runc_root));
  runc_.emplace(std::move(runc));
  ASSIGN_OR_RETURN(bool exists, runc_->Exists(container_id_));
  if (exists) {
    return FailedPrecondition("sandbox: a container " + container_id_ + " already exists in " +
                              host_.runc_root);
  }
  std::string seccomp_path = host_.seccomp_profile;
  if (seccomp_path.empty()) {
    ASSIGN_OR_RETURN(seccomp_path, DefaultSeccompProfilePath());
  }
  ASSIGN_OR_RETURN(json seccomp, BuildSeccompProfile(seccomp_path, req_.policy));

  RunSpec spec;
  spec.mac = DetectMacLayer();
  if (spec.mac == MacLayer::kLandlock) {
    spec.sandbox_init_host_path = host_.sandbox_init;
    if (spec.sandbox_init_host_path.empty()) {
      ASSIGN_OR_RETURN(std::string dir, ExecutableDir());
      spec.sandbox_init_host_path = dir + "/cce-sandbox-init";
    }
    if (access(spec.sandbox_init_host_path.c_str(), X_OK) != 0) {
      return NotFound("sandbox: the Landlock helper " + spec.sandbox_init_host_path +
                      " is missing or not executable (build target cce-sandbox-init)");
    }
  } else if (spec.mac != MacLayer::kAppArmor) {
    return FailedPrecondition("sandbox: no usable MAC layer on this host (" +
                              std::string(MacLayerName(spec.mac)) +
                              "; need AppArmor or Landlock in /sys/kernel/security/lsm)");
  }
  RETURN_IF_ERROR(PrepareOutputDir());

  // From here on we create things in work_dir: Cleanup() removes them.
  work_dir_owned_ = true;
  ImageConfig config;
  RETURN_IF_ERROR(MakeRootfs(&config));
  RETURN_IF_ERROR(MakeMountPoints(spec.mac == MacLayer::kLandlock));
  RETURN_IF_ERROR(MountOutputTmpfs());

  spec.rootfs = rootfs_;
  spec.args = req_.command;
  if (spec.args.empty()) {
    spec.args = config.entrypoint;
    spec.args.insert(spec.args.end(), config.cmd.begin(), config.cmd.end());
  }
  if (spec.args.empty() || spec.args[0].empty()) {
    return InvalidArgument("sandbox: command: none given and the image has no entrypoint or cmd");
  }
  ASSIGN_OR_RETURN(spec.env, MergeEnv(config.env, req_.env));
  spec.cwd = config.working_dir.empty() ? "/" : config.working_dir;
  spec.datasets = data_;
  spec.output_host_dir = output_tmp_;
  spec.seccomp = std::move(seccomp);
  spec.cgroups_path = cgroup_path_;

  if (mkdir(bundle_.c_str(), 0700) != 0) return ErrnoStatus("sandbox: mkdir " + bundle_, errno);
  if (spec.mac == MacLayer::kAppArmor) {
    spec.apparmor_profile = container_id_;
    std::vector<std::string> data_paths;
    for (const DatasetBind& d : data_) data_paths.push_back(d.container_path);
    ASSIGN_OR_RETURN(std::string profile,
                     RenderAppArmorProfile(req_.policy, spec.apparmor_profile, data_paths));
    std::string file = bundle_ + "/apparmor.profile";
    RETURN_IF_ERROR(WriteNewFile(
        file,
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(profile.data()), profile.size()),
        0600));
    SpawnOptions load;
    load.argv = {host_.apparmor_parser, "--replace", file};
    load.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    ASSIGN_OR_RETURN(RunResult loaded, RunAndCapture(load));
    if (!loaded.status.success()) {
      return Internal("sandbox: apparmor_parser --replace " + file + ": " +
                      loaded.status.ToString() + ": " + loaded.output);
    }
    apparmor_file_ = file;
  }
  ASSIGN_OR_RETURN(json oci, RenderRuntimeConfig(req_.policy, spec));
  std::string text = oci.dump(1);
  RETURN_IF_ERROR(WriteNewFile(
      bundle_ + "/config.json",
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()), 0600));

  ASSIGN_OR_RETURN(CappedSink out, CappedSink::Create(req_.output_dir + "/stdout.txt",
                                                      req_.policy.max_stdout_bytes));
  ASSIGN_OR_RETURN(CappedSink err, CappedSink::Create(req_.output_dir + "/stderr.txt",
                                                      req_.policy.max_stderr_bytes));
  RuncRunRequest run;
  run.bundle_dir = bundle_;
  run.container_id = container_id_;
  run.stdout_sink = &out;
  run.stderr_sink = &err;
  run.timeout = std::chrono::seconds(req_.policy.timeout_seconds);
  run.cancel_fd = req_.cancel_fd;
  run.cgroup_path = cgroup_path_;
  ASSIGN_OR_RETURN(RuncResult ran, runc_->Run(run));
  RETURN_IF_ERROR(out.Close());
  RETURN_IF_ERROR(err.Close());

  SandboxResult result;
  result.exit_code = ran.exit_code;
  result.signal = ran.signal;
  result.timed_out = ran.timed_out;
  result.cancelled = ran.cancelled;
  result.oom_killed = ran.oom_killed;
  result.stdout_truncated = ran.stdout_truncated;
  result.stderr_truncated = ran.stderr_truncated;
  result.stdout_bytes = ran.stdout_bytes;
  result.stderr_bytes = ran.stderr_bytes;
  result.image_manifest_digest = config.manifest_digest;
  result.seconds = ran.seconds;

  OutputLimits limits;
  limits.max_bytes = req_.policy.output_max_bytes;
  ASSIGN_OR_RETURN(result.output, CopyOutput(output_tmp_, req_.output_dir + "/files", limits));
  RETURN_IF_ERROR(WriteManifest(result));
  return result;
}

Status SandboxRun::Cleanup() {
  Status first;
  auto note = [&first](Status s) {
    if (first.ok() && !s.ok()) first = std::move(s);
  };
  if (runc_) note(runc_->Delete(container_id_));
  if (StatusOr<Cgroup> cg = Cgroup::Adopt(cgroup_path_); cg.ok()) {
    note(cg->Destroy());
  } else {
    note(cg.status());
  }
  if (!apparmor_file_.empty()) {
    SpawnOptions unload;
    unload.argv = {host_.apparmor_parser, "--remove", apparmor_file_};
    unload.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    StatusOr<RunResult> r = RunAndCapture(unload);
    if (!r.ok()) {
      note(r.status());
    } else if (!r->status.success()) {
      note(Internal("cleanup: apparmor_parser --remove: " + r->output));
    }
    apparmor_file_.clear();
  }
  if (!work_dir_owned_) return first;
  // Unmount before removing: RemoveTree refuses to enter a mount, so a
  // failed unmount can never make us delete the dir: image or the output.
  note(Unmount(output_tmp_));
  note(Unmount(rootfs_));
  note(Unmount(overlay_));
  for (const char* name : {"output", "rootfs", "overlay", "bundle"}) {
    note(RemoveTree(req_.work_dir, name));
  }
  return first;
}

}  // namespace

StatusOr<SandboxResult> RunSandbox(const SandboxRequest& request, const SandboxHost& host) {
  SandboxRun run(request, host);
  StatusOr<SandboxResult> result = run.Execute();
  Status cleaned = run.Cleanup();
  if (!result.ok()) {
    if (!cleaned.ok()) {
      return Status(result.status().code(),
                    result.status().message() + " (and cleanup failed: " + cleaned.message() + ")");
    }
    return result;
  }
  if (!cleaned.ok()) return Status(StatusCode::kIo, cleaned.message());
  return result;
}

int SandboxExitCode(const SandboxResult& result) {
  if (result.timed_out || result.cancelled) return 124;
  if (result.signal != 0) return 128 + result.signal;
  return result.exit_code;
}

Status CleanupSandbox(const std::string& work_dir, const std::string& job_id,
                      const SandboxHost& host) {
  if (!ValidJobId(job_id)) {
    return InvalidArgument("sandbox cleanup: job_id '" + job_id +
                           "' must match [a-z0-9][a-z0-9_-]{0,63}");
  }
  if (work_dir.empty() || work_dir[0] != '/') {
    return InvalidArgument("sandbox cleanup: work_dir '" + work_dir + "' must be an absolute path");
  }
  Status first;
  StatusOr<Runc> runc = Runc::Create(host.runc_path, host.runc_root);
  if (runc.ok()) {
    first = runc->Delete("cce-" + job_id);
  } else {
    first = runc.status();
  }
  if (StatusOr<Cgroup> cg = Cgroup::Adopt("/cce/workload/" + job_id); cg.ok()) {
    Status s = cg->Destroy();
    if (first.ok()) first = s;
  }
  std::string bundle = work_dir + "/bundle";
  std::string profile = bundle + "/apparmor.profile";
  if (Exists(profile)) {
    SpawnOptions unload;
    unload.argv = {host.apparmor_parser, "--remove", profile};
    unload.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    (void)RunAndCapture(unload);  // it may never have been loaded
  }
  for (const char* name : {"output", "rootfs", "overlay"}) {
    Status s = Unmount(work_dir + "/" + name);
    if (first.ok()) first = s;
  }
  for (const char* name : {"output", "rootfs", "overlay", "bundle"}) {
    Status s = RemoveTree(work_dir, name);
    if (first.ok()) first = s;
  }
  return first;
}

}  // namespace cce::executor
