// explore: where an Explore session's Jupyter server runs. The plane's
// ExploreSessions service (src/plane/explore_sessions.cc) decides who may
// have a session and with which samples; a SessionBackend only starts,
// finds, and stops the server, and says where the plane's proxy reaches it.
// Backends: `local` (local_backend.h: runc on this host, the default) and
// `kubernetes` (kubernetes_backend.h: Pod + Service + NetworkPolicy + Secret
// through the API server). docs/explore.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::explore {

// One rented dataset's desensitized sample, visible read-only in the session.
struct SampleMount {
  std::string dataset;     // the dataset's catalog name
  std::string host_dir;    // local: absolute directory holding the sample's files
  std::string mount_path;  // where the session sees it: "/data/<dataset>"
};

struct SessionSpec {
  // "xs-" + 16 lower-case hex digits: names the container, pod, service and
  // directories. ValidSessionId checks it.
  std::string id;
  std::string owner;  // the consumer's user name (labels, logs; never a path)
  // The consumer's user id: stable across their sessions. The local backend
  // runs the session as uid/gid uid_base + owner_id and keeps the home
  // directory (home_dir) across sessions.
  int64_t owner_id = 0;
  // local: the host directory mounted read-write at /home/jovyan (created by
  // the plane under DATA_DIR/explore/homes/<owner_id>; the backend chowns
  // it). kubernetes: unused (an emptyDir; persistent homes need a PVC).
  std::string home_dir;
  std::vector<SampleMount> samples;
  // Jupyter's base_url, as the plane's proxy forwards paths: "/explore/<id>/".
  std::string base_url;
  // Secrets handed to the session (never argv, environment of the plane, or
  // logs): the Jupyter server's token (the proxy adds it to every request;
  // the user never sees it) and the SDK's configuration, a JSON object
  // {"plane_url","ca_pem","token","session"} the SDK reads from
  // /etc/cce4long/session.json (local: a 0400 file owned by the session's
  // user on tmpfs; kubernetes: a Secret mounted there).
  crypto::SecretBytes jupyter_token;
  crypto::SecretBytes sdk_config_json;
  int64_t memory_mib = 2048;
  int64_t cpus = 1;
};

// Where the plane's proxy sends a session's requests: a Unix socket
// (local) or host:port over plain HTTP (kubernetes: the Service, reached
// from inside the cluster). Exactly one of unix_socket / host is set.
struct Upstream {
  std::string unix_socket;
  std::string host;
  int port = 0;
  friend bool operator==(const Upstream&, const Upstream&) = default;
};

enum class SessionState { kStarting, kRunning, kGone, kFailed };
std::string_view SessionStateName(SessionState state);  // "starting", ...

struct Observed {
  SessionState state = SessionState::kGone;
  Upstream upstream;   // set when starting or running
  std::string detail;  // why it is gone or failed, in words
};

class SessionBackend {
 public:
  virtual ~SessionBackend() = default;
  virtual std::string_view name() const = 0;  // "local", "kubernetes"
  // Starts the server and returns at once or when it is up (backends say
  // which). Errors: kInvalidArgument (spec fields, named),
  // kAlreadyExists (a session of that id exists), kFailedPrecondition
  // (the backend cannot run here: not root, runc missing, ... in words),
  // kUnavailable (the API server or runtime did not answer), kInternal
  // (the runtime refused, with its message).
  virtual StatusOr<Upstream> Start(const SessionSpec& spec) = 0;
  // What the backend sees now for `id` (after a plane restart: whether the
  // session is still there). A session the backend does not know is kGone,
  // not an error. Errors: kUnavailable / kInternal as above.
  virtual StatusOr<Observed> Observe(const std::string& id) = 0;
  // Stops the server and removes everything the session had (container,
  // pod, service, policy, secret, its runtime directory), except the
  // owner's home directory. Idempotent: stopping an unknown id is OK.
  virtual Status Stop(const std::string& id) = 0;
};

// True for "xs-" followed by exactly 16 lower-case hex digits.
bool ValidSessionId(std::string_view id);

}  // namespace cce::explore
