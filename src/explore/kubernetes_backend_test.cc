// KubernetesBackend against a fake API server: a python3 HTTPS server this
// test starts on loopback with a test CA. It checks the bearer token (or a
// client certificate issued by the test CA), checks every object more
// strictly than ValidateManifest (non-root, no privilege escalation, drop
// ALL, the NetworkPolicy denying cloud metadata and private ranges), and
// answers like Kubernetes (201 with the object, 409 AlreadyExists, 404
// NotFound as metav1.Status). It records every request; the test checks the
// order, the headers, and runs ValidateManifest on every object it got.
// The same server plays the plane's sample routes for the sample fetcher.
// No real cluster is involved (docs/explore/kubernetes.md).
#include "explore/kubernetes_backend.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/subprocess.h"
#include "crypto/x509.h"
#include "explore/k8s_manifests.h"
#include "http/client.h"

extern char** environ;

namespace cce::explore {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kNamespace[] = "cce-explore";
constexpr char kToken[] = "k8s-test-token-0123456789";
constexpr char kSessionToken[] = "session-token-abcdef";

// argv: cert key client_ca token_file namespace session_token
constexpr char kFakeApiPy[] = R"PY(
import base64, copy, hashlib, http.server, ipaddress, json, re, ssl, sys, threading, time, uuid

CERT, KEY, CLIENT_CA, TOKEN_FILE, NAMESPACE, SESSION_TOKEN = sys.argv[1:7]
lock = threading.Lock()
objects = {}     # (resource, name) -> object
requests = []    # what the client sent, in order
failures = []    # injected answers: {"method", "path", "status", "reason", "message"}
state = {"pods_linger": False}
samples = {}     # dataset -> {path: bytes}; listing overrides in sample_listing
sample_listing = {}

KINDS = {"pods": ("v1", "Pod"), "services": ("v1", "Service"), "secrets": ("v1", "Secret"),
         "networkpolicies": ("networking.k8s.io/v1", "NetworkPolicy")}
API = re.compile(r"^/(?:api/v1|apis/networking\.k8s\.io/v1)/namespaces/([^/]+)/(pods|services|secrets|networkpolicies)(?:/([^/]+))?$")

def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}

class Refused(Exception):
    pass

def must(cond, what):
    if not cond:
        raise Refused(what)

PROBES = ["169.254.169.254", "10.0.0.1", "10.96.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1",
          "fd00:ec2::254", "fe80::1"]

def check_pod(pod):
    spec = pod["spec"]
    must(spec.get("automountServiceAccountToken") is False, "automountServiceAccountToken must be false")
    for f in ("hostNetwork", "hostPID", "hostIPC"):
        must(not spec.get(f), f + " must not be set")
    psc = spec.get("securityContext", {})
    must(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot must be true")
    must(psc.get("runAsUser", 0) != 0, "pod securityContext.runAsUser must not be 0")
    for v in spec.get("volumes", []):
        must(set(v) - {"name"} <= {"emptyDir", "secret", "configMap"}, "volume %s: only emptyDir/secret/configMap" % v["name"])
    for c in spec.get("initContainers", []) + spec["containers"]:
        sc = c.get("securityContext", {})
        n = c["name"]
        must(sc.get("allowPrivilegeEscalation") is False, n + ": allowPrivilegeEscalation must be false")
        must(not sc.get("privileged"), n + ": privileged")
        must("ALL" in sc.get("capabilities", {}).get("drop", []), n + ": capabilities must drop ALL")
        must(not sc.get("capabilities", {}).get("add"), n + ": capabilities.add")
        must(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, n + ": runAsNonRoot")
        must(sc.get("runAsUser", psc.get("runAsUser", 0)) != 0, n + ": runAsUser 0")
        must(sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type") == "RuntimeDefault", n + ": seccomp")
        for e in c.get("env", []):
            must("value" not in e or "token" not in e["name"].lower(), n + ": a token as a literal env value")

def check_policy(np):
    spec = np["spec"]
    must(set(spec.get("policyTypes", [])) == {"Ingress", "Egress"}, "policyTypes must be Ingress and Egress")
    for rule in spec.get("ingress", []):
        must(rule.get("from"), "an ingress rule without from allows everyone")
    for rule in spec.get("egress", []):
        must(rule.get("to"), "an egress rule without to allows everything")
        for peer in rule["to"]:
            if "ipBlock" not in peer:
                continue
            net = ipaddress.ip_network(peer["ipBlock"]["cidr"])
            excepts = [ipaddress.ip_network(e) for e in peer["ipBlock"].get("except", [])]
            for probe in PROBES:
                ip = ipaddress.ip_address(probe)
                if ip.version == net.version and ip in net:
                    must(any(ip in e for e in excepts if e.version == ip.version),
                         "egress to %s is allowed by %s" % (probe, net))

def check(resource, obj, ns):
    api, kind = KINDS[resource]
    must(obj.get("apiVersion") == api and obj.get("kind") == kind, "apiVersion/kind do not match the URL")
    must(obj["metadata"].get("namespace", ns) == ns, "metadata.namespace does not match the URL")
    if kind == "Pod":
        check_pod(obj)
    elif kind == "NetworkPolicy":
        check_policy(obj)
    elif kind == "Secret":
        for k, v in obj.get("data", {}).items():
            base64.b64decode(v, validate=True)
    elif kind == "Service":
        must(obj["spec"].get("type", "ClusterIP") == "ClusterIP", "Service type must be ClusterIP")

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if not isinstance(obj, bytes) else "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def who(self):
        auth = self.headers.get("Authorization", "")
        token = open(TOKEN_FILE).read().strip()
        if auth == "Bearer " + token:
            return "bearer"
        cert = self.connection.getpeercert()
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return "cert:" + v
        return None

    def serve(self):
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length) if length else b""
        if path.startswith("/fake/"):
            return self.control(path, raw)
        if path.startswith("/api/v1/datasets/"):
            return self.plane(path)
        who = self.who()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = "<not json>"
        with lock:
            requests.append({"method": self.command, "path": path, "query": query, "auth": who,
                             "content_type": self.headers.get("Content-Type"), "body": body})
        if who is None:
            return self.reply(401, status(401, "Unauthorized", "Unauthorized"))
        with lock:
            for f in failures:
                if f["method"] == self.command and path.endswith(f["path"]):
                    failures.remove(f)
                    return self.reply(f["status"], status(f["status"], f["reason"], f["message"]))
        m = API.match(path)
        if not m:
            return self.reply(404, status(404, "NotFound", "the server could not find the requested resource"))
        ns, resource, name = m.groups()
        if ns != NAMESPACE:
            return self.reply(404, status(404, "NotFound", 'namespaces "%s" not found' % ns))
        with lock:
            if self.command == "POST" and name is None:
                if self.headers.get("Content-Type") != "application/json":
                    return self.reply(415, status(415, "UnsupportedMediaType", "expected application/json"))
                try:
                    check(resource, body, ns)
                except (Refused, KeyError, TypeError, ValueError) as e:
                    return self.reply(422, status(422, "Invalid", "%s %s is invalid: %s" % (resource, body.get("metadata", {}).get("name") if isinstance(body, dict) else "?", e)))
                key = (resource, body["metadata"]["name"])
                if key in objects:
                    return self.reply(409, status(409, "AlreadyExists", '%s "%s" already exists' % (resource, key[1])))
                obj = copy.deepcopy(body)
                obj["metadata"].update({"uid": str(uuid.uuid4()), "resourceVersion": "1",
                                        "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
                if resource == "pods":
                    obj["status"] = {"phase": "Pending"}
                objects[key] = obj
                return self.reply(201, obj)
            key = (resource, name)
            if key not in objects or name is None:
                return self.reply(404, status(404, "NotFound", '%s "%s" not found' % (resource, name)))
            if self.command == "GET":
                return self.reply(200, objects[key])
            if self.command == "DELETE":
                if resource == "pods" and state["pods_linger"]:
                    objects[key]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
                    return self.reply(200, objects[key])
                return self.reply(200, objects.pop(key))
            if self.command == "PATCH":
                if self.headers.get("Content-Type") != "application/merge-patch+json":
                    return self.reply(415, status(415, "UnsupportedMediaType", "expected merge-patch"))
                refs = body["metadata"]["ownerReferences"]
                pod = objects.get(("pods", refs[0]["name"]))
                if pod is None or pod["metadata"]["uid"] != refs[0]["uid"] or refs[0]["kind"] != "Pod":
                    return self.reply(422, status(422, "Invalid", "ownerReferences: no such pod/uid"))
                objects[key]["metadata"]["ownerReferences"] = refs
                return self.reply(200, objects[key])
        return self.reply(405, status(405, "MethodNotAllowed", "no"))

    # The plane's sample routes, for the sample fetcher (bearer = session token).
    def plane(self, path):
        if self.headers.get("Authorization") != "Bearer " + SESSION_TOKEN:
            return self.reply(401, {"error": {"code": "unauthenticated", "message": "no"}})
        parts = path.split("/")
        ds = parts[4]
        if ds not in samples:
            return self.reply(404, {"error": {"code": "not_found", "message": "no sample"}})
        if len(parts) == 6:
            files = sample_listing.get(ds) or [
                {"path": p, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()} for p, b in samples[ds].items()]
            return self.reply(200, {"dataset": ds, "version": 1, "files": files})
        import urllib.parse
        fpath = "/".join(urllib.parse.unquote(p) for p in parts[7:])
        if fpath not in samples[ds]:
            return self.reply(404, {"error": {"code": "not_found", "message": "no file"}})
        return self.reply(200, samples[ds][fpath])

    def control(self, path, raw):
        with lock:
            if path == "/fake/requests":
                return self.reply(200, requests)
            if path == "/fake/reset":
                requests.clear()
                failures.clear()
                objects.clear()
                state["pods_linger"] = False
                return self.reply(200, {})
            if path == "/fake/objects":
                return self.reply(200, [{"resource": k[0], "name": k[1], "object": v} for k, v in objects.items()])
            arg = json.loads(raw)
            if path == "/fake/fail":
                failures.append(arg)
                return self.reply(200, {})
            if path == "/fake/linger":
                state["pods_linger"] = arg["linger"]
                return self.reply(200, {})
            if path == "/fake/pod-status":
                key = ("pods", arg["name"])
                if key not in objects:
                    return self.reply(404, {})
                objects[key]["status"] = arg["status"]
                return self.reply(200, {})
            if path == "/fake/remove":
                objects.pop((arg["resource"], arg["name"]), None)
                return self.reply(200, {})
            if path == "/fake/samples":
                samples.clear()
                sample_listing.clear()
                for ds, files in arg["samples"].items():
                    samples[ds] = {p: base64.b64decode(b) for p, b in files.items()}
                sample_listing.update(arg.get("listing", {}))
                return self.reply(200, {})
        return self.reply(404, {})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = serve

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    def handle_error(self, request, client_address):
        pass

server = Server(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
context.load_verify_locations(CLIENT_CA)
context.verify_mode = ssl.CERT_OPTIONAL
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
)PY";

void WriteText(const fs::path& path, std::string_view text, mode_t mode = 0600) {
  fs::remove(path);
  std::ofstream(path, std::ios::trunc | std::ios::binary) << text;
  fs::permissions(path, static_cast<fs::perms>(mode));
}

std::string SecretText(const crypto::SecretBytes& s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

std::string B64(std::string_view in) {
  static constexpr char kA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) |
                       (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    for (int s : {18, 12, 6, 0}) out += kA[(v >> s) & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out += kA[(v >> 18) & 63];
    out += kA[(v >> 12) & 63];
    out += i + 1 < in.size() ? kA[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// The fake API server as a child process, killed and reaped at the end.
class FakeApiServer {
 public:
  FakeApiServer() = default;
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;
  ~FakeApiServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }

  Status Start(const fs::path& dir) {
    const std::string script = (dir / "fake_api.py").string();
    WriteText(script, kFakeApiPy);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
    UniqueFd read_end(fds[0]);
    UniqueFd write_end(fds[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
    std::vector<std::string> args = {"/usr/bin/python3",
                                     script,
                                     (dir / "server.pem").string(),
                                     (dir / "server.key").string(),
                                     (dir / "ca.pem").string(),
                                     (dir / "api-token").string(),
                                     kNamespace,
                                     kSessionToken};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return ErrnoStatus("posix_spawn python3", rc);
    write_end.reset();
    std::string line;
    while (line.find('\n') == std::string::npos) {
      pollfd p{read_end.get(), POLLIN, 0};
      if (::poll(&p, 1, 15'000) != 1) return Internal("fake API server: no port within 15 s");
      char buf[64];
      const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
      if (n <= 0) return Internal("fake API server exited before printing its port");
      line.append(buf, static_cast<size_t>(n));
    }
    port_ = std::stoi(line);
    return Status::Ok();
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

class KubernetesBackendTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/k8s_backend_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = new fs::path(tmpl);
    const int64_t now = static_cast<int64_t>(std::time(nullptr)) - 3600;
    auto ca = crypto::CreateCertificateAuthority("fake cluster CA", now, 2);
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    auto leaf =
        crypto::IssueServerCertificate(*ca, "127.0.0.1", {"localhost"}, {"127.0.0.1"}, now, 2);
    ASSERT_TRUE(leaf.ok()) << leaf.status().ToString();
    crypto::CertificateProfile client;
    client.common_name = "cce-plane";
    client.not_before_unix = now;
    client.not_after_unix = now + 2 * 86400;
    auto client_cert = crypto::IssueEcP256Certificate(client, &*ca);
    ASSERT_TRUE(client_cert.ok()) << client_cert.status().ToString();
    auto other = crypto::CreateCertificateAuthority("another CA", now, 2);
    ASSERT_TRUE(other.ok());
    ca_pem_ = new std::string(ca->cert_pem);
    other_ca_pem_ = new std::string(other->cert_pem);
    client_cert_pem_ = new std::string(client_cert->cert_pem);
    client_key_pem_ = new std::string(SecretText(client_cert->key_pem));
    WriteText(*dir_ / "ca.pem", ca->cert_pem);
    WriteText(*dir_ / "server.pem", leaf->cert_pem);
    WriteText(*dir_ / "server.key", SecretText(leaf->key_pem));
    WriteText(*dir_ / "api-token", std::string(kToken) + "\n");
    server_ = new FakeApiServer();
    const Status started = server_->Start(*dir_);
    ASSERT_TRUE(started.ok()) << started.ToString();
  }

  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    if (dir_ != nullptr) fs::remove_all(*dir_);
    for (std::string* s : {ca_pem_, other_ca_pem_, client_cert_pem_, client_key_pem_}) delete s;
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override { ASSERT_EQ(Control("/fake/reset", json::object()).status, 200); }

  static std::string Url() { return "https://127.0.0.1:" + std::to_string(server_->port()); }

  static http::ClientResponse Control(const std::string& path, const json& body) {
    http::ClientOptions o;
    o.base_url = Url();
    o.ca_file = (*dir_ / "ca.pem").string();
    auto client = http::Client::Create(o);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    http::ClientRequest r;
    r.method = path == "/fake/requests" || path == "/fake/objects" ? "GET" : "POST";
    r.target = path;
    if (r.method == "POST") r.body = body.dump();
    auto resp = client->Send(r);
    EXPECT_TRUE(resp.ok()) << resp.status().ToString();
    return resp.ok() ? *resp : http::ClientResponse();
  }

  static json Requests() { return json::parse(Control("/fake/requests", nullptr).body); }
  static json Objects() { return json::parse(Control("/fake/objects", nullptr).body); }

  static ClusterAccess TokenAccess(const std::string& ca_pem) {
    ClusterAccess a;
    a.server = Url();
    a.ca_pem = ca_pem;
    a.token = crypto::SecretBytes::CopyOf(crypto::AsBytes(kToken));
    return a;
  }

  static KubernetesBackendOptions Options() {
    KubernetesBackendOptions o;
    o.manifests.namespace_name = kNamespace;
    o.manifests.plane.namespace_name = "cce";
    o.manifests.plane.pod_labels = {{"app.kubernetes.io/name", "cce-plane"}};
    o.request_timeout = std::chrono::milliseconds(10'000);
    return o;
  }

  static std::unique_ptr<KubernetesBackend> Backend(ClusterAccess access) {
    auto b = KubernetesBackend::Create(Options(), std::move(access));
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(*b) : nullptr;
  }

  static SessionSpec Spec(const std::string& id = "xs-00112233445566ff") {
    SessionSpec s;
    s.id = id;
    s.owner = "alice";
    s.owner_id = 3;
    s.base_url = "/explore/" + id + "/";
    s.samples = {{"census", "", "/data/census"}};
    s.jupyter_token =
        crypto::SecretBytes::CopyOf(crypto::AsBytes("jupyter-token-0123456789abcdef"));
    s.sdk_config_json = crypto::SecretBytes::CopyOf(crypto::AsBytes(
        R"({"plane_url":"https://plane.cce.svc:8443","ca_pem":"","token":"t","session":")" + id +
        "\"}"));
    return s;
  }

  static void SetPodStatus(const std::string& name, const json& status) {
    ASSERT_EQ(Control("/fake/pod-status", {{"name", name}, {"status", status}}).status, 200);
  }

  static inline fs::path* dir_ = nullptr;
  static inline FakeApiServer* server_ = nullptr;
  static inline std::string* ca_pem_ = nullptr;
  static inline std::string* other_ca_pem_ = nullptr;
  static inline std::string* client_cert_pem_ = nullptr;
  static inline std::string* client_key_pem_ = nullptr;
};

TEST_F(KubernetesBackendTest, StartObserveStop) {
  auto backend = Backend(TokenAccess(*ca_pem_));
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->name(), "kubernetes");
  const SessionSpec spec = Spec();
  auto up = backend->Start(spec);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->host, "xs-00112233445566ff.cce-explore.svc");
  EXPECT_EQ(up->port, 8888);
  EXPECT_TRUE(up->unix_socket.empty());

  // The policy first (the pod never runs unconfined), the pod last, then the
  // owner references; every object passes ValidateManifest; all with the token.
  const json reqs = Requests();
  std::vector<std::string> seen;
  for (const json& r : reqs) {
    seen.push_back(r["method"].get<std::string>() + " " + r["path"].get<std::string>());
    EXPECT_EQ(r["auth"], "bearer");
    if (r["method"] == "POST") {
      EXPECT_EQ(r["content_type"], "application/json");
      const Status valid = k8s::ValidateManifest(r["body"]);
      EXPECT_TRUE(valid.ok()) << valid.ToString();
    }
  }
  const std::string ns = "/namespaces/cce-explore/";
  const std::vector<std::string> want = {
      "POST /apis/networking.k8s.io/v1" + ns + "networkpolicies",
      "POST /api/v1" + ns + "secrets",
      "POST /api/v1" + ns + "services",
      "POST /api/v1" + ns + "pods",
      "PATCH /apis/networking.k8s.io/v1" + ns + "networkpolicies/xs-00112233445566ff",
      "PATCH /api/v1" + ns + "secrets/xs-00112233445566ff-config",
      "PATCH /api/v1" + ns + "services/xs-00112233445566ff",
  };
  EXPECT_EQ(seen, want);
  for (const json& o : Objects()) {
    if (o["resource"] != "pods") {
      EXPECT_EQ(o["object"]["metadata"]["ownerReferences"][0]["kind"], "Pod") << o["resource"];
    }
  }

  auto observed = backend->Observe(spec.id);
  ASSERT_TRUE(observed.ok()) << observed.status().ToString();
  EXPECT_EQ(observed->state, SessionState::kStarting);
  EXPECT_EQ(observed->upstream, *up);

  SetPodStatus(spec.id,
               {{"phase", "Running"}, {"conditions", {{{"type", "Ready"}, {"status", "False"}}}}});
  observed = backend->Observe(spec.id);
  ASSERT_TRUE(observed.ok());
  EXPECT_EQ(observed->state, SessionState::kStarting);

  SetPodStatus(spec.id,
               {{"phase", "Running"}, {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}});
  observed = backend->Observe(spec.id);
  ASSERT_TRUE(observed.ok());
  EXPECT_EQ(observed->state, SessionState::kRunning);
  EXPECT_EQ(observed->upstream, *up);

  SetPodStatus(spec.id, {{"phase", "Failed"},
                         {"reason", "Evicted"},
                         {"message", "The node was low on resource: memory."}});
  observed = backend->Observe(spec.id);
  ASSERT_TRUE(observed.ok());
  EXPECT_EQ(observed->state, SessionState::kGone);
  EXPECT_NE(observed->detail.find("Evicted"), std::string::npos) << observed->detail;

  ASSERT_EQ(Control("/fake/reset", json::object()).status, 200);
  ASSERT_TRUE(backend->Start(spec).ok());
  const Status stopped = backend->Stop(spec.id);
  ASSERT_TRUE(stopped.ok()) << stopped.ToString();
  EXPECT_TRUE(Objects().empty()) << Objects().dump();
  observed = backend->Observe(spec.id);
  ASSERT_TRUE(observed.ok());
  EXPECT_EQ(observed->state, SessionState::kGone);
  EXPECT_NE(observed->detail.find("not found"), std::string::npos);
  // Idempotent.
  EXPECT_TRUE(backend->Stop(spec.id).ok());
}

TEST_F(KubernetesBackendTest, StopKeepsThePolicyWhileThePodTerminates) {
  auto backend = Backend(TokenAccess(*ca_pem_));
  ASSERT_NE(backend, nullptr);
  const SessionSpec spec = Spec();
  ASSERT_TRUE(backend->Start(spec).ok());
  ASSERT_EQ(Control("/fake/linger", {{"linger", true}}).status, 200);
  ASSERT_TRUE(backend->Stop(spec.id).ok());
  std::vector<std::string> left;
  for (const json& o : Objects()) left.push_back(o["resource"]);
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"networkpolicies", "pods"}));
  auto observed = backend->Observe(spec.id);
  ASSERT_TRUE(observed.ok());
  EXPECT_EQ(observed->state, SessionState::kGone);
  // Once the pod is gone, Stop removes the policy.
  ASSERT_EQ(Control("/fake/remove", {{"resource", "pods"}, {"name", spec.id}}).status, 200);
  ASSERT_TRUE(backend->Stop(spec.id).ok());
  EXPECT_TRUE(Objects().empty()) << Objects().dump();
}

TEST_F(KubernetesBackendTest, SecondStartIsAlreadyExistsAndLeavesTheFirstAlone) {
  auto backend = Backend(TokenAccess(*ca_pem_));
  ASSERT_NE(backend, nullptr);
  ASSERT_TRUE(backend->Start(Spec()).ok());
  auto again = backend->Start(Spec());
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists) << again.status().ToString();
  EXPECT_NE(again.status().message().find("already exists"), std::string::npos)
      << again.status().ToString();
  EXPECT_EQ(Objects().size(), 4u);
}

TEST_F(KubernetesBackendTest, ARefusedPodUndoesTheOtherObjects) {
  auto backend = Backend(TokenAccess(*ca_pem_));
  ASSERT_NE(backend, nullptr);
  ASSERT_EQ(Control("/fake/fail",
                    {{"method", "POST"},
                     {"path", "/pods"},
                     {"status", 422},
                     {"reason", "Invalid"},
                     {"message", "Pod \"x\" is invalid: spec.containers[0].image: Required value"}})
                .status,
            200);
  auto up = backend->Start(Spec());
  EXPECT_EQ(up.status().code(), StatusCode::kInternal);
  EXPECT_NE(up.status().message().find("spec.containers[0].image: Required value"),
            std::string::npos)
      << up.status().ToString();
  EXPECT_TRUE(Objects().empty()) << Objects().dump();
}

TEST_F(KubernetesBackendTest, ApiErrorsAreMappedWithTheApiMessage) {
  auto backend = Backend(TokenAccess(*ca_pem_));
  ASSERT_NE(backend, nullptr);
  ASSERT_EQ(
      Control("/fake/fail", {{"method", "POST"},
                             {"path", "/networkpolicies"},
                             {"status", 403},
                             {"reason", "Forbidden"},
                             {"message", "networkpolicies is forbidden: User \"x\" cannot create"}})
          .status,
      200);
  auto up = backend->Start(Spec());
  EXPECT_EQ(up.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(up.status().message().find("cannot create"), std::string::npos)
      << up.status().ToString();

  ASSERT_EQ(Control("/fake/fail", {{"method", "GET"},
                                   {"path", "/pods/xs-00112233445566ff"},
                                   {"status", 503},
                                   {"reason", "ServiceUnavailable"},
                                   {"message", "etcd is down"}})
                .status,
            200);
  auto observed = backend->Observe("xs-00112233445566ff");
  EXPECT_EQ(observed.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(observed.status().message().find("etcd is down"), std::string::npos);

  // A wrong token: 401.
  ClusterAccess wrong = TokenAccess(*ca_pem_);
  wrong.token = crypto::SecretBytes::CopyOf(crypto::AsBytes("wrong-token"));
  auto denied = Backend(std::move(wrong))->Start(Spec());
  EXPECT_EQ(denied.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(denied.status().message().find("401"), std::string::npos) << denied.status().ToString();

  // A namespace that does not exist.
  KubernetesBackendOptions o = Options();
  o.manifests.namespace_name = "nowhere";
  auto elsewhere = KubernetesBackend::Create(o, TokenAccess(*ca_pem_));
  ASSERT_TRUE(elsewhere.ok());
  auto refused = (*elsewhere)->Start(Spec());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("namespaces \"nowhere\" not found"), std::string::npos)
      << refused.status().ToString();
}

TEST_F(KubernetesBackendTest, AWrongCaIsRefused) {
  auto backend = Backend(TokenAccess(*other_ca_pem_));
  ASSERT_NE(backend, nullptr);
  auto observed = backend->Observe("xs-00112233445566ff");
  EXPECT_EQ(observed.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(observed.status().message().find("not trusted"), std::string::npos)
      << observed.status().ToString();
  EXPECT_TRUE(Requests().empty()) << "nothing may reach a server we do not trust";
}

TEST_F(KubernetesBackendTest, MalformedIdsAreRefused) {
  auto backend = Backend(TokenAccess(*ca_pem_));
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->Observe("../secrets/x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(backend->Stop("xs-1").code(), StatusCode::kInvalidArgument);
  SessionSpec bad = Spec();
  bad.base_url = "/";
  EXPECT_EQ(backend->Start(bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Requests().empty());
}

// The fake server's own checks can fail: a pod without drop ALL, a policy
// that lets the session reach the metadata service.
TEST_F(KubernetesBackendTest, FakeServerRefusesUnsafeObjects) {
  SessionSpec spec = Spec();
  k8s::ManifestOptions mo = Options().manifests;
  http::ClientOptions co;
  co.base_url = Url();
  co.ca_file = (*dir_ / "ca.pem").string();
  auto client = http::Client::Create(co);
  ASSERT_TRUE(client.ok());
  const auto post = [&](const std::string& path, const json& body) {
    http::ClientRequest r;
    r.method = "POST";
    r.target = path;
    r.headers = {{"Authorization", std::string("Bearer ") + kToken},
                 {"Content-Type", "application/json"}};
    r.body = body.dump();
    auto resp = client->Send(r);
    EXPECT_TRUE(resp.ok());
    return resp.ok() ? *resp : http::ClientResponse();
  };
  json pod = *k8s::BuildPod(spec, mo);
  pod["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"] = json::array();
  auto r = post("/api/v1/namespaces/cce-explore/pods", pod);
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("drop ALL"), std::string::npos) << r.body;
  json np = *k8s::BuildNetworkPolicy(spec, mo);
  np["spec"]["egress"][0]["to"][0]["ipBlock"]["except"].erase(4);  // 169.254.0.0/16
  r = post("/apis/networking.k8s.io/v1/namespaces/cce-explore/networkpolicies", np);
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("169.254.169.254"), std::string::npos) << r.body;
}

// ---- kubeconfig and in-cluster credentials ----

std::string Kubeconfig(const std::string& cluster, const std::string& user,
                       const std::string& extra_context = "") {
  return "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
         "clusters:\n- name: fake\n  cluster:\n" +
         cluster + "users:\n- name: plane\n  user:\n" + user +
         "contexts:\n- name: test\n  context:\n    cluster: fake\n    user: plane\n    namespace: "
         "cce-explore\n" +
         extra_context;
}

TEST_F(KubernetesBackendTest, KubeconfigWithClientCertificateData) {
  const std::string text = Kubeconfig(
      "    server: " + Url() + "\n    certificate-authority-data: " + B64(*ca_pem_) + "\n",
      "    client-certificate-data: " + B64(*client_cert_pem_) +
          "\n    client-key-data: " + B64(*client_key_pem_) + "\n");
  const fs::path path = *dir_ / "kubeconfig-cert";
  WriteText(path, text);
  KubernetesBackendOptions o = Options();
  o.manifests.namespace_name.clear();  // from the context
  o.kubeconfig = path.string();
  auto backend = KubernetesBackend::Create(o);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  EXPECT_EQ((*backend)->namespace_name(), "cce-explore");
  auto up = (*backend)->Start(Spec());
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  for (const json& r : Requests()) EXPECT_EQ(r["auth"], "cert:cce-plane");
}

TEST_F(KubernetesBackendTest, KubeconfigWithFilesAndToken) {
  WriteText(*dir_ / "kc-ca.pem", *ca_pem_);
  WriteText(*dir_ / "kc-token", std::string(kToken) + "\n");
  // Relative paths are relative to the kubeconfig's directory.
  const std::string text =
      Kubeconfig("    server: " + Url() + "/\n    certificate-authority: kc-ca.pem\n",
                 "    tokenFile: kc-token\n");
  const fs::path path = *dir_ / "kubeconfig-token";
  WriteText(path, text);
  auto access = LoadKubeconfig(path.string());
  ASSERT_TRUE(access.ok()) << access.status().ToString();
  EXPECT_EQ(access->server, Url());
  EXPECT_EQ(access->token_file, (*dir_ / "kc-token").string());
  auto observed = Backend(std::move(*access))->Observe("xs-00112233445566ff");
  ASSERT_TRUE(observed.ok()) << observed.status().ToString();
  EXPECT_EQ(observed->state, SessionState::kGone);
  EXPECT_EQ(Requests()[0]["auth"], "bearer");

  auto inline_token = ParseKubeconfig(
      Kubeconfig("    server: " + Url() +
                     "\n    certificate-authority: " + (*dir_ / "kc-ca.pem").string() + "\n",
                 std::string("    token: ") + kToken + "\n"),
      "/elsewhere/config");
  ASSERT_TRUE(inline_token.ok()) << inline_token.status().ToString();
  EXPECT_EQ(SecretText(inline_token->token), kToken);
}

TEST_F(KubernetesBackendTest, KubeconfigErrorsNameTheKey) {
  const std::string server = "    server: " + Url() + "\n";
  const std::string ca = "    certificate-authority-data: " + B64(*ca_pem_) + "\n";
  const std::string token = "    token: abc\n";
  struct Case {
    std::string text;
    std::string context;
    std::string key;
  };
  const std::vector<Case> cases = {
      {Kubeconfig(server + ca, "    client-key-data: '%%%'\n    client-certificate-data: " +
                                   B64(*client_cert_pem_) + "\n"),
       "", "users[0] (plane).user.client-key-data: not base64"},
      {Kubeconfig(server + ca, "    client-certificate-data: " + B64(*client_cert_pem_) + "\n"), "",
       "users[0] (plane).user.client-key: missing"},
      {Kubeconfig(server + ca, "    exec:\n      command: aws\n"), "",
       "users[0] (plane).user.exec: not supported"},
      {Kubeconfig(server + ca + "    insecure-skip-tls-verify: true\n", token), "",
       "clusters[0] (fake).cluster.insecure-skip-tls-verify"},
      {Kubeconfig(server, token), "", "clusters[0] (fake).cluster.certificate-authority: missing"},
      {Kubeconfig("    server: http://127.0.0.1:6443\n" + ca, token), "",
       "clusters[0] (fake).cluster.server"},
      {Kubeconfig(server + "    certificate-authority-data: " + B64("not a cert") + "\n", token),
       "", "certificate-authority"},
      {Kubeconfig(server + ca, "    foo: bar\n"), "", "users[0] (plane).user: no credentials"},
      {Kubeconfig(server + ca, token), "other", "contexts: no entry named 'other'"},
      {"apiVersion: v1\nkind: Config\n", "", "current-context: missing"},
      {"kind: [\n", "", "not YAML"},
      {"- a\n- b\n", "", "document: must be a mapping"},
      {Kubeconfig(server + ca, "    tokenFile: /nonexistent/token\n    token: x\n"), "",
       "users[0] (plane).user.token: give token or tokenFile"},
      {Kubeconfig(server + "    certificate-authority: missing-ca.pem\n", token), "",
       "clusters[0] (fake).cluster.certificate-authority: '/conf/missing-ca.pem'"},
  };
  for (const Case& c : cases) {
    auto access = ParseKubeconfig(c.text, "/conf/kubeconfig", c.context);
    EXPECT_EQ(access.status().code(), StatusCode::kInvalidArgument) << c.key;
    EXPECT_NE(access.status().message().find(c.key), std::string::npos)
        << access.status().ToString();
    EXPECT_NE(access.status().message().find("kubeconfig /conf/kubeconfig"), std::string::npos);
  }
}

TEST_F(KubernetesBackendTest, InClusterCredentialsAreReadAndTheTokenReReadPerRequest) {
  const fs::path sa = *dir_ / "serviceaccount";
  fs::create_directories(sa);
  WriteText(sa / "token", "stale-token\n");
  WriteText(sa / "ca.crt", *ca_pem_);
  WriteText(sa / "namespace", "cce-explore\n");
  ASSERT_EQ(::setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1), 0);
  ASSERT_EQ(::setenv("KUBERNETES_SERVICE_PORT", std::to_string(server_->port()).c_str(), 1), 0);
  KubernetesBackendOptions o = Options();
  o.manifests.namespace_name.clear();
  o.in_cluster_dir = sa.string();
  auto backend = KubernetesBackend::Create(o);
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  EXPECT_EQ((*backend)->namespace_name(), "cce-explore");
  EXPECT_EQ((*backend)->Observe("xs-00112233445566ff").status().code(), StatusCode::kInternal)
      << "a stale token is a 401";
  WriteText(sa / "token", std::string(kToken) + "\n");  // the kubelet rotated it
  auto observed = (*backend)->Observe("xs-00112233445566ff");
  ASSERT_TRUE(observed.ok()) << observed.status().ToString();
  EXPECT_EQ(observed->state, SessionState::kGone);

  fs::remove(sa / "ca.crt");
  auto missing = LoadInClusterAccess(sa.string());
  EXPECT_EQ(missing.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.status().message().find("ca.crt"), std::string::npos)
      << missing.status().ToString();
}

// ---- response parsing ----

TEST(KubernetesResponses, PodStates) {
  auto pending = ObservedFromPod(
      R"({"kind":"Pod","status":{"phase":"Pending","containerStatuses":[{"name":"jupyter","state":{"waiting":{"reason":"ImagePullBackOff","message":"Back-off pulling image"}}}]}})");
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->state, SessionState::kStarting);
  EXPECT_NE(pending->detail.find("ImagePullBackOff"), std::string::npos) << pending->detail;
  auto done = ObservedFromPod(
      R"({"kind":"Pod","status":{"phase":"Succeeded","containerStatuses":[{"name":"jupyter","state":{"terminated":{"exitCode":0,"reason":"Completed"}}}]}})");
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, SessionState::kGone);
  EXPECT_NE(done->detail.find("Completed"), std::string::npos) << done->detail;
  auto unknown = ObservedFromPod(R"({"kind":"Pod","status":{"phase":"Unknown"}})");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->state, SessionState::kFailed);
  auto deleting = ObservedFromPod(
      R"({"kind":"Pod","metadata":{"deletionTimestamp":"x"},"status":{"phase":"Running"}})");
  ASSERT_TRUE(deleting.ok());
  EXPECT_EQ(deleting->state, SessionState::kGone);
  EXPECT_EQ(ObservedFromPod(R"({"kind":"Status"})").status().code(), StatusCode::kInternal);
  EXPECT_EQ(ObservedFromPod("<html>").status().code(), StatusCode::kInternal);
}

TEST(KubernetesResponses, ApiErrorCodes) {
  const std::string body =
      R"({"kind":"Status","message":"pods \"x\" already exists","reason":"AlreadyExists","code":409})";
  const Status s = ApiError(409, body, "creating Pod x");
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find("creating Pod x"), std::string::npos);
  EXPECT_NE(s.message().find("pods \"x\" already exists"), std::string::npos);
  EXPECT_EQ(ApiError(401, "", "x").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ApiError(403, "", "x").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ApiError(404, "", "x").code(), StatusCode::kNotFound);
  EXPECT_EQ(ApiError(422, "", "x").code(), StatusCode::kInternal);
  EXPECT_EQ(ApiError(500, "", "x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(ApiError(429, "", "x").code(), StatusCode::kUnavailable);
  // Control characters in a server's message do not reach our messages.
  EXPECT_EQ(ApiError(500, "{\"kind\":\"Status\",\"message\":\"a\\nb\\u001b[31m\"}", "x")
                .message()
                .find('\n'),
            std::string::npos);
}

// ---- the sample fetcher (the initContainer's script), run for real ----

class SampleFetcherTest : public KubernetesBackendTest {
 protected:
  // Runs the fetcher with the session.json the Secret would hold; returns
  // its exit code and output.
  RunResult Fetch(const std::vector<std::string>& datasets, const fs::path& out) {
    fs::remove_all(out);
    fs::create_directories(out);
    const json config = {
        {"plane_url", Url()}, {"ca_pem", *ca_pem_}, {"token", kSessionToken}, {"session", "xs"}};
    WriteText(*dir_ / "session.json", config.dump(), 0400);
    SpawnOptions o;
    o.argv = {"/usr/bin/python3", "-c", std::string(k8s::SampleFetcherScript())};
    for (const std::string& d : datasets) o.argv.push_back(d);
    o.env = {"CCE4LONG_CONFIG=" + (*dir_ / "session.json").string(),
             "CCE4LONG_SAMPLES_DIR=" + out.string()};
    auto r = RunAndCapture(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : RunResult();
  }
};

TEST_F(SampleFetcherTest, FetchesAndVerifiesSamples) {
  const std::string csv = "age,zip\n30,123**\n";
  ASSERT_EQ(Control("/fake/samples",
                    {{"samples",
                      {{"census", {{"part-0.csv", B64(csv)}, {"sub/dir/x.jsonl", B64("{}\n")}}}}}})
                .status,
            200);
  const fs::path out = *dir_ / "samples-ok";
  const RunResult r = Fetch({"census"}, out);
  ASSERT_TRUE(r.status.success()) << r.status.ToString() << ": " << r.output;
  auto text = ReadFile((out / "census" / "part-0.csv").string(), 1 << 20);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, csv);
  EXPECT_TRUE(fs::exists(out / "census" / "sub" / "dir" / "x.jsonl"));
  EXPECT_EQ(fs::status(out / "census" / "part-0.csv").permissions() & fs::perms::owner_write,
            fs::perms::none);
}

TEST_F(SampleFetcherTest, RefusesTamperedFilesAndEscapingPaths) {
  const std::string csv = "a,b\n1,2\n";
  json samples = {{"census", {{"part-0.csv", B64(csv)}}}};
  json listing = {
      {"census",
       {{{"path", "part-0.csv"}, {"size", csv.size()}, {"sha256", std::string(64, '0')}}}}};
  ASSERT_EQ(Control("/fake/samples", {{"samples", samples}, {"listing", listing}}).status, 200);
  RunResult r = Fetch({"census"}, *dir_ / "samples-bad");
  EXPECT_FALSE(r.status.success());
  EXPECT_NE(r.output.find("sha256"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(*dir_ / "samples-bad" / "census" / "part-0.csv"));

  listing = {
      {"census", {{{"path", "../../escape.csv"}, {"size", 1}, {"sha256", std::string(64, '0')}}}}};
  ASSERT_EQ(Control("/fake/samples", {{"samples", samples}, {"listing", listing}}).status, 200);
  r = Fetch({"census"}, *dir_ / "samples-escape");
  EXPECT_FALSE(r.status.success());
  EXPECT_NE(r.output.find("refused"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(*dir_ / "escape.csv"));
}

}  // namespace
}  // namespace cce::explore
