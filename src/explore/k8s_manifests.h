// k8s_manifests: the Kubernetes objects of one Explore session, as pure
// functions from a SessionSpec and the backend's options to JSON (nlohmann):
// a NetworkPolicy, a Secret, a Service and a Pod, plus ValidateManifest,
// which checks what a real API server would reject before anything is sent.
// The kubernetes backend (kubernetes_backend.h) POSTs these. docs/explore/kubernetes.md.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "explore/backend.h"

namespace cce::explore::k8s {

inline constexpr char kDefaultImage[] = "quay.io/jupyter/base-notebook:2024-12-02";
inline constexpr int kJupyterPort = 8888;

// Egress the session may never reach, whatever else is allowed: RFC 1918,
// CGNAT, link-local (cloud metadata at 169.254.169.254), IPv6 ULA and
// link-local. Listed as `except` of the 0.0.0.0/0 and ::/0 allow rules.
const std::vector<std::string>& DeniedIpv4Ranges();
const std::vector<std::string>& DeniedIpv6Ranges();

// Where the plane runs in the cluster: the session's Jupyter server accepts
// connections only from these pods, and the session may reach them only on
// api_port (the plane's HTTPS API, which the SDK and the sample fetcher use).
struct PlaneSelector {
  std::string namespace_name;                     // the plane's namespace
  std::map<std::string, std::string> pod_labels;  // matchLabels of the plane's pods
  int api_port = 8443;                            // the plane pods' HTTPS port
};

struct ManifestOptions {
  std::string namespace_name;  // where the session's objects live
  std::string image = kDefaultImage;
  std::string image_pull_policy = "IfNotPresent";
  // The sample fetcher's image (an initContainer with python3); empty: `image`.
  std::string fetcher_image;
  // Optional: a ConfigMap holding python/cce4long's files, mounted read-only
  // at /opt/cce4long/cce4long (PYTHONPATH=/opt/cce4long). Empty: the image
  // must bring the SDK itself.
  std::string sdk_config_map;
  // Optional RuntimeClass (e.g. gVisor's "gvisor") for a stronger sandbox.
  std::string runtime_class_name;
  PlaneSelector plane;
  // Where the cluster's DNS runs (egress UDP/TCP 53 is allowed to it).
  std::string dns_namespace = "kube-system";
  std::map<std::string, std::string> dns_pod_labels = {{"k8s-app", "kube-dns"}};
  // More CIDRs to deny (e.g. the nodes' public addresses); each must lie in
  // 0.0.0.0/0 or ::/0 and is added to the matching `except` list.
  std::vector<std::string> extra_denied_cidrs;
  // Resource quantities (Kubernetes syntax). Memory and CPU limits come from
  // the SessionSpec (memory_mib, cpus); requests are these.
  std::string cpu_request = "100m";
  std::string memory_request = "256Mi";
  std::string ephemeral_storage_limit = "2Gi";
  std::string home_size_limit = "1Gi";     // emptyDir at /home/jovyan
  std::string tmp_size_limit = "512Mi";    // emptyDir at /tmp
  std::string samples_size_limit = "2Gi";  // emptyDir holding the samples
};

// Object names: the session id (already a DNS-1123 label: "xs-" + 16 hex)
// for the Pod, Service and NetworkPolicy; "<id>-config" for the Secret.
std::string PodName(std::string_view session_id);
std::string ServiceName(std::string_view session_id);
std::string NetworkPolicyName(std::string_view session_id);
std::string SecretName(std::string_view session_id);

// A label value from an arbitrary user name: characters outside
// [A-Za-z0-9._-] become '-', at most 63, starting and ending alphanumeric;
// "unknown" when nothing is left. Informational only (never used to decide).
std::string SanitizedLabelValue(std::string_view owner);

// Each builder checks the spec (kInvalidArgument naming the field: id,
// base_url, samples[i].dataset / mount_path, memory_mib, cpus, the two
// secrets) and the options it uses, and returns an object that passes
// ValidateManifest.
StatusOr<nlohmann::json> BuildNetworkPolicy(const SessionSpec& spec, const ManifestOptions& opts);
// The Secret's data holds the secrets base64-encoded: the caller must wipe
// the serialized request and never log the object.
StatusOr<nlohmann::json> BuildSecret(const SessionSpec& spec, const ManifestOptions& opts);
StatusOr<nlohmann::json> BuildService(const SessionSpec& spec, const ManifestOptions& opts);
StatusOr<nlohmann::json> BuildPod(const SessionSpec& spec, const ManifestOptions& opts);

// The sample fetcher the initContainer runs (python3 -c SCRIPT DATASET...):
// reads /etc/cce4long/session.json, downloads each dataset's sample from the
// plane over HTTPS (trusting only ca_pem, bearer = the session token), checks
// each file's size and SHA-256 against the plane's listing, and writes it
// under /samples/<dataset>/. Exposed for the test that runs it for real.
std::string_view SampleFetcherScript();

// What a real API server would reject in one of the objects above (Pod,
// Service, Secret, NetworkPolicy; any other kind is refused): apiVersion and
// kind, metadata.name (DNS-1123 label, <= 63), namespace, label keys and
// values, required fields, container names and ports (1..65535), volume
// references, resource quantities, CIDRs (and that each except lies inside
// its cidr), Secret data (base64). Errors (kInvalidArgument) name the JSON
// path: "Pod spec.containers[0].securityContext.runAsUser: ...".
Status ValidateManifest(const nlohmann::json& object);

// Small syntax checks, shared with the backend and its tests.
bool IsDns1123Label(std::string_view s);
bool IsValidQuantity(std::string_view s);
bool IsValidCidr(std::string_view s);

}  // namespace cce::explore::k8s
