#include "executor/seccomp.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <string_view>

#include "base/fd.h"
#include "executor/policy.h"

namespace cce::executor {

using nlohmann::json;

namespace {

struct ArchInfo {
  std::string_view machine;  // uname -m
  std::string_view go_arch;  // the names moby's `arches` conditions use
  std::string_view scmp;     // OCI / libseccomp name
};

constexpr ArchInfo kArches[] = {
    {"x86_64", "amd64", "SCMP_ARCH_X86_64"},
    {"aarch64", "arm64", "SCMP_ARCH_AARCH64"},
    {"s390x", "s390x", "SCMP_ARCH_S390X"},
    {"ppc64le", "ppc64le", "SCMP_ARCH_PPC64LE"},
    {"riscv64", "riscv64", "SCMP_ARCH_RISCV64"},
    {"loongarch64", "loong64", "SCMP_ARCH_LOONGARCH64"},
};

const ArchInfo* FindArch(std::string_view machine) {
  for (const ArchInfo& a : kArches) {
    if (a.machine == machine) return &a;
  }
  return nullptr;
}

const std::set<std::string>& KnownActions() {
  static const std::set<std::string> kActions = {
      "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
      "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",        "SCMP_ACT_TRACE",
      "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",          "SCMP_ACT_NOTIFY"};
  return kActions;
}

const std::set<std::string>& KnownOps() {
  static const std::set<std::string> kOps = {"SCMP_CMP_NE",       "SCMP_CMP_LT", "SCMP_CMP_LE",
                                             "SCMP_CMP_EQ",       "SCMP_CMP_GE", "SCMP_CMP_GT",
                                             "SCMP_CMP_MASKED_EQ"};
  return kOps;
}

Status Bad(const std::string& where, const std::string& why) {
  return InvalidArgument("seccomp profile: " + where + ": " + why);
}

// "where.key", for error messages.
std::string Join(const std::string& where, const std::string& key) {
  std::string out = where;
  out += '.';
  out += key;
  return out;
}

bool Has(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

StatusOr<std::vector<std::string>> StringArray(const json& j, const std::string& where) {
  if (!j.is_array()) return Bad(where, "expected an array of strings");
  std::vector<std::string> out;
  for (const json& e : j) {
    if (!e.is_string()) return Bad(where, "expected an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

// "4.8" -> {4, 8}; moby's own parse is "%d.%d".
Status ParseMajorMinor(std::string_view s, int* major, int* minor, const std::string& where) {
  size_t dot = s.find('.');
  if (dot == std::string_view::npos) return Bad(where, "expected MAJOR.MINOR");
  auto parse = [](std::string_view part, int* out) {
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), *out);
    return !part.empty() && ec == std::errc() && ptr == part.data() + part.size() && *out >= 0;
  };
  if (!parse(s.substr(0, dot), major) || !parse(s.substr(dot + 1), minor)) {
    return Bad(where, "'" + std::string(s.substr(0, 32)) + "': expected MAJOR.MINOR");
  }
  return Status::Ok();
}

// One includes/excludes object: which of its conditions hold for the target.
struct Conditions {
  std::vector<std::string> caps, arches;
  bool has_min_kernel = false;
  int min_major = 0, min_minor = 0;
};

StatusOr<Conditions> ParseConditions(const json& j, const std::string& where) {
  if (!j.is_object()) return Bad(where, "expected an object");
  Conditions c;
  for (const auto& [key, value] : j.items()) {
    if (key == "caps") {
      ASSIGN_OR_RETURN(c.caps, StringArray(value, where + ".caps"));
    } else if (key == "arches") {
      ASSIGN_OR_RETURN(c.arches, StringArray(value, where + ".arches"));
    } else if (key == "minKernel") {
      if (!value.is_string()) return Bad(where + ".minKernel", "expected a string");
      RETURN_IF_ERROR(ParseMajorMinor(value.get<std::string>(), &c.min_major, &c.min_minor,
                                      where + ".minKernel"));
      c.has_min_kernel = true;
    } else {
      // A condition we do not understand might restrict a rule: fail closed.
      return Bad(Join(where, key), "unknown condition");
    }
  }
  return c;
}

bool KernelAtLeast(const SeccompTarget& t, int major, int minor) {
  return t.kernel_major > major || (t.kernel_major == major && t.kernel_minor >= minor);
}

StatusOr<json> ResolveArgs(const json& args, const std::string& where) {
  if (args.is_null()) return json::array();
  if (!args.is_array()) return Bad(where, "expected an array");
  json out = json::array();
  for (size_t i = 0; i < args.size(); ++i) {
    const json& a = args[i];
    const std::string w = where + "[" + std::to_string(i) + "]";
    if (!a.is_object()) return Bad(w, "expected an object");
    json arg = json::object();
    for (const auto& [key, value] : a.items()) {
      if (key == "index") {
        if (!value.is_number_unsigned() || value.get<uint64_t>() > 5) {
          return Bad(w + ".index", "expected 0..5");
        }
        arg["index"] = value.get<uint64_t>();
      } else if (key == "value" || key == "valueTwo") {
        if (!value.is_number_unsigned()) return Bad(Join(w, key), "expected an unsigned integer");
        arg[key] = value.get<uint64_t>();
      } else if (key == "op") {
        if (!value.is_string() || KnownOps().count(value.get<std::string>()) == 0) {
          return Bad(w + ".op", "unknown comparison");
        }
        arg["op"] = value;
      } else {
        return Bad(Join(w, key), "unknown field");
      }
    }
    if (!arg.contains("index") || !arg.contains("op") || !arg.contains("value")) {
      return Bad(w, "needs index, value and op");
    }
    if (!arg.contains("valueTwo")) arg["valueTwo"] = 0;
    out.push_back(std::move(arg));
  }
  return out;
}

StatusOr<int> ParseErrno(const json& j, const std::string& where) {
  if (!j.is_number_unsigned() || j.get<uint64_t>() > 4095) return Bad(where, "expected 0..4095");
  return static_cast<int>(j.get<uint64_t>());
}

}  // namespace

StatusOr<SeccompTarget> HostSeccompTarget() {
  struct utsname u {};
  if (uname(&u) != 0) return ErrnoStatus("uname", errno);
  SeccompTarget t;
  t.machine = u.machine;
  std::string_view release(u.release);
  size_t end = release.find_first_not_of("0123456789.");
  std::string_view mm = release.substr(0, end);
  size_t second_dot = mm.find('.', mm.find('.') + 1);
  if (second_dot != std::string_view::npos) mm = mm.substr(0, second_dot);
  RETURN_IF_ERROR(ParseMajorMinor(mm, &t.kernel_major, &t.kernel_minor,
                                  "uname release " + std::string(release)));
  return t;
}

StatusOr<json> ResolveDockerSeccomp(const json& profile, const SeccompTarget& target) {
  if (!profile.is_object()) return Bad("(top)", "expected a JSON object");
  const ArchInfo* arch = FindArch(target.machine);
  if (arch == nullptr) return Bad("target", "unsupported machine '" + target.machine + "'");
  for (const auto& [key, value] : profile.items()) {
    static const std::set<std::string> kKnown = {"defaultAction", "defaultErrnoRet", "archMap",
                                                 "architectures", "syscalls"};
    if (kKnown.count(key) == 0) return Bad(key, "unknown field");
  }
  json out = json::object();
  if (!profile.contains("defaultAction") || !profile["defaultAction"].is_string() ||
      KnownActions().count(profile["defaultAction"].get<std::string>()) == 0) {
    return Bad("defaultAction", "missing or unknown action");
  }
  out["defaultAction"] = profile["defaultAction"];
  if (profile.contains("defaultErrnoRet")) {
    ASSIGN_OR_RETURN(int e, ParseErrno(profile["defaultErrnoRet"], "defaultErrnoRet"));
    out["defaultErrnoRet"] = e;
  }

  // Architectures: moby takes the archMap entry of the native architecture
  // (plus its sub-architectures); a plain `architectures` list is used as is.
  json arches = json::array();
  if (profile.contains("archMap") && profile.contains("architectures")) {
    return Bad("architectures", "give archMap or architectures, not both");
  }
  if (profile.contains("archMap")) {
    const json& map = profile["archMap"];
    if (!map.is_array()) return Bad("archMap", "expected an array");
    for (size_t i = 0; i < map.size(); ++i) {
      const std::string w = "archMap[" + std::to_string(i) + "]";
      if (!map[i].is_object() || !map[i].contains("architecture") ||
          !map[i]["architecture"].is_string()) {
        return Bad(w, "expected {architecture, subArchitectures}");
      }
      if (map[i]["architecture"] != arch->scmp) continue;
      arches.push_back(map[i]["architecture"]);
      if (map[i].contains("subArchitectures") && !map[i]["subArchitectures"].is_null()) {
        ASSIGN_OR_RETURN(std::vector<std::string> subs,
                         StringArray(map[i]["subArchitectures"], w + ".subArchitectures"));
        for (const std::string& s : subs) arches.push_back(s);
      }
      break;
    }
    if (arches.empty()) {
      return Bad("archMap", "no entry for this machine's architecture " + std::string(arch->scmp));
    }
  } else if (profile.contains("architectures")) {
    ASSIGN_OR_RETURN(std::vector<std::string> list,
                     StringArray(profile["architectures"], "architectures"));
    arches = list;
  } else {
    arches.push_back(arch->scmp);
  }
  out["architectures"] = arches;

  if (!profile.contains("syscalls") || !profile["syscalls"].is_array()) {
    return Bad("syscalls", "missing or not an array");
  }
  const json& rules = profile["syscalls"];
  json resolved = json::array();
  for (size_t i = 0; i < rules.size(); ++i) {
    const std::string w = "syscalls[" + std::to_string(i) + "]";
    const json& rule = rules[i];
    if (!rule.is_object()) return Bad(w, "expected an object");
    std::vector<std::string> names;
    std::string action;
    json out_rule = json::object();
    Conditions includes, excludes;
    for (const auto& [key, value] : rule.items()) {
      if (key == "names") {
        ASSIGN_OR_RETURN(std::vector<std::string> n, StringArray(value, w + ".names"));
        names.insert(names.end(), n.begin(), n.end());
      } else if (key == "name") {
        if (!value.is_string()) return Bad(w + ".name", "expected a string");
        names.push_back(value.get<std::string>());
      } else if (key == "action") {
        if (!value.is_string() || KnownActions().count(value.get<std::string>()) == 0) {
          return Bad(w + ".action", "missing or unknown action");
        }
        action = value.get<std::string>();
      } else if (key == "errnoRet") {
        ASSIGN_OR_RETURN(int e, ParseErrno(value, w + ".errnoRet"));
        out_rule["errnoRet"] = e;
      } else if (key == "args") {
        ASSIGN_OR_RETURN(json args, ResolveArgs(value, w + ".args"));
        if (!args.empty()) out_rule["args"] = std::move(args);
      } else if (key == "includes") {
        ASSIGN_OR_RETURN(includes, ParseConditions(value, w + ".includes"));
      } else if (key == "excludes") {
        ASSIGN_OR_RETURN(excludes, ParseConditions(value, w + ".excludes"));
      } else if (key == "comment") {
        if (!value.is_string()) return Bad(w + ".comment", "expected a string");
      } else {
        return Bad(Join(w, key), "unknown field");
      }
    }
    if (action.empty()) return Bad(w + ".action", "missing");
    if (names.empty()) return Bad(w + ".names", "missing or empty");
    // moby's evaluation: every included cap held, the target's arch among the
    // included arches, the kernel new enough; no excluded cap held and the
    // arch not excluded.
    bool applies = true;
    for (const std::string& cap : includes.caps) applies = applies && Has(target.capabilities, cap);
    if (!includes.arches.empty()) applies = applies && Has(includes.arches, arch->go_arch);
    if (includes.has_min_kernel) {
      applies = applies && KernelAtLeast(target, includes.min_major, includes.min_minor);
    }
    for (const std::string& cap : excludes.caps)
      applies = applies && !Has(target.capabilities, cap);
    if (!excludes.arches.empty()) applies = applies && !Has(excludes.arches, arch->go_arch);
    if (excludes.has_min_kernel) {
      applies = applies && !KernelAtLeast(target, excludes.min_major, excludes.min_minor);
    }
    if (!applies) continue;
    out_rule["names"] = names;
    out_rule["action"] = action;
    resolved.push_back(std::move(out_rule));
  }
  out["syscalls"] = std::move(resolved);
  return out;
}

const std::vector<std::string>& TightenedDenies() {
  static const std::vector<std::string> kDenies = {
      // async and kernel-extension surfaces with a history of escapes
      "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd", "bpf",
      "perf_event_open",
      // the kernel keyring is not namespaced
      "keyctl", "add_key", "request_key",
      // looking at or into other processes
      "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
      // file handles bypass path checks
      "open_by_handle_at", "name_to_handle_at",
      // mounts and namespaces
      "mount", "umount", "umount2", "unshare", "setns", "pivot_root", "chroot", "fsopen",
      "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
      // the machine itself
      "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
      "swapon", "swapoff", "acct", "syslog", "lookup_dcookie", "quotactl", "quotactl_fd", "iopl",
      "ioperm", "settimeofday", "clock_settime", "sethostname", "setdomainname", "vhangup",
      "uselib", "nfsservctl"};
  return kDenies;
}

namespace {

constexpr uint64_t kEperm = 1;
constexpr uint64_t kEnosys = 38;
// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
// CLONE_NEWPID | CLONE_NEWNET: the mask Docker filters clone's flags with.
constexpr uint64_t kCloneNamespaceFlags = 0x7E020000;
constexpr uint64_t kMfdNoexecSeal = 0x0008;
// socket(2) domains and types.
constexpr uint64_t kAfUnix = 1, kAfInet = 2, kAfInet6 = 10, kAfNetlink = 16;
constexpr uint64_t kSockStream = 1, kSockDgram = 2, kSockTypeMask = 0xf;
constexpr uint64_t kNetlinkRoute = 0;

json Arg(uint64_t index, const char* op, uint64_t value, uint64_t value_two = 0) {
  return json{{"index", index}, {"value", value}, {"valueTwo", value_two}, {"op", op}};
}

json Rule(const std::string& name, const char* action, json args = json::array()) {
  json r = {{"names", json::array({name})}, {"action", action}};
  if (!args.empty()) r["args"] = std::move(args);
  return r;
}

}  // namespace

StatusOr<json> TightenSeccomp(const json& profile, const std::vector<std::string>& extra_denies) {
  if (!profile.is_object() || !profile.contains("defaultAction") ||
      !profile["defaultAction"].is_string() || !profile.contains("architectures") ||
      !profile["architectures"].is_array() || profile["architectures"].empty() ||
      !profile["architectures"][0].is_string() || !profile.contains("syscalls") ||
      !profile["syscalls"].is_array()) {
    return Bad("(top)", "not a resolved OCI profile (defaultAction, architectures, syscalls)");
  }
  static const std::set<std::string> kDenying = {"SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                                                 "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                                 "SCMP_ACT_TRAP"};
  const std::string default_action = profile["defaultAction"].get<std::string>();
  if (kDenying.count(default_action) == 0) {
    return Bad("defaultAction", "'" + default_action + "': a profile must deny by default");
  }
  for (const std::string& name : extra_denies) {
    bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
    if (!ok) return Bad("extra_denies", "'" + name.substr(0, 64) + "': not a syscall name");
  }

  std::set<std::string> denies(TightenedDenies().begin(), TightenedDenies().end());
  denies.insert(extra_denies.begin(), extra_denies.end());
  // Syscalls whose rules Tighten writes itself (unless the policy denies them outright).
  const std::set<std::string> rewritten = {"clone", "clone3", "personality", "socket",
                                           "memfd_create"};
  std::set<std::string> removed = denies;
  removed.insert(rewritten.begin(), rewritten.end());

  json out = profile;
  const std::string native = profile["architectures"][0].get<std::string>();
  out["architectures"] = json::array({native});
  json rules = json::array();
  for (size_t i = 0; i < profile["syscalls"].size(); ++i) {
    const json& rule = profile["syscalls"][i];
    const std::string w = "syscalls[" + std::to_string(i) + "]";
    if (!rule.is_object() || !rule.contains("names") || !rule.contains("action")) {
      return Bad(w, "expected {names, action}");
    }
    ASSIGN_OR_RETURN(std::vector<std::string> names, StringArray(rule["names"], w + ".names"));
    json kept = json::array();
    for (const std::string& n : names) {
      if (removed.count(n) == 0) kept.push_back(n);
    }
    if (kept.empty()) continue;
    json r = rule;
    r["names"] = std::move(kept);
    rules.push_back(std::move(r));
  }

  auto allowed = [&](const std::string& name) { return denies.count(name) == 0; };
  // clone's flags are its first argument except on s390x.
  const uint64_t clone_flags_arg = native == "SCMP_ARCH_S390X" ? 1 : 0;
  if (allowed("clone")) {
    rules.push_back(Rule("clone", "SCMP_ACT_ALLOW",
                         {Arg(clone_flags_arg, "SCMP_CMP_MASKED_EQ", kCloneNamespaceFlags, 0)}));
  }
  if (allowed("personality")) {
    // Docker's list: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query
    // 0xffffffff.
    for (uint64_t persona :
         {uint64_t{0}, uint64_t{8}, uint64_t{0x20000}, uint64_t{0x20008}, uint64_t{0xffffffff}}) {
      rules.push_back(Rule("personality", "SCMP_ACT_ALLOW", {Arg(0, "SCMP_CMP_EQ", persona)}));
    }
  }
  if (allowed("socket")) {
    rules.push_back(Rule("socket", "SCMP_ACT_ALLOW", {Arg(0, "SCMP_CMP_EQ", kAfUnix)}));
    for (uint64_t domain : {kAfInet, kAfInet6}) {
      for (uint64_t type : {kSockStream, kSockDgram}) {
        rules.push_back(Rule(
            "socket", "SCMP_ACT_ALLOW",
            {Arg(0, "SCMP_CMP_EQ", domain), Arg(1, "SCMP_CMP_MASKED_EQ", kSockTypeMask, type)}));
      }
    }
    // glibc's getaddrinfo asks the kernel for local addresses over NETLINK_ROUTE.
    rules.push_back(
        Rule("socket", "SCMP_ACT_ALLOW",
             {Arg(0, "SCMP_CMP_EQ", kAfNetlink), Arg(2, "SCMP_CMP_EQ", kNetlinkRoute)}));
  }
  if (allowed("memfd_create")) {
    rules.push_back(Rule("memfd_create", "SCMP_ACT_ALLOW",
                         {Arg(1, "SCMP_CMP_MASKED_EQ", kMfdNoexecSeal, kMfdNoexecSeal)}));
  }
  if (allowed("clone3")) {
    json r = Rule("clone3", "SCMP_ACT_ERRNO");
    r["errnoRet"] = kEnosys;
    rules.push_back(std::move(r));
  }
  json deny_names = json::array();
  for (const std::string& n : denies) deny_names.push_back(n);
  json deny = {
      {"names", std::move(deny_names)}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", kEperm}};
  rules.push_back(std::move(deny));
  out["syscalls"] = std::move(rules);
  return out;
}

StatusOr<json> LoadDockerSeccompProfile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxSeccompProfileBytes));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(path + ": not valid JSON");
  return j;
}

StatusOr<std::string> DefaultSeccompProfilePath() {
  std::string exe(4096, '\0');
  ssize_t n = readlink("/proc/self/exe", exe.data(), exe.size());
  if (n < 0) return ErrnoStatus("readlink /proc/self/exe", errno);
  if (static_cast<size_t>(n) >= exe.size()) return Internal("/proc/self/exe: path too long");
  exe.resize(static_cast<size_t>(n));
  std::string dir = exe.substr(0, exe.rfind('/'));
  return dir + "/../share/cce/seccomp/docker-default.json";
}

StatusOr<json> BuildSeccompProfile(const std::string& profile_path, const IsolationPolicy& policy) {
  ASSIGN_OR_RETURN(json docker, LoadDockerSeccompProfile(profile_path));
  ASSIGN_OR_RETURN(SeccompTarget target, HostSeccompTarget());
  target.capabilities = policy.capabilities;  // always empty: ValidateIsolationPolicy
  StatusOr<json> resolved = ResolveDockerSeccomp(docker, target);
  if (!resolved.ok()) return resolved.status().WithContext(profile_path);
  return TightenSeccomp(*resolved, policy.seccomp_extra_denies);
}

}  // namespace cce::executor
