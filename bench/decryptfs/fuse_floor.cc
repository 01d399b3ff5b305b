// decryptfs_floor: the least a libfuse server can do for a random 4 KiB read
// of a cce dataset, measured beside cce-decryptfs by bench/decryptfs/run.sh
// so that the bench prints a measured ceiling, not an argued one.
//
// It serves one read-only file, data.bin, of --size bytes, with the FUSE
// settings cce-decryptfs uses (max_read 1 MiB, no OPEN, async reads, entry
// and attribute timeouts of a year, a multi-threaded loop with clone_fd and
// the same thread count). Per READ it does, by --mode:
//   disk   the same O_DIRECT pread of the ciphertext object --backing that
//          cce-decryptfs does for that range (the sealed 4 KiB blocks, each
//          followed by its 16-byte tag, after the 68-byte header, aligned to
//          the file system's direct-I/O alignment), and replies with bytes
//          from that buffer: no key, no decryption, no authentication;
//   zeros  no I/O at all: replies zeros (the FUSE round trip alone).
// Not a file system anyone should mount for data: the replies are not the
// plaintext. Usage: decryptfs_floor --mode disk|zeros --backing FILE
//                   --size BYTES [--threads N] MOUNTPOINT   (foreground; unmount
//                   with fusermount3 -u, or SIGINT/SIGTERM)
#define FUSE_USE_VERSION 312

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace {

// Format v2 geometry (docs/format.md): header, then 4 KiB blocks each
// followed by its tag.
constexpr uint64_t kHeader = 68;
constexpr uint64_t kBlock = 4096;
constexpr uint64_t kTag = 16;
constexpr unsigned kMaxRead = 1u << 20;
constexpr double kCacheSeconds = 365.0 * 24 * 3600;
constexpr fuse_ino_t kFileIno = 2;
constexpr char kFileName[] = "data.bin";

struct Floor {
  bool disk = true;
  int fd = -1;
  uint64_t size = 0;
  uint64_t align = 512;
};
Floor g;

void FillStat(fuse_ino_t ino, struct stat* s) {
  std::memset(s, 0, sizeof *s);
  s->st_ino = ino;
  if (ino == FUSE_ROOT_ID) {
    s->st_mode = S_IFDIR | 0555;
    s->st_nlink = 2;
  } else {
    s->st_mode = S_IFREG | 0444;
    s->st_nlink = 1;
    s->st_size = static_cast<off_t>(g.size);
  }
}

void Init(void* /*userdata*/, fuse_conn_info* conn) {
  conn->max_read = kMaxRead;
  conn->max_readahead = kMaxRead;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  if (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (parent != FUSE_ROOT_ID || std::strcmp(name, kFileName) != 0) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  fuse_entry_param e{};
  e.ino = kFileIno;
  e.generation = 1;
  e.attr_timeout = kCacheSeconds;
  e.entry_timeout = kCacheSeconds;
  FillStat(kFileIno, &e.attr);
  fuse_reply_entry(req, &e);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
  if (ino != FUSE_ROOT_ID && ino != kFileIno) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat s;
  FillStat(ino, &s);
  fuse_reply_attr(req, &s, kCacheSeconds);
}

void Open(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* /*fi*/) {
  fuse_reply_err(req, ENOSYS);  // like cce-decryptfs: FUSE_CAP_NO_OPEN_SUPPORT
}

// One aligned buffer per worker thread, big enough for a max_read request.
struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
thread_local std::unique_ptr<uint8_t, FreeDeleter> t_buf;
constexpr size_t kBufSize = kMaxRead + kMaxRead / kBlock * kTag + 2 * 4096 + kHeader;

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* /*fi*/) {
  if (ino != kFileIno) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  if (!t_buf) {
    void* p = nullptr;
    if (posix_memalign(&p, 4096, kBufSize) != 0) {
      fuse_reply_err(req, ENOMEM);
      return;
    }
    std::memset(p, 0, kBufSize);
    t_buf.reset(static_cast<uint8_t*>(p));
  }
  const auto offset = static_cast<uint64_t>(off);
  if (offset >= g.size) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  size = static_cast<size_t>(std::min<uint64_t>(size, g.size - offset));
  if (!g.disk) {
    fuse_reply_buf(req, reinterpret_cast<const char*>(t_buf.get()), size);
    return;
  }
  // The sealed blocks that hold [offset, offset+size), as cce-decryptfs reads them.
  const uint64_t first = offset / kBlock;
  const uint64_t last = (offset + size - 1) / kBlock;
  const uint64_t sealed_begin = kHeader + first * (kBlock + kTag);
  const uint64_t plain_end = std::min<uint64_t>((last + 1) * kBlock, g.size);
  const uint64_t sealed_end = kHeader + plain_end + (last + 1) * kTag;
  const uint64_t begin = sealed_begin / g.align * g.align;
  const uint64_t end = (sealed_end + g.align - 1) / g.align * g.align;
  if (end - begin > kBufSize) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  ssize_t n = pread(g.fd, t_buf.get(), end - begin, static_cast<off_t>(begin));
  if (n < 0) {
    fuse_reply_err(req, errno);
    return;
  }
  fuse_reply_buf(req, reinterpret_cast<const char*>(t_buf.get() + (sealed_begin - begin)), size);
}

[[noreturn]] void Usage(const char* why) {
  if (why != nullptr) std::fprintf(stderr, "decryptfs_floor: error: %s\n", why);
  std::fprintf(why != nullptr ? stderr : stdout,
               "Usage: decryptfs_floor --mode disk|zeros --backing FILE --size BYTES [--threads N] "
               "MOUNTPOINT\n"
               "A bench-only libfuse server: the FUSE round trip (zeros) or the round trip plus\n"
               "cce-decryptfs's O_DIRECT read of the ciphertext (disk), with no decryption.\n");
  std::exit(why != nullptr ? 2 : 0);
}

uint64_t ParseCount(const char* flag, const char* v) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || n == 0) {
    Usage((std::string(flag) + ": '" + v + "' is not a positive integer").c_str());
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode, backing, mountpoint;
  unsigned threads = 16;  // cce-decryptfs's default (decryptfs.h)
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) Usage((std::string(a) + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--help" || a == "-h") Usage(nullptr);
    if (a == "--mode") {
      mode = value();
    } else if (a == "--backing") {
      backing = value();
    } else if (a == "--size") {
      g.size = ParseCount("--size", value());
    } else if (a == "--threads") {
      threads = static_cast<unsigned>(ParseCount("--threads", value()));
    } else if (!a.empty() && a[0] == '-') {
      Usage((std::string("unknown option '") + argv[i] + "'").c_str());
    } else if (mountpoint.empty()) {
      mountpoint = argv[i];
    } else {
      Usage("more than one MOUNTPOINT");
    }
  }
  if (mode != "disk" && mode != "zeros") Usage("--mode must be disk or zeros");
  if (g.size == 0) Usage("--size is required");
  if (mountpoint.empty()) Usage("MOUNTPOINT is required");
  g.disk = mode == "disk";
  if (g.disk) {
    if (backing.empty()) Usage("--mode disk needs --backing FILE (a cce ciphertext object)");
    g.fd = open(backing.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (g.fd < 0) {
      std::fprintf(stderr, "decryptfs_floor: error: cannot open %s with O_DIRECT: %s\n",
                   backing.c_str(), std::strerror(errno));
      return 1;
    }
    struct statx sx{};
    if (statx(g.fd, "", AT_EMPTY_PATH, STATX_DIOALIGN | STATX_SIZE, &sx) == 0 &&
        (sx.stx_mask & STATX_DIOALIGN) != 0 && sx.stx_dio_offset_align != 0) {
      g.align = std::max<uint64_t>(sx.stx_dio_offset_align, sx.stx_dio_mem_align);
    } else {
      g.align = 4096;
    }
    const uint64_t blocks = (g.size + kBlock - 1) / kBlock;
    if ((sx.stx_mask & STATX_SIZE) == 0 || sx.stx_size != kHeader + g.size + blocks * kTag) {
      std::fprintf(stderr,
                   "decryptfs_floor: error: %s is %llu bytes; a v2 object of %llu plaintext bytes "
                   "is %llu\n",
                   backing.c_str(), static_cast<unsigned long long>(sx.stx_size),
                   static_cast<unsigned long long>(g.size),
                   static_cast<unsigned long long>(kHeader + g.size + blocks * kTag));
      return 2;
    }
  }
  std::string opts = "ro,nosuid,nodev,default_permissions,fsname=decryptfs-floor,max_read=" +
                     std::to_string(kMaxRead);
  std::string arg0 = "decryptfs_floor", arg1 = "-o";
  char* av[] = {arg0.data(), arg1.data(), opts.data(), nullptr};
  fuse_args args = FUSE_ARGS_INIT(3, av);
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.getattr = GetAttr;
  ops.open = Open;
  ops.read = Read;
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, nullptr);
  if (se == nullptr) return 1;
  if (fuse_session_mount(se, mountpoint.c_str()) != 0) {
    fuse_session_destroy(se);
    return 1;
  }
  fuse_set_signal_handlers(se);
  fuse_loop_config* config = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(config, 1);
  fuse_loop_cfg_set_max_threads(config, threads);
  fuse_loop_cfg_set_idle_threads(config, threads);
  int rc = fuse_session_loop_mt(se, config);
  fuse_loop_cfg_destroy(config);
  fuse_remove_signal_handlers(se);
  fuse_session_unmount(se);
  fuse_session_destroy(se);
  if (g.fd >= 0) close(g.fd);
  return rc == 0 ? 0 : 1;
}
