#include "explore/local_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "executor/cgroups.h"
#include "executor/policy.h"
#include "executor/runc.h"
#include "executor/seccomp.h"
#include "explore/jupyter_status.h"

namespace cce::explore {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kHome[] = "/home/jovyan";
constexpr char kRunDir[] = "/run/jupyter";
constexpr char kSocket[] = "/run/jupyter/jupyter.sock";
constexpr char kConfigDir[] = "/run/jupyter/config";
constexpr char kRuntimeDir[] = "/run/jupyter/runtime";
constexpr char kSessionJson[] = "/etc/cce4long/session.json";
constexpr char kSdkMount[] = "/opt/cce4long";
constexpr size_t kMaxSdkConfigBytes = size_t{64} << 10;
constexpr size_t kLogTailBytes = 2048;
constexpr auto kStopGrace = std::chrono::seconds(5);
constexpr auto kPoll = std::chrono::milliseconds(200);

// What the session sees of the host's /etc, read-only, when present: name
// resolution, TLS trust, time zone, the dynamic linker's cache and the
// alternatives its symlinks in /usr point to (BLAS, ...), MIME types
// (Jupyter serves its static files by them), and the configuration of
// Python, Jupyter and matplotlib that Debian keeps in /etc. Nothing else:
// no host users, no keys (/etc/ssl/private stays out), no plane config.
const std::vector<std::string>& EtcEntries() {
  static const std::vector<std::string> kEntries = {
      "/etc/ssl/certs",    "/etc/ssl/openssl.cnf", "/etc/ca-certificates",
      "/etc/resolv.conf",  "/etc/hosts",           "/etc/nsswitch.conf",
      "/etc/host.conf",    "/etc/gai.conf",        "/etc/localtime",
      "/etc/timezone",     "/etc/ld.so.cache",     "/etc/ld.so.conf",
      "/etc/ld.so.conf.d", "/etc/alternatives",    "/etc/mime.types",
      "/etc/jupyter",      "/etc/matplotlibrc",    "/etc/fonts"};
  return kEntries;
}

// The top-level links a merged-/usr system has (/bin -> usr/bin, ...).
const std::vector<std::string>& UsrLinks() {
  static const std::vector<std::string> kLinks = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};
  return kLinks;
}

std::string CgroupPath(const std::string& id) {
  return "/cce/explore/" + id;
}

bool IsPrintableNoSpace(const crypto::SecretBytes& s) {
  return std::all_of(s.data(), s.data() + s.size(), [](uint8_t c) {
    return c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '\'';
  });
}

// Absolute, no empty/./.. parts, no trailing '/', no control characters.
bool IsCleanAbsolute(std::string_view p) {
  if (p.size() < 2 || p.front() != '/' || p.back() == '/' || p.size() > 1024) return false;
  size_t start = 1;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return std::none_of(p.begin(), p.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

bool ValidDatasetName(std::string_view n) {
  return !n.empty() && n.size() <= 128 && n != "." && n != ".." &&
         std::all_of(n.begin(), n.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
         });
}

Status Bad(const std::string& field, const std::string& why) {
  return InvalidArgument("explore local: spec." + field + ": " + why);
}

Status CheckDir(const std::string& path, const std::string& field, bool follow) {
  if (!IsCleanAbsolute(path)) {
    return Bad(field, "'" + path.substr(0, 200) + "': expected a clean absolute path");
  }
  struct stat st {};
  int rc = follow ? stat(path.c_str(), &st) : lstat(path.c_str(), &st);
  if (rc != 0) return Bad(field, path + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return Bad(field, path + ": not a directory");
  return Status::Ok();
}

Status ValidateSpec(const SessionSpec& spec, const LocalBackendOptions& o) {
  if (!ValidSessionId(spec.id)) {
    return Bad("id", "'" + spec.id.substr(0, 40) + "': expected xs- and 16 lower-case hex digits");
  }
  if (spec.base_url != "/explore/" + spec.id + "/") {
    return Bad("base_url",
               "'" + spec.base_url.substr(0, 200) + "': expected /explore/" + spec.id + "/");
  }
  if (spec.owner_id < 0 || spec.owner_id > int64_t{0xFFFFFFFE} - o.uid_base) {
    return Bad("owner_id", std::to_string(spec.owner_id) + ": uid_base + owner_id out of range");
  }
  RETURN_IF_ERROR(CheckDir(spec.home_dir, "home_dir", /*follow=*/false));
  if (spec.home_dir == "/") return Bad("home_dir", "'/' cannot be a home");
  for (size_t i = 0; i < spec.samples.size(); ++i) {
    const SampleMount& s = spec.samples[i];
    const std::string f = "samples[" + std::to_string(i) + "]";
    if (!ValidDatasetName(s.dataset)) {
      return Bad(f + ".dataset",
                 "'" + s.dataset.substr(0, 200) + "': expected [A-Za-z0-9._-]{1,128}");
    }
    if (s.mount_path != "/data/" + s.dataset) {
      return Bad(f + ".mount_path",
                 "'" + s.mount_path.substr(0, 200) + "': expected /data/" + s.dataset);
    }
    for (size_t j = 0; j < i; ++j) {
      if (spec.samples[j].dataset == s.dataset) {
        return Bad(f + ".dataset",
                   "'" + s.dataset + "' is also samples[" + std::to_string(j) + "]");
      }
    }
    RETURN_IF_ERROR(CheckDir(s.host_dir, f + ".host_dir", /*follow=*/true));
    struct stat st {};
    if (stat(s.host_dir.c_str(), &st) == 0 && (st.st_mode & 05) != 05) {
      return FailedPrecondition(
          "explore local: spec." + f + ".host_dir: " + s.host_dir +
          " is not world-readable (mode " + std::to_string((st.st_mode >> 6) & 7) +
          std::to_string((st.st_mode >> 3) & 7) + std::to_string(st.st_mode & 7) +
          "): the session user reads samples through a bind mount, so "
          "sample directories must be 0755 and files 0644");
    }
  }
  if (spec.jupyter_token.size() < 16 || spec.jupyter_token.size() > 512 ||
      !IsPrintableNoSpace(spec.jupyter_token)) {
    return Bad("jupyter_token",
               "expected 16..512 printable ASCII characters without spaces or quotes");
  }
  {
    const crypto::SecretBytes& c = spec.sdk_config_json;
    const uint8_t* b = c.data();
    const uint8_t* e = c.data() + c.size();
    while (b < e && std::isspace(*b) != 0) ++b;
    while (e > b && std::isspace(*(e - 1)) != 0) --e;
    if (c.size() > kMaxSdkConfigBytes || e - b < 2 || *b != '{' || *(e - 1) != '}') {
      return Bad("sdk_config_json", "expected a JSON object of at most 64 KiB");
    }
  }
  if (spec.memory_mib < 64 || spec.memory_mib > (int64_t{1} << 22)) {
    return Bad("memory_mib", std::to_string(spec.memory_mib) + ": expected 64..4194304");
  }
  if (spec.cpus < 1 || spec.cpus > 64) {
    return Bad("cpus", std::to_string(spec.cpus) + ": expected 1..64");
  }
  return Status::Ok();
}

Status MkdirMode(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0) return ErrnoStatus("explore local: mkdir " + path, errno);
  if (chmod(path.c_str(), mode) != 0) return ErrnoStatus("explore local: chmod " + path, errno);
  return Status::Ok();
}

// mkdir -p, each directory made here 0700; the last one chmod 0700.
Status MakeDirs0700(const std::string& path) {
  for (size_t pos = 1;; ++pos) {
    size_t next = path.find('/', pos);
    std::string prefix = path.substr(0, next);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("explore local: mkdir " + prefix, errno);
    }
    if (next == std::string::npos) break;
    pos = next;
  }
  if (chmod(path.c_str(), 0700) != 0) return ErrnoStatus("explore local: chmod " + path, errno);
  return Status::Ok();
}

Status MountTmpfs(const std::string& dir, uint64_t size_bytes, mode_t mode, bool noexec) {
  char opts[96];
  std::snprintf(opts, sizeof opts, "size=%llu,mode=%o,nr_inodes=16384",
                static_cast<unsigned long long>(size_bytes),  // NOLINT(google-runtime-int)
                static_cast<unsigned>(mode));
  unsigned long flags = MS_NOSUID | MS_NODEV;  // NOLINT(google-runtime-int): mount(2)'s type
  if (noexec) flags |= MS_NOEXEC;
  if (mount("tmpfs", dir.c_str(), "tmpfs", flags, opts) != 0) {
    return ErrnoStatus("explore local: mount tmpfs on " + dir, errno);
  }
  return Status::Ok();
}

// Unmounts everything mounted on `dir` (a stack of mounts, or none).
Status UnmountAll(const std::string& dir) {
  for (int i = 0; i < 8; ++i) {
    if (umount2(dir.c_str(), UMOUNT_NOFOLLOW) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) return Status::Ok();  // not (or no longer) a mount
    if (errno == EBUSY && umount2(dir.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
    return ErrnoStatus("explore local: umount " + dir, errno);
  }
  return Internal("explore local: umount " + dir + ": still mounted after 8 unmounts");
}

// rm -r of `name` in `parent_fd`, never following symlinks and never
// descending into another file system (a mount left there is an error).
Status RemoveTreeAt(int parent_fd, const std::string& name, dev_t dev, const std::string& shown) {
  struct stat st {};
  if (fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("explore local: stat " + shown, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(parent_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoStatus("explore local: unlink " + shown, errno);
    }
    return Status::Ok();
  }
  if (st.st_dev != dev) {
    return FailedPrecondition("explore local: " + shown + " is still a mount point; not removed");
  }
  UniqueFd fd(openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("explore local: open " + shown, errno);
  std::vector<std::string> children;
  {
    int dup_fd = dup(fd.get());
    if (dup_fd < 0) return ErrnoStatus("explore local: dup", errno);
    DIR* d = fdopendir(dup_fd);
    if (d == nullptr) {
      close(dup_fd);
      return ErrnoStatus("explore local: opendir " + shown, errno);
    }
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") children.push_back(std::move(n));
    }
    closedir(d);
  }
  for (const std::string& c : children) {
    RETURN_IF_ERROR(RemoveTreeAt(fd.get(), c, dev, shown + "/" + c));
  }
  if (unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoStatus("explore local: rmdir " + shown, errno);
  }
  return Status::Ok();
}

Status RemoveTree(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string parent = slash == 0 ? "/" : path.substr(0, slash);
  UniqueFd pfd(open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!pfd.valid()) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("explore local: open " + parent, errno);
  }
  struct stat st {};
  if (fstat(pfd.get(), &st) != 0) return ErrnoStatus("explore local: stat " + parent, errno);
  return RemoveTreeAt(pfd.get(), path.substr(slash + 1), st.st_dev, path);
}

Status WriteOwned(const std::string& path, std::span<const uint8_t> data, mode_t mode, uid_t uid,
                  gid_t gid) {
  RETURN_IF_ERROR(WriteNewFile(path, data, mode));
  if (lchown(path.c_str(), uid, gid) != 0) {
    return ErrnoStatus("explore local: chown " + path, errno);
  }
  return Status::Ok();
}

Status WriteText(const std::string& path, const std::string& text, mode_t mode) {
  return WriteNewFile(
      path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
      mode);
}

Status MkdirOwned(const std::string& path, mode_t mode, uid_t uid, gid_t gid) {
  RETURN_IF_ERROR(MkdirMode(path, mode));
  if (lchown(path.c_str(), uid, gid) != 0) {
    return ErrnoStatus("explore local: chown " + path, errno);
  }
  return Status::Ok();
}

json Mount(const std::string& destination, const std::string& type, const std::string& source,
           std::vector<std::string> options) {
  return json{{"destination", destination},
              {"type", type},
              {"source", source},
              {"options", std::move(options)}};
}

json Rlimit(const char* type, uint64_t value) {
  return json{{"type", type}, {"hard", value}, {"soft", value}};
}

// Replaces every "token=<value>" with "token=<redacted>" and every occurrence
// of `token` (when given) with "<token>"; then keeps printable characters.
std::string Redact(std::string text, const crypto::SecretBytes* token) {
  if (token != nullptr && !token->empty()) {
    std::string_view t(reinterpret_cast<const char*>(token->data()), token->size());
    for (size_t p = text.find(t); p != std::string::npos; p = text.find(t, p)) {
      text.replace(p, t.size(), "<token>");
    }
  }
  for (size_t p = text.find("token="); p != std::string::npos; p = text.find("token=", p + 1)) {
    size_t end = p + 6;
    while (end < text.size() &&
           std::string_view("&\"' \n\r\t<>").find(text[end]) == std::string_view::npos) {
      ++end;
    }
    text.replace(p + 6, end - p - 6, "<redacted>");
  }
  for (char& c : text) {
    if (c != '\n' &&
        (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)) {
      c = '?';
    }
  }
  return text;
}

// The last kLogTailBytes of the session's jupyter.log, redacted.
std::string LogTail(const std::string& work_dir, const crypto::SecretBytes* token) {
  const std::string path = work_dir + "/log/jupyter.log";
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return "(no log: " + std::string(std::strerror(errno)) + ")";
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return "(no log)";
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t from = size > kLogTailBytes ? size - kLogTailBytes : 0;
  std::string buf(static_cast<size_t>(size - from), '\0');
  StatusOr<size_t> n = PreadFull(
      fd.get(), std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf.data()), buf.size()), from);
  if (!n.ok()) return "(log unreadable)";
  buf.resize(*n);
  std::string out = Redact(std::move(buf), token);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out.empty() ? "(log empty)" : "log tail:\n" + out;
}

// Linux's runc_root / work_root are made by Start; Observe and Stop must not
// fail on a host where no session ever ran.
StatusOr<executor::Runc> OpenRunc(const LocalBackendOptions& o) {
  StatusOr<executor::Runc> runc = executor::Runc::Create(o.runc, o.runc_root);
  if (!runc.ok() && runc.status().code() == StatusCode::kNotFound) {
    return FailedPrecondition("explore local: " + std::string(runc.status().message()));
  }
  return runc;
}

Status NeedRoot(std::string_view what) {
  if (geteuid() != 0) {
    return FailedPrecondition("explore local: " + std::string(what) +
                              " needs root (the plane runs sessions with runc, mounts and a "
                              "cgroup); run the plane as root or use the kubernetes backend");
  }
  return Status::Ok();
}

// Everything Start writes for one session below work_dir (a fresh tmpfs).
class SessionBuilder {
 public:
  SessionBuilder(const LocalBackendOptions& o, const SessionSpec& spec, std::string work_dir)
      : o_(o),
        spec_(spec),
        work_(std::move(work_dir)),
        rootfs_(work_ + "/rootfs"),
        uid_(static_cast<uid_t>(o.uid_base + static_cast<uint64_t>(spec.owner_id))),
        gid_(static_cast<gid_t>(uid_)) {}

  Status BuildRootfs() {
    RETURN_IF_ERROR(MkdirMode(rootfs_, 0755));
    for (const char* d : {"/usr", "/etc", "/etc/cce4long", "/etc/ssl", "/proc", "/sys", "/dev",
                          "/tmp", "/home", kHome, "/data", "/opt", "/run", kRunDir}) {
      RETURN_IF_ERROR(MkdirMode(rootfs_ + d, 0755));
    }
    if (!o_.sdk_dir.empty()) RETURN_IF_ERROR(MkdirMode(rootfs_ + kSdkMount, 0755));
    for (const SampleMount& s : spec_.samples) {
      RETURN_IF_ERROR(MkdirMode(rootfs_ + s.mount_path, 0755));
    }
    RETURN_IF_ERROR(WriteText(rootfs_ + kSessionJson, "", 0644));
    // /bin -> usr/bin and friends as on the host (merged /usr); a host that
    // still has a real /bin gets it bound read-only instead.
    for (const std::string& name : UsrLinks()) {
      std::string host = "/" + name;
      struct stat st {};
      if (lstat(host.c_str(), &st) != 0) continue;
      if (S_ISLNK(st.st_mode)) {
        char target[256];
        ssize_t n = readlink(host.c_str(), target, sizeof target - 1);
        if (n <= 0) return ErrnoStatus("explore local: readlink " + host, errno);
        target[n] = '\0';
        if (symlink(target, (rootfs_ + host).c_str()) != 0) {
          return ErrnoStatus("explore local: symlink " + rootfs_ + host, errno);
        }
      } else if (S_ISDIR(st.st_mode)) {
        RETURN_IF_ERROR(MkdirMode(rootfs_ + host, 0755));
        extra_ro_dirs_.push_back(host);
      }
    }
    for (const std::string& e : EtcEntries()) {
      struct stat st {};
      if (stat(e.c_str(), &st) != 0) continue;  // absent (or a dangling link): not shown
      if (S_ISDIR(st.st_mode)) {
        RETURN_IF_ERROR(MkdirMode(rootfs_ + e, 0755));
      } else if (S_ISREG(st.st_mode)) {
        RETURN_IF_ERROR(WriteText(rootfs_ + e, "", 0644));
      } else {
        continue;
      }
      etc_binds_.push_back(e);
    }
    // /etc/python3*: Debian's sitecustomize and friends.
    if (DIR* d = opendir("/etc")) {
      while (dirent* ent = readdir(d)) {
        std::string n = ent->d_name;
        struct stat st {};
        std::string host = "/etc/" + n;
        if (n.rfind("python3", 0) == 0 && stat(host.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
          Status s = MkdirMode(rootfs_ + host, 0755);
          if (!s.ok()) {
            closedir(d);
            return s;
          }
          etc_binds_.push_back(host);
        }
      }
      closedir(d);
    }
    // The session's users: root (owner of everything it sees) and jovyan.
    const std::string u = std::to_string(uid_);
    const std::string g = std::to_string(gid_);
    RETURN_IF_ERROR(WriteText(rootfs_ + "/etc/passwd",
                              "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                              "jovyan:x:" +
                                  u + ":" + g + ":Explore session:/home/jovyan:/bin/bash\n",
                              0644));
    RETURN_IF_ERROR(WriteText(rootfs_ + "/etc/group", "root:x:0:\njovyan:x:" + g + ":\n", 0644));
    return Status::Ok();
  }

  // The home (chowned, 0700; only the directory itself: its contents are the
  // user's from earlier sessions), the socket/config dir and the secrets.
  Status BuildSessionFiles() {
    UniqueFd home(open(spec_.home_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!home.valid()) return ErrnoStatus("explore local: open home " + spec_.home_dir, errno);
    if (fchown(home.get(), uid_, gid_) != 0 || fchmod(home.get(), 0700) != 0) {
      return ErrnoStatus("explore local: chown/chmod home " + spec_.home_dir, errno);
    }
    const std::string run = work_ + "/run";
    RETURN_IF_ERROR(MkdirOwned(run, 0700, uid_, gid_));
    RETURN_IF_ERROR(MkdirOwned(run + "/config", 0700, uid_, gid_));
    RETURN_IF_ERROR(MkdirOwned(run + "/runtime", 0700, uid_, gid_));
    // Jupyter's token lives in its config file only (never argv or env).
    // Kernels talk ZeroMQ over Unix sockets in /run/jupyter/runtime (0700):
    // no kernel port on the loopback the session shares with the host, so
    // an operator can deny session uids the loopback altogether.
    // The token has no quotes or backslashes (ValidateSpec): no escaping.
    static constexpr std::string_view kHead = "{\"NotebookApp\": {\"token\": \"";
    static constexpr std::string_view kTail =
        "\", \"password\": \"\", \"allow_remote_access\": true, \"open_browser\": false, "
        "\"allow_root\": false, \"quit_button\": false}, "
        "\"KernelManager\": {\"transport\": \"ipc\"}}\n";
    crypto::SecretBytes cfg(kHead.size() + spec_.jupyter_token.size() + kTail.size());
    std::memcpy(cfg.data(), kHead.data(), kHead.size());
    std::memcpy(cfg.data() + kHead.size(), spec_.jupyter_token.data(), spec_.jupyter_token.size());
    std::memcpy(cfg.data() + kHead.size() + spec_.jupyter_token.size(), kTail.data(), kTail.size());
    RETURN_IF_ERROR(
        WriteOwned(run + "/config/jupyter_notebook_config.json", cfg.span(), 0400, uid_, gid_));
    RETURN_IF_ERROR(MkdirMode(work_ + "/secrets", 0700));
    RETURN_IF_ERROR(WriteOwned(work_ + "/secrets/session.json", spec_.sdk_config_json.span(), 0400,
                               uid_, gid_));
    return Status::Ok();
  }

  json Config(const json& seccomp) const {
    json empty = json::array();
    std::vector<std::string> env = {
        "HOME=/home/jovyan",
        "USER=jovyan",
        "SHELL=/bin/bash",
        "PATH=/home/jovyan/.local/bin:/usr/local/bin:/usr/bin:/bin",
        "LANG=C.UTF-8",
        std::string("PYTHONPATH=") + kSdkMount,
        std::string("JUPYTER_CONFIG_DIR=") + kConfigDir,
        std::string("JUPYTER_RUNTIME_DIR=") + kRuntimeDir,
        "CCE4LONG_SESSION=" + spec_.id,
        // ipykernel's debugger otherwise warns about frozen modules at every kernel start.
        "PYDEVD_DISABLE_FILE_VALIDATION=1",
    };
    json process = {
        {"terminal", false},
        {"user", {{"uid", uid_}, {"gid", gid_}, {"additionalGids", empty}}},
        {"args",
         {o_.python, "-m", "notebook", "--no-browser", std::string("--sock=") + kSocket,
          "--sock-mode=0600", "--NotebookApp.base_url=" + spec_.base_url,
          std::string("--notebook-dir=") + kHome}},
        {"env", env},
        {"cwd", kHome},
        {"capabilities",
         {{"bounding", empty},
          {"effective", empty},
          {"inheritable", empty},
          {"permitted", empty},
          {"ambient", empty}}},
        {"rlimits",
         json::array({Rlimit("RLIMIT_NOFILE", o_.rlimit_nofile), Rlimit("RLIMIT_CORE", 0),
                      Rlimit("RLIMIT_FSIZE", o_.max_file_bytes),
                      Rlimit("RLIMIT_MEMLOCK", uint64_t{64} << 10)})},
        {"noNewPrivileges", true},
        {"oomScoreAdj", 1000},
    };

    const std::vector<std::string> ro_bind = {"bind", "ro", "nosuid", "nodev"};
    const std::vector<std::string> ro_data = {"bind", "ro", "nosuid", "nodev", "noexec"};
    json mounts = json::array();
    mounts.push_back(Mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
    mounts.push_back(
        Mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
    // Jupyter's terminals need ptys: a private devpts instance.
    mounts.push_back(Mount("/dev/pts", "devpts", "devpts",
                           {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}));
    mounts.push_back(Mount("/dev/shm", "tmpfs", "shm",
                           {"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}));
    mounts.push_back(Mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
    mounts.push_back(Mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}));
    mounts.push_back(
        Mount("/tmp", "tmpfs", "tmpfs",
              {"nosuid", "nodev", "mode=1777", "size=" + std::to_string(o_.tmp_max_bytes)}));
    mounts.push_back(Mount("/usr", "bind", "/usr", ro_bind));
    for (const std::string& d : extra_ro_dirs_) mounts.push_back(Mount(d, "bind", d, ro_bind));
    for (const std::string& e : etc_binds_) mounts.push_back(Mount(e, "bind", e, ro_data));
    // Home: writable and executable (pip --user wheels carry shared objects).
    mounts.push_back(Mount(kHome, "bind", spec_.home_dir, {"bind", "rw", "nosuid", "nodev"}));
    // Non-recursive binds: nothing mounted below a sample shows up writable.
    for (const SampleMount& s : spec_.samples) {
      mounts.push_back(Mount(s.mount_path, "bind", s.host_dir, ro_data));
    }
    if (!o_.sdk_dir.empty()) mounts.push_back(Mount(kSdkMount, "bind", o_.sdk_dir, ro_data));
    mounts.push_back(Mount(kSessionJson, "bind", work_ + "/secrets/session.json", ro_data));
    mounts.push_back(
        Mount(kRunDir, "bind", work_ + "/run", {"bind", "rw", "nosuid", "nodev", "noexec"}));

    constexpr int64_t kCpuPeriod = 100000;
    const int64_t memory_bytes = spec_.memory_mib << 20;
    json linux = {
        {"namespaces",
         {{{"type", "pid"}},
          {{"type", "ipc"}},
          {{"type", "uts"}},
          {{"type", "mount"}},
          {{"type", "cgroup"}}}},
        {"maskedPaths", executor::MandatoryMaskedPaths()},
        {"readonlyPaths", executor::MandatoryReadonlyPaths()},
        {"resources",
         {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})},
          {"memory", {{"limit", memory_bytes}, {"swap", memory_bytes}}},
          {"pids", {{"limit", o_.pids_max}}},
          {"cpu", {{"quota", spec_.cpus * kCpuPeriod}, {"period", kCpuPeriod}}}}},
        {"cgroupsPath", CgroupPath(spec_.id)},
        {"seccomp", seccomp},
    };
    return json{
        {"ociVersion", "1.0.2"},
        {"process", std::move(process)},
        {"root", {{"path", rootfs_}, {"readonly", true}}},
        {"hostname", "explore"},
        {"mounts", std::move(mounts)},
        {"linux", std::move(linux)},
    };
  }

 private:
  const LocalBackendOptions& o_;
  const SessionSpec& spec_;
  std::string work_;
  std::string rootfs_;
  uid_t uid_;
  gid_t gid_;
  std::vector<std::string> extra_ro_dirs_;  // /bin, /lib ... on a host without merged /usr
  std::vector<std::string> etc_binds_;
};

}  // namespace

std::string LocalSessionSocket(const std::string& work_root, const std::string& id) {
  return work_root + "/" + id + "/run/jupyter.sock";
}

StatusOr<LocalBackend> LocalBackend::Create(LocalBackendOptions o) {
  const auto bad = [](const std::string& field, const std::string& why) {
    return InvalidArgument("explore.local." + field + ": " + why);
  };
  if (o.runc.empty()) return bad("runc", "required");
  if (!IsCleanAbsolute(o.runc_root)) return bad("runc_root", "expected a clean absolute path");
  if (!IsCleanAbsolute(o.work_root)) return bad("work_root", "expected a clean absolute path");
  // work_root/xs-<16>/run/jupyter.sock must fit in sun_path (108 bytes).
  if (LocalSessionSocket(o.work_root, "xs-0123456789abcdef").size() > 107) {
    return bad("work_root", "'" + o.work_root + "' is too long for a Unix socket path below it");
  }
  if (o.uid_base < 1000 || o.uid_base > 0x7FFFFFFF) {
    return bad("uid_base", std::to_string(o.uid_base) + ": expected 1000..2147483647");
  }
  if (!o.sdk_dir.empty() && !IsCleanAbsolute(o.sdk_dir)) {
    return bad("sdk_dir", "'" + o.sdk_dir + "': expected a clean absolute path");
  }
  if (!IsCleanAbsolute(o.python) || o.python.rfind("/usr/", 0) != 0) {
    return bad("python", "'" + o.python + "': expected an absolute path under /usr");
  }
  if (o.start_timeout.count() <= 0) return bad("start_timeout", "must be positive");
  if (o.tmp_max_bytes < (uint64_t{1} << 20)) return bad("tmp_max_bytes", "at least 1 MiB");
  if (o.log_max_bytes < (uint64_t{64} << 10)) return bad("log_max_bytes", "at least 64 KiB");
  if (o.pids_max < 16) return bad("pids_max", "at least 16");
  if (o.rlimit_nofile < 64) return bad("rlimit_nofile", "at least 64");
  if (o.max_file_bytes < (uint64_t{1} << 20)) return bad("max_file_bytes", "at least 1 MiB");
  return LocalBackend(std::move(o));
}

StatusOr<Upstream> LocalBackend::Start(const SessionSpec& spec) {
  RETURN_IF_ERROR(ValidateSpec(spec, options_));
  RETURN_IF_ERROR(NeedRoot("starting a session"));
  struct stat st {};
  if (stat(options_.python.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return FailedPrecondition("explore local: " + options_.python +
                              " missing (install python3 and python3-notebook)");
  }
  if (!options_.sdk_dir.empty() &&
      (stat(options_.sdk_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
    return FailedPrecondition("explore local: sdk_dir " + options_.sdk_dir + " is not a directory");
  }
  ASSIGN_OR_RETURN(executor::Runc runc, OpenRunc(options_));
  ASSIGN_OR_RETURN(bool exists, runc.Exists(spec.id));
  const std::string work = options_.work_root + "/" + spec.id;
  if (exists || lstat(work.c_str(), &st) == 0) {
    return AlreadyExists("explore local: a session " + spec.id + " exists on this host");
  }
  std::string seccomp_path = options_.seccomp_profile;
  if (seccomp_path.empty()) {
    ASSIGN_OR_RETURN(seccomp_path, executor::DefaultSeccompProfilePath());
  }
  ASSIGN_OR_RETURN(json seccomp,
                   executor::BuildSeccompProfile(seccomp_path, executor::IsolationPolicy{}));
  RETURN_IF_ERROR(MakeDirs0700(options_.work_root));

  // From here on something exists: any failure removes everything again.
  bool started = false;
  struct Undo {
    LocalBackend* self;
    const std::string& id;
    bool* done;
    ~Undo() {
      if (!*done) (void)self->Stop(id);
    }
  } undo{this, spec.id, &started};

  RETURN_IF_ERROR(MkdirMode(work, 0700));
  RETURN_IF_ERROR(MountTmpfs(work, uint64_t{32} << 20, 0700, /*noexec=*/true));
  RETURN_IF_ERROR(MkdirMode(work + "/log", 0700));
  RETURN_IF_ERROR(MountTmpfs(work + "/log", options_.log_max_bytes, 0700, /*noexec=*/true));
  const std::string log_path = work + "/log/jupyter.log";
  UniqueFd log(open(log_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600));
  if (!log.valid()) return ErrnoStatus("explore local: create " + log_path, errno);

  SessionBuilder builder(options_, spec, work);
  RETURN_IF_ERROR(builder.BuildRootfs());
  RETURN_IF_ERROR(builder.BuildSessionFiles());
  std::string config = builder.Config(seccomp).dump(1);
  RETURN_IF_ERROR(WriteText(work + "/config.json", config, 0600));

  Status ran = runc.RunDetached(work, spec.id, log.get());
  log.reset();
  if (!ran.ok()) {
    return Internal("explore local: starting " + spec.id + ": " + std::string(ran.message()) +
                    "\n" + LogTail(work, &spec.jupyter_token));
  }

  Upstream up;
  up.unix_socket = LocalSessionSocket(options_.work_root, spec.id);
  const Clock::time_point deadline = Clock::now() + options_.start_timeout;
  Status last = Unavailable("not asked yet");
  while (true) {
    ASSIGN_OR_RETURN(std::optional<executor::Runc::State> state, runc.GetState(spec.id));
    if (!state || state->status == "stopped") {
      return Internal("explore local: the Jupyter server of " + spec.id +
                      " exited while starting\n" + LogTail(work, &spec.jupyter_token));
    }
    if (state->status == "running") {
      StatusOr<JupyterActivity> status = FetchJupyterStatus(up, spec.base_url, spec.jupyter_token);
      if (status.ok()) break;
      last = status.status();
      if (last.code() != StatusCode::kUnavailable) {
        return Internal("explore local: the Jupyter server of " + spec.id + " answered wrongly: " +
                        std::string(last.message()) + "\n" + LogTail(work, &spec.jupyter_token));
      }
    }
    if (Clock::now() >= deadline) {
      return Internal("explore local: the Jupyter server of " + spec.id +
                      " did not answer within " + std::to_string(options_.start_timeout.count()) +
                      " ms (" + std::string(last.message()) + ")\n" +
                      LogTail(work, &spec.jupyter_token));
    }
    std::this_thread::sleep_for(kPoll);
  }
  started = true;
  return up;
}

StatusOr<Observed> LocalBackend::Observe(const std::string& id) {
  if (!ValidSessionId(id)) {
    return InvalidArgument("explore local: session id '" + id.substr(0, 40) +
                           "': expected xs- and 16 lower-case hex digits");
  }
  RETURN_IF_ERROR(NeedRoot("observing a session"));
  ASSIGN_OR_RETURN(executor::Runc runc, OpenRunc(options_));
  ASSIGN_OR_RETURN(std::optional<executor::Runc::State> state, runc.GetState(id));
  const std::string work = options_.work_root + "/" + id;
  Observed o;
  if (!state) {
    o.state = SessionState::kGone;
    o.detail =
        "no container " + id + " on this host (stopped, never started here, or lost with a reboot)";
    return o;
  }
  if (state->status == "running" || state->status == "created") {
    o.upstream.unix_socket = LocalSessionSocket(options_.work_root, id);
    o.state = SessionState::kStarting;
    if (state->status == "running") {
      StatusOr<int> code = ProbeJupyter(o.upstream, "/explore/" + id + "/");
      if (code.ok() && *code == 200) {
        o.state = SessionState::kRunning;
      } else {
        o.detail = code.ok() ? "Jupyter answered HTTP " + std::to_string(*code)
                             : std::string(code.status().message());
      }
    }
    return o;
  }
  o.state = SessionState::kGone;
  o.detail = "the Jupyter server's container is " + state->status + "\n" + LogTail(work, nullptr);
  return o;
}

Status LocalBackend::Stop(const std::string& id) {
  if (!ValidSessionId(id)) {
    return InvalidArgument("explore local: session id '" + id.substr(0, 40) +
                           "': expected xs- and 16 lower-case hex digits");
  }
  RETURN_IF_ERROR(NeedRoot("stopping a session"));
  Status first;
  const auto note = [&first](Status s) {
    if (first.ok() && !s.ok()) first = std::move(s);
  };
  ASSIGN_OR_RETURN(executor::Runc runc, OpenRunc(options_));
  StatusOr<std::optional<executor::Runc::State>> state = runc.GetState(id);
  note(state.status());
  if (state.ok() && state->has_value()) {
    if ((*state)->status != "stopped") {
      // TERM lets Jupyter shut its kernels down; KILL after the grace.
      (void)runc.Kill(id, "TERM");
      const Clock::time_point deadline = Clock::now() + kStopGrace;
      while (Clock::now() < deadline) {
        StatusOr<std::optional<executor::Runc::State>> now = runc.GetState(id);
        if (!now.ok() || !now->has_value() || (*now)->status == "stopped") break;
        std::this_thread::sleep_for(kPoll);
      }
      (void)runc.Kill(id, "KILL");
    }
  }
  note(runc.Delete(id));
  if (StatusOr<executor::Cgroup> cg = executor::Cgroup::Adopt(CgroupPath(id)); cg.ok()) {
    note(cg->Destroy());
  }
  const std::string work = options_.work_root + "/" + id;
  note(UnmountAll(work + "/log"));
  note(UnmountAll(work));
  note(RemoveTree(work));
  return first;
}

}  // namespace cce::explore
