#include "cce_decryptfs_command.h"

#include <fcntl.h>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/fd.h"
#include "base/status.h"
#include "decryptfs/decryptfs.h"
#include "format/format.h"

namespace cce::cmd {
namespace {

using cli::FlagParser;
using cli::ParsedFlags;

constexpr char kProgram[] = "cce-decryptfs";

FlagParser Parser() {
  return FlagParser(
      "cce-decryptfs (--key-fd N | --key-file FILE) [--foreground] [-o allow_other,nonempty]\n"
      "                     [--expect-dataset-id ID] [--min-version N] [--log-file FILE]\n"
      "                     [--threads N] ENCRYPTED_DIR MOUNTPOINT",
      "Mounts the plaintext view of an encrypted dataset directory, read-only.\n"
      "Every byte read is authenticated; a tampered segment reads as an I/O error.\n"
      "MOUNTPOINT must be an empty directory that is not already a mount point.\n"
      "Once mounted it detaches (closing stdin, stdout and stderr) and logs to\n"
      "--log-file or syslog. Unmount with fusermount3 -u MOUNTPOINT or by sending\n"
      "SIGTERM; if the server was killed (SIGKILL), run fusermount3 -u MOUNTPOINT\n"
      "before mounting again.",
      {{"key-fd", "N", "read the dataset key file from file descriptor N (then close it)"},
       {"key-file", "FILE", "read the dataset key file from FILE"},
       {"foreground", "", "do not detach once mounted (default: detach after the mount is up)",
        false, 'f'},
       {"mount-options", "OPTS",
        "allow_other: let users other than the mounting user read the mount; nonempty: mount "
        "even over a non-empty directory or an existing mount point",
        /*repeatable=*/true, 'o', /*short_only=*/true},
       {"expect-dataset-id", "ID", "refuse to mount unless the manifest names this dataset id"},
       {"min-version", "N", "refuse to mount a dataset version lower than N (rollback)"},
       {"log-file", "FILE",
        "append runtime messages to FILE (default: stderr; syslog once "
        "detached)"},
       {"threads", "N", "maximum FUSE worker threads (default 16)"}});
}

// What the flags ask for. The key is only named here; it is read afterwards.
struct Request {
  std::optional<int> key_fd;
  std::optional<std::string> key_file;
  decryptfs::MountOptions mount;
};

StatusOr<uint64_t> ParseNumber(std::string_view flag, std::string_view text, uint64_t min,
                               uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
    return InvalidArgument(std::string(flag) + ": expected an integer in " + std::to_string(min) +
                           ".." + std::to_string(max) + ", got '" + std::string(text) + "'");
  }
  return v;
}

// -o takes a comma-separated list of allow_other and nonempty.
Status AddMountOptions(std::string_view list, decryptfs::MountOptions* mount) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string_view opt = list.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (opt == "allow_other") {
      mount->allow_other = true;
    } else if (opt == "nonempty") {
      mount->nonempty = true;
    } else if (!opt.empty()) {
      return InvalidArgument("-o: unsupported mount option '" + std::string(opt) +
                             "'; expected allow_other or nonempty");
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return Status::Ok();
}

StatusOr<Request> RequestFrom(const ParsedFlags& f) {
  Request r;
  if (auto v = f.Get("key-fd")) {
    ASSIGN_OR_RETURN(uint64_t fd, ParseNumber("--key-fd", *v, 0, 1 << 20));
    r.key_fd = static_cast<int>(fd);
  }
  if (auto v = f.Get("key-file")) {
    if (v->empty()) return InvalidArgument("--key-file: expected a key file path");
    r.key_file = *v;
  }
  r.mount.foreground = f.Has("foreground");
  for (const std::string& list : f.All("mount-options")) {
    RETURN_IF_ERROR(AddMountOptions(list, &r.mount));
  }
  if (auto v = f.Get("threads")) {
    ASSIGN_OR_RETURN(uint64_t n, ParseNumber("--threads", *v, 1, 1024));
    r.mount.threads = static_cast<unsigned>(n);
  }
  if (auto v = f.Get("expect-dataset-id")) {
    if (v->empty()) return InvalidArgument("--expect-dataset-id: expected a dataset id");
    r.mount.expect_dataset_id = *v;
  }
  if (auto v = f.Get("min-version")) {
    ASSIGN_OR_RETURN(uint64_t n, ParseNumber("--min-version", *v, 0, UINT64_MAX));
    r.mount.min_dataset_version = n;
  }
  if (auto v = f.Get("log-file")) {
    if (v->empty()) return InvalidArgument("--log-file: expected a file path");
    r.mount.log_file = *v;
  }
  if (r.key_fd.has_value() == r.key_file.has_value()) {
    return InvalidArgument(
        "expected exactly one of --key-fd N or --key-file FILE to supply the dataset key");
  }
  if (f.positional().size() != 2) {
    return InvalidArgument("expected two arguments, ENCRYPTED_DIR and MOUNTPOINT; got " +
                           std::to_string(f.positional().size()));
  }
  r.mount.dataset_dir = f.positional()[0];
  r.mount.mountpoint = f.positional()[1];
  return r;
}

StatusOr<format::DatasetKey> LoadKey(const Request& r) {
  if (r.key_file) return format::DatasetKey::LoadFile(*r.key_file);
  std::string flag = "--key-fd " + std::to_string(*r.key_fd);
  if (::fcntl(*r.key_fd, F_GETFD) < 0) {
    return InvalidArgument(flag + ": not an open file descriptor");
  }
  UniqueFd fd(*r.key_fd);  // closed once read
  auto key = format::DatasetKey::ReadFromFd(fd.get());
  if (!key.ok()) return key.status().WithContext(flag);
  return key;
}

Status Mount(const ParsedFlags& f) {
  ASSIGN_OR_RETURN(Request r, RequestFrom(f));
  ASSIGN_OR_RETURN(format::DatasetKey key, LoadKey(r));
  return decryptfs::RunDecryptFs(r.mount, std::move(key));
}

}  // namespace

int RunDecryptFsCommand(const cli::Args& args) {
  int exit = 0;
  auto flags = cli::ParseArgs(kProgram, Parser(), args, cli::kAnyArgCount, &exit);
  if (!flags) return exit;
  Status s = Mount(*flags);
  return s.ok() ? kExitOk : cli::ReportError(kProgram, s);
}

}  // namespace cce::cmd
