// kubernetes_backend: Explore sessions as Pods. Each session is a
// NetworkPolicy, a Secret, a Service and a Pod (k8s_manifests.h) created
// through the API server's REST interface over TLS (libcurl, the cluster CA
// verified), with an in-cluster service account or a kubeconfig file.
// docs/explore/kubernetes.md; not run against a real cluster here.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "base/status.h"
#include "crypto/crypto.h"
#include "explore/backend.h"
#include "explore/k8s_manifests.h"

namespace cce::explore {

// How to reach and authenticate to the API server.
struct ClusterAccess {
  std::string server;  // https://HOST[:PORT], no trailing slash
  std::string ca_pem;  // the only CA trusted for `server` (required)
  // Bearer token (a kubeconfig's token), or the file it is re-read from
  // before each request (token_file: in-cluster tokens are rotated).
  crypto::SecretBytes token;
  std::string token_file;
  // Client certificate authentication (kubeconfig): PEM chain and key.
  std::string client_cert_pem;
  crypto::SecretBytes client_key_pem;
  std::string namespace_name;  // the context's / pod's namespace; may be empty
};

inline constexpr char kInClusterDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

// In-cluster: token, ca.crt and namespace from `dir` (the token is re-read
// per request from dir/token); the server from KUBERNETES_SERVICE_HOST/PORT
// when set, else https://kubernetes.default.svc. Errors: kFailedPrecondition
// naming the missing or unreadable file.
StatusOr<ClusterAccess> LoadInClusterAccess(const std::string& dir = kInClusterDir);

// A kubeconfig (YAML, at most 1 MiB): `context` or current-context, its
// cluster (server, certificate-authority or -data) and user (token,
// tokenFile, client-certificate(-data) + client-key(-data)). Relative file
// paths are relative to `path`'s directory. Refused: insecure-skip-tls-verify,
// exec and auth-provider plugins, a cluster without a CA, a user with no
// credentials. Errors (kInvalidArgument) name the key:
// "kubeconfig /k: users[0] (alice).user.client-key-data: not base64".
StatusOr<ClusterAccess> ParseKubeconfig(std::string_view text, const std::string& path,
                                        std::string_view context = "");
StatusOr<ClusterAccess> LoadKubeconfig(const std::string& path, std::string_view context = "");

// An API server's error answer as a Status, with its message (a
// metav1.Status body when there is one; else the HTTP status). `what` says
// what was asked: "creating Pod xs-..". 401/403 -> kFailedPrecondition (our
// credentials or RBAC), 404 -> kNotFound, 409 -> kAlreadyExists, 400/422 ->
// kInternal (the object was refused), 429/5xx/others -> kUnavailable.
Status ApiError(int http_status, std::string_view body, std::string_view what);

// What a Pod object (GET .../pods/NAME, JSON) says about the session:
// Running and Ready -> kRunning; Pending, or Running and not Ready ->
// kStarting; Succeeded/Failed or being deleted -> kGone; Unknown -> kFailed;
// with the reason in detail. Errors: kInternal for a body that is not a Pod.
StatusOr<Observed> ObservedFromPod(std::string_view body);

struct KubernetesBackendOptions {
  // In-cluster service account when kubeconfig is empty.
  std::string kubeconfig;
  std::string kubeconfig_context;
  std::string in_cluster_dir = kInClusterDir;
  std::string api_server;  // overrides the server found above
  // The objects' namespace; empty: the kubeconfig context's or the pod's own.
  // manifests.namespace_name is filled from this.
  k8s::ManifestOptions manifests;
  // Per API request (connect included).
  std::chrono::milliseconds request_timeout{30'000};
};

class KubernetesBackend : public SessionBackend {
 public:
  // Loads the credentials (kubeconfig or in-cluster files) and checks the
  // options. Talks to no server. Errors: kFailedPrecondition / kInvalidArgument
  // naming the file, key or option.
  static StatusOr<std::unique_ptr<KubernetesBackend>> Create(KubernetesBackendOptions options);
  // With credentials already loaded (tests; options' auth fields unused).
  static StatusOr<std::unique_ptr<KubernetesBackend>> Create(KubernetesBackendOptions options,
                                                             ClusterAccess access);
  ~KubernetesBackend() override;
  KubernetesBackend(const KubernetesBackend&) = delete;
  KubernetesBackend& operator=(const KubernetesBackend&) = delete;

  std::string_view name() const override { return "kubernetes"; }
  // Creates the NetworkPolicy first (so the pod never runs unconfined), then
  // the Secret, the Service and the Pod; then makes the Pod the owner of the
  // other three (the garbage collector removes them after the Pod, so the
  // policy outlives it). Returns once the objects exist, before the pod
  // runs: Observe says when it does. A failure deletes what this call made.
  StatusOr<Upstream> Start(const SessionSpec& spec) override;
  StatusOr<Observed> Observe(const std::string& id) override;
  // Deletes the Pod, the Service and the Secret; the NetworkPolicy too once
  // the Pod is gone (else the garbage collector removes it after the Pod).
  // 404s are fine.
  Status Stop(const std::string& id) override;

  const std::string& namespace_name() const { return options_.manifests.namespace_name; }

 private:
  struct Transport;
  KubernetesBackend(KubernetesBackendOptions options, ClusterAccess access,
                    std::unique_ptr<Transport> transport);
  Upstream UpstreamFor(const std::string& id) const;

  KubernetesBackendOptions options_;
  ClusterAccess access_;
  std::mutex mu_;                         // guards transport_ (one libcurl handle)
  std::unique_ptr<Transport> transport_;  // guarded by mu_
};

}  // namespace cce::explore
