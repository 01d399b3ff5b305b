#include "executor/oci_spec.h"

#include <algorithm>
#include <cmath>
#include <string_view>

namespace cce::executor {

using nlohmann::json;

namespace {

Status Bad(const std::string& field, const std::string& why) {
  return InvalidArgument("run spec: " + field + ": " + why);
}

bool HasControlChar(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// Absolute, without empty, "." or ".." parts and without a trailing '/'.
bool IsNormalAbsolute(std::string_view p) {
  if (p.size() < 2 || p.front() != '/' || p.back() == '/' || p.size() > 4096) return false;
  size_t start = 1;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return !HasControlChar(p);
}

bool IsPlainChars(std::string_view p) {
  return std::all_of(p.begin(), p.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == '/';
  });
}

bool IsUnder(std::string_view path, std::string_view dir) {
  return path == dir ||
         (path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/');
}

Status CheckHostPath(const std::string& path, const std::string& field) {
  if (path.empty()) return Bad(field, "required");
  if (!IsNormalAbsolute(path)) {
    return Bad(field, "'" + path.substr(0, 256) +
                          "': expected an absolute path without '.', '..' or empty parts");
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

}  // namespace

Status ValidateRunSpec(const RunSpec& s) {
  RETURN_IF_ERROR(CheckHostPath(s.rootfs, "rootfs"));
  if (s.args.empty() || s.args[0].empty()) return Bad("args", "a command is required");
  for (size_t i = 0; i < s.args.size(); ++i) {
    if (s.args[i].find('\0') != std::string::npos) {
      return Bad("args[" + std::to_string(i) + "]", "contains a NUL byte");
    }
  }
  for (size_t i = 0; i < s.env.size(); ++i) {
    const std::string& e = s.env[i];
    const std::string f = "env[" + std::to_string(i) + "]";
    size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0) return Bad(f, "expected NAME=value");
    for (size_t k = 0; k < eq; ++k) {
      char c = e[k];
      bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
                (k > 0 && c >= '0' && c <= '9');
      if (!ok) return Bad(f, "'" + e.substr(0, eq) + "': expected a name of [A-Za-z0-9_]");
    }
    if (e.find('\0') != std::string::npos) return Bad(f, "contains a NUL byte");
  }
  if (s.cwd != "/" && !IsNormalAbsolute(s.cwd)) {
    return Bad("cwd", "'" + s.cwd.substr(0, 256) + "': expected an absolute normalized path");
  }
  if (s.hostname.empty() || s.hostname.size() > 63 ||
      !std::all_of(s.hostname.begin(), s.hostname.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.';
      })) {
    return Bad("hostname", "expected 1..63 of [A-Za-z0-9.-]");
  }
  static const std::vector<std::string_view> kReserved = {"/proc", "/sys",    "/dev",
                                                          "/tmp",  "/output", "/.cce"};
  for (size_t i = 0; i < s.datasets.size(); ++i) {
    const DatasetBind& d = s.datasets[i];
    const std::string f = "datasets[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(CheckHostPath(d.host_dir, f + ".host_dir"));
    const std::string& c = d.container_path;
    if (c == "/") return Bad(f + ".container_path", "'/': a dataset cannot replace the root");
    if (!IsNormalAbsolute(c) || !IsPlainChars(c)) {
      return Bad(
          f + ".container_path",
          "'" + c.substr(0, 256) + "': expected an absolute normalized path of [A-Za-z0-9._-]");
    }
    for (std::string_view r : kReserved) {
      if (IsUnder(c, r)) {
        return Bad(f + ".container_path", "'" + c + "': must not be or be under " + std::string(r));
      }
    }
    for (size_t j = 0; j < i; ++j) {
      const std::string& other = s.datasets[j].container_path;
      if (c == other) {
        return Bad(f + ".container_path",
                   "'" + c + "' is also datasets[" + std::to_string(j) + "]'s");
      }
      if (IsUnder(c, other) || IsUnder(other, c)) {
        std::string why = "'" + c;
        why += "' nests with datasets[" + std::to_string(j) + "] '";
        why += other;
        why += "'";
        return Bad(f + ".container_path", why);
      }
    }
  }
  RETURN_IF_ERROR(CheckHostPath(s.output_host_dir, "output_host_dir"));
  if (s.mac == MacLayer::kLandlock) {
    RETURN_IF_ERROR(CheckHostPath(s.sandbox_init_host_path, "sandbox_init_host_path"));
  }
  if (s.mac == MacLayer::kAppArmor &&
      (s.apparmor_profile.empty() || s.apparmor_profile.size() > 64 ||
       !IsPlainChars(s.apparmor_profile) || s.apparmor_profile.find('/') != std::string::npos)) {
    return Bad("apparmor_profile", "expected 1..64 of [A-Za-z0-9._-]");
  }
  if (!s.seccomp.is_object() || !s.seccomp.contains("defaultAction") ||
      !s.seccomp.contains("syscalls")) {
    return Bad("seccomp", "required: an OCI linux.seccomp object (BuildSeccompProfile)");
  }
  if (s.seccomp["defaultAction"] == "SCMP_ACT_ALLOW" ||
      s.seccomp["defaultAction"] == "SCMP_ACT_LOG") {
    return Bad("seccomp.defaultAction", "must deny by default");
  }
  if (!IsNormalAbsolute(s.cgroups_path) || !IsPlainChars(s.cgroups_path)) {
    return Bad("cgroups_path", "'" + s.cgroups_path.substr(0, 256) +
                                   "': expected an absolute path of [A-Za-z0-9._-] parts");
  }
  return Status::Ok();
}

StatusOr<json> RenderRuntimeConfig(const IsolationPolicy& policy, const RunSpec& spec) {
  RETURN_IF_ERROR(ValidateIsolationPolicy(policy));
  RETURN_IF_ERROR(ValidateRunSpec(spec));
  switch (spec.mac) {
    case MacLayer::kLandlock:
    case MacLayer::kAppArmor: break;
    case MacLayer::kSelinux:
      return FailedPrecondition(
          "run spec: mac: SELinux without Landlock: no SELinux policy is generated; refusing to "
          "run without a MAC layer");
    case MacLayer::kNone:
    case MacLayer::kUnknown:
      return FailedPrecondition("run spec: mac: " + std::string(MacLayerName(spec.mac)) +
                                ": neither AppArmor nor Landlock is available; refusing to run "
                                "without a MAC layer");
  }

  // process
  json args = json::array();
  if (spec.mac == MacLayer::kLandlock) {
    // The helper applies Landlock (read everywhere, write only below these)
    // and then execs the command (src/executor/landlock_exec.cc). In /dev
    // only the harmless sinks and /dev/shm are writable: a rule on all of
    // /dev would also grant device ioctls.
    for (const char* a :
         {kSandboxInitPath, "--ro", "/", "--rw", "/output", "--rw", "/tmp", "--rw", "/dev/null",
          "--rw", "/dev/zero", "--rw", "/dev/full", "--rw", "/dev/shm", "--"}) {
      args.push_back(a);
    }
  }
  for (const std::string& a : spec.args) args.push_back(a);
  json empty = json::array();
  json process = {
      {"terminal", false},
      {"user", {{"uid", policy.uid}, {"gid", policy.gid}, {"additionalGids", json::array()}}},
      {"args", std::move(args)},
      {"env", spec.env},
      {"cwd", spec.cwd},
      {"capabilities",
       {{"bounding", empty},
        {"effective", empty},
        {"inheritable", empty},
        {"permitted", empty},
        {"ambient", empty}}},
      {"rlimits",
       json::array({Rlimit("RLIMIT_NOFILE", policy.rlimit_nofile), Rlimit("RLIMIT_CORE", 0),
                    Rlimit("RLIMIT_FSIZE", policy.output_max_bytes),
                    Rlimit("RLIMIT_MEMLOCK", policy.rlimit_memlock_bytes)})},
      {"noNewPrivileges", policy.no_new_privileges},
      {"oomScoreAdj", policy.oom_score_adj},
  };
  if (spec.mac == MacLayer::kAppArmor) process["apparmorProfile"] = spec.apparmor_profile;

  // mounts
  json mounts = json::array();
  mounts.push_back(Mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
  mounts.push_back(
      Mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  mounts.push_back(Mount(
      "/dev/shm", "tmpfs", "shm",
      {"nosuid", "noexec", "nodev", "mode=1777", "size=" + std::to_string(policy.shm_max_bytes)}));
  mounts.push_back(Mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  mounts.push_back(Mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}));
  std::vector<std::string> tmp_options = {"nosuid", "nodev", "mode=1777",
                                          "size=" + std::to_string(policy.tmp_max_bytes)};
  if (!policy.tmp_exec) tmp_options.insert(tmp_options.begin() + 1, "noexec");
  mounts.push_back(Mount("/tmp", "tmpfs", "tmpfs", tmp_options));
  for (const DatasetBind& d : spec.datasets) {
    // Non-recursive bind: nothing mounted below the dataset becomes visible writable.
    mounts.push_back(
        Mount(d.container_path, "bind", d.host_dir, {"bind", "ro", "nosuid", "nodev", "noexec"}));
  }
  mounts.push_back(
      Mount("/output", "bind", spec.output_host_dir, {"bind", "rw", "nosuid", "nodev", "noexec"}));
  if (spec.mac == MacLayer::kLandlock) {
    mounts.push_back(Mount(kSandboxInitPath, "bind", spec.sandbox_init_host_path,
                           {"bind", "ro", "nosuid", "nodev"}));
  }

  // linux
  json namespaces = json::array();
  for (const std::string& ns : policy.namespaces) namespaces.push_back({{"type", ns}});
  json id_map = json::array(
      {{{"containerID", 0}, {"hostID", policy.host_id_base}, {"size", policy.id_map_size}}});
  const auto memory_bytes = static_cast<int64_t>(policy.memory_mib * kMiB);
  constexpr uint64_t kCpuPeriod = 100000;
  const auto quota = static_cast<int64_t>(std::llround(policy.cpus * kCpuPeriod));
  json resources = {
      // Deny every device; runc adds back only its defaults (null zero full
      // random urandom tty and the /dev/pts ptmx it does not mount here).
      {"devices", json::array({{{"allow", false}, {"access", "rwm"}}})},
      // swap = memory + swap: equal to the limit means no swap.
      {"memory", {{"limit", memory_bytes}, {"swap", memory_bytes}}},
      {"pids", {{"limit", policy.pids_max}}},
      {"cpu", {{"quota", quota}, {"period", kCpuPeriod}}},
  };
  json linux = {
      {"uidMappings", id_map},
      {"gidMappings", id_map},
      {"namespaces", std::move(namespaces)},
      {"maskedPaths", policy.masked_paths},
      {"readonlyPaths", policy.readonly_paths},
      {"resources", std::move(resources)},
      {"cgroupsPath", spec.cgroups_path},
      {"seccomp", spec.seccomp},
  };

  json config = {
      {"ociVersion", "1.0.2"},
      {"process", std::move(process)},
      {"root", {{"path", spec.rootfs}, {"readonly", policy.readonly_rootfs}}},
      {"hostname", spec.hostname},
      {"mounts", std::move(mounts)},
      {"linux", std::move(linux)},
  };
  return config;
}

}  // namespace cce::executor
