// local_backend: Explore sessions on this host. Each session is the
// distribution's Jupyter Notebook server (python3-notebook) in a runc
// container whose root is an empty read-only directory: the host's /usr and
// a few /etc files read-only, the consumer's samples read-only at
// /data/<dataset>, a private home, the SDK and its config, and nothing else
// (no DATA_DIR, ciphertext or keys). It runs as an unprivileged host user
// (uid_base + owner_id) without capabilities, under the executor's seccomp
// profile and a cgroup, and listens on a Unix socket only the plane reaches.
// The session shares the host's network (egress). docs/explore/local.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "explore/backend.h"

namespace cce::explore {

struct LocalBackendOptions {
  std::string runc = "runc";                        // path, or a name searched on PATH
  std::string runc_root = "/run/cce/explore/runc";  // runc --root, made mode 0700
  // Per-session directories work_root/<id>/ (each a tmpfs mounted here, so
  // the token, the SDK config and the bundle never reach a disk). Made 0700.
  std::string work_root = "/run/cce/explore";
  // Sessions run as uid = gid = uid_base + owner_id (a host id no one else
  // uses: keep the range [uid_base, uid_base + number of users) free).
  uint32_t uid_base = 200000;
  // The directory holding the SDK package (the repository's python/, which
  // holds cce4long/), mounted read-only at /opt/cce4long (PYTHONPATH). Empty:
  // nothing is mounted there.
  std::string sdk_dir;
  std::string python = "/usr/bin/python3";  // host path; under /usr (that is all the session sees)
  std::chrono::milliseconds start_timeout{60000};  // until /api/status answers
  // Docker's seccomp profile (data/seccomp/docker-default.json), resolved and
  // tightened as for jobs (executor/seccomp.h). Empty: the shipped copy.
  std::string seccomp_profile;
  uint64_t tmp_max_bytes = uint64_t{512} << 20;  // /tmp tmpfs
  uint64_t log_max_bytes = uint64_t{4} << 20;    // jupyter.log (its own tmpfs: full = dropped)
  int64_t pids_max = 1024;
  uint64_t rlimit_nofile = 4096;
  // RLIMIT_FSIZE: no single file (home included) grows larger. The home's
  // total size is NOT limited here (docs/explore/local.md).
  uint64_t max_file_bytes = uint64_t{4} << 30;
};

class LocalBackend : public SessionBackend {
 public:
  // Checks the options only (no file system access, no root needed, so a
  // plane can be configured with it anywhere); Start checks the host: root,
  // runc, python, sdk_dir, the seccomp profile. Errors: kInvalidArgument
  // "explore.local.FIELD: why".
  static StatusOr<LocalBackend> Create(LocalBackendOptions options);

  std::string_view name() const override { return "local"; }

  // Builds the bundle, starts Jupyter with `runc run --detach` and returns
  // once GET <base_url>api/status answers with the session's token (so the
  // upstream is usable at once): Upstream{unix_socket =
  // work_root/<id>/run/jupyter.sock}. spec requirements: id valid;
  // base_url == "/explore/<id>/"; home_dir an existing absolute directory (not
  // a symlink; chowned to the session user, mode 0700; its contents are
  // left alone); samples[i].dataset [A-Za-z0-9._-]{1,128}, mount_path
  // "/data/<dataset>", host_dir an existing absolute directory (files must be
  // world-readable: the session user reads them through the bind);
  // jupyter_token 16..512 printable ASCII without spaces or quotes;
  // sdk_config_json a JSON object; 64 <= memory_mib, 1 <= cpus <= 64.
  // Errors: kInvalidArgument (a spec field, named), kAlreadyExists (a
  // container or work dir of that id exists), kFailedPrecondition (not root),
  // kInternal (runc refused, or Jupyter did not answer within start_timeout /
  // exited: the message carries the log's tail, tokens redacted; everything
  // made is removed again), kIo.
  StatusOr<Upstream> Start(const SessionSpec& spec) override;

  // From runc's state and the socket alone (works from a new instance after a
  // plane restart): no container -> kGone; running and GET <base_url>api
  // answers -> kRunning; created, or running without an answer yet ->
  // kStarting; stopped/paused -> kGone with the log's tail (redacted).
  // Errors: kInvalidArgument (id), kFailedPrecondition (not root, runc
  // missing), kInternal (runc state failed).
  StatusOr<Observed> Observe(const std::string& id) override;

  // runc kill TERM, up to 5 s, KILL, runc delete --force, the cgroup
  // destroyed, work_root/<id> unmounted and removed. The home is kept.
  // Idempotent. Errors: kInvalidArgument (id), kFailedPrecondition (not
  // root, runc missing), kInternal / kIo (a step failed; the others still ran).
  // Thread-safe for different ids; one id at a time.
  Status Stop(const std::string& id) override;

  const LocalBackendOptions& options() const { return options_; }

 private:
  explicit LocalBackend(LocalBackendOptions options) : options_(std::move(options)) {}
  LocalBackendOptions options_;
};

// The host path of a session's Jupyter socket under `work_root`.
std::string LocalSessionSocket(const std::string& work_root, const std::string& id);

}  // namespace cce::explore
