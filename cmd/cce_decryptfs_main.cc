// cce-decryptfs: mount the plaintext view of an encrypted dataset, read-only.
// Parses flags, loads the key (never from argv or the environment), and
// hands over to decryptfs::RunDecryptFs. Exit codes: 0 ok, 1 runtime error,
// 2 usage error.
#include <fcntl.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/status.h"
#include "decryptfs/decryptfs.h"
#include "format/format.h"

namespace {

constexpr char kUsage[] =
    "Usage: cce-decryptfs (--key-fd N | --key-file FILE) [--foreground] [-o allow_other]\n"
    "                     [--cache-mib N] [--threads N] ENCRYPTED_DIR MOUNTPOINT\n"
    "\n"
    "Mounts the plaintext view of an encrypted dataset directory, read-only.\n"
    "Every byte read is authenticated; a tampered segment reads as an I/O error.\n"
    "\n"
    "  --key-fd N       read the dataset key file from file descriptor N (then close it)\n"
    "  --key-file FILE  read the dataset key file from FILE\n"
    "  --foreground     do not detach once mounted (default: detach after the mount is up)\n"
    "  -o allow_other   let users other than the mounting user read the mount\n"
    "  --cache-mib N    decrypted-segment cache size in MiB (default 32)\n"
    "  --threads N      maximum FUSE worker threads (default 16)\n"
    "  --help           print this help\n"
    "\n"
    "Unmount with fusermount3 -u MOUNTPOINT or by sending SIGTERM.\n";

struct Flags {
  std::optional<int> key_fd;
  std::optional<std::string> key_file;
  cce::decryptfs::MountOptions mount;
  bool help = false;
};

cce::StatusOr<uint64_t> ParseNumber(std::string_view flag, std::string_view text, uint64_t min,
                                    uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
    return cce::InvalidArgument(std::string(flag) + ": expected an integer in " +
                                std::to_string(min) + ".." + std::to_string(max) + ", got '" +
                                std::string(text) + "'");
  }
  return v;
}

cce::StatusOr<Flags> ParseFlags(int argc, char** argv) {
  Flags f;
  std::vector<std::string> positional;
  bool only_positional = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (only_positional || arg.empty() || arg[0] != '-' || arg == "-") {
      positional.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    // "--flag=value" or "--flag value".
    std::string_view name = arg;
    std::optional<std::string_view> inline_value;
    if (size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    auto value = [&](std::string_view what) -> cce::StatusOr<std::string> {
      if (inline_value) return std::string(*inline_value);
      if (i + 1 >= argc) {
        return cce::InvalidArgument(std::string(name) + ": expected " + std::string(what));
      }
      return std::string(argv[++i]);
    };
    auto no_value = [&]() -> cce::Status {
      if (inline_value) return cce::InvalidArgument(std::string(name) + ": takes no value");
      return cce::Status::Ok();
    };
    if (name == "--help" || name == "-h") {
      RETURN_IF_ERROR(no_value());
      f.help = true;
    } else if (name == "--foreground" || name == "-f") {
      RETURN_IF_ERROR(no_value());
      f.mount.foreground = true;
    } else if (name == "--key-fd") {
      ASSIGN_OR_RETURN(std::string v, value("a file descriptor number"));
      ASSIGN_OR_RETURN(uint64_t fd, ParseNumber(name, v, 0, 1 << 20));
      f.key_fd = static_cast<int>(fd);
    } else if (name == "--key-file") {
      ASSIGN_OR_RETURN(std::string v, value("a key file path"));
      if (v.empty()) return cce::InvalidArgument("--key-file: expected a key file path");
      f.key_file = v;
    } else if (name == "-o") {
      ASSIGN_OR_RETURN(std::string v, value("mount options (allow_other)"));
      size_t start = 0;
      while (start <= v.size()) {
        size_t comma = v.find(',', start);
        std::string opt =
            v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (opt == "allow_other") {
          f.mount.allow_other = true;
        } else if (!opt.empty()) {
          return cce::InvalidArgument("-o: unsupported mount option '" + opt +
                                      "'; expected allow_other");
        }
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (name == "--cache-mib") {
      ASSIGN_OR_RETURN(std::string v, value("a size in MiB"));
      ASSIGN_OR_RETURN(uint64_t mib, ParseNumber(name, v, 0, 65536));
      f.mount.cache_bytes = static_cast<size_t>(mib) << 20;
    } else if (name == "--threads") {
      ASSIGN_OR_RETURN(std::string v, value("a thread count"));
      ASSIGN_OR_RETURN(uint64_t n, ParseNumber(name, v, 1, 1024));
      f.mount.threads = static_cast<unsigned>(n);
    } else {
      return cce::InvalidArgument(std::string(name) + ": unknown flag");
    }
  }
  if (f.help) return f;
  if (f.key_fd.has_value() == f.key_file.has_value()) {
    return cce::InvalidArgument(
        "expected exactly one of --key-fd N or --key-file FILE to supply the dataset key");
  }
  if (positional.size() != 2) {
    return cce::InvalidArgument("expected two arguments, ENCRYPTED_DIR and MOUNTPOINT; got " +
                                std::to_string(positional.size()));
  }
  f.mount.dataset_dir = positional[0];
  f.mount.mountpoint = positional[1];
  return f;
}

cce::StatusOr<cce::format::DatasetKey> LoadKey(const Flags& f) {
  if (f.key_file) return cce::format::DatasetKey::LoadFile(*f.key_file);
  std::string flag = "--key-fd " + std::to_string(*f.key_fd);
  if (::fcntl(*f.key_fd, F_GETFD) < 0) {
    return cce::InvalidArgument(flag + ": not an open file descriptor");
  }
  cce::UniqueFd fd(*f.key_fd);  // closed once read
  auto key = cce::format::DatasetKey::ReadFromFd(fd.get());
  if (!key.ok()) return key.status().WithContext(flag);
  return key;
}

int ExitCode(const cce::Status& s) {
  if (s.ok()) return 0;
  (void)std::fprintf(stderr, "cce-decryptfs: %s\n", s.message().c_str());
  return s.code() == cce::StatusCode::kInvalidArgument ? 2 : 1;
}

int Main(int argc, char** argv) {
  auto flags = ParseFlags(argc, argv);
  if (!flags.ok()) {
    (void)std::fprintf(stderr, "cce-decryptfs: %s\nTry 'cce-decryptfs --help'.\n",
                       flags.status().message().c_str());
    return 2;
  }
  if (flags->help) {
    (void)std::fputs(kUsage, stdout);
    return 0;
  }
  auto key = LoadKey(*flags);
  if (!key.ok()) return ExitCode(key.status());
  return ExitCode(cce::decryptfs::RunDecryptFs(flags->mount, std::move(*key)));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    (void)std::fprintf(stderr, "cce-decryptfs: internal error: %s\n", e.what());
  } catch (...) {
    (void)std::fprintf(stderr, "cce-decryptfs: internal error\n");
  }
  return 1;
}

// LeakSanitizer hook (read only in `make asan` builds; inert otherwise).
// libfuse 3.14 frees the mountpoint string it strdup()s in
// fuse_session_mount only in fuse_session_unmount, and the parent of a
// detached server exits without unmounting (the child owns the mount). It is
// compiled into the binary because tests start it with a scrubbed
// environment, where LSAN_OPTIONS would not reach it.
extern "C" const char* __lsan_default_suppressions() {  // NOLINT
  return "leak:fuse_session_mount\n";
}
