// cce-sandbox-init: applies the Landlock ruleset inside the container, then
// execs the consumer's command. Linked statically so it runs in any image.
//
//   /.cce/sandbox-init [--verbose] --ro / --rw /output --rw /tmp -- CMD ARGS...
//
// Every filesystem right the kernel's ABI knows is handled; --ro paths get
// read+execute, --rw paths every right. TCP bind/connect are handled with no
// port rule (all denied, ABI >= 4); abstract unix sockets and signals are
// scoped to the sandbox (ABI >= 6). Then no_new_privs, restrict_self, execvp.
// It refuses to run the command without Landlock: there is no opt-out flag.
// Exit codes: 126 setup failure (message on stderr), 127 exec failure.
//
// Deliberately plain: raw syscalls, no exceptions, no allocation beyond argv.
#define CCE_LANDLOCK_NO_STATUS
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "executor/landlock.h"

namespace {

namespace ll = cce::executor::landlock;

constexpr int kSetupFailure = 126;
constexpr int kExecFailure = 127;
constexpr int kMaxPaths = 64;

[[noreturn]] void Fail(int code, const char* what, const char* detail) {
  dprintf(2, "cce-sandbox-init: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  _exit(code);
}

void PutJsonString(const char* s) {
  dprintf(2, "\"");
  for (const auto* p = reinterpret_cast<const unsigned char*>(s); *p; ++p) {
    if (*p == '"' || *p == '\\') {
      dprintf(2, "\\%c", *p);
    } else if (*p < 0x20 || *p == 0x7f) {
      dprintf(2, "\\u%04x", *p);
    } else {
      dprintf(2, "%c", *p);
    }
  }
  dprintf(2, "\"");
}

void PutJsonList(const char* key, const char* const* paths, int n) {
  dprintf(2, ",\"%s\":[", key);
  for (int i = 0; i < n; ++i) {
    if (i) dprintf(2, ",");
    PutJsonString(paths[i]);
  }
  dprintf(2, "]");
}

void AddPathRule(int ruleset_fd, const char* path, uint64_t access) {
  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) Fail(kSetupFailure, path, strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) Fail(kSetupFailure, path, strerror(errno));
  // A rule on a file may only carry rights that apply to files.
  if (!S_ISDIR(st.st_mode)) access &= ll::FileAccessMask();
  ll::PathBeneathAttr rule;
  rule.allowed_access = access;
  rule.parent_fd = fd;
  if (syscall(SYS_landlock_add_rule, ruleset_fd, ll::kRulePathBeneath, &rule, 0) != 0) {
    Fail(kSetupFailure, path, strerror(errno));
  }
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  const char* ro[kMaxPaths];
  const char* rw[kMaxPaths];
  int n_ro = 0;
  int n_rw = 0;
  bool verbose = false;
  int cmd = -1;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--") == 0) {
      cmd = i + 1;
      break;
    }
    if (strcmp(argv[i], "--verbose") == 0) {
      verbose = true;
    } else if (strcmp(argv[i], "--ro") == 0 || strcmp(argv[i], "--rw") == 0) {
      bool is_ro = argv[i][3] == 'o';
      if (i + 1 >= argc || argv[i + 1][0] != '/') {
        Fail(kSetupFailure, argv[i], "needs an absolute path");
      }
      if ((is_ro ? n_ro : n_rw) >= kMaxPaths) Fail(kSetupFailure, argv[i], "too many paths");
      (is_ro ? ro[n_ro++] : rw[n_rw++]) = argv[++i];
    } else {
      Fail(kSetupFailure, "unknown argument (usage: [--verbose] --ro P --rw P ... -- CMD ARGS...)",
           argv[i]);
    }
  }
  if (cmd < 0 || cmd >= argc) Fail(kSetupFailure, "no command after '--'", nullptr);

  long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, ll::kCreateRulesetVersion);
  if (abi < 1) {
    int err = errno;
    Fail(kSetupFailure, "Landlock unavailable, refusing to run unconfined",
         err == ENOSYS       ? "not built into this kernel (ENOSYS)"
         : err == EOPNOTSUPP ? "disabled at boot (EOPNOTSUPP)"
                             : strerror(err));
  }
  int v = static_cast<int>(abi);
  ll::RulesetAttr attr;
  attr.handled_access_fs = ll::HandledFs(v);
  attr.handled_access_net = ll::HandledNet(v);
  attr.scoped = ll::Scoped(v);
  long ruleset = syscall(SYS_landlock_create_ruleset, &attr, ll::RulesetAttrSize(v), 0);
  if (ruleset < 0) Fail(kSetupFailure, "landlock_create_ruleset", strerror(errno));
  int ruleset_fd = static_cast<int>(ruleset);
  for (int i = 0; i < n_ro; ++i) AddPathRule(ruleset_fd, ro[i], ll::ReadOnlyAccess(v));
  for (int i = 0; i < n_rw; ++i) AddPathRule(ruleset_fd, rw[i], ll::ReadWriteAccess(v));
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    Fail(kSetupFailure, "prctl(PR_SET_NO_NEW_PRIVS)", strerror(errno));
  }
  if (syscall(SYS_landlock_restrict_self, ruleset_fd, 0) != 0) {
    Fail(kSetupFailure, "landlock_restrict_self", strerror(errno));
  }
  close(ruleset_fd);

  if (verbose) {
    dprintf(2, "{\"landlock_abi\":%d,\"handled_fs\":%llu,\"handled_net\":%llu,\"scoped\":%llu", v,
            static_cast<unsigned long long>(attr.handled_access_fs),
            static_cast<unsigned long long>(attr.handled_access_net),
            static_cast<unsigned long long>(attr.scoped));
    PutJsonList("ro", ro, n_ro);
    PutJsonList("rw", rw, n_rw);
    dprintf(2, ",\"exec\":");
    PutJsonString(argv[cmd]);
    dprintf(2, "}\n");
  }
  execvp(argv[cmd], argv + cmd);
  Fail(kExecFailure, argv[cmd], strerror(errno));
}
