#include "executor/cgroups.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <set>
#include <thread>

#include "base/fd.h"

namespace cce::executor {
namespace {

constexpr const char* kCgroupFsRoot = "/sys/fs/cgroup";
constexpr int64_t kCfsPeriodUs = 100000;
constexpr auto kKillDeadline = std::chrono::seconds(10);

bool IsFsType(const std::string& path, int64_t magic) {
  struct statfs sf {};
  if (::statfs(path.c_str(), &sf) != 0) return false;
  return static_cast<int64_t>(sf.f_type) == magic;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

Status WriteCgFile(const std::string& dir, const char* name, const std::string& value) {
  std::string file = dir + "/" + name;
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return ErrnoStatus("cgroup: open " + file, errno);
  ssize_t n;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus("cgroup: write '" + value + "' to " + file, errno);
  if (static_cast<size_t>(n) != value.size()) {
    return {StatusCode::kIo, "cgroup: short write to " + file};
  }
  return Status::Ok();
}

StatusOr<std::string> ReadCgFile(const std::string& dir, const char* name) {
  std::string file = dir + "/" + name;
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return ErrnoStatus("cgroup: open " + file, errno);
  return ReadAll(fd.get(), 1 << 20, file);
}

constexpr const char* kUsedV1[] = {"cpu", "cpuacct", "memory", "pids", "freezer"};

// The roots Create and AddProcess use, deduplicated ("cpu" and "cpuacct" may
// share one), in a stable order.
std::vector<std::string> UsedRoots(const CgroupRoots& roots) {
  if (roots.mode == CgroupMode::kV2) return {roots.unified};
  std::set<std::string> uniq;
  for (const char* ctrl : kUsedV1) {
    if (auto it = roots.v1.find(ctrl); it != roots.v1.end()) uniq.insert(it->second);
  }
  return {uniq.begin(), uniq.end()};
}

// Every root KillAll and Destroy sweep.
std::vector<std::string> AllRoots(const CgroupRoots& roots) {
  if (roots.mode == CgroupMode::kV2) return {roots.unified};
  std::set<std::string> uniq;
  for (const auto& [name, root] : roots.v1) uniq.insert(root);
  if (roots.mode == CgroupMode::kHybrid && !roots.unified.empty()) uniq.insert(roots.unified);
  return {uniq.begin(), uniq.end()};
}

StatusOr<std::string> NormalizePath(const std::string& path) {
  std::string p = path;
  if (!p.empty() && p[0] == '/') p.erase(0, 1);
  if (p.empty()) return InvalidArgument("cgroup path '" + path + "': empty");
  if (p.size() > 1024) return InvalidArgument("cgroup path: longer than 1024 bytes");
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string_view comp(p.data() + start, end - start);
    if (comp.empty() || comp == "." || comp == "..") {
      return InvalidArgument("cgroup path '" + path + "': empty, '.' or '..' component");
    }
    for (char c : comp) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x21 || u == 0x7f) {
        return InvalidArgument("cgroup path '" + path + "': control or space character");
      }
    }
    start = end + 1;
  }
  return p;
}

std::vector<pid_t> ParsePids(const std::string& text) {
  std::vector<pid_t> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string::npos) j = text.size();
    std::string line = text.substr(i, j - i);
    if (!line.empty()) {
      char* endp = nullptr;
      errno = 0;
      long v = std::strtol(line.c_str(), &endp, 10);
      if (errno == 0 && endp && *endp == '\0' && v > 0 && v <= INT_MAX) {
        out.push_back(static_cast<pid_t>(v));
      }
    }
    i = j + 1;
  }
  return out;
}

// `dir` and every cgroup below it, deepest first.
void CollectTree(const std::string& dir, std::vector<std::string>* out) {
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || e->d_type != DT_DIR) continue;
      std::string child = dir;
      child += '/';
      child += name;
      CollectTree(child, out);
    }
    ::closedir(d);
    out->push_back(dir);
  }
}

std::set<pid_t> TreePids(const std::vector<std::string>& dirs) {
  std::set<pid_t> pids;
  for (const auto& dir : dirs) {
    auto text = ReadCgFile(dir, "cgroup.procs");
    if (!text.ok()) continue;
    for (pid_t p : ParsePids(*text)) pids.insert(p);
  }
  return pids;
}

// Creates root/rel one component at a time; records the dirs it made.
Status MkdirP(const std::string& root, const std::string& rel, std::vector<std::string>* made) {
  if (!Exists(root)) return NotFound("cgroup hierarchy " + root + ": does not exist");
  std::string cur = root;
  size_t start = 0;
  while (start < rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    cur += "/" + rel.substr(start, end - start);
    if (::mkdir(cur.c_str(), 0755) == 0) {
      made->push_back(cur);
    } else if (errno != EEXIST) {
      return ErrnoStatus("cgroup: mkdir " + cur, errno);
    } else {
      struct stat st {};
      if (::lstat(cur.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return {StatusCode::kIo, "cgroup: " + cur + " exists and is not a directory"};
      }
    }
    start = end + 1;
  }
  return Status::Ok();
}

Status RmdirRetry(const std::string& dir) {
  for (int attempt = 0;; ++attempt) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return Status::Ok();
    // A cgroup whose last task just exited may stay busy for a moment.
    if (errno != EBUSY || attempt >= 100) return ErrnoStatus("cgroup: rmdir " + dir, errno);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string CpuQuotaUs(double cpus) {
  auto q = static_cast<int64_t>(std::llround(cpus * static_cast<double>(kCfsPeriodUs)));
  return std::to_string(std::max<int64_t>(q, 1000));  // the kernel's minimum is 1 ms
}

Status WriteV1Limits(const CgroupRoots& roots, const std::string& rel, const CgroupLimits& l) {
  auto root_of = [&](const char* ctrl) -> StatusOr<std::string> {
    auto it = roots.v1.find(ctrl);
    if (it == roots.v1.end()) {
      return NotFound(std::string("cgroup v1: no '") + ctrl +
                      "' hierarchy for the requested limit");
    }
    return it->second + "/" + rel;
  };
  if (l.memory_bytes > 0) {
    ASSIGN_OR_RETURN(std::string dir, root_of("memory"));
    std::string v = std::to_string(l.memory_bytes);
    bool has_memsw = Exists(dir + "/memory.memsw.limit_in_bytes");
    Status s = WriteCgFile(dir, "memory.limit_in_bytes", v);
    // memsw must stay >= limit: when lowering a reused cgroup, memsw goes first.
    if (!s.ok() && has_memsw) {
      RETURN_IF_ERROR(WriteCgFile(dir, "memory.memsw.limit_in_bytes", v));
      s = WriteCgFile(dir, "memory.limit_in_bytes", v);
    }
    RETURN_IF_ERROR(s);
    if (has_memsw) RETURN_IF_ERROR(WriteCgFile(dir, "memory.memsw.limit_in_bytes", v));
    if (Exists(dir + "/memory.swappiness")) {
      RETURN_IF_ERROR(WriteCgFile(dir, "memory.swappiness", "0"));
    }
  }
  if (l.pids_max > 0) {
    ASSIGN_OR_RETURN(std::string dir, root_of("pids"));
    RETURN_IF_ERROR(WriteCgFile(dir, "pids.max", std::to_string(l.pids_max)));
  }
  if (l.cpus > 0) {
    ASSIGN_OR_RETURN(std::string dir, root_of("cpu"));
    RETURN_IF_ERROR(WriteCgFile(dir, "cpu.cfs_period_us", std::to_string(kCfsPeriodUs)));
    RETURN_IF_ERROR(WriteCgFile(dir, "cpu.cfs_quota_us", CpuQuotaUs(l.cpus)));
  }
  return Status::Ok();
}

Status WriteV2Limits(const std::string& root, const std::string& rel, const CgroupLimits& l) {
  // Enable the controllers in every ancestor's subtree_control, root first.
  std::vector<std::string> wanted;
  if (l.cpus > 0) wanted.emplace_back("cpu");
  if (l.memory_bytes > 0) wanted.emplace_back("memory");
  if (l.pids_max > 0) wanted.emplace_back("pids");
  std::string dir = root;
  size_t start = 0;
  while (true) {
    if (!wanted.empty()) {
      ASSIGN_OR_RETURN(std::string avail, ReadCgFile(dir, "cgroup.controllers"));
      std::set<std::string> have;
      size_t i = 0;
      while (i < avail.size()) {
        size_t j = avail.find_first_of(" \n", i);
        if (j == std::string::npos) j = avail.size();
        if (j > i) have.insert(avail.substr(i, j - i));
        i = j + 1;
      }
      std::string enable;
      for (const auto& c : wanted) {
        if (!have.count(c)) {
          std::string msg = "cgroup v2: controller '";
          msg += c;
          msg += "' not available in ";
          msg += dir;
          msg += "/cgroup.controllers";
          return NotFound(msg);
        }
        enable += (enable.empty() ? "+" : " +") + c;
      }
      RETURN_IF_ERROR(WriteCgFile(dir, "cgroup.subtree_control", enable));
    }
    size_t end = rel.find('/', start);
    if (end == std::string::npos) break;  // `dir` is now the leaf's parent
    dir += "/" + rel.substr(start, end - start);
    start = end + 1;
  }
  std::string leaf = root + "/" + rel;
  if (l.memory_bytes > 0) {
    RETURN_IF_ERROR(WriteCgFile(leaf, "memory.max", std::to_string(l.memory_bytes)));
    // memory.swap.max is absent when the kernel has no swap accounting; then
    // there is no swap to limit.
    if (Exists(leaf + "/memory.swap.max"))
      RETURN_IF_ERROR(WriteCgFile(leaf, "memory.swap.max", "0"));
  }
  if (l.pids_max > 0) RETURN_IF_ERROR(WriteCgFile(leaf, "pids.max", std::to_string(l.pids_max)));
  if (l.cpus > 0) {
    RETURN_IF_ERROR(
        WriteCgFile(leaf, "cpu.max", CpuQuotaUs(l.cpus) + " " + std::to_string(kCfsPeriodUs)));
  }
  return Status::Ok();
}

Status WaitFrozen(const std::string& dir, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    ASSIGN_OR_RETURN(std::string state, ReadCgFile(dir, "freezer.state"));
    if (state.rfind("FROZEN", 0) == 0) return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline) {
      std::string msg = "cgroup: ";
      msg += dir;
      msg += " did not freeze (state ";
      msg += state;
      msg += ")";
      return Unavailable(msg);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

std::string_view CgroupModeName(CgroupMode mode) {
  switch (mode) {
    case CgroupMode::kV1: return "v1";
    case CgroupMode::kV2: return "v2";
    case CgroupMode::kHybrid: return "hybrid";
  }
  return "unknown";
}

StatusOr<CgroupMode> DetectCgroupMode() {
  std::string root = kCgroupFsRoot;
  if (IsFsType(root, CGROUP2_SUPER_MAGIC)) return CgroupMode::kV2;
  if (!IsFsType(root, TMPFS_MAGIC)) {
    return NotFound(root + ": neither a cgroup2 mount nor a tmpfs of cgroup v1 hierarchies");
  }
  if (IsFsType(root + "/unified", CGROUP2_SUPER_MAGIC)) return CgroupMode::kHybrid;
  return CgroupMode::kV1;
}

StatusOr<CgroupRoots> DetectCgroupRoots() {
  ASSIGN_OR_RETURN(CgroupMode mode, DetectCgroupMode());
  CgroupRoots roots;
  roots.mode = mode;
  if (mode == CgroupMode::kV2) {
    roots.unified = kCgroupFsRoot;
    return roots;
  }
  if (mode == CgroupMode::kHybrid) roots.unified = std::string(kCgroupFsRoot) + "/unified";
  DIR* d = ::opendir(kCgroupFsRoot);
  if (d == nullptr) return ErrnoStatus(std::string("cgroup: opendir ") + kCgroupFsRoot, errno);
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string p = std::string(kCgroupFsRoot) + "/" + name;
    if (!IsFsType(p, CGROUP_SUPER_MAGIC)) continue;  // cgroup2 "unified" is not v1
    char real[PATH_MAX];
    if (::realpath(p.c_str(), real) == nullptr) continue;
    roots.v1[name] = real;
  }
  ::closedir(d);
  if (roots.v1.empty()) return NotFound("cgroup v1: no controller hierarchy under /sys/fs/cgroup");
  return roots;
}

StatusOr<Cgroup> Cgroup::Create(const std::string& path, const CgroupLimits& limits) {
  ASSIGN_OR_RETURN(CgroupRoots roots, DetectCgroupRoots());
  return Create(path, limits, roots);
}

StatusOr<Cgroup> Cgroup::Create(const std::string& path, const CgroupLimits& limits,
                                const CgroupRoots& roots) {
  if (limits.memory_bytes < 0 || limits.pids_max < 0 || !(limits.cpus >= 0) || limits.cpus > 4096) {
    return InvalidArgument("cgroup limits: negative or out-of-range value");
  }
  ASSIGN_OR_RETURN(std::string rel, NormalizePath(path));
  if (roots.mode == CgroupMode::kV2 && roots.unified.empty()) {
    return InvalidArgument("cgroup roots: v2 without a unified root");
  }
  std::vector<std::string> made;
  auto rollback = [&made] {
    std::for_each(made.rbegin(), made.rend(), [](const std::string& d) { ::rmdir(d.c_str()); });
  };
  for (const auto& root : UsedRoots(roots)) {
    Status s = MkdirP(root, rel, &made);
    if (!s.ok()) {
      rollback();
      return s;
    }
  }
  Status s = roots.mode == CgroupMode::kV2 ? WriteV2Limits(roots.unified, rel, limits)
                                           : WriteV1Limits(roots, rel, limits);
  if (!s.ok()) {
    rollback();
    return s.WithContext("cgroup " + rel);
  }
  return Cgroup(rel, roots);
}

StatusOr<Cgroup> Cgroup::Adopt(const std::string& path) {
  ASSIGN_OR_RETURN(CgroupRoots roots, DetectCgroupRoots());
  return Adopt(path, roots);
}

StatusOr<Cgroup> Cgroup::Adopt(const std::string& path, const CgroupRoots& roots) {
  ASSIGN_OR_RETURN(std::string rel, NormalizePath(path));
  return Cgroup(rel, roots);
}

std::vector<std::string> Cgroup::Dirs() const {
  std::vector<std::string> out;
  for (const auto& root : UsedRoots(roots_)) out.push_back(root + "/" + path_);
  return out;
}

std::vector<std::string> Cgroup::AllDirs() const {
  std::vector<std::string> out;
  for (const auto& root : AllRoots(roots_)) out.push_back(root + "/" + path_);
  return out;
}

Status Cgroup::AddProcess(pid_t pid) {
  if (pid <= 0) return InvalidArgument("cgroup AddProcess: bad pid " + std::to_string(pid));
  for (const auto& dir : Dirs()) {
    RETURN_IF_ERROR(WriteCgFile(dir, "cgroup.procs", std::to_string(pid)));
  }
  return Status::Ok();
}

std::vector<pid_t> Cgroup::Processes() const {
  std::vector<std::string> tree;
  for (const auto& dir : AllDirs()) CollectTree(dir, &tree);
  std::set<pid_t> pids = TreePids(tree);
  return {pids.begin(), pids.end()};
}

Status Cgroup::KillAll() {
  const auto deadline = std::chrono::steady_clock::now() + kKillDeadline;
  std::vector<std::string> tree;
  for (const auto& dir : AllDirs()) CollectTree(dir, &tree);
  if (tree.empty()) return Status::Ok();

  if (roots_.mode == CgroupMode::kV2) {
    std::string leaf = roots_.unified + "/" + path_;
    // cgroup.kill (Linux 5.14) kills the whole subtree atomically: no fork races.
    if (Exists(leaf + "/cgroup.kill")) RETURN_IF_ERROR(WriteCgFile(leaf, "cgroup.kill", "1"));
  }
  std::string freezer;
  if (auto it = roots_.v1.find("freezer");
      roots_.mode != CgroupMode::kV2 && it != roots_.v1.end()) {
    freezer = it->second + "/" + path_;
    if (!Exists(freezer + "/freezer.state")) freezer.clear();
  }
  while (true) {
    std::set<pid_t> pids = TreePids(tree);
    if (pids.empty()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      std::string list;
      for (pid_t p : pids) list += (list.empty() ? "" : ",") + std::to_string(p);
      return Unavailable("cgroup " + path_ + ": processes still alive after SIGKILL: " + list);
    }
    // Frozen tasks cannot fork, so the pid list read below is complete; the
    // SIGKILLs are delivered on thaw.
    if (!freezer.empty()) {
      RETURN_IF_ERROR(WriteCgFile(freezer, "freezer.state", "FROZEN"));
      Status fs = WaitFrozen(freezer, deadline);
      if (!fs.ok()) {
        (void)WriteCgFile(freezer, "freezer.state", "THAWED");
        return fs;
      }
      pids = TreePids(tree);
    }
    for (pid_t p : pids) ::kill(p, SIGKILL);
    if (!freezer.empty()) RETURN_IF_ERROR(WriteCgFile(freezer, "freezer.state", "THAWED"));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return Status::Ok();
}

Status Cgroup::Destroy() {
  RETURN_IF_ERROR(KillAll());
  Status first;
  for (const auto& dir : AllDirs()) {
    std::vector<std::string> tree;
    CollectTree(dir, &tree);  // deepest first
    for (const auto& d : tree) {
      Status s = RmdirRetry(d);
      if (!s.ok() && first.ok()) first = s;
    }
  }
  return first;
}

}  // namespace cce::executor
