#include "executor/policy.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>
#include <functional>
#include <map>
#include <set>

namespace cce::executor {

const std::vector<std::string>& MandatoryNamespaces() {
  static const std::vector<std::string> kNamespaces = {"pid",    "ipc",     "uts", "mount",
                                                       "cgroup", "network", "user"};
  return kNamespaces;
}

const std::vector<std::string>& MandatoryMaskedPaths() {
  static const std::vector<std::string> kPaths = {
      // runc's defaults (`runc spec`)
      "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
      "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
      // Docker's additions
      "/proc/interrupts", "/sys/devices/virtual/powercap",
      // ours: kernel addresses and logs, LSM and debug interfaces
      "/proc/kallsyms", "/proc/kmsg", "/proc/sysrq-trigger", "/sys/kernel/security",
      "/sys/kernel/debug", "/sys/kernel/tracing", "/sys/fs/bpf"};
  return kPaths;
}

const std::vector<std::string>& MandatoryReadonlyPaths() {
  static const std::vector<std::string> kPaths = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                                  "/proc/sysrq-trigger"};
  return kPaths;
}

namespace {

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// An absolute path without empty, "." or ".." parts, trailing '/', or
// characters outside [A-Za-z0-9._/-] (paths also end up in AppArmor rules).
bool IsCleanAbsolutePath(const std::string& p) {
  if (p.size() < 2 || p.front() != '/' || p.back() == '/' || p.size() > 4096) return false;
  for (char c : p) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '/';
    if (!ok) return false;
  }
  size_t start = 1;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string_view part = std::string_view(p).substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

bool IsSyscallName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

Status Bad(const std::string& field, const std::string& why) {
  return InvalidArgument("policy: " + field + ": " + why);
}

}  // namespace

Status ValidateIsolationPolicy(const IsolationPolicy& p) {
  if (p.host_id_base < 65536) {
    return Bad("user_namespace.host_id_base",
               std::to_string(p.host_id_base) +
                   ": must be >= 65536 so no container id maps to host root or a host user");
  }
  if (p.id_map_size < 65536 || p.id_map_size > 1u << 24) {
    return Bad("user_namespace.size", "must be in 65536..16777216");
  }
  if (uint64_t{p.host_id_base} + p.id_map_size > uint64_t{0xffffffff}) {
    return Bad("user_namespace", "host_id_base + size must stay below 4294967295");
  }
  if (p.uid == 0) return Bad("user.uid", "0: the container user must not be root");
  if (p.gid == 0) return Bad("user.gid", "0: the container group must not be root's");
  if (p.uid >= p.id_map_size) return Bad("user.uid", "outside the user namespace mapping");
  if (p.gid >= p.id_map_size) return Bad("user.gid", "outside the user namespace mapping");
  if (!p.readonly_rootfs) {
    return Bad("readonly_rootfs", "false: the root file system is always read-only (mandatory)");
  }
  if (!p.capabilities.empty()) {
    return Bad("capabilities", "'" + p.capabilities.front() +
                                   "': the container gets no capability at all (mandatory)");
  }
  for (const std::string& ns : MandatoryNamespaces()) {
    if (!Contains(p.namespaces, ns)) {
      return Bad("namespaces", "'" + ns + "' missing: every namespace is new (mandatory)");
    }
  }
  for (const std::string& ns : p.namespaces) {
    if (!Contains(MandatoryNamespaces(), ns)) return Bad("namespaces", "'" + ns + "': unknown");
  }
  if (p.namespaces.size() != MandatoryNamespaces().size()) {
    return Bad("namespaces", "a namespace is listed twice");
  }
  if (!p.network_loopback_only) {
    return Bad("network", "the container's network is loopback only (mandatory)");
  }
  if (!p.no_new_privileges) {
    return Bad("no_new_privileges", "false: no_new_privileges is always set (mandatory)");
  }
  if (p.rlimit_nofile < 16 || p.rlimit_nofile > (1u << 20)) {
    return Bad("rlimits.nofile", "must be in 16..1048576");
  }
  if (p.rlimit_memlock_bytes > 64 * kMiB) {
    return Bad("rlimits.memlock_bytes", "must be at most 67108864");
  }
  auto check_paths = [](const std::vector<std::string>& paths,
                        const std::vector<std::string>& mandatory,
                        const std::string& field) -> Status {
    for (const std::string& m : mandatory) {
      if (!Contains(paths, m)) return Bad(field, "'" + m + "' missing: it is mandatory");
    }
    std::set<std::string> seen;
    for (const std::string& path : paths) {
      if (!IsCleanAbsolutePath(path)) {
        return Bad(field, "'" + path + "': expected an absolute path of [A-Za-z0-9._-] parts");
      }
      if (path.rfind("/proc/", 0) != 0 && path.rfind("/sys/", 0) != 0) {
        return Bad(field, "'" + path + "': must be under /proc or /sys");
      }
      if (!seen.insert(path).second) return Bad(field, "'" + path + "' listed twice");
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(check_paths(p.masked_paths, MandatoryMaskedPaths(), "masked_paths"));
  RETURN_IF_ERROR(check_paths(p.readonly_paths, MandatoryReadonlyPaths(), "readonly_paths"));
  if (p.tmp_max_bytes < kMiB || p.tmp_max_bytes > uint64_t{65536} * kMiB) {
    return Bad("tmp.size_mib", "must be in 1..65536");
  }
  if (p.shm_max_bytes < kMiB || p.shm_max_bytes > uint64_t{65536} * kMiB) {
    return Bad("shm.size_mib", "must be in 1..65536");
  }
  if (p.output_max_bytes < kMiB || p.output_max_bytes > uint64_t{1048576} * kMiB) {
    return Bad("output.max_mib", "must be in 1..1048576");
  }
  if (p.memory_mib < 16 || p.memory_mib > (1u << 24)) {
    return Bad("memory_mib", "must be in 16..16777216");
  }
  if (p.pids_max < 8 || p.pids_max > (1 << 22)) return Bad("pids_max", "must be in 8..4194304");
  if (!(p.cpus >= 0.01 && p.cpus <= 1024)) return Bad("cpus", "must be in 0.01..1024");
  if (p.timeout_seconds < 1 || p.timeout_seconds > int64_t{30} * 86400) {
    return Bad("timeout_seconds", "must be in 1..2592000");
  }
  if (p.max_stdout_bytes > 1024 * kMiB) return Bad("max_stdout_bytes", "at most 1073741824");
  if (p.max_stderr_bytes > 1024 * kMiB) return Bad("max_stderr_bytes", "at most 1073741824");
  for (const std::string& name : p.seccomp_extra_denies) {
    if (!IsSyscallName(name)) {
      return Bad("seccomp.extra_denies", "'" + name + "': expected a syscall name [a-z0-9_]");
    }
  }
  if (p.oom_score_adj < 0 || p.oom_score_adj > 1000) {
    return Bad("oom_score_adj",
               "must be in 0..1000: the container is never less killable than "
               "the agent");
  }
  return Status::Ok();
}

namespace {

// A strict reader of one YAML mapping: each known key is bound to a handler;
// unknown and repeated keys are errors. Errors name file:line:col and field.
class FieldReader {
 public:
  using Handler = std::function<Status(const YAML::Node&, const std::string& field)>;

  FieldReader(std::string source, std::string prefix)
      : source_(std::move(source)), prefix_(std::move(prefix)) {}

  void On(const std::string& key, Handler h) { handlers_[key] = std::move(h); }

  Status Read(const YAML::Node& node) {
    if (!node.IsMap())
      return Error(node, prefix_.empty() ? "(top)" : prefix_, "expected a mapping");
    std::set<std::string> seen;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) return Error(kv.first, prefix_ + "?", "expected a string key");
      const std::string key = kv.first.Scalar();
      const std::string field = prefix_.empty() ? key : prefix_ + "." + key;
      if (!seen.insert(key).second) return Error(kv.first, field, "repeated field");
      auto it = handlers_.find(key);
      if (it == handlers_.end()) return Error(kv.first, field, "unknown field");
      RETURN_IF_ERROR(it->second(kv.second, field));
    }
    return Status::Ok();
  }

  Status Error(const YAML::Node& at, const std::string& field, const std::string& why) const {
    const YAML::Mark m = at.Mark();
    return InvalidArgument(source_ + ":" + std::to_string(m.line + 1) + ":" +
                           std::to_string(m.column + 1) + ": " + field + ": " + why);
  }

  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::string prefix_;
  std::map<std::string, Handler> handlers_;
};

StatusOr<uint64_t> ReadUint(const FieldReader& r, const YAML::Node& v, const std::string& field,
                            uint64_t min, uint64_t max) {
  std::string why = "expected an integer in " + std::to_string(min) + ".." + std::to_string(max);
  if (!v.IsScalar()) return r.Error(v, field, why);
  const std::string& s = v.Scalar();
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || n < min || n > max) {
    return r.Error(v, field, why + ", got '" + s.substr(0, 40) + "'");
  }
  return n;
}

StatusOr<bool> ReadBool(const FieldReader& r, const YAML::Node& v, const std::string& field) {
  if (v.IsScalar() && v.Tag() != "!") {  // a quoted "true" is a string, not a bool
    if (v.Scalar() == "true") return true;
    if (v.Scalar() == "false") return false;
  }
  return r.Error(v, field, "expected true or false");
}

StatusOr<std::vector<std::string>> ReadStringList(const FieldReader& r, const YAML::Node& v,
                                                  const std::string& field) {
  if (!v.IsSequence()) return r.Error(v, field, "expected a list of strings");
  std::vector<std::string> out;
  for (const auto& item : v) {
    if (!item.IsScalar()) return r.Error(item, field, "expected a list of strings");
    out.push_back(item.Scalar());
  }
  return out;
}

// A mandatory boolean: only the safe value is accepted.
FieldReader::Handler MustBe(const FieldReader& r, bool safe, const std::string& why) {
  return [&r, safe, why](const YAML::Node& v, const std::string& field) -> Status {
    ASSIGN_OR_RETURN(bool b, ReadBool(r, v, field));
    if (b != safe) return r.Error(v, field, std::string(b ? "true" : "false") + ": " + why);
    return Status::Ok();
  };
}

Status AppendPaths(const FieldReader& r, const YAML::Node& v, const std::string& field,
                   std::vector<std::string>* paths) {
  ASSIGN_OR_RETURN(std::vector<std::string> extra, ReadStringList(r, v, field));
  for (const std::string& p : extra) {
    if (!Contains(*paths, p)) paths->push_back(p);
  }
  return Status::Ok();
}

Status ParseInto(const YAML::Node& root, const std::string& source, IsolationPolicy* p) {
  FieldReader top(source, "");
  top.On("user_namespace", [&](const YAML::Node& v, const std::string&) {
    FieldReader r(source, "user_namespace");
    r.On("host_id_base", [&](const YAML::Node& n, const std::string& f) -> Status {
      ASSIGN_OR_RETURN(uint64_t x, ReadUint(r, n, f, 65536, 0xfeffffff));
      p->host_id_base = static_cast<uint32_t>(x);
      return Status::Ok();
    });
    r.On("size", [&](const YAML::Node& n, const std::string& f) -> Status {
      ASSIGN_OR_RETURN(uint64_t x, ReadUint(r, n, f, 65536, 1u << 24));
      p->id_map_size = static_cast<uint32_t>(x);
      return Status::Ok();
    });
    return r.Read(v);
  });
  top.On("user", [&](const YAML::Node& v, const std::string&) {
    FieldReader r(source, "user");
    auto id = [&](uint32_t* out) {
      return [&r, out](const YAML::Node& n, const std::string& f) -> Status {
        ASSIGN_OR_RETURN(uint64_t x, ReadUint(r, n, f, 0, 0xfffffffe));
        if (x == 0) return r.Error(n, f, "0: the container must not run as root (mandatory)");
        *out = static_cast<uint32_t>(x);
        return Status::Ok();
      };
    };
    r.On("uid", id(&p->uid));
    r.On("gid", id(&p->gid));
    return r.Read(v);
  });
  top.On("readonly_rootfs", MustBe(top, true, "the root file system is always read-only"));
  top.On("no_new_privileges", MustBe(top, true, "no_new_privileges is always set"));
  top.On("capabilities", [&](const YAML::Node& v, const std::string& f) -> Status {
    ASSIGN_OR_RETURN(std::vector<std::string> caps, ReadStringList(top, v, f));
    if (!caps.empty()) {
      return top.Error(v, f,
                       "'" + caps.front().substr(0, 40) +
                           "': the container gets no capability at all; the list must be empty");
    }
    return Status::Ok();
  });
  top.On("namespaces", [&](const YAML::Node& v, const std::string& f) -> Status {
    ASSIGN_OR_RETURN(std::vector<std::string> ns, ReadStringList(top, v, f));
    for (const std::string& n : ns) {
      if (!Contains(MandatoryNamespaces(), n)) return top.Error(v, f, "'" + n + "': unknown");
    }
    for (const std::string& m : MandatoryNamespaces()) {
      if (!Contains(ns, m)) {
        return top.Error(v, f, "'" + m + "' missing: every namespace is new (mandatory)");
      }
    }
    return Status::Ok();
  });
  top.On("network", [&](const YAML::Node& v, const std::string& f) -> Status {
    if (!v.IsScalar() || v.Scalar() != "loopback") {
      return top.Error(v, f, "only 'loopback' is allowed: the container has no other network");
    }
    return Status::Ok();
  });
  top.On("rlimits", [&](const YAML::Node& v, const std::string&) {
    FieldReader r(source, "rlimits");
    r.On("nofile", [&](const YAML::Node& n, const std::string& f) -> Status {
      ASSIGN_OR_RETURN(p->rlimit_nofile, ReadUint(r, n, f, 16, 1u << 20));
      return Status::Ok();
    });
    r.On("memlock_bytes", [&](const YAML::Node& n, const std::string& f) -> Status {
      ASSIGN_OR_RETURN(p->rlimit_memlock_bytes, ReadUint(r, n, f, 0, 64 * kMiB));
      return Status::Ok();
    });
    r.On("core", [&](const YAML::Node& n, const std::string& f) -> Status {
      ASSIGN_OR_RETURN(uint64_t x, ReadUint(r, n, f, 0, 0));
      (void)x;
      return Status::Ok();
    });
    return r.Read(v);
  });
  top.On("masked_paths", [&](const YAML::Node& v, const std::string& f) {
    return AppendPaths(top, v, f, &p->masked_paths);
  });
  top.On("readonly_paths", [&](const YAML::Node& v, const std::string& f) {
    return AppendPaths(top, v, f, &p->readonly_paths);
  });
  top.On("tmp", [&](const YAML::Node& v, const std::string&) {
    FieldReader r(source, "tmp");
    r.On("size_mib", [&](const YAML::Node& n, const std::string& f) -> Status {
      ASSIGN_OR_RETURN(uint64_t x, ReadUint(r, n, f, 1, 65536));
      p->tmp_max_bytes = x * kMiB;
      return Status::Ok();
    });
    r.On("exec", [&](const YAML::Node& n, const std::string& f) -> Status {
      ASSIGN_OR_RETURN(p->tmp_exec, ReadBool(r, n, f));
      return Status::Ok();
    });
    return r.Read(v);
  });
  top.On("shm", [&](const YAML::Node& v, const std::string&) {
    FieldReader r(source, "shm");
    r.On("size_mib", [&](const YAML::Node& n, const std::string& f) -> Status {
      ASSIGN_OR_RETURN(uint64_t x, ReadUint(r, n, f, 1, 65536));
      p->shm_max_bytes = x * kMiB;
      return Status::Ok();
    });
    return r.Read(v);
  });
  top.On("output", [&](const YAML::Node& v, const std::string&) {
    FieldReader r(source, "output");
    r.On("max_mib", [&](const YAML::Node& n, const std::string& f) -> Status {
      ASSIGN_OR_RETURN(uint64_t x, ReadUint(r, n, f, 1, 1u << 20));
      p->output_max_bytes = x * kMiB;
      return Status::Ok();
    });
    return r.Read(v);
  });
  top.On("memory_mib", [&](const YAML::Node& v, const std::string& f) -> Status {
    ASSIGN_OR_RETURN(p->memory_mib, ReadUint(top, v, f, 16, 1u << 24));
    return Status::Ok();
  });
  top.On("pids_max", [&](const YAML::Node& v, const std::string& f) -> Status {
    ASSIGN_OR_RETURN(uint64_t x, ReadUint(top, v, f, 8, 1u << 22));
    p->pids_max = static_cast<int64_t>(x);
    return Status::Ok();
  });
  top.On("cpus", [&](const YAML::Node& v, const std::string& f) -> Status {
    const std::string s = v.IsScalar() ? v.Scalar() : "";
    double d = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(d) ||
        d < 0.01 || d > 1024) {
      return top.Error(v, f, "expected a number in 0.01..1024");
    }
    p->cpus = d;
    return Status::Ok();
  });
  top.On("timeout_seconds", [&](const YAML::Node& v, const std::string& f) -> Status {
    ASSIGN_OR_RETURN(uint64_t x, ReadUint(top, v, f, 1, uint64_t{30} * 86400));
    p->timeout_seconds = static_cast<int64_t>(x);
    return Status::Ok();
  });
  top.On("max_stdout_bytes", [&](const YAML::Node& v, const std::string& f) -> Status {
    ASSIGN_OR_RETURN(p->max_stdout_bytes, ReadUint(top, v, f, 0, 1024 * kMiB));
    return Status::Ok();
  });
  top.On("max_stderr_bytes", [&](const YAML::Node& v, const std::string& f) -> Status {
    ASSIGN_OR_RETURN(p->max_stderr_bytes, ReadUint(top, v, f, 0, 1024 * kMiB));
    return Status::Ok();
  });
  top.On("seccomp", [&](const YAML::Node& v, const std::string&) {
    FieldReader r(source, "seccomp");
    r.On("extra_denies", [&](const YAML::Node& n, const std::string& f) -> Status {
      ASSIGN_OR_RETURN(std::vector<std::string> names, ReadStringList(r, n, f));
      for (const std::string& name : names) {
        if (!IsSyscallName(name)) {
          return r.Error(n, f, "'" + name.substr(0, 64) + "': expected a syscall name [a-z0-9_]");
        }
        if (!Contains(p->seccomp_extra_denies, name)) p->seccomp_extra_denies.push_back(name);
      }
      return Status::Ok();
    });
    return r.Read(v);
  });
  top.On("oom_score_adj", [&](const YAML::Node& v, const std::string& f) -> Status {
    ASSIGN_OR_RETURN(uint64_t x, ReadUint(top, v, f, 0, 1000));
    p->oom_score_adj = static_cast<int>(x);
    return Status::Ok();
  });
  return top.Read(root);
}

}  // namespace

StatusOr<IsolationPolicy> LoadIsolationPolicy(std::string_view yaml_text,
                                              std::string_view source_name) {
  const std::string source(source_name);
  if (yaml_text.size() > kMaxPolicyBytes) {
    return InvalidArgument(source + ": larger than " + std::to_string(kMaxPolicyBytes) + " bytes");
  }
  IsolationPolicy policy;
  // yaml-cpp reports errors by exception: this is the one boundary that turns them into Status.
  try {
    YAML::Node root = YAML::Load(std::string(yaml_text));
    if (root.IsNull()) {
      // An empty file: all defaults.
    } else {
      RETURN_IF_ERROR(ParseInto(root, source, &policy));
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  } catch (const std::exception& e) {
    return InvalidArgument(source + ": " + e.what());
  }
  RETURN_IF_ERROR(ValidateIsolationPolicy(policy).WithContext(source));
  return policy;
}

}  // namespace cce::executor
