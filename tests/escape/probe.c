// cce-escape-probe: tries, one after the other, the ways a workload could get
// out of the cce sandbox (issue 11, "Escape test suite"; tests/escape/README.md)
// and prints one line per probe, then a summary:
//
//   PROBE <name> BLOCKED|ESCAPED|PLANTED|ERROR <detail>
//   SUMMARY escaped=N blocked=M planted=P error=E
//
// BLOCKED: the attempt failed. ESCAPED: it worked (or the syscall was reached
// past its permission check: such probes fail closed). PLANTED: something was
// left in the output directory for the test to check in the copied output.
// ERROR: the probe could not run (a missing argument or setup failure).
// Exit status: 1 if any probe escaped, else 2 on an error or bad usage, else 0.
// `--noop` exits 77 at once (the memfd_exec probe runs a copy of itself so).
//
// Safe to run as root on a host, unconfined: no probe calls a destructive
// syscall with arguments that could act. reboot, kexec_load, init_module,
// swapon and the clock calls get arguments that fail harmlessly even with the
// privilege (the errno tells whether the permission check passed); files made
// in /, /etc or a data dir are new uniquely named ones, removed again; mount
// goes on a fresh empty directory and is unmounted; /proc/sysrq-trigger,
// /proc/sys and /sys files are opened for writing but never written; devices
// are opened read-only and never read; /proc/1/environ is opened, never read;
// ptrace only seizes (the target never stops) the --outside-pid or our parent,
// from a child that exits to detach; namespace changes, chroot and setuid run
// in children that exit; the fill, fork and memory bombs stop at their limits
// and are cleaned up, and the fill probes refuse to fill a filesystem larger
// than their limit (a host disk), reporting ESCAPED instead.
//
// C, not C++ (README.md says why): a small static program with no runtime
// beyond glibc that any image can run.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif

// ---------------------------------------------------------------------------
// Options

#define MAX_SOCKETS 16

static struct {
  const char* plane;                 // --plane HOST:PORT (numeric address)
  const char* host_port;             // --host-port PORT (the host's 127.0.0.1)
  pid_t outside_pid;                 // --outside-pid PID (a host process outside the sandbox)
  const char* host_file;             // --host-file PATH (symlink target planted in the output)
  const char* data_dir;              // --data-dir DIR (a read-only dataset mount)
  const char* forbidden;             // --forbidden PATH (another dataset: must be unreadable)
  const char* output_dir;            // --output-dir DIR (default /output)
  const char* sockets[MAX_SOCKETS];  // --socket PATH (extra unix sockets to try)
  int nsockets;
  long fork_limit;        // --fork-limit N (default 4096)
  long mem_limit_mib;     // --mem-limit-mib N (default 2048)
  long tmp_limit_mib;     // --tmp-limit-mib N (default 1024)
  long output_limit_mib;  // --output-limit-mib N (default 1024)
  char* only;             // --only a,b,c
} opt = {
    .output_dir = "/output",
    .fork_limit = 4096,
    .mem_limit_mib = 2048,
    .tmp_limit_mib = 1024,
    .output_limit_mib = 1024,
};

// ---------------------------------------------------------------------------
// Results

enum verdict { V_ERROR = 0, V_BLOCKED, V_ESCAPED, V_PLANTED };
static const char* const kVerdictNames[] = {"ERROR", "BLOCKED", "ESCAPED", "PLANTED"};

struct result {
  enum verdict verdict;  // starts as V_ERROR: a probe that forgets to decide fails
  char detail[900];
  size_t len;
};

// Appends "; "-separated text to the detail (truncated, never overflows).
__attribute__((format(printf, 2, 3))) static void note(struct result* r, const char* fmt, ...) {
  if (r->len + 3 >= sizeof r->detail) return;
  if (r->len > 0) {
    r->detail[r->len++] = ';';
    r->detail[r->len++] = ' ';
    r->detail[r->len] = '\0';
  }
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(r->detail + r->len, sizeof r->detail - r->len, fmt, ap);
  va_end(ap);
  if (n > 0)
    r->len += (size_t)n < sizeof r->detail - r->len ? (size_t)n : sizeof r->detail - r->len - 1;
}

static void set_verdict(struct result* r, enum verdict v) {
  r->verdict = v;
}

// errno as its symbolic name ("EPERM"); a few rotating buffers for unknown ones.
static const char* en(int e) {
  const char* name = strerrorname_np(e);
  if (name) return name;
  static char bufs[4][24];
  static int next;
  char* b = bufs[next++ % 4];
  snprintf(b, sizeof bufs[0], "errno%d", e);
  return b;
}

// A syscall failing with one of these never got past its permission check
// (seccomp's ERRNO action, a capability check, an LSM, or no such syscall).
static int denied(int e) {
  return e == EPERM || e == EACCES || e == ENOSYS;
}

// ---------------------------------------------------------------------------
// Helpers

static void write_all_ignored(int fd, const void* buf, size_t len) {
  const char* p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    len -= (size_t)n;
  }
}

static void set_oom_score_adj(int value) {
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  char buf[16];
  int n = snprintf(buf, sizeof buf, "%d", value);
  write_all_ignored(fd, buf, (size_t)n);
  close(fd);
}

// "<dir>/<stem>-<pid>-<counter>-<random>": a name nobody else uses.
static void unique_path(char* out, size_t n, const char* dir, const char* stem) {
  static unsigned counter;
  unsigned long long rnd = 0;
  if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
    rnd = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
  }
  size_t dl = strlen(dir);
  const char* sep = (dl > 0 && dir[dl - 1] == '/') ? "" : "/";
  snprintf(out, n, "%s%s%s-%d-%u-%016llx", dir, sep, stem, (int)getpid(), counter++, rnd);
}

// A fresh empty directory in a writable scratch place (/tmp, the output dir,
// /dev/shm). Returns 1 and fills `out`, or 0.
static int make_scratch_dir(char* out, size_t n) {
  const char* candidates[] = {"/tmp", opt.output_dir, "/dev/shm"};
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; ++i) {
    if (!candidates[i]) continue;
    snprintf(out, n, "%s/cce-probe-XXXXXX", candidates[i]);
    if (mkdtemp(out)) return 1;
  }
  return 0;
}

// Waits for `pid` at most timeout_ms; kills it with SIGKILL then. Returns 0
// when it ended by itself, 1 when it was killed for the timeout.
static int wait_child(pid_t pid, int* status, long timeout_ms) {
  struct timespec tick = {0, 10 * 1000 * 1000};
  for (long waited = 0;; waited += 10) {
    pid_t w = waitpid(pid, status, WNOHANG);
    if (w == pid) return 0;
    if (w < 0 && errno != EINTR) {
      *status = 0;
      return 0;
    }
    if (waited >= timeout_ms) break;
    nanosleep(&tick, NULL);
  }
  kill(pid, SIGKILL);
  while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
  }
  return 1;
}

// Everything a child needs before it runs: it dies with us and cannot hang.
static void child_setup(pid_t parent, int timeout_s) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(125);
  alarm((unsigned)timeout_s);
}

// Runs fn(arg) in a child; returns its exit code (fn's return value, an errno
// or 0), 1000+signal if it was killed, or -1 if fork failed.
static int run_child(int (*fn)(void*), void* arg, int timeout_s) {
  fflush(stdout);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    child_setup(parent, timeout_s);
    _exit(fn(arg) & 0xff);
  }
  int status = 0;
  wait_child(pid, &status, (long)timeout_s * 1000 + 2000);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
  return 1000;
}

// A child result as text: "OK", "EPERM", "killed by SIGSYS".
static const char* child_text(int code) {
  static char bufs[4][40];
  static int next;
  char* b = bufs[next++ % 4];
  if (code == 0) return "OK";
  if (code < 0)
    snprintf(b, sizeof bufs[0], "fork failed: %s", en(errno));
  else if (code >= 1000) {
    const char* sig = sigabbrev_np(code - 1000);
    snprintf(b, sizeof bufs[0], "killed by SIG%s", sig ? sig : "?");
  } else
    return en(code);
  return b;
}

// A child that reports progress records through a pipe (fork/memory/fill bombs).
struct report {
  int32_t phase;  // PH_*
  int32_t err;    // errno when phase is PH_SETUP_FAILED or PH_STOPPED
  uint64_t count;
};
enum { PH_NONE = 0, PH_PROGRESS, PH_SETUP_FAILED, PH_STOPPED, PH_DONE };

static void send_report(int fd, int32_t phase, int32_t err, uint64_t count) {
  struct report rep = {phase, err, count};
  write_all_ignored(fd, &rep, sizeof rep);
}

struct bomb_run {
  struct report last;  // the last record received
  int status;          // wait status
  int timed_out;
  pid_t pid;
};

// Forks fn(arg, report_fd) in its own process group; collects records until
// the pipe closes or timeout_s passes, then kills the whole group and reaps.
static int run_bomb(void (*fn)(void*, int), void* arg, int timeout_s, struct bomb_run* run) {
  memset(run, 0, sizeof *run);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  fflush(stdout);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(fds[0]);
    close(fds[1]);
    errno = e;
    return -1;
  }
  if (pid == 0) {
    close(fds[0]);
    setpgid(0, 0);
    child_setup(parent, timeout_s + 5);
    fn(arg, fds[1]);
    _exit(0);
  }
  setpgid(pid, pid);  // both sides, so the group exists before either runs on
  close(fds[1]);
  run->pid = pid;
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long elapsed_ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    long left = (long)timeout_s * 1000 - elapsed_ms;
    if (left <= 0) {
      run->timed_out = 1;
      break;
    }
    struct pollfd pfd = {fds[0], POLLIN, 0};
    int pr = poll(&pfd, 1, (int)(left < 1000 ? left : 1000));
    if (pr < 0 && errno != EINTR) break;
    if (pr <= 0) continue;
    struct report rep;
    ssize_t n = read(fds[0], &rep, sizeof rep);
    if (n == (ssize_t)sizeof rep) {
      run->last = rep;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // EOF (or a torn record from a killed child): the child is gone
  }
  close(fds[0]);
  // Wait for the leader's exit WITHOUT reaping it: while it is a zombie its
  // pid cannot be reused, so -pid names our group and nobody else's.
  siginfo_t info;
  struct timespec tick = {0, 10 * 1000 * 1000};
  for (long waited = 0;; waited += 10) {
    memset(&info, 0, sizeof info);
    int w = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT);
    if (w == 0 && info.si_pid == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (run->timed_out || waited >= 30000) {
      run->timed_out = 1;
      kill(-pid, SIGKILL);
      while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
      }
      break;
    }
    nanosleep(&tick, NULL);
  }
  // Anything of the group still alive (it should not be) dies now.
  kill(-pid, SIGKILL);
  while (waitpid(pid, &run->status, 0) < 0 && errno == EINTR) {
  }
  // Orphans of the group were reparented to us (PR_SET_CHILD_SUBREAPER in
  // main): reap them too.
  int st;
  while (waitpid(-pid, &st, 0) > 0 || errno == EINTR) {
  }
  return 0;
}

// Reads a small file whole into buf (NUL-terminated). Returns bytes or -1.
static ssize_t read_small(const char* path, char* buf, size_t n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t got = 0;
  while (got + 1 < n) {
    ssize_t r = read(fd, buf + got, n - 1 - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  int e = errno;
  close(fd);
  errno = e;
  buf[got] = '\0';
  return (ssize_t)got;
}

// The value after "Key:" in /proc/self/status, or NULL.
static const char* status_field(const char* status, const char* key, char* out, size_t n) {
  size_t kl = strlen(key);
  for (const char* line = status; line && *line;) {
    if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
      const char* v = line + kl + 1;
      while (*v == ' ' || *v == '\t') ++v;
      size_t i = 0;
      while (v[i] && v[i] != '\n' && i + 1 < n) {
        out[i] = v[i];
        ++i;
      }
      out[i] = '\0';
      return out;
    }
    line = strchr(line, '\n');
    if (line) ++line;
  }
  return NULL;
}

// The kernel's fixed inode numbers of the initial namespaces (include/linux/proc_ns.h).
#define INIT_IPC_INO 0xEFFFFFFFU
#define INIT_UTS_INO 0xEFFFFFFEU
#define INIT_USER_INO 0xEFFFFFFDU
#define INIT_PID_INO 0xEFFFFFFCU
#define INIT_CGROUP_INO 0xEFFFFFFBU

// 1: /proc/<who>/ns/<ns> is the host's initial namespace, 0: not, -1: unknown.
static int ns_is_initial(const char* who, const char* ns, unsigned long init_ino) {
  char path[64], link[64];
  snprintf(path, sizeof path, "/proc/%s/ns/%s", who, ns);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n < 0) return -1;
  link[n] = '\0';
  char want[64];
  snprintf(want, sizeof want, "%s:[%lu]", ns, init_ino);
  return strcmp(link, want) == 0;
}

// The parent pid of `pid` from /proc/<pid>/stat, or -1.
static pid_t ppid_of(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (read_small(path, buf, sizeof buf) <= 0) return -1;
  const char* p = strrchr(buf, ')');  // the command name may hold spaces and parens
  if (!p) return -1;
  char state;
  int ppid;
  if (sscanf(p + 1, " %c %d", &state, &ppid) != 2) return -1;
  return ppid;
}

// 1 if `pid` is this process or one of its descendants.
static int in_own_subtree(pid_t pid) {
  pid_t self = getpid();
  for (int depth = 0; pid > 0 && depth < 4096; ++depth) {
    if (pid == self) return 1;
    pid = ppid_of(pid);
  }
  return 0;
}

// 1 if `pid` is an ancestor of this process.
static int is_ancestor(pid_t pid) {
  pid_t p = getppid();
  for (int depth = 0; p > 0 && depth < 4096; ++depth) {
    if (p == pid) return 1;
    p = ppid_of(p);
  }
  return 0;
}

// The processes a probe may aim at as "outside the sandbox": --outside-pid,
// else our parent when we share the host's initial pid namespace (in a pid
// namespace of our own the parent is inside, or 0). Never pid 1, never one of
// our own descendants. Returns how many were written.
static int outside_targets(pid_t* out) {
  int n = 0;
  if (opt.outside_pid > 0) {
    out[n++] = opt.outside_pid;
  } else if (getppid() > 1 && ns_is_initial("self", "pid", INIT_PID_INO) != 0) {
    out[n++] = getppid();
  }
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    if (!in_own_subtree(out[i])) out[kept++] = out[i];
  }
  return kept;
}

// Connects a TCP socket to "HOST:PORT" / "[V6]:PORT" within timeout_ms.
// Returns 1 connected, 0 failed (errno set), -1 bad address.
static int tcp_connect(const char* hostport, int timeout_ms) {
  char host[128];
  const char* port_s;
  if (hostport[0] == '[') {
    const char* end = strchr(hostport, ']');
    if (!end || end[1] != ':' || (size_t)(end - hostport - 1) >= sizeof host) return -1;
    memcpy(host, hostport + 1, (size_t)(end - hostport - 1));
    host[end - hostport - 1] = '\0';
    port_s = end + 2;
  } else {
    const char* colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host) return -1;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    port_s = colon + 1;
  }
  char* end;
  long port = strtol(port_s, &end, 10);
  if (*port_s == '\0' || *end != '\0' || port <= 0 || port > 65535) return -1;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  int family;
  struct sockaddr_in* v4 = (struct sockaddr_in*)&ss;
  struct sockaddr_in6* v6 = (struct sockaddr_in6*)&ss;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    family = v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    family = v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    len = sizeof *v6;
  } else {
    return -1;
  }
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  int rc = connect(fd, (struct sockaddr*)&ss, len);
  if (rc != 0 && errno == EINPROGRESS) {
    struct pollfd pfd = {fd, POLLOUT, 0};
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr == 0) {
      errno = ETIMEDOUT;
    } else if (pr > 0) {
      int soerr = 0;
      socklen_t sl = sizeof soerr;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
      if (soerr == 0) rc = 0;
      errno = soerr;
    }
  }
  int e = errno;
  close(fd);
  errno = e;
  return rc == 0;
}

// ---------------------------------------------------------------------------
// Probes: identity, privileges, namespaces

static void probe_capabilities(struct result* r) {
  char status[8192], v[64];
  if (read_small("/proc/self/status", status, sizeof status) > 0 &&
      status_field(status, "CapEff", v, sizeof v)) {
    const char* keys[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
    int any = 0;
    for (size_t i = 0; i < 5; ++i) {
      if (!status_field(status, keys[i], v, sizeof v)) continue;
      note(r, "%s=%s", keys[i], v);
      unsigned long long bits = strtoull(v, NULL, 16);
      if (bits != 0 && (i == 1 || i == 2 || i == 4)) any = 1;  // Prm, Eff, Amb
    }
    set_verdict(r, any ? V_ESCAPED : V_BLOCKED);
    return;
  }
  // No /proc: ask the kernel directly.
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) != 0) {
    note(r, "/proc/self/status unreadable and capget: %s", en(errno));
    return;  // ERROR
  }
  unsigned long long eff = ((unsigned long long)data[1].effective << 32) | data[0].effective;
  unsigned long long prm = ((unsigned long long)data[1].permitted << 32) | data[0].permitted;
  note(r, "capget: CapEff=%016llx CapPrm=%016llx", eff, prm);
  set_verdict(r, (eff | prm) ? V_ESCAPED : V_BLOCKED);
}

static void probe_no_new_privs(struct result* r) {
  int v = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
  if (v < 0) {
    note(r, "prctl(PR_GET_NO_NEW_PRIVS): %s", en(errno));
    set_verdict(r, V_ESCAPED);  // cannot show it is set
    return;
  }
  note(r, "NoNewPrivs=%d", v);
  set_verdict(r, v == 1 ? V_BLOCKED : V_ESCAPED);
}

static void probe_seccomp_mode(struct result* r) {
  char status[8192], v[64];
  int mode = -1;
  if (read_small("/proc/self/status", status, sizeof status) > 0 &&
      status_field(status, "Seccomp", v, sizeof v)) {
    mode = atoi(v);
    note(r, "Seccomp: %s", v);
    if (status_field(status, "Seccomp_filters", v, sizeof v)) note(r, "Seccomp_filters: %s", v);
  } else {
    mode = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
    note(r, "prctl(PR_GET_SECCOMP)=%d", mode);
  }
  set_verdict(r, mode == 2 ? V_BLOCKED : V_ESCAPED);
}

static void probe_namespaces(struct result* r) {
  static const struct {
    const char* ns;
    unsigned long ino;
  } kNs[] = {{"pid", INIT_PID_INO},
             {"user", INIT_USER_INO},
             {"ipc", INIT_IPC_INO},
             {"uts", INIT_UTS_INO},
             {"cgroup", INIT_CGROUP_INO}};
  int shared = 0, known = 0;
  for (size_t i = 0; i < sizeof kNs / sizeof kNs[0]; ++i) {
    int init = ns_is_initial("self", kNs[i].ns, kNs[i].ino);
    if (init < 0) {
      note(r, "%s: unreadable (%s)", kNs[i].ns, en(errno));
      continue;
    }
    ++known;
    if (init) {
      ++shared;
      note(r, "%s: the host's initial namespace", kNs[i].ns);
    }
  }
  if (known == 0) return;  // ERROR: nothing could be checked
  if (!shared) note(r, "pid user ipc uts cgroup: all new");
  set_verdict(r, shared ? V_ESCAPED : V_BLOCKED);
}

static int child_setuid0(void* arg) {
  (void)arg;
  return setuid(0) == 0 ? 0 : errno;
}

static void probe_setuid0(struct result* r) {
  if (getuid() == 0 && geteuid() == 0) {
    note(r, "already uid 0 (real and effective)");
    set_verdict(r, V_ESCAPED);
    return;
  }
  int rc = run_child(child_setuid0, NULL, 5);
  note(r, "uid=%d euid=%d; setuid(0): %s", (int)getuid(), (int)geteuid(), child_text(rc));
  set_verdict(r, rc == 0 ? V_ESCAPED : V_BLOCKED);
}

static void probe_mount(struct result* r) {
  char dir[PATH_MAX];
  if (make_scratch_dir(dir, sizeof dir)) {
    int rc = mount("cce-probe", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k");
    int e = errno;
    if (rc == 0) {
      umount2(dir, MNT_DETACH);
      rmdir(dir);
      note(r, "mount(tmpfs, %s) succeeded (unmounted again)", dir);
      set_verdict(r, V_ESCAPED);
      return;
    }
    rmdir(dir);
    note(r, "mount(tmpfs, %s): %s", dir, en(e));
    set_verdict(r, V_BLOCKED);
    return;
  }
  // No scratch directory: ask for a filesystem type that does not exist. The
  // kernel checks the mount permission first, so ENODEV means it was granted
  // (and nothing is mounted either way).
  int rc = mount("cce-probe", "/", "cce-probe-no-such-fs", 0, NULL);
  int e = errno;
  note(r, "no scratch dir; mount(\"/\", type cce-probe-no-such-fs): %s", rc == 0 ? "OK" : en(e));
  set_verdict(r, (rc != 0 && denied(e)) ? V_BLOCKED : V_ESCAPED);
}

static int child_unshare(void* arg) {
  return unshare((int)(intptr_t)arg) == 0 ? 0 : errno;
}

static int child_clone_newuser(void* arg) {
  (void)arg;
  // A raw clone, fork-like (no new stack): the child only exits.
  long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, NULL);
  if (pid == 0) _exit(0);
  if (pid < 0) return errno;
  int st;
  waitpid((pid_t)pid, &st, 0);
  return 0;
}

static void probe_unshare_user(struct result* r) {
  int a = run_child(child_unshare, (void*)(intptr_t)CLONE_NEWUSER, 5);
  int b = run_child(child_clone_newuser, NULL, 5);
  note(r, "unshare(CLONE_NEWUSER): %s; clone(CLONE_NEWUSER): %s", child_text(a), child_text(b));
  set_verdict(r, (a == 0 || b == 0) ? V_ESCAPED : V_BLOCKED);
}

static void probe_unshare_net(struct result* r) {
  int a = run_child(child_unshare, (void*)(intptr_t)CLONE_NEWNET, 5);
  note(r, "unshare(CLONE_NEWNET): %s", child_text(a));
  set_verdict(r, a == 0 ? V_ESCAPED : V_BLOCKED);
}

struct setns_arg {
  pid_t pid;
  const char* ns;
};

static int child_setns(void* arg) {
  const struct setns_arg* a = arg;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)a->pid, a->ns);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  return setns(fd, 0) == 0 ? 0 : errno;
}

// Joins pid 1's namespaces and, given --outside-pid, that process's: each in
// a child that exits at once.
static void probe_setns_init(struct result* r) {
  const char* kNs[] = {"mnt", "net", "pid", "ipc", "uts", "cgroup", "user"};
  pid_t pids[2] = {1, opt.outside_pid};
  int joined = 0;
  for (int p = 0; p < 2; ++p) {
    if (pids[p] <= 0 || (p == 1 && in_own_subtree(pids[p]))) continue;
    char line[256] = "";
    for (size_t i = 0; i < sizeof kNs / sizeof kNs[0]; ++i) {
      struct setns_arg a = {pids[p], kNs[i]};
      int rc = run_child(child_setns, &a, 5);
      size_t used = strlen(line);
      snprintf(line + used, sizeof line - used, "%s%s:%s", i ? " " : "", kNs[i], child_text(rc));
      if (rc == 0) joined = 1;
    }
    note(r, "/proc/%d/ns: %s", (int)pids[p], line);
  }
  set_verdict(r, joined ? V_ESCAPED : V_BLOCKED);
}

static int child_chroot(void* arg) {
  (void)arg;
  return chroot("/") == 0 ? 0 : errno;
}

static void probe_chroot(struct result* r) {
  int rc = run_child(child_chroot, NULL, 5);
  note(r, "chroot(\"/\"): %s", child_text(rc));
  set_verdict(r, rc == 0 ? V_ESCAPED : V_BLOCKED);
}

static void probe_hostname(struct result* r) {
  char name[256];
  if (gethostname(name, sizeof name) != 0) {
    note(r, "gethostname: %s", en(errno));
    return;  // ERROR
  }
  name[sizeof name - 1] = '\0';
  // The same name again: harmless even where it succeeds.
  int rc = sethostname(name, strlen(name));
  note(r, "sethostname(current name): %s", rc == 0 ? "OK" : en(errno));
  set_verdict(r, rc == 0 ? V_ESCAPED : V_BLOCKED);
}

// ---------------------------------------------------------------------------
// Probes: other processes

static int child_ptrace_seize(void* arg) {
  pid_t target = (pid_t)(intptr_t)arg;
  // SEIZE never stops the target; our exit detaches it.
  return ptrace(PTRACE_SEIZE, target, NULL, NULL) == 0 ? 0 : errno;
}

static void probe_ptrace_outside(struct result* r) {
  pid_t targets[2];
  int n = outside_targets(targets);
  if (n == 0) {
    note(r, "no process outside the sandbox is addressable (getppid()=%d, no --outside-pid)",
         (int)getppid());
    set_verdict(r, V_BLOCKED);
    return;
  }
  int escaped = 0;
  for (int i = 0; i < n; ++i) {
    int rc = run_child(child_ptrace_seize, (void*)(intptr_t)targets[i], 5);
    note(r, "PTRACE_SEIZE pid %d: %s", (int)targets[i], child_text(rc));
    if (rc == 0) escaped = 1;
  }
  set_verdict(r, escaped ? V_ESCAPED : V_BLOCKED);
}

static void probe_kill_outside(struct result* r) {
  pid_t targets[2];
  int n = outside_targets(targets);
  if (n == 0) {
    note(r, "no process outside the sandbox is addressable (getppid()=%d, no --outside-pid)",
         (int)getppid());
    set_verdict(r, V_BLOCKED);
    return;
  }
  int escaped = 0;
  for (int i = 0; i < n; ++i) {
    // Signal 0: the permission check without a signal.
    int rc = kill(targets[i], 0);
    note(r, "kill(%d, 0): %s", (int)targets[i], rc == 0 ? "OK" : en(errno));
    if (rc == 0) escaped = 1;
  }
  set_verdict(r, escaped ? V_ESCAPED : V_BLOCKED);
}

static void probe_signal_agent(struct result* r) {
  DIR* d = opendir("/proc");
  if (!d) {
    note(r, "opendir(/proc): %s", en(errno));
    set_verdict(r, V_BLOCKED);
    return;
  }
  // In a pid namespace of our own every visible process is ours; without
  // one (the host's initial pid namespace) our ancestors are outsiders too.
  int host_pidns = ns_is_initial("self", "pid", INIT_PID_INO) == 1;
  int own = 0, outsiders = 0;
  pid_t example = 0;
  struct dirent* de;
  while ((de = readdir(d)) != NULL) {
    char* end;
    long pid = strtol(de->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    if (in_own_subtree((pid_t)pid) || (!host_pidns && is_ancestor((pid_t)pid))) {
      ++own;
      continue;
    }
    ++outsiders;
    if (!example) example = (pid_t)pid;
  }
  closedir(d);
  // Seeing them is enough (kill_outside tries the signal): nothing is sent here.
  note(r, "visible pids: %d own, %d outside%s", own, outsiders,
       host_pidns ? "; in the host's initial pid namespace" : "");
  if (example) note(r, "e.g. pid %d", (int)example);
  set_verdict(r, outsiders ? V_ESCAPED : V_BLOCKED);
}

static void probe_read_proc1_environ(struct result* r) {
  int escaped = 0;
  // /proc/1 is an outsider only when we share the host's pid namespace: in
  // our own, pid 1 is the sandbox's init (often this very probe).
  if (getpid() == 1) {
    note(r, "pid 1 is this probe (own pid namespace)");
  } else {
    int fd = open("/proc/1/environ", O_RDONLY | O_CLOEXEC);
    int e = errno;
    int host = ns_is_initial("1", "pid", INIT_PID_INO);
    if (fd >= 0) {
      close(fd);  // opened, never read: the kernel checks access at open
      if (host != 0) {
        note(r, "/proc/1/environ opened (pid 1 is %s)",
             host == 1 ? "in the host's initial pid namespace" : "of unknown namespace");
        escaped = 1;
      } else {
        note(r, "/proc/1/environ opened but pid 1 is this sandbox's init (own pid namespace)");
      }
    } else {
      note(r, "/proc/1/environ: %s", en(e));
    }
  }
  if (opt.outside_pid > 0 && !in_own_subtree(opt.outside_pid)) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)opt.outside_pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      close(fd);
      note(r, "%s opened", path);
      escaped = 1;
    } else {
      note(r, "%s: %s", path, en(errno));
    }
  }
  set_verdict(r, escaped ? V_ESCAPED : V_BLOCKED);
}

// ---------------------------------------------------------------------------
// Probes: the filesystem

// Creates a new, uniquely named file in dir and removes it. 1 if created.
static int try_create_in(struct result* r, const char* dir) {
  char path[PATH_MAX];
  unique_path(path, sizeof path, dir, ".cce-probe");
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd >= 0) {
    close(fd);
    unlink(path);
    note(r, "created %s (removed again)", path);
    return 1;
  }
  note(r, "create in %s: %s", dir, en(errno));
  return 0;
}

static void probe_write_root(struct result* r) {
  set_verdict(r, try_create_in(r, "/") ? V_ESCAPED : V_BLOCKED);
}

static void probe_write_etc(struct result* r) {
  set_verdict(r, try_create_in(r, "/etc") ? V_ESCAPED : V_BLOCKED);
}

static void probe_write_data(struct result* r) {
  if (!opt.data_dir) {
    note(r, "no --data-dir given");
    return;  // ERROR
  }
  struct stat st;
  if (stat(opt.data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    note(r, "%s: not a directory (%s): cannot test", opt.data_dir, en(errno));
    return;  // ERROR
  }
  int escaped = try_create_in(r, opt.data_dir);
  char path[PATH_MAX];
  unique_path(path, sizeof path, opt.data_dir, ".cce-probe-dir");
  if (mkdir(path, 0700) == 0) {
    rmdir(path);
    note(r, "mkdir %s (removed again)", path);
    escaped = 1;
  } else {
    note(r, "mkdir: %s", en(errno));
  }
  // An existing file opened for writing (never written).
  DIR* d = opendir(opt.data_dir);
  int tried = 0;
  if (d) {
    struct dirent* de;
    while (!tried && (de = readdir(d)) != NULL) {
      char file[PATH_MAX];
      snprintf(file, sizeof file, "%s/%s", opt.data_dir, de->d_name);
      if (lstat(file, &st) != 0 || !S_ISREG(st.st_mode)) continue;
      tried = 1;
      int fd = open(file, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0) {
        close(fd);
        note(r, "opened %s for writing (not written)", file);
        escaped = 1;
      } else {
        note(r, "open %s for writing: %s", file, en(errno));
      }
    }
    closedir(d);
  }
  if (!tried) note(r, "no existing file to open for writing");
  set_verdict(r, escaped ? V_ESCAPED : V_BLOCKED);
}

static void probe_read_other_dataset(struct result* r) {
  if (!opt.forbidden) {
    note(r, "no --forbidden given");
    return;  // ERROR
  }
  int fd = open(opt.forbidden, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    note(r, "open %s: %s", opt.forbidden, en(errno));
    set_verdict(r, V_BLOCKED);
    return;
  }
  struct stat st;
  fstat(fd, &st);
  if (S_ISDIR(st.st_mode)) {
    note(r, "opened directory %s", opt.forbidden);
  } else {
    char byte;
    ssize_t n = read(fd, &byte, 1);  // one byte, discarded: proof enough
    note(r, "opened %s, read: %s", opt.forbidden, n >= 0 ? "OK" : en(errno));
  }
  close(fd);
  set_verdict(r, V_ESCAPED);
}

static void probe_mknod(struct result* r) {
  const char* dirs[] = {"/tmp", opt.output_dir, "/dev/shm", "/"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; ++i) {
    if (!dirs[i]) continue;
    char path[PATH_MAX];
    unique_path(path, sizeof path, dirs[i], ".cce-probe-node");
    // The null device's numbers: harmless even if the node were used.
    if (mknod(path, S_IFCHR | 0600, makedev(1, 3)) == 0) {
      unlink(path);
      note(r, "mknod %s c 1 3 succeeded (removed again)", path);
      set_verdict(r, V_ESCAPED);
      return;
    }
    int e = errno;
    note(r, "mknod in %s: %s", dirs[i], en(e));
    if (e == EPERM) break;  // the capability check answered
  }
  set_verdict(r, V_BLOCKED);
}

static void probe_open_dev(struct result* r) {
  static const char* const kDevices[] = {
      "/dev/mem",  "/dev/kmem",    "/dev/port", "/dev/kmsg",           "/dev/sda",  "/dev/vda",
      "/dev/xvda", "/dev/nvme0n1", "/dev/hda",  "/dev/mapper/control", "/dev/fuse", "/dev/kvm"};
  int opened = 0, present = 0;
  char list[256] = "";
  // Named devices, then every block device in /dev. Opened read-only and
  // never read; nothing else in /dev is touched (a watchdog, for one, acts on open).
  for (size_t i = 0; i < sizeof kDevices / sizeof kDevices[0]; ++i) {
    struct stat st;
    if (stat(kDevices[i], &st) != 0) continue;
    ++present;
    int fd = open(kDevices[i], O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd >= 0) {
      close(fd);
      ++opened;
      if (strlen(list) + strlen(kDevices[i]) + 2 < sizeof list) {
        strcat(list, " ");
        strcat(list, kDevices[i]);
      }
    } else {
      note(r, "%s: %s", kDevices[i], en(errno));
    }
  }
  DIR* d = opendir("/dev");
  int blocks = 0;
  if (d) {
    struct dirent* de;
    while ((de = readdir(d)) != NULL) {
      char path[PATH_MAX];
      snprintf(path, sizeof path, "/dev/%s", de->d_name);
      struct stat st;
      if (lstat(path, &st) != 0 || !S_ISBLK(st.st_mode)) continue;
      ++blocks;
      int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
      if (fd >= 0) {
        close(fd);
        ++opened;
        if (strlen(list) + strlen(path) + 2 < sizeof list) {
          strcat(list, " ");
          strcat(list, path);
        }
      }
    }
    closedir(d);
  }
  note(r, "%d named devices present, %d block devices in /dev, opened:%s", present, blocks,
       opened ? list : " none");
  set_verdict(r, opened ? V_ESCAPED : V_BLOCKED);
}

// Opens each path for writing, never writes. Returns how many opened.
static int open_for_write(struct result* r, const char* const* paths, size_t n) {
  int opened = 0;
  for (size_t i = 0; i < n; ++i) {
    int fd = open(paths[i], O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      close(fd);
      ++opened;
      note(r, "%s opened for writing (not written)", paths[i]);
    } else {
      note(r, "%s: %s", paths[i], en(errno));
    }
  }
  return opened;
}

static void probe_proc_sysrq(struct result* r) {
  const char* paths[] = {"/proc/sysrq-trigger"};
  set_verdict(r, open_for_write(r, paths, 1) ? V_ESCAPED : V_BLOCKED);
}

static void probe_proc_sys(struct result* r) {
  const char* paths[] = {"/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe",
                         "/proc/sys/vm/panic_on_oom"};
  set_verdict(r, open_for_write(r, paths, 3) ? V_ESCAPED : V_BLOCKED);
}

static void probe_sys_write(struct result* r) {
  const char* paths[] = {"/sys/kernel/uevent_helper", "/sys/kernel/mm/transparent_hugepage/enabled",
                         "/sys/fs/cgroup/memory/release_agent", "/sys/fs/cgroup/release_agent",
                         "/sys/class/net/lo/mtu"};
  set_verdict(r, open_for_write(r, paths, sizeof paths / sizeof paths[0]) ? V_ESCAPED : V_BLOCKED);
}

// ---------------------------------------------------------------------------
// Probes: the network

static void probe_raw_socket(struct result* r) {
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd >= 0) {
    close(fd);
    note(r, "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) succeeded");
    set_verdict(r, V_ESCAPED);
    return;
  }
  note(r, "socket(AF_INET, SOCK_RAW): %s", en(errno));
  set_verdict(r, V_BLOCKED);
}

static void probe_packet_socket(struct result* r) {
  // Protocol 0: the socket receives nothing until bound to a protocol.
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    close(fd);
    note(r, "socket(AF_PACKET, SOCK_RAW) succeeded");
    set_verdict(r, V_ESCAPED);
    return;
  }
  note(r, "socket(AF_PACKET, SOCK_RAW): %s", en(errno));
  set_verdict(r, V_BLOCKED);
}

static void probe_net_interfaces(struct result* r) {
  char buf[8192];
  char names[256] = "";
  int others = 0, count = 0;
  if (read_small("/proc/net/dev", buf, sizeof buf) > 0) {
    char* line = strchr(buf, '\n');
    if (line) line = strchr(line + 1, '\n');  // two header lines
    while (line && *++line) {
      char* colon = strchr(line, ':');
      char* nl = strchr(line, '\n');
      if (!colon || (nl && colon > nl)) break;
      char* name = line;
      while (*name == ' ') ++name;
      *colon = '\0';
      ++count;
      if (strcmp(name, "lo") != 0) {
        ++others;
        if (strlen(names) + strlen(name) + 2 < sizeof names) {
          strcat(names, " ");
          strcat(names, name);
        }
      }
      line = nl ? nl : NULL;
    }
  } else {
    DIR* d = opendir("/sys/class/net");
    if (!d) {
      note(r, "/proc/net/dev and /sys/class/net unreadable (%s)", en(errno));
      return;  // ERROR
    }
    struct dirent* de;
    while ((de = readdir(d)) != NULL) {
      if (de->d_name[0] == '.') continue;
      ++count;
      if (strcmp(de->d_name, "lo") != 0) {
        ++others;
        if (strlen(names) + strlen(de->d_name) + 2 < sizeof names) {
          strcat(names, " ");
          strcat(names, de->d_name);
        }
      }
    }
    closedir(d);
  }
  note(r, "%d interfaces; besides lo:%s", count, others ? names : " none");
  set_verdict(r, others ? V_ESCAPED : V_BLOCKED);
}

static void probe_tcp_plane(struct result* r) {
  if (!opt.plane) {
    note(r, "no --plane HOST:PORT given");
    return;  // ERROR
  }
  int rc = tcp_connect(opt.plane, 3000);
  if (rc < 0) {
    note(r, "--plane %s: not a numeric HOST:PORT", opt.plane);
    return;  // ERROR
  }
  note(r, "connect %s: %s", opt.plane, rc ? "connected" : en(errno));
  set_verdict(r, rc ? V_ESCAPED : V_BLOCKED);
}

static void probe_tcp_loopback(struct result* r) {
  if (!opt.host_port) {
    note(r, "no --host-port PORT given");
    return;  // ERROR
  }
  char hp[64];
  snprintf(hp, sizeof hp, "127.0.0.1:%s", opt.host_port);
  int rc = tcp_connect(hp, 3000);
  if (rc < 0) {
    note(r, "--host-port %s: not a port", opt.host_port);
    return;  // ERROR
  }
  note(r, "connect %s: %s", hp, rc ? "connected" : en(errno));
  set_verdict(r, rc ? V_ESCAPED : V_BLOCKED);
}

// Connects to a unix socket (stream, else datagram/seqpacket) and closes it
// again without sending. 1 if a listener was reached, else 0 (errno set).
static int unix_reachable(const char* path) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) {
    errno = ENAMETOOLONG;
    return 0;
  }
  strcpy(sa.sun_path, path);
  const int types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
  int last = 0;
  for (size_t i = 0; i < 3; ++i) {
    int fd = socket(AF_UNIX, types[i] | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int rc = connect(fd, (struct sockaddr*)&sa, sizeof sa);
    last = errno;
    close(fd);
    // EAGAIN: a listener with a full backlog is still a listener.
    if (rc == 0 || last == EAGAIN || last == EINPROGRESS) return 1;
    if (last != EPROTOTYPE) break;
  }
  errno = last;
  return 0;
}

struct socket_scan {
  struct result* r;
  int tried, reached, entries;
};

static void try_socket(struct socket_scan* s, const char* path) {
  struct stat st;
  if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) return;
  ++s->tried;
  if (unix_reachable(path)) {
    ++s->reached;
    note(s->r, "%s: connected", path);
  } else {
    note(s->r, "%s: %s", path, en(errno));
  }
}

static int ends_with(const char* s, const char* suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

// Every *.sock below dir (depth-limited, entry-limited, no symlinks followed).
static void scan_sockets(struct socket_scan* s, const char* dir, int depth) {
  if (depth > 4) return;
  DIR* d = opendir(dir);
  if (!d) return;
  struct dirent* de;
  while ((de = readdir(d)) != NULL && s->entries < 4096) {
    ++s->entries;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    struct stat st;
    if (lstat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      scan_sockets(s, path, depth + 1);
    } else if (S_ISSOCK(st.st_mode) && ends_with(de->d_name, ".sock")) {
      try_socket(s, path);
    }
  }
  closedir(d);
}

static void probe_runtime_socket(struct result* r) {
  static const char* const kKnown[] = {"/run/containerd/containerd.sock",
                                       "/var/run/docker.sock",
                                       "/run/docker.sock",
                                       "/run/crio/crio.sock",
                                       "/run/podman/podman.sock",
                                       "/run/dbus/system_bus_socket",
                                       "/run/systemd/private"};
  struct socket_scan s = {r, 0, 0, 0};
  for (size_t i = 0; i < sizeof kKnown / sizeof kKnown[0]; ++i) try_socket(&s, kKnown[i]);
  for (int i = 0; i < opt.nsockets; ++i) {
    struct stat st;
    if (lstat(opt.sockets[i], &st) != 0) {
      note(r, "%s: %s", opt.sockets[i], en(errno));
      continue;
    }
    try_socket(&s, opt.sockets[i]);
  }
  scan_sockets(&s, "/run", 0);
  struct stat st;
  if (lstat("/var/run", &st) == 0 && S_ISDIR(st.st_mode)) scan_sockets(&s, "/var/run", 0);
  // A runtime's state directory with containers in it (runc keeps state.json
  // per container): seeing it is seeing the host's containers.
  static const char* const kStateDirs[] = {"/run/runc", "/run/cce/runc", "/run/containerd/runc",
                                           "/run/crun"};
  int states = 0;
  for (size_t i = 0; i < sizeof kStateDirs / sizeof kStateDirs[0]; ++i) {
    DIR* d = opendir(kStateDirs[i]);
    if (!d) continue;
    int here = 0;
    struct dirent* de;
    while ((de = readdir(d)) != NULL) {
      if (de->d_name[0] == '.') continue;
      char path[PATH_MAX];
      snprintf(path, sizeof path, "%s/%s/state.json", kStateDirs[i], de->d_name);
      if (access(path, F_OK) == 0) ++here;
    }
    closedir(d);
    note(r, "%s readable, %d container states", kStateDirs[i], here);
    states += here;
  }
  note(r, "%d sockets tried, %d reachable", s.tried, s.reached);
  set_verdict(r, (s.reached || states) ? V_ESCAPED : V_BLOCKED);
}

// ---------------------------------------------------------------------------
// Probes: kernel attack surface (syscalls the policy denies)

static void syscall_verdict(struct result* r, const char* what, long rc, int e) {
  if (rc >= 0) {
    note(r, "%s succeeded", what);
    set_verdict(r, V_ESCAPED);
  } else if (denied(e)) {
    note(r, "%s: %s", what, en(e));
    set_verdict(r, V_BLOCKED);
  } else {
    note(r, "%s: %s (the syscall was reached)", what, en(e));
    set_verdict(r, V_ESCAPED);
  }
}

static void probe_bpf(struct result* r) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
  int e = errno;
  if (fd >= 0) close((int)fd);
  syscall_verdict(r, "bpf(BPF_MAP_CREATE)", fd, e);
}

static void probe_perf_event_open(struct result* r) {
  struct perf_event_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.disabled = 1;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
  int e = errno;
  if (fd >= 0) close((int)fd);
  syscall_verdict(r, "perf_event_open(self, cpu clock)", fd, e);
}

static void probe_userfaultfd(struct result* r) {
  long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  int e = errno;
  if (fd < 0 && e == EINVAL) {  // kernels before 5.11 lack UFFD_USER_MODE_ONLY
    fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    e = errno;
  }
  if (fd >= 0) close((int)fd);
  syscall_verdict(r, "userfaultfd()", fd, e);
  int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev >= 0) {
    close(dev);
    note(r, "/dev/userfaultfd opened");
    set_verdict(r, V_ESCAPED);
  }
}

static void probe_io_uring(struct result* r) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  long fd = syscall(SYS_io_uring_setup, 1, &p);
  int e = errno;
  if (fd >= 0) close((int)fd);
  syscall_verdict(r, "io_uring_setup(1)", fd, e);
}

static void probe_keyctl(struct result* r) {
  // The thread keyring without create: nothing is made; ENOKEY means reached.
  long rc = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 0);
  syscall_verdict(r, "keyctl(KEYCTL_GET_KEYRING_ID, thread keyring)", rc, errno);
}

static void probe_open_by_handle_at(struct result* r) {
  int mount_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mount_fd < 0) {
    note(r, "open /: %s", en(errno));
    return;  // ERROR
  }
  union {
    struct file_handle fh;
    char bytes[sizeof(struct file_handle) + MAX_HANDLE_SZ];
  } h;
  memset(&h, 0, sizeof h);
  h.fh.handle_bytes = MAX_HANDLE_SZ;
  int mount_id;
  if (name_to_handle_at(AT_FDCWD, "/", &h.fh, &mount_id, 0) == 0) {
    note(r, "name_to_handle_at(/): OK");
  } else {
    // The "shocker" handle: ext4's root directory (inode 2, generation 0).
    note(r, "name_to_handle_at(/): %s; using a crafted ext4 root handle", en(errno));
    memset(&h, 0, sizeof h);
    h.fh.handle_bytes = 8;
    h.fh.handle_type = 1;  // FILEID_INO32_GEN
    uint32_t ino_gen[2] = {2, 0};
    memcpy(h.fh.f_handle, ino_gen, sizeof ino_gen);
  }
  int fd = open_by_handle_at(mount_fd, &h.fh, O_RDONLY | O_CLOEXEC);
  int e = errno;
  close(mount_fd);
  if (fd >= 0) close(fd);
  syscall_verdict(r, "open_by_handle_at", fd, e);
}

static int child_memfd_exec(void* arg) {
  int memfd = (int)(intptr_t)arg;
  char* const argv[] = {"cce-escape-probe", "--noop", NULL};
  char* const envp[] = {NULL};
  fexecve(memfd, argv, envp);
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
  execve(path, argv, envp);
  return errno;
}

static void probe_memfd_exec(struct result* r) {
  int memfd = (int)syscall(SYS_memfd_create, "cce-probe", MFD_CLOEXEC);
  if (memfd < 0) {
    note(r, "memfd_create: %s", en(errno));
    set_verdict(r, V_BLOCKED);
    return;
  }
  int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (self < 0) {
    note(r, "memfd_create: OK; open /proc/self/exe: %s", en(errno));
    close(memfd);
    return;  // ERROR: nothing to execute
  }
  static char buf[1 << 16];
  uint64_t copied = 0;
  for (;;) {
    ssize_t n = read(self, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (write(memfd, buf, (size_t)n) != n) {
      note(r, "write to memfd: %s", en(errno));
      close(self);
      close(memfd);
      set_verdict(r, V_BLOCKED);
      return;
    }
    copied += (uint64_t)n;
  }
  close(self);
  int rc = run_child(child_memfd_exec, (void*)(intptr_t)memfd, 10);
  close(memfd);
  note(r, "memfd_create: OK, %llu bytes copied; exec of the memfd: %s", (unsigned long long)copied,
       rc == 77 ? "ran (--noop exited 77)" : child_text(rc));
  set_verdict(r, rc == 77 ? V_ESCAPED : V_BLOCKED);
}

static void probe_clock_settime(struct result* r) {
  // settimeofday(NULL, NULL) is the CAP_SYS_TIME check and nothing else.
  long a = syscall(SYS_settimeofday, NULL, NULL);
  int ea = errno;
  // CLOCK_MONOTONIC cannot be set at all: EINVAL means the call got through.
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  long b = syscall(SYS_clock_settime, CLOCK_MONOTONIC, &now);
  int eb = errno;
  note(r, "settimeofday(NULL, NULL): %s; clock_settime(CLOCK_MONOTONIC): %s",
       a == 0 ? "OK" : en(ea), b == 0 ? "OK" : en(eb));
  int escaped = a == 0 || b == 0 || !denied(eb);
  set_verdict(r, escaped ? V_ESCAPED : V_BLOCKED);
}

static void probe_reboot(struct result* r) {
  // Bad magic: the kernel checks CAP_SYS_BOOT first, then the magic. EINVAL
  // means the privilege was there; nothing happens either way.
  long rc = syscall(SYS_reboot, 0, 0, 0, NULL);
  syscall_verdict(r, "reboot(bad magic)", rc, errno);
}

static void probe_kexec_load(struct result* r) {
  // Too many segments and unknown flags: refused even when permitted.
  long rc = syscall(SYS_kexec_load, 0UL, 17UL, NULL, 0x8000UL);
  syscall_verdict(r, "kexec_load(invalid)", rc, errno);
}

static void probe_init_module(struct result* r) {
  // An empty image cannot load; only the permission check matters.
  long rc = syscall(SYS_init_module, NULL, 0UL, "");
  syscall_verdict(r, "init_module(empty)", rc, errno);
}

static void probe_swapon(struct result* r) {
  // A path that cannot exist (no file can be made in /proc): ENOENT means
  // the CAP_SYS_ADMIN check passed.
  long rc = syscall(SYS_swapon, "/proc/cce-escape-probe-no-such-swap", 0);
  syscall_verdict(r, "swapon(nonexistent)", rc, errno);
}

// ---------------------------------------------------------------------------
// Probes: planted output (checked by the test in the copied output)

// Creates `name` in the output dir with make(); a leftover symlink/FIFO/socket
// of an earlier run there is removed first (never a regular file).
static int plant(struct result* r, const char* name, int (*make)(const char*, const void*),
                 const void* arg) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", opt.output_dir, name);
  struct stat st;
  if (lstat(path, &st) == 0 &&
      (S_ISLNK(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
    unlink(path);
  }
  if (make(path, arg) == 0) {
    note(r, "planted %s", path);
    return 1;
  }
  note(r, "%s: %s", path, en(errno));
  return 0;
}

static int make_symlink(const char* path, const void* target) {
  return symlink(target, path);
}
static int make_fifo(const char* path, const void* unused) {
  (void)unused;
  return mkfifo(path, 0644);
}
static int make_socket(const char* path, const void* unused) {
  (void)unused;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) {
    close(fd);
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(sa.sun_path, path);
  int rc = bind(fd, (struct sockaddr*)&sa, sizeof sa);
  int e = errno;
  close(fd);  // the socket file stays
  errno = e;
  return rc;
}

static void probe_output_symlink(struct result* r) {
  const char* target = opt.host_file ? opt.host_file : "/etc/hostname";
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", target);
  char* slash = strrchr(dir, '/');
  if (slash && slash != dir)
    *slash = '\0';
  else
    snprintf(dir, sizeof dir, "/");
  int planted = plant(r, "link", make_symlink, target);
  planted += plant(r, "link_dir", make_symlink, dir);
  planted += plant(r, "link_root", make_symlink, "/");
  note(r, "targets %s, %s, /", target, dir);
  set_verdict(r, planted ? V_PLANTED : V_BLOCKED);
}

static void probe_output_fifo(struct result* r) {
  set_verdict(r, plant(r, "fifo", make_fifo, NULL) ? V_PLANTED : V_BLOCKED);
}

static void probe_output_socket(struct result* r) {
  set_verdict(r, plant(r, "sock", make_socket, NULL) ? V_PLANTED : V_BLOCKED);
}

// ---------------------------------------------------------------------------
// Probes: resource limits

struct fill_arg {
  const char* dir;
  uint64_t want_bytes;
};

static void fill_child(void* p, int report_fd) {
  const struct fill_arg* a = p;
  signal(SIGXFSZ, SIG_IGN);  // RLIMIT_FSIZE then gives EFBIG instead of killing
  set_oom_score_adj(1000);   // tmpfs pages count as memory: die first, alone
  char path[PATH_MAX];
  unique_path(path, sizeof path, a->dir, ".cce-probe-fill");
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    send_report(report_fd, PH_SETUP_FAILED, errno, 0);
    return;
  }
  unlink(path);  // the space goes with the descriptor, even if we are killed
  static char buf[1 << 20];
  memset(buf, 0x5a, sizeof buf);
  uint64_t written = 0;
  while (written < a->want_bytes) {
    size_t chunk = sizeof buf;
    if (a->want_bytes - written < chunk) chunk = (size_t)(a->want_bytes - written);
    ssize_t n = write(fd, buf, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      send_report(report_fd, PH_STOPPED, n < 0 ? errno : ENOSPC, written);
      close(fd);
      return;
    }
    written += (uint64_t)n;
    send_report(report_fd, PH_PROGRESS, 0, written);
  }
  close(fd);
  send_report(report_fd, PH_DONE, 0, written);
}

static void probe_fill(struct result* r, const char* dir, long limit_mib) {
  struct statvfs vfs;
  if (statvfs(dir, &vfs) != 0) {
    note(r, "statvfs %s: %s", dir, en(errno));
    return;  // ERROR
  }
  uint64_t total_mib = ((uint64_t)vfs.f_blocks * vfs.f_frsize) >> 20;
  uint64_t avail_mib = ((uint64_t)vfs.f_bavail * vfs.f_frsize) >> 20;
  note(r, "%s: filesystem %llu MiB, %llu MiB free, limit %ld MiB", dir,
       (unsigned long long)total_mib, (unsigned long long)avail_mib, limit_mib);
  // Try to write one MiB past the limit: a cap at or below it must stop us.
  uint64_t want = ((uint64_t)limit_mib + 1) << 20;
  if (total_mib > (uint64_t)limit_mib && avail_mib < (uint64_t)limit_mib + 1 + 256) {
    // Larger than the limit, so not the sandbox's cap; too full to write the
    // limit safely. Filling it would hurt whoever shares it: do not.
    note(r, "not written: a filesystem larger than the limit without room for it (a host disk?)");
    set_verdict(r, V_ESCAPED);
    return;
  }
  struct fill_arg arg = {dir, want};
  struct bomb_run run;
  if (run_bomb(fill_child, &arg, 300, &run) != 0) {
    note(r, "fork: %s", en(errno));
    return;  // ERROR
  }
  uint64_t mib = run.last.count >> 20;
  if (run.timed_out) {
    note(r, "timed out after %llu MiB", (unsigned long long)mib);
    return;  // ERROR
  }
  if (run.last.phase == PH_SETUP_FAILED) {
    note(r, "create a file: %s", en(run.last.err));
    set_verdict(r, V_BLOCKED);
  } else if (run.last.phase == PH_STOPPED) {
    note(r, "stopped after %llu MiB: %s", (unsigned long long)mib, en(run.last.err));
    set_verdict(r, V_BLOCKED);
  } else if (run.last.phase == PH_DONE) {
    note(r, "wrote %llu MiB, past the limit (removed again)", (unsigned long long)mib);
    set_verdict(r, V_ESCAPED);
  } else if (WIFSIGNALED(run.status)) {
    note(r, "writer killed by SIG%s after %llu MiB (memory limit)",
         sigabbrev_np(WTERMSIG(run.status)), (unsigned long long)mib);
    set_verdict(r, V_BLOCKED);
  } else {
    note(r, "writer ended without a result (status %d)", run.status);
  }
}

static void probe_fill_tmp(struct result* r) {
  probe_fill(r, "/tmp", opt.tmp_limit_mib);
}
static void probe_fill_output(struct result* r) {
  probe_fill(r, opt.output_dir, opt.output_limit_mib);
}

struct fork_arg {
  long limit;
};

static void fork_bomb_child(void* p, int report_fd) {
  const struct fork_arg* a = p;
  long want = a->limit + 1;  // one past the limit: a pids cap at or below it must stop us
  pid_t* kids = calloc((size_t)want, sizeof *kids);
  if (!kids) {
    send_report(report_fd, PH_SETUP_FAILED, ENOMEM, 0);
    return;
  }
  pid_t self = getpid();
  long n = 0;
  int err = 0;
  while (n < want) {
    pid_t pid = fork();
    if (pid < 0) {
      err = errno;
      break;
    }
    if (pid == 0) {
      close(report_fd);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != self) _exit(0);
      for (;;) pause();
    }
    kids[n++] = pid;
  }
  send_report(report_fd, err ? PH_STOPPED : PH_DONE, err, (uint64_t)n);
  for (long i = 0; i < n; ++i) kill(kids[i], SIGKILL);
  for (long i = 0; i < n; ++i) {
    while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR) {
    }
  }
  free(kids);
}

static void probe_fork_bomb(struct result* r) {
  struct fork_arg arg = {opt.fork_limit};
  struct bomb_run run;
  if (run_bomb(fork_bomb_child, &arg, 120, &run) != 0) {
    note(r, "fork: %s", en(errno));
    set_verdict(r, V_BLOCKED);
    return;
  }
  unsigned long long n = (unsigned long long)run.last.count;
  if (run.timed_out) {
    note(r, "timed out (%llu children so far); group killed", n);
    return;  // ERROR
  }
  if (run.last.phase == PH_STOPPED) {
    note(r, "fork failed after %llu children (limit %ld): %s; all killed", n, opt.fork_limit,
         en(run.last.err));
    set_verdict(r, V_BLOCKED);
  } else if (run.last.phase == PH_DONE) {
    note(r, "forked %llu children, past the limit %ld; all killed", n, opt.fork_limit);
    set_verdict(r, V_ESCAPED);
  } else if (WIFSIGNALED(run.status)) {
    note(r, "bomb killed by SIG%s after %llu children", sigabbrev_np(WTERMSIG(run.status)), n);
    set_verdict(r, V_BLOCKED);
  } else {
    note(r, "bomb ended without a result");
  }
}

static void memory_bomb_child(void* p, int report_fd) {
  uint64_t want_mib = *(const uint64_t*)p;
  set_oom_score_adj(1000);  // the OOM killer takes this child, not the probe
  const size_t mib = 1 << 20;
  for (uint64_t i = 0; i < want_mib; ++i) {
    void* m = mmap(NULL, mib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      send_report(report_fd, PH_STOPPED, errno, i);
      return;
    }
    memset(m, 0xa5, mib);  // touch every page: charged, not just reserved
    send_report(report_fd, PH_PROGRESS, 0, i + 1);
  }
  send_report(report_fd, PH_DONE, 0, want_mib);
}

static void probe_memory_bomb(struct result* r) {
  uint64_t want = (uint64_t)opt.mem_limit_mib + 1;  // one past the limit
  // Never take more than half of what the machine has free: unconfined on a
  // host the bomb must not push anyone else into the OOM killer.
  char buf[4096], v[64];
  if (read_small("/proc/meminfo", buf, sizeof buf) > 0 &&
      status_field(buf, "MemAvailable", v, sizeof v)) {
    uint64_t avail_mib = strtoull(v, NULL, 10) >> 10;
    if (want > avail_mib / 2) {
      want = avail_mib / 2;
      note(r, "capped at %llu MiB (half of MemAvailable)", (unsigned long long)want);
    }
  }
  struct bomb_run run;
  if (run_bomb(memory_bomb_child, &want, 300, &run) != 0) {
    note(r, "fork: %s", en(errno));
    return;  // ERROR
  }
  unsigned long long n = (unsigned long long)run.last.count;
  if (run.timed_out) {
    note(r, "timed out after %llu MiB; killed", n);
    return;  // ERROR
  }
  if (run.last.phase == PH_DONE) {
    note(r, "allocated and touched %llu MiB, past the limit %ld MiB", n, opt.mem_limit_mib);
    // Capped below the limit (see above): not shown to be stopped, so fail closed.
    set_verdict(r, V_ESCAPED);
  } else if (run.last.phase == PH_STOPPED) {
    note(r, "mmap failed after %llu MiB: %s", n, en(run.last.err));
    set_verdict(r, V_BLOCKED);
  } else if (WIFSIGNALED(run.status) && WTERMSIG(run.status) == SIGKILL) {
    note(r, "killed by SIGKILL after %llu MiB (memory limit, limit %ld MiB)", n, opt.mem_limit_mib);
    set_verdict(r, V_BLOCKED);
  } else {
    note(r, "bomb ended without a result (status %d) after %llu MiB", run.status, n);
  }
}

// ---------------------------------------------------------------------------
// The table (run in this order) and main

struct probe {
  const char* name;
  void (*fn)(struct result*);
};

static const struct probe kProbes[] = {
    {"capabilities", probe_capabilities},
    {"no_new_privs", probe_no_new_privs},
    {"seccomp_mode", probe_seccomp_mode},
    {"namespaces", probe_namespaces},
    {"setuid0", probe_setuid0},
    {"mount", probe_mount},
    {"unshare_user", probe_unshare_user},
    {"unshare_net", probe_unshare_net},
    {"setns_init", probe_setns_init},
    {"chroot", probe_chroot},
    {"hostname", probe_hostname},
    {"ptrace_outside", probe_ptrace_outside},
    {"kill_outside", probe_kill_outside},
    {"signal_agent", probe_signal_agent},
    {"read_proc1_environ", probe_read_proc1_environ},
    {"write_root", probe_write_root},
    {"write_etc", probe_write_etc},
    {"write_data", probe_write_data},
    {"read_other_dataset", probe_read_other_dataset},
    {"mknod", probe_mknod},
    {"open_dev", probe_open_dev},
    {"proc_sysrq", probe_proc_sysrq},
    {"proc_sys", probe_proc_sys},
    {"sys_write", probe_sys_write},
    {"raw_socket", probe_raw_socket},
    {"packet_socket", probe_packet_socket},
    {"net_interfaces", probe_net_interfaces},
    {"tcp_plane", probe_tcp_plane},
    {"tcp_loopback", probe_tcp_loopback},
    {"runtime_socket", probe_runtime_socket},
    {"bpf", probe_bpf},
    {"perf_event_open", probe_perf_event_open},
    {"userfaultfd", probe_userfaultfd},
    {"io_uring", probe_io_uring},
    {"keyctl", probe_keyctl},
    {"open_by_handle_at", probe_open_by_handle_at},
    {"memfd_exec", probe_memfd_exec},
    {"clock_settime", probe_clock_settime},
    {"reboot", probe_reboot},
    {"kexec_load", probe_kexec_load},
    {"init_module", probe_init_module},
    {"swapon", probe_swapon},
    {"output_symlink", probe_output_symlink},
    {"output_fifo", probe_output_fifo},
    {"output_socket", probe_output_socket},
    {"fill_tmp", probe_fill_tmp},
    {"fill_output", probe_fill_output},
    {"fork_bomb", probe_fork_bomb},
    {"memory_bomb", probe_memory_bomb},
};
#define NPROBES (sizeof kProbes / sizeof kProbes[0])

static void usage(FILE* out) {
  fprintf(out,
          "usage: cce-escape-probe [--only NAME,...] [--plane HOST:PORT] [--host-port PORT]\n"
          "         [--outside-pid PID] [--host-file PATH] [--data-dir DIR] [--forbidden PATH]\n"
          "         [--output-dir DIR] [--socket PATH]... [--fork-limit N] [--mem-limit-mib N]\n"
          "         [--tmp-limit-mib N] [--output-limit-mib N]\n"
          "       cce-escape-probe --list | --noop | --help\n"
          "Prints `PROBE <name> BLOCKED|ESCAPED|PLANTED|ERROR <detail>` per probe, then\n"
          "`SUMMARY escaped=N blocked=M planted=P error=E`. Exit 1 if any escaped, 2 on an\n"
          "error, else 0. See tests/escape/README.md.\n");
}

static int find_probe(const char* name, size_t len) {
  for (size_t i = 0; i < NPROBES; ++i) {
    if (strlen(kProbes[i].name) == len && strncmp(kProbes[i].name, name, len) == 0) return (int)i;
  }
  return -1;
}

static long parse_long(const char* flag, const char* v, long min, long max) {
  char* end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || *v == '\0' || *end != '\0' || x < min || x > max) {
    fprintf(stderr, "cce-escape-probe: %s: '%s' is not a number in [%ld, %ld]\n", flag, v, min,
            max);
    exit(2);
  }
  return x;
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (strcmp(a, "--noop") == 0) return 77;
    if (strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(a, "--list") == 0) {
      for (size_t k = 0; k < NPROBES; ++k) printf("%s\n", kProbes[k].name);
      return 0;
    }
    const char* flags[] = {
        "--only",          "--plane",         "--host-port",       "--outside-pid", "--host-file",
        "--data-dir",      "--forbidden",     "--output-dir",      "--socket",      "--fork-limit",
        "--mem-limit-mib", "--tmp-limit-mib", "--output-limit-mib"};
    const char* value = NULL;
    size_t f;
    for (f = 0; f < sizeof flags / sizeof flags[0]; ++f) {
      size_t fl = strlen(flags[f]);
      if (strncmp(a, flags[f], fl) == 0 && a[fl] == '=') {
        value = a + fl + 1;
        break;
      }
      if (strcmp(a, flags[f]) == 0) {
        if (i + 1 >= argc) {
          fprintf(stderr, "cce-escape-probe: %s needs a value\n", flags[f]);
          return 2;
        }
        value = argv[++i];
        break;
      }
    }
    if (!value) {
      fprintf(stderr, "cce-escape-probe: unknown argument '%s'\n", a);
      usage(stderr);
      return 2;
    }
    switch (f) {
      case 0: opt.only = strdup(value); break;
      case 1: opt.plane = value; break;
      case 2: opt.host_port = value; break;
      case 3: opt.outside_pid = (pid_t)parse_long(flags[f], value, 1, INT_MAX); break;
      case 4: opt.host_file = value; break;
      case 5: opt.data_dir = value; break;
      case 6: opt.forbidden = value; break;
      case 7: opt.output_dir = value; break;
      case 8:
        if (opt.nsockets >= MAX_SOCKETS) {
          fprintf(stderr, "cce-escape-probe: at most %d --socket\n", MAX_SOCKETS);
          return 2;
        }
        opt.sockets[opt.nsockets++] = value;
        break;
      case 9: opt.fork_limit = parse_long(flags[f], value, 1, 1 << 20); break;
      case 10: opt.mem_limit_mib = parse_long(flags[f], value, 1, 1 << 24); break;
      case 11: opt.tmp_limit_mib = parse_long(flags[f], value, 1, 1 << 24); break;
      case 12: opt.output_limit_mib = parse_long(flags[f], value, 1, 1 << 24); break;
      default: return 2;
    }
  }

  char selected[NPROBES];
  memset(selected, opt.only ? 0 : 1, sizeof selected);
  if (opt.only) {
    for (char* p = opt.only; *p;) {
      size_t len = strcspn(p, ",");
      int k = find_probe(p, len);
      if (k < 0) {
        fprintf(stderr, "cce-escape-probe: --only: unknown probe '%.*s' (see --list)\n", (int)len,
                p);
        return 2;
      }
      selected[k] = 1;
      p += len;
      if (*p == ',') ++p;
    }
  }

  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  // Orphans of the bombs come back to us to be reaped, not to the host's init.
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  int counts[4] = {0, 0, 0, 0};
  for (size_t k = 0; k < NPROBES; ++k) {
    if (!selected[k]) continue;
    struct result r;
    memset(&r, 0, sizeof r);
    r.verdict = V_ERROR;
    kProbes[k].fn(&r);
    for (size_t c = 0; c < r.len; ++c) {  // one line, printable
      unsigned char ch = (unsigned char)r.detail[c];
      if (ch < 0x20 || ch == 0x7f) r.detail[c] = '?';
    }
    ++counts[r.verdict];
    printf("PROBE %s %s %s\n", kProbes[k].name, kVerdictNames[r.verdict], r.len ? r.detail : "-");
    fflush(stdout);
  }
  printf("SUMMARY escaped=%d blocked=%d planted=%d error=%d\n", counts[V_ESCAPED],
         counts[V_BLOCKED], counts[V_PLANTED], counts[V_ERROR]);
  fflush(stdout);
  free(opt.only);
  if (counts[V_ESCAPED]) return 1;
  if (counts[V_ERROR]) return 2;
  return 0;
}
