#include "explore/kubernetes_backend.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "crypto/x509.h"
#include "http/client.h"  // Printable, RedactUrl
#include "http/curl.h"

namespace cce::explore {
namespace {

using nlohmann::json;

constexpr size_t kMaxKubeconfigBytes = size_t{1} << 20;
constexpr size_t kMaxCredentialFileBytes = size_t{1} << 20;
// A Pod object with status is a few KiB; a Status a few hundred bytes.
constexpr size_t kMaxResponseBytes = size_t{4} << 20;

std::string_view View(const crypto::SecretBytes& s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

crypto::SecretBytes SecretOf(std::string_view s) {
  return crypto::SecretBytes::CopyOf(crypto::AsBytes(s));
}

void Wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

// Standard base64 (kubeconfig's *-data fields), into SecretBytes: a
// client key passes through here. nullopt on any non-alphabet byte.
std::optional<crypto::SecretBytes> DecodeBase64(std::string_view in) {
  std::string compact;
  for (char c : in) {
    if (c != '\n' && c != '\r' && c != ' ') compact += c;
  }
  if (compact.size() % 4 != 0) {
    Wipe(compact);
    return std::nullopt;
  }
  crypto::SecretBytes out(compact.size() / 4 * 3);
  size_t n = 0;
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  bool ok = true;
  for (size_t i = 0; i < compact.size() && ok; ++i) {
    const char c = compact[i];
    int v = -1;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == '=' && i + 2 >= compact.size()) {
      ++pad;
      continue;
    }
    if (v < 0 || pad > 0) {
      ok = false;
      break;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.data()[n++] = static_cast<uint8_t>((acc >> bits) & 0xff);
    }
  }
  Wipe(compact);
  if (!ok || pad > 2) return std::nullopt;
  crypto::SecretBytes exact = crypto::SecretBytes::CopyOf({out.data(), n});
  return exact;
}

StatusOr<std::string> ReadSmallFile(const std::string& path, const std::string& what) {
  auto text = ReadFile(path, kMaxCredentialFileBytes);
  if (!text.ok()) return FailedPrecondition(what + " " + path + ": " + text.status().message());
  return std::move(*text);
}

Status CheckCaPem(const std::string& pem, const std::string& where) {
  auto certs = crypto::ParseCertificatesPem(pem);
  if (!certs.ok() || certs->empty()) {
    return InvalidArgument(where + ": not a PEM certificate" +
                           (certs.ok() ? std::string() : " (" + certs.status().message() + ")"));
  }
  return Status::Ok();
}

std::string TrimSpace(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  size_t start = 0;
  while (start < s.size() && (s[start] == ' ' || s[start] == '\t' || s[start] == '\n')) ++start;
  return s.substr(start);
}

// ---- kubeconfig ---------------------------------------------------------------

class Kubeconfig {
 public:
  Kubeconfig(std::string path) : path_(std::move(path)) {  // NOLINT
    dir_ = std::filesystem::path(path_).parent_path().string();
  }

  Status Fail(const std::string& key, const std::string& what) const {
    return InvalidArgument("kubeconfig " + path_ + ": " + key + ": " + what);
  }

  // A string field of a mapping, "" when absent; an error when not a string.
  StatusOr<std::string> Str(const YAML::Node& map, const std::string& key,
                            const std::string& where) const {
    const YAML::Node v = map[key];
    if (!v.IsDefined() || v.IsNull()) return std::string();
    if (!v.IsScalar()) return Fail(where + "." + key, "must be a string");
    return v.Scalar();
  }

  // The entry of list `list` ("clusters", "users", "contexts") named `name`,
  // and where it is ("users[1] (alice)").
  StatusOr<std::pair<YAML::Node, std::string>> Find(const YAML::Node& root, const std::string& list,
                                                    const std::string& name,
                                                    const std::string& body) const {
    const YAML::Node entries = root[list];
    if (!entries.IsDefined() || entries.IsNull())
      return Fail(list, "missing (looking for '" + name + "')");
    if (!entries.IsSequence()) return Fail(list, "must be a list");
    for (size_t i = 0; i < entries.size(); ++i) {
      const YAML::Node e = entries[i];
      const std::string where = list + "[" + std::to_string(i) + "]";
      if (!e.IsMap()) return Fail(where, "must be a mapping with name and " + body);
      ASSIGN_OR_RETURN(std::string n, Str(e, "name", where));
      if (n != name) continue;
      const YAML::Node b = e[body];
      if (!b.IsMap()) return Fail(where + " (" + name + ")." + body, "missing or not a mapping");
      return std::make_pair(b, where + " (" + name + ")." + body);
    }
    return Fail(list, "no entry named '" + name + "'");
  }

  std::string Resolve(const std::string& file) const {
    if (file.empty() || file.front() == '/' || dir_.empty()) return file;
    return dir_ + "/" + file;
  }

  // `key`-data (base64) or `key` (a file), not both.
  StatusOr<std::optional<crypto::SecretBytes>> DataOrFile(const YAML::Node& map,
                                                          const std::string& key,
                                                          const std::string& where) const {
    ASSIGN_OR_RETURN(std::string data, Str(map, key + "-data", where));
    ASSIGN_OR_RETURN(std::string file, Str(map, key, where));
    if (!data.empty() && !file.empty())
      return Fail(where + "." + key, "give " + key + " or " + key + "-data, not both");
    if (!data.empty()) {
      auto decoded = DecodeBase64(data);
      Wipe(data);
      if (!decoded) return Fail(where + "." + key + "-data", "not base64");
      return std::optional<crypto::SecretBytes>(std::move(*decoded));
    }
    if (file.empty()) return std::optional<crypto::SecretBytes>();
    auto text = ReadFile(Resolve(file), kMaxCredentialFileBytes);
    if (!text.ok())
      return Fail(where + "." + key, "'" + Resolve(file) + "': " + text.status().message());
    crypto::SecretBytes out = SecretOf(*text);
    Wipe(*text);
    return std::optional<crypto::SecretBytes>(std::move(out));
  }

  StatusOr<ClusterAccess> Parse(std::string_view text, std::string_view wanted_context) const {
    if (text.size() > kMaxKubeconfigBytes) return Fail("file", "larger than 1 MiB");
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
      return Fail("line " + std::to_string(e.mark.line + 1), "not YAML: " + e.msg);
    }
    if (!root.IsMap()) return Fail("document", "must be a mapping (apiVersion: v1, kind: Config)");
    ASSIGN_OR_RETURN(std::string kind, Str(root, "kind", "document"));
    if (!kind.empty() && kind != "Config") return Fail("kind", "'" + kind + "': expected Config");
    std::string context(wanted_context);
    if (context.empty()) {
      ASSIGN_OR_RETURN(context, Str(root, "current-context", "document"));
      if (context.empty()) return Fail("current-context", "missing (or pass a context)");
    }
    ASSIGN_OR_RETURN(auto ctx, Find(root, "contexts", context, "context"));
    ASSIGN_OR_RETURN(std::string cluster_name, Str(ctx.first, "cluster", ctx.second));
    ASSIGN_OR_RETURN(std::string user_name, Str(ctx.first, "user", ctx.second));
    if (cluster_name.empty()) return Fail(ctx.second + ".cluster", "missing");
    if (user_name.empty()) return Fail(ctx.second + ".user", "missing");
    ClusterAccess access;
    ASSIGN_OR_RETURN(access.namespace_name, Str(ctx.first, "namespace", ctx.second));

    ASSIGN_OR_RETURN(auto cluster, Find(root, "clusters", cluster_name, "cluster"));
    const std::string& cw = cluster.second;
    ASSIGN_OR_RETURN(access.server, Str(cluster.first, "server", cw));
    if (access.server.rfind("https://", 0) != 0 || access.server.size() <= 8 ||
        access.server.find_first_of(" \t\r\n") != std::string::npos) {
      return Fail(cw + ".server", "'" + http::Printable(http::RedactUrl(access.server), 200) +
                                      "': expected https://HOST[:PORT]");
    }
    while (access.server.back() == '/') access.server.pop_back();
    const YAML::Node insecure = cluster.first["insecure-skip-tls-verify"];
    if (insecure.IsDefined() && insecure.IsScalar() && insecure.Scalar() != "false") {
      return Fail(cw + ".insecure-skip-tls-verify",
                  "refused: the API server's certificate is always verified");
    }
    ASSIGN_OR_RETURN(auto ca, DataOrFile(cluster.first, "certificate-authority", cw));
    if (!ca)
      return Fail(cw + ".certificate-authority", "missing (give certificate-authority or -data)");
    access.ca_pem = std::string(View(*ca));
    RETURN_IF_ERROR(
        CheckCaPem(access.ca_pem, "kubeconfig " + path_ + ": " + cw + ".certificate-authority"));

    ASSIGN_OR_RETURN(auto user, Find(root, "users", user_name, "user"));
    const std::string& uw = user.second;
    for (const char* plugin : {"exec", "auth-provider", "username", "password"}) {
      if (user.first[plugin].IsDefined()) {
        return Fail(uw + "." + plugin,
                    "not supported (use a token, tokenFile or a client certificate)");
      }
    }
    ASSIGN_OR_RETURN(std::string token, Str(user.first, "token", uw));
    ASSIGN_OR_RETURN(std::string token_file, Str(user.first, "tokenFile", uw));
    if (!token.empty() && !token_file.empty())
      return Fail(uw + ".token", "give token or tokenFile, not both");
    access.token = SecretOf(token);
    Wipe(token);
    access.token_file = Resolve(token_file);
    ASSIGN_OR_RETURN(auto cert, DataOrFile(user.first, "client-certificate", uw));
    ASSIGN_OR_RETURN(auto key, DataOrFile(user.first, "client-key", uw));
    if (cert.has_value() != key.has_value()) {
      return Fail(uw + (cert ? ".client-key" : ".client-certificate"),
                  "missing (a client certificate needs both certificate and key)");
    }
    if (cert) {
      access.client_cert_pem = std::string(View(*cert));
      if (!crypto::ParseCertificatesPem(access.client_cert_pem).ok()) {
        return Fail(uw + ".client-certificate", "not a PEM certificate");
      }
      if (View(*key).find("-----BEGIN") == std::string_view::npos) {
        return Fail(uw + ".client-key", "not a PEM private key");
      }
      access.client_key_pem = std::move(*key);
    }
    if (access.token.empty() && access.token_file.empty() && access.client_cert_pem.empty()) {
      return Fail(uw, "no credentials (token, tokenFile, or client-certificate + client-key)");
    }
    return access;
  }

 private:
  std::string path_;
  std::string dir_;
};

// ---- API answers ----------------------------------------------------------------

std::string ApiMessage(std::string_view body) {
  try {
    const json j = json::parse(body);
    if (j.is_object() && j.value("kind", "") == "Status" && j.contains("message") &&
        j["message"].is_string()) {
      std::string m = http::Printable(j["message"].get<std::string>(), 500);
      if (j.contains("reason") && j["reason"].is_string()) {
        m += " (" + http::Printable(j["reason"].get<std::string>(), 60) + ")";
      }
      return m;
    }
  } catch (const std::exception&) {
  }
  return body.empty() ? std::string() : http::Printable(body, 200);
}

std::string Str(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>()
                                                                : std::string();
}

}  // namespace

// ---- free functions ----------------------------------------------------------------

StatusOr<ClusterAccess> ParseKubeconfig(std::string_view text, const std::string& path,
                                        std::string_view context) {
  try {
    return Kubeconfig(path).Parse(text, context);
  } catch (const std::exception& e) {  // yaml-cpp conversions
    return InvalidArgument("kubeconfig " + path + ": " + http::Printable(e.what(), 200));
  }
}

StatusOr<ClusterAccess> LoadKubeconfig(const std::string& path, std::string_view context) {
  auto text = ReadFile(path, kMaxKubeconfigBytes);
  if (!text.ok()) return FailedPrecondition("kubeconfig " + path + ": " + text.status().message());
  auto access = ParseKubeconfig(*text, path, context);
  Wipe(*text);
  return access;
}

StatusOr<ClusterAccess> LoadInClusterAccess(const std::string& dir) {
  ClusterAccess access;
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host != nullptr && *host != '\0') {
    const std::string h = host;
    access.server = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) +
                    (port != nullptr && *port != '\0' ? ":" + std::string(port) : "");
  } else {
    access.server = "https://kubernetes.default.svc";
  }
  access.token_file = dir + "/token";
  ASSIGN_OR_RETURN(std::string token, ReadSmallFile(access.token_file, "in-cluster token"));
  const bool empty_token = TrimSpace(token).empty();
  Wipe(token);
  if (empty_token) return FailedPrecondition("in-cluster token " + access.token_file + ": empty");
  ASSIGN_OR_RETURN(access.ca_pem, ReadSmallFile(dir + "/ca.crt", "in-cluster CA"));
  Status ca = CheckCaPem(access.ca_pem, "in-cluster CA " + dir + "/ca.crt");
  if (!ca.ok()) return FailedPrecondition(ca.message());
  ASSIGN_OR_RETURN(std::string ns, ReadSmallFile(dir + "/namespace", "in-cluster namespace"));
  access.namespace_name = TrimSpace(ns);
  return access;
}

Status ApiError(int http_status, std::string_view body, std::string_view what) {
  const std::string message = ApiMessage(body);
  const std::string text = std::string(what) + ": the API server answered " +
                           std::to_string(http_status) + (message.empty() ? "" : ": " + message);
  switch (http_status) {
    case 401:
      return FailedPrecondition(text + " (check the service account token or the kubeconfig user)");
    case 403:
      return FailedPrecondition(
          text + " (the plane's service account needs RBAC for this; docs/explore/kubernetes.md)");
    case 404: return NotFound(text);
    case 409: return AlreadyExists(text);
    case 400:
    case 422: return Internal(text);
    default: return Unavailable(text);
  }
}

StatusOr<Observed> ObservedFromPod(std::string_view body) {
  json pod;
  try {
    pod = json::parse(body);
  } catch (const std::exception&) {
    return Internal("the API server's Pod answer is not JSON");
  }
  if (!pod.is_object() || Str(pod, "kind") != "Pod") {
    return Internal("the API server's answer is not a Pod (kind '" +
                    http::Printable(Str(pod, "kind"), 40) + "')");
  }
  Observed o;
  const json meta =
      pod.contains("metadata") && pod["metadata"].is_object() ? pod["metadata"] : json::object();
  if (meta.contains("deletionTimestamp")) {
    o.state = SessionState::kGone;
    o.detail = "the pod is being deleted";
    return o;
  }
  const json status =
      pod.contains("status") && pod["status"].is_object() ? pod["status"] : json::object();
  const std::string phase = Str(status, "phase");
  const std::string reason = http::Printable(Str(status, "reason"), 100);
  const std::string message = http::Printable(Str(status, "message"), 300);
  // The first container state that says more than the phase.
  std::string container_detail;
  for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
    if (!status.contains(list) || !status[list].is_array()) continue;
    for (const json& cs : status[list]) {
      if (!cs.is_object() || !cs.contains("state") || !cs["state"].is_object()) continue;
      const json& st = cs["state"];
      const std::string name = http::Printable(Str(cs, "name"), 63);
      if (st.contains("waiting") && st["waiting"].is_object()) {
        const std::string r = Str(st["waiting"], "reason");
        if (!r.empty() && r != "PodInitializing" && r != "ContainerCreating" &&
            container_detail.empty()) {
          container_detail = name + ": " + http::Printable(r, 60) + ": " +
                             http::Printable(Str(st["waiting"], "message"), 200);
        }
      } else if (st.contains("terminated") && st["terminated"].is_object()) {
        const json& t = st["terminated"];
        const bool failed =
            t.contains("exitCode") && t["exitCode"].is_number_integer() && t["exitCode"] != 0;
        if ((failed || std::string_view(list) == "containerStatuses") && container_detail.empty()) {
          container_detail =
              name + " exited" +
              (t.contains("exitCode") && t["exitCode"].is_number_integer()
                   ? " with code " + std::to_string(t["exitCode"].get<int64_t>())
                   : std::string()) +
              (Str(t, "reason").empty() ? "" : " (" + http::Printable(Str(t, "reason"), 60) + ")");
        }
      }
    }
  }
  bool ready = false;
  if (status.contains("conditions") && status["conditions"].is_array()) {
    for (const json& c : status["conditions"]) {
      if (Str(c, "type") == "Ready") ready = Str(c, "status") == "True";
    }
  }
  const auto join = [](std::string a, const std::string& b) {
    if (b.empty()) return a;
    return a.empty() ? b : a + "; " + b;
  };
  if (phase == "Running" && ready) {
    o.state = SessionState::kRunning;
  } else if (phase == "Running" || phase == "Pending" || phase.empty()) {
    o.state = SessionState::kStarting;
    o.detail = join(phase.empty()        ? "pending"
                    : phase == "Running" ? "running, not ready yet"
                                         : "pending",
                    container_detail);
  } else if (phase == "Succeeded" || phase == "Failed") {
    o.state = SessionState::kGone;
    o.detail = join(join("the pod " + std::string(phase == "Failed" ? "failed" : "ended"), reason),
                    join(message, container_detail));
  } else {
    o.state = SessionState::kFailed;
    o.detail =
        join("pod phase " + http::Printable(phase, 40) + " (the node may be unreachable)", message);
  }
  return o;
}

// ---- transport -------------------------------------------------------------------

struct ApiResponse {
  int status = 0;
  std::string body;
};

struct KubernetesBackend::Transport {
  const ClusterAccess* access = nullptr;
  std::chrono::milliseconds timeout{30'000};
  http::curl::Easy handle;
  char error_buffer[CURL_ERROR_SIZE] = {};

  static size_t OnBody(char* data, size_t size, size_t count, void* user) {
    auto* out = static_cast<std::string*>(user);
    const size_t n = size * count;
    if (out->size() + n > kMaxResponseBytes) return 0;
    out->append(data, n);
    return n;
  }

  // `body` may hold secrets (the Secret object): the caller wipes it.
  StatusOr<ApiResponse> Send(const std::string& method, const std::string& target,
                             const std::string& content_type, const std::string& body) {
    CURL* h = handle.get();
    curl_easy_reset(h);
    error_buffer[0] = '\0';
    bool ok = true;
    const auto set = [&ok](CURLcode rc) { ok = ok && rc == CURLE_OK; };
    using Long = long;  // NOLINT(google-runtime-int): libcurl's option type
    const std::string url = access->server + target;
    set(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer));
    set(curl_easy_setopt(h, CURLOPT_URL, url.c_str()));
    set(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https"));
    set(curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, Long{0}));
    set(curl_easy_setopt(h, CURLOPT_PROXY, ""));
    set(curl_easy_setopt(h, CURLOPT_NOSIGNAL, Long{1}));
    set(curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, Long{1}));
    set(curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, Long{2}));
    set(curl_easy_setopt(h, CURLOPT_SSLVERSION, Long{CURL_SSLVERSION_TLSv1_2}));
    // Only the cluster's CA: never the system store.
    curl_blob ca{const_cast<char*>(access->ca_pem.data()), access->ca_pem.size(), CURL_BLOB_COPY};
    set(curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca));
    set(curl_easy_setopt(h, CURLOPT_CAPATH, nullptr));
    set(curl_easy_setopt(h, CURLOPT_CAINFO, nullptr));
    curl_blob cert{const_cast<char*>(access->client_cert_pem.data()),
                   access->client_cert_pem.size(), CURL_BLOB_COPY};
    // NOCOPY: the key stays in our locked, wiped buffer only.
    curl_blob key{const_cast<uint8_t*>(access->client_key_pem.data()),
                  access->client_key_pem.size(), CURL_BLOB_NOCOPY};
    if (!access->client_cert_pem.empty()) {
      set(curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert));
      set(curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM"));
      set(curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key));
      set(curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM"));
    }
    set(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<Long>(timeout.count())));
    set(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<Long>(timeout.count())));
    set(curl_easy_setopt(h, CURLOPT_USERAGENT, "cce-plane/1 (explore)"));
    ApiResponse response;
    set(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody));
    set(curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body));

    http::curl::Slist headers;
    const auto add = [&headers, &ok](const std::string& line) {
      curl_slist* next = curl_slist_append(headers.get(), line.c_str());
      if (next == nullptr) {
        ok = false;
        return;
      }
      static_cast<void>(headers.release());
      headers.reset(next);
    };
    add("Accept: application/json");
    if (!body.empty()) add("Content-Type: " + content_type);
    {
      crypto::SecretBytes token;
      if (!access->token_file.empty()) {
        auto text = ReadFile(access->token_file, kMaxCredentialFileBytes);
        if (!text.ok())
          return Unavailable("bearer token " + access->token_file + ": " + text.status().message());
        std::string trimmed = TrimSpace(*text);
        Wipe(*text);
        token = SecretOf(trimmed);
        Wipe(trimmed);
      } else if (!access->token.empty()) {
        token = crypto::SecretBytes::CopyOf(access->token.span());
      }
      if (!token.empty()) {
        std::string line = "Authorization: Bearer " + std::string(View(token));
        add(line);
        Wipe(line);
      }
    }
    set(curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get()));
    if (method == "GET") {
      set(curl_easy_setopt(h, CURLOPT_HTTPGET, Long{1}));
    } else {
      set(curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str()));
      if (!body.empty()) {
        set(curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data()));
        set(curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size())));
      }
    }
    if (!ok) return Internal(method + " " + target + ": cannot configure libcurl");
    const CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
      const std::string detail =
          http::Printable(error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc), 300);
      const std::string where =
          method + " " + target + ": cannot reach the API server at " + access->server;
      if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE) {
        return Unavailable(where + ": its TLS certificate is not trusted by the cluster CA (" +
                           detail + ")");
      }
      if (rc == CURLE_WRITE_ERROR) return Unavailable(where + ": answer larger than 4 MiB");
      return Unavailable(where + ": " + detail);
    }
    long status = 0;  // NOLINT(google-runtime-int): libcurl's type
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    response.status = static_cast<int>(status);
    return response;
  }
};

// ---- the backend -------------------------------------------------------------------

StatusOr<std::unique_ptr<KubernetesBackend>> KubernetesBackend::Create(
    KubernetesBackendOptions options) {
  StatusOr<ClusterAccess> access =
      options.kubeconfig.empty() ? LoadInClusterAccess(options.in_cluster_dir)
                                 : LoadKubeconfig(options.kubeconfig, options.kubeconfig_context);
  if (!access.ok()) return access.status();
  return Create(std::move(options), std::move(*access));
}

StatusOr<std::unique_ptr<KubernetesBackend>> KubernetesBackend::Create(
    KubernetesBackendOptions options, ClusterAccess access) {
  RETURN_IF_ERROR(http::curl::EnsureInitialized());
  if (!options.api_server.empty()) access.server = options.api_server;
  while (!access.server.empty() && access.server.back() == '/') access.server.pop_back();
  if (access.server.rfind("https://", 0) != 0 || access.server.size() <= 8 ||
      access.server.find_first_of(" \t\r\n") != std::string::npos) {
    return InvalidArgument("kubernetes api server '" +
                           http::Printable(http::RedactUrl(access.server), 200) +
                           "': expected https://HOST[:PORT]");
  }
  RETURN_IF_ERROR(CheckCaPem(access.ca_pem, "kubernetes cluster CA"));
  if (options.manifests.namespace_name.empty())
    options.manifests.namespace_name = access.namespace_name;
  if (!k8s::IsDns1123Label(options.manifests.namespace_name)) {
    return InvalidArgument("kubernetes namespace '" + options.manifests.namespace_name +
                           "': not a DNS-1123 label (set explore.kubernetes.namespace)");
  }
  // The manifests' own checks of the options, on a throwaway spec.
  SessionSpec probe;
  probe.id = "xs-0000000000000000";
  probe.base_url = "/explore/" + probe.id + "/";
  probe.jupyter_token = crypto::SecretBytes(16);
  probe.sdk_config_json = SecretOf("{}");
  auto pod = k8s::BuildPod(probe, options.manifests);
  if (!pod.ok()) return pod.status();
  auto policy = k8s::BuildNetworkPolicy(probe, options.manifests);
  if (!policy.ok()) return policy.status();
  RETURN_IF_ERROR(k8s::ValidateManifest(*pod));
  RETURN_IF_ERROR(k8s::ValidateManifest(*policy));

  auto transport = std::make_unique<Transport>();
  transport->timeout = options.request_timeout;
  transport->handle.reset(curl_easy_init());
  if (!transport->handle) return Internal("curl_easy_init failed");
  return std::unique_ptr<KubernetesBackend>(
      new KubernetesBackend(std::move(options), std::move(access), std::move(transport)));
}

KubernetesBackend::KubernetesBackend(KubernetesBackendOptions options, ClusterAccess access,
                                     std::unique_ptr<Transport> transport)
    : options_(std::move(options)), access_(std::move(access)), transport_(std::move(transport)) {
  transport_->access = &access_;
}

KubernetesBackend::~KubernetesBackend() = default;

Upstream KubernetesBackend::UpstreamFor(const std::string& id) const {
  Upstream u;
  u.host = k8s::ServiceName(id) + "." + options_.manifests.namespace_name + ".svc";
  u.port = k8s::kJupyterPort;
  return u;
}

namespace {

struct Resource {
  const char* kind;
  std::string collection;  // API path of the collection in the namespace
  std::string name;
};

std::vector<Resource> ResourcesOf(const std::string& ns, const std::string& id) {
  const std::string core = "/api/v1/namespaces/" + ns;
  return {
      {"Pod", core + "/pods", k8s::PodName(id)},
      {"Service", core + "/services", k8s::ServiceName(id)},
      {"Secret", core + "/secrets", k8s::SecretName(id)},
      {"NetworkPolicy", "/apis/networking.k8s.io/v1/namespaces/" + ns + "/networkpolicies",
       k8s::NetworkPolicyName(id)},
  };
}

}  // namespace

StatusOr<Upstream> KubernetesBackend::Start(const SessionSpec& spec) {
  const k8s::ManifestOptions& mo = options_.manifests;
  // Built and validated before anything is sent: all or nothing on our side.
  ASSIGN_OR_RETURN(json policy, k8s::BuildNetworkPolicy(spec, mo));
  ASSIGN_OR_RETURN(json secret, k8s::BuildSecret(spec, mo));
  ASSIGN_OR_RETURN(json service, k8s::BuildService(spec, mo));
  ASSIGN_OR_RETURN(json pod, k8s::BuildPod(spec, mo));
  for (const json* o : {&policy, &secret, &service, &pod}) {
    Status valid = k8s::ValidateManifest(*o);
    if (!valid.ok()) {
      secret = json();
      return Internal("built an invalid manifest: " + valid.message());
    }
  }
  const std::vector<Resource> resources = ResourcesOf(mo.namespace_name, spec.id);
  const Resource& pod_res = resources[0];
  const Resource& service_res = resources[1];
  const Resource& secret_res = resources[2];
  const Resource& policy_res = resources[3];

  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const Resource*> created;
  const auto cleanup = [&]() {
    // Pod first, the policy last: the pod never runs without its policy.
    for (auto it = created.rbegin(); it != created.rend(); ++it) {
      auto r = transport_->Send("DELETE", (*it)->collection + "/" + (*it)->name, "", "");
      static_cast<void>(r);
    }
  };
  const auto create = [&](const Resource& res, json& object) -> StatusOr<json> {
    std::string body = object.dump();
    if (std::string_view(res.kind) == "Secret")
      object = json();  // drop the other copy of the secrets
    auto r = transport_->Send("POST", res.collection, "application/json", body);
    Wipe(body);
    if (!r.ok()) return r.status();
    const std::string what =
        std::string("creating ") + res.kind + " " + res.name + " in namespace " + mo.namespace_name;
    if (r->status != 201 && r->status != 200 && r->status != 202) {
      Status e = ApiError(r->status, r->body, what);
      if (e.code() == StatusCode::kNotFound) {
        return FailedPrecondition(e.message() + " (does the namespace exist?)");
      }
      return e;
    }
    created.push_back(&res);
    try {
      return json::parse(r->body);
    } catch (const std::exception&) {
      return Internal(what + ": the answer is not JSON");
    }
  };

  for (auto [res, object] : {std::pair<const Resource*, json*>{&policy_res, &policy},
                             {&secret_res, &secret},
                             {&service_res, &service}}) {
    auto made = create(*res, *object);
    if (!made.ok()) {
      cleanup();
      return made.status();
    }
  }
  auto made_pod = create(pod_res, pod);
  if (!made_pod.ok()) {
    cleanup();
    return made_pod.status();
  }
  const std::string uid = made_pod->contains("metadata") && (*made_pod)["metadata"].is_object()
                              ? Str((*made_pod)["metadata"], "uid")
                              : std::string();
  if (uid.empty()) {
    cleanup();
    return Internal("creating Pod " + pod_res.name +
                    ": the API server's answer has no metadata.uid");
  }
  // The Pod owns the rest: when it is deleted (or a plane never comes back
  // to stop it), the garbage collector deletes them after it.
  const json patch = {
      {"metadata",
       {{"ownerReferences",
         json::array(
             {{{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", pod_res.name}, {"uid", uid}}})}}}};
  for (const Resource* res : {&policy_res, &secret_res, &service_res}) {
    auto r = transport_->Send("PATCH", res->collection + "/" + res->name,
                              "application/merge-patch+json", patch.dump());
    Status s = !r.ok() ? r.status()
               : (r->status == 200 || r->status == 201)
                   ? Status::Ok()
                   : ApiError(r->status, r->body,
                              std::string("setting the owner of ") + res->kind + " " + res->name);
    if (!s.ok()) {
      cleanup();
      return s;
    }
  }
  return UpstreamFor(spec.id);
}

StatusOr<Observed> KubernetesBackend::Observe(const std::string& id) {
  if (!ValidSessionId(id))
    return InvalidArgument("session id '" + http::Printable(id, 40) + "': malformed");
  const Resource pod = ResourcesOf(options_.manifests.namespace_name, id)[0];
  StatusOr<ApiResponse> r = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    return transport_->Send("GET", pod.collection + "/" + pod.name, "", "");
  }();
  if (!r.ok()) return r.status();
  if (r->status == 404) {
    Observed gone;
    gone.state = SessionState::kGone;
    gone.detail =
        "pod " + pod.name + " not found in namespace " + options_.manifests.namespace_name;
    return gone;
  }
  if (r->status != 200) {
    Status e = ApiError(r->status, r->body, "reading Pod " + pod.name);
    // Observe's contract: kUnavailable or kInternal.
    return e.code() == StatusCode::kUnavailable ? e : Internal(e.message());
  }
  ASSIGN_OR_RETURN(Observed o, ObservedFromPod(r->body));
  if (o.state == SessionState::kStarting || o.state == SessionState::kRunning)
    o.upstream = UpstreamFor(id);
  return o;
}

Status KubernetesBackend::Stop(const std::string& id) {
  if (!ValidSessionId(id))
    return InvalidArgument("session id '" + http::Printable(id, 40) + "': malformed");
  const std::vector<Resource> resources = ResourcesOf(options_.manifests.namespace_name, id);
  std::lock_guard<std::mutex> lock(mu_);
  const auto del = [&](const Resource& res, const std::string& query) -> Status {
    auto r = transport_->Send("DELETE", res.collection + "/" + res.name + query, "", "");
    if (!r.ok()) return r.status();
    if (r->status == 200 || r->status == 202 || r->status == 404) return Status::Ok();
    Status e = ApiError(r->status, r->body, std::string("deleting ") + res.kind + " " + res.name);
    return e.code() == StatusCode::kUnavailable ? e : Internal(e.message());
  };
  RETURN_IF_ERROR(del(resources[0], "?gracePeriodSeconds=5"));
  RETURN_IF_ERROR(del(resources[1], ""));
  RETURN_IF_ERROR(del(resources[2], ""));
  // The policy goes only when the pod is gone; while it terminates, the
  // policy stays (its ownerReference lets the garbage collector remove it).
  auto pod = transport_->Send("GET", resources[0].collection + "/" + resources[0].name, "", "");
  if (!pod.ok()) return pod.status();
  if (pod->status == 404) return del(resources[3], "");
  if (pod->status != 200) {
    Status e = ApiError(pod->status, pod->body, "reading Pod " + resources[0].name);
    return e.code() == StatusCode::kUnavailable ? e : Internal(e.message());
  }
  return Status::Ok();
}

}  // namespace cce::explore
