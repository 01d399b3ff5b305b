// The session's Kubernetes objects: golden checks of the security fields
// (each test fails if the field is removed from k8s_manifests.cc), the
// NetworkPolicy's denied ranges, and ValidateManifest refusing what a real
// API server would refuse, naming the JSON path.
#include "explore/k8s_manifests.h"

#include <gtest/gtest.h>

#include <string>

namespace cce::explore::k8s {
namespace {

using nlohmann::json;

SessionSpec Spec() {
  SessionSpec s;
  s.id = "xs-0123456789abcdef";
  s.owner = "Alice Smith@example.com";
  s.owner_id = 7;
  s.base_url = "/explore/xs-0123456789abcdef/";
  s.samples = {{"census", "", "/data/census"}, {"trips_2024", "", "/data/trips_2024"}};
  s.jupyter_token =
      crypto::SecretBytes::CopyOf(crypto::AsBytes("0123456789abcdef0123456789abcdef"));
  s.sdk_config_json = crypto::SecretBytes::CopyOf(crypto::AsBytes(
      R"({"plane_url":"https://plane.cce.svc:8443","ca_pem":"","token":"t","session":"xs"})"));
  s.memory_mib = 4096;
  s.cpus = 2;
  return s;
}

ManifestOptions Options() {
  ManifestOptions o;
  o.namespace_name = "cce-explore";
  o.plane.namespace_name = "cce";
  o.plane.pod_labels = {{"app.kubernetes.io/name", "cce-plane"}};
  o.plane.api_port = 8443;
  return o;
}

json Build(StatusOr<json> (*builder)(const SessionSpec&, const ManifestOptions&)) {
  auto j = builder(Spec(), Options());
  EXPECT_TRUE(j.ok()) << j.status().ToString();
  return j.ok() ? *j : json();
}

TEST(K8sManifests, EveryObjectPassesValidation) {
  for (auto* b : {&BuildPod, &BuildService, &BuildSecret, &BuildNetworkPolicy}) {
    const json j = Build(b);
    const Status s = ValidateManifest(j);
    EXPECT_TRUE(s.ok()) << s.ToString() << "\n" << j.dump(2);
  }
}

TEST(K8sManifests, PodRunsNonRootWithoutPrivilegesOrCapabilities) {
  const json pod = Build(&BuildPod);
  const json& spec = pod["spec"];
  EXPECT_EQ(spec["automountServiceAccountToken"], false);
  EXPECT_EQ(spec["securityContext"]["runAsNonRoot"], true);
  EXPECT_EQ(spec["securityContext"]["runAsUser"], 1000);
  EXPECT_EQ(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
  ASSERT_EQ(spec["initContainers"].size(), 1u);
  for (const char* list : {"containers", "initContainers"}) {
    for (const json& c : spec[list]) {
      SCOPED_TRACE(c["name"].get<std::string>());
      const json& sc = c["securityContext"];
      EXPECT_EQ(sc["runAsNonRoot"], true);
      EXPECT_EQ(sc["runAsUser"], 1000);
      EXPECT_EQ(sc["allowPrivilegeEscalation"], false);
      EXPECT_EQ(sc["privileged"], false);
      EXPECT_EQ(sc["readOnlyRootFilesystem"], true);
      EXPECT_EQ(sc["capabilities"]["drop"], json::array({"ALL"}));
      EXPECT_FALSE(sc["capabilities"].contains("add"));
      EXPECT_EQ(sc["seccompProfile"]["type"], "RuntimeDefault");
    }
  }
}

TEST(K8sManifests, PodRunsJupyterAtTheBaseUrlWithTheTokenFromTheSecret) {
  const json pod = Build(&BuildPod);
  const json& c = pod["spec"]["containers"][0];
  EXPECT_EQ(c["image"], kDefaultImage);
  const std::string command = c["command"].dump();
  EXPECT_NE(command.find("--ServerApp.base_url=/explore/xs-0123456789abcdef/"), std::string::npos)
      << command;
  bool token_from_secret = false;
  for (const json& e : c["env"]) {
    EXPECT_FALSE(e.contains("value") &&
                 e["value"].get<std::string>().find("0123456789abcdef0123") != std::string::npos)
        << "the token must not be inline";
    if (e["name"] == "JUPYTER_TOKEN") {
      token_from_secret = e["valueFrom"]["secretKeyRef"]["name"] == "xs-0123456789abcdef-config" &&
                          e["valueFrom"]["secretKeyRef"]["key"] == "jupyter-token";
    }
  }
  EXPECT_TRUE(token_from_secret) << c["env"].dump();
  EXPECT_EQ(c["resources"]["limits"]["memory"], "4096Mi");
  EXPECT_EQ(c["resources"]["limits"]["cpu"], "2");
  EXPECT_EQ(pod["metadata"]["labels"]["cce4long.io/session"], "xs-0123456789abcdef");
  EXPECT_EQ(pod["metadata"]["labels"]["app.kubernetes.io/name"], "cce-explore");
  EXPECT_EQ(pod["metadata"]["labels"]["cce4long.io/owner"], "Alice-Smith-example.com");
  EXPECT_EQ(pod.dump().find("0123456789abcdef0123456789abcdef"), std::string::npos)
      << "the pod object must not carry the token";
}

TEST(K8sManifests, SamplesAreReadOnlyAtDataAndConfigIs0400) {
  const json pod = Build(&BuildPod);
  const json& c = pod["spec"]["containers"][0];
  int samples = 0;
  bool config = false;
  for (const json& m : c["volumeMounts"]) {
    if (m["name"] == "samples") {
      ++samples;
      EXPECT_EQ(m["readOnly"], true) << m.dump();
      EXPECT_EQ(m["mountPath"], "/data/" + m["subPath"].get<std::string>());
    }
    if (m["name"] == "cce4long-config") {
      config = true;
      EXPECT_EQ(m["mountPath"], "/etc/cce4long");
      EXPECT_EQ(m["readOnly"], true);
    }
  }
  EXPECT_EQ(samples, 2);
  EXPECT_TRUE(config);
  for (const json& v : pod["spec"]["volumes"]) {
    if (v["name"] == "cce4long-config") {
      EXPECT_EQ(v["secret"]["defaultMode"], 0400);
      EXPECT_EQ(v["secret"]["items"].size(), 1u) << "only session.json, not the Jupyter token";
    }
  }
  const json& init = pod["spec"]["initContainers"][0];
  EXPECT_EQ(init["command"][0], "python3");
  EXPECT_EQ(init["command"][3], "census");
  EXPECT_EQ(init["command"][4], "trips_2024");
}

TEST(K8sManifests, NoSamplesNoFetcher) {
  SessionSpec s = Spec();
  s.samples.clear();
  auto pod = BuildPod(s, Options());
  ASSERT_TRUE(pod.ok()) << pod.status().ToString();
  EXPECT_FALSE(pod->at("spec").contains("initContainers"));
  EXPECT_TRUE(ValidateManifest(*pod).ok());
}

bool Covers(const json& except, const std::string& cidr) {
  for (const json& e : except) {
    if (e == cidr) return true;
  }
  return false;
}

TEST(K8sManifests, NetworkPolicyDeniesMetadataAndPrivateRangesAndAllowsThePlane) {
  const json np = Build(&BuildNetworkPolicy);
  const json& spec = np["spec"];
  EXPECT_EQ(spec["podSelector"]["matchLabels"]["cce4long.io/session"], "xs-0123456789abcdef");
  EXPECT_EQ(spec["policyTypes"], json::array({"Ingress", "Egress"}));
  // Ingress: only the plane's pods, only 8888.
  ASSERT_EQ(spec["ingress"].size(), 1u);
  const json& from = spec["ingress"][0]["from"][0];
  EXPECT_EQ(from["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], "cce");
  EXPECT_EQ(from["podSelector"]["matchLabels"]["app.kubernetes.io/name"], "cce-plane");
  EXPECT_EQ(spec["ingress"][0]["ports"][0]["port"], 8888);
  // Egress: the internet minus the denied ranges; the plane; DNS.
  bool v4 = false, v6 = false, plane = false, dns = false;
  for (const json& rule : spec["egress"]) {
    for (const json& to : rule["to"]) {
      if (to.contains("ipBlock") && to["ipBlock"]["cidr"] == "0.0.0.0/0") {
        v4 = true;
        for (const char* c :
             {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"}) {
          EXPECT_TRUE(Covers(to["ipBlock"]["except"], c)) << c;
        }
      }
      if (to.contains("ipBlock") && to["ipBlock"]["cidr"] == "::/0") {
        v6 = true;
        EXPECT_TRUE(Covers(to["ipBlock"]["except"], "fc00::/7"));
        EXPECT_TRUE(Covers(to["ipBlock"]["except"], "fe80::/10"));
      }
      if (to.contains("podSelector") &&
          to["podSelector"]["matchLabels"].contains("app.kubernetes.io/name")) {
        plane = rule["ports"][0]["port"] == 8443 && rule["ports"].size() == 1;
      }
      if (to.contains("podSelector") && to["podSelector"]["matchLabels"].contains("k8s-app")) {
        dns = rule["ports"].size() == 2 && rule["ports"][0]["port"] == 53;
      }
    }
  }
  EXPECT_TRUE(v4);
  EXPECT_TRUE(v6);
  EXPECT_TRUE(plane);
  EXPECT_TRUE(dns);
}

TEST(K8sManifests, ExtraDeniedCidrsAreAdded) {
  ManifestOptions o = Options();
  o.extra_denied_cidrs = {"203.0.113.0/24", "2001:db8::/32"};
  auto np = BuildNetworkPolicy(Spec(), o);
  ASSERT_TRUE(np.ok());
  EXPECT_TRUE(Covers((*np)["spec"]["egress"][0]["to"][0]["ipBlock"]["except"], "203.0.113.0/24"));
  EXPECT_TRUE(Covers((*np)["spec"]["egress"][0]["to"][1]["ipBlock"]["except"], "2001:db8::/32"));
  EXPECT_TRUE(ValidateManifest(*np).ok());
  o.extra_denied_cidrs = {"10.0.0.1/8"};
  EXPECT_EQ(BuildNetworkPolicy(Spec(), o).status().code(), StatusCode::kInvalidArgument);
}

TEST(K8sManifests, SecretHoldsBothSecretsBase64) {
  const json secret = Build(&BuildSecret);
  EXPECT_EQ(secret["data"]["jupyter-token"], "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
  EXPECT_TRUE(secret["data"].contains("session.json"));
  EXPECT_EQ(secret["metadata"]["name"], "xs-0123456789abcdef-config");
}

TEST(K8sManifests, ServiceSelectsTheSessionOn8888) {
  const json svc = Build(&BuildService);
  EXPECT_EQ(svc["spec"]["type"], "ClusterIP");
  EXPECT_EQ(svc["spec"]["selector"]["cce4long.io/session"], "xs-0123456789abcdef");
  EXPECT_EQ(svc["spec"]["ports"][0]["port"], 8888);
}

TEST(K8sManifests, SpecErrorsNameTheField) {
  SessionSpec s = Spec();
  s.id = "xs-XYZ";
  EXPECT_NE(BuildPod(s, Options()).status().message().find("id"), std::string::npos);
  s = Spec();
  s.base_url = "/elsewhere/";
  EXPECT_NE(BuildPod(s, Options()).status().message().find("base_url"), std::string::npos);
  s = Spec();
  s.samples[1].dataset = "../etc";
  EXPECT_NE(BuildPod(s, Options()).status().message().find("samples[1].dataset"),
            std::string::npos);
  s = Spec();
  s.samples[0].mount_path = "/etc/cce4long/x";
  EXPECT_NE(BuildPod(s, Options()).status().message().find("samples[0].mount_path"),
            std::string::npos);
  s = Spec();
  s.jupyter_token = crypto::SecretBytes();
  EXPECT_NE(BuildSecret(s, Options()).status().message().find("jupyter_token"), std::string::npos);
  ManifestOptions o = Options();
  o.plane.pod_labels.clear();
  EXPECT_NE(BuildNetworkPolicy(Spec(), o).status().message().find("plane pod labels"),
            std::string::npos);
}

TEST(K8sManifests, OwnerLabelIsSanitized) {
  EXPECT_EQ(SanitizedLabelValue("alice"), "alice");
  EXPECT_EQ(SanitizedLabelValue("-bob-"), "bob");
  EXPECT_EQ(SanitizedLabelValue("@@@"), "unknown");
  EXPECT_EQ(SanitizedLabelValue(std::string(100, 'a')).size(), 63u);
  SessionSpec s = Spec();
  s.owner = "\xc3\xbc \xc3\xb1 x.";
  auto pod = BuildPod(s, Options());
  ASSERT_TRUE(pod.ok());
  EXPECT_TRUE(ValidateManifest(*pod).ok()) << (*pod)["metadata"]["labels"].dump();
}

// ---- ValidateManifest: what a real API server would refuse ----

void ExpectRefused(json j, const std::string& path_fragment) {
  const Status s = ValidateManifest(j);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << path_fragment;
  EXPECT_NE(s.message().find(path_fragment), std::string::npos) << s.message();
}

TEST(K8sValidate, RefusesBadNamesLabelsAndKinds) {
  json pod = Build(&BuildPod);
  json j = pod;
  j["metadata"]["name"] = "Bad_Name";
  ExpectRefused(j, "metadata.name");
  j = pod;
  j["metadata"]["name"] = std::string(64, 'a');
  ExpectRefused(j, "metadata.name");
  j = pod;
  j["metadata"]["labels"]["cce4long.io/owner"] = "has space";
  ExpectRefused(j, "metadata.labels[\"cce4long.io/owner\"]");
  j = pod;
  j["metadata"]["labels"]["Bad Key/x"] = "v";
  ExpectRefused(j, "metadata.labels");
  j = pod;
  j["kind"] = "Deployment";
  ExpectRefused(j, "apiVersion/kind");
  j = pod;
  j["apiVersion"] = "apps/v1";
  ExpectRefused(j, "apiVersion/kind");
  json svc = Build(&BuildService);
  svc["metadata"]["name"] = "1abc";
  ExpectRefused(svc, "metadata.name");
}

TEST(K8sValidate, RefusesBadPodFields) {
  const json pod = Build(&BuildPod);
  json j = pod;
  j["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000;
  ExpectRefused(j, "spec.containers[0].ports[0].containerPort");
  j = pod;
  j["spec"]["containers"][0]["resources"]["limits"]["memory"] = "4 GiB";
  ExpectRefused(j, "spec.containers[0].resources.limits.memory");
  j = pod;
  j["spec"]["containers"][0]["resources"]["requests"]["memory"] = "64Gi";
  ExpectRefused(j, "spec.containers[0].resources.requests.memory");
  j = pod;
  j["spec"]["containers"][0]["volumeMounts"][0]["name"] = "nope";
  ExpectRefused(j, "spec.containers[0].volumeMounts[0].name");
  j = pod;
  j["spec"]["containers"][0]["securityContext"]["runAsUser"] = 0;
  ExpectRefused(j, "spec.containers[0].securityContext.runAsUser");
  j = pod;
  j["spec"]["containers"][0]["securityContext"]["seccompProfile"]["type"] = "Whatever";
  ExpectRefused(j, "seccompProfile.type");
  j = pod;
  j["spec"]["containers"][0].erase("image");
  ExpectRefused(j, "spec.containers[0].image");
  j = pod;
  j["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalaton"] = false;  // typo
  ExpectRefused(j, "allowPrivilegeEscalaton: unknown field");
  j = pod;
  j["spec"]["volumes"].push_back({{"name", "host"}, {"hostPath", {{"path", "/"}}}});
  ExpectRefused(j, "spec.volumes[");
  j = pod;
  j["spec"]["initContainers"][0]["name"] = "jupyter";
  ExpectRefused(j, "must be unique");
}

TEST(K8sValidate, RefusesBadCidrsAndPorts) {
  const json np = Build(&BuildNetworkPolicy);
  json j = np;
  j["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"] = "0.0.0.0/33";
  ExpectRefused(j, "spec.egress[0].to[0].ipBlock.cidr");
  j = np;
  j["spec"]["egress"][0]["to"][0]["ipBlock"]["except"][4] = "169.254.0.0/16x";
  ExpectRefused(j, "spec.egress[0].to[0].ipBlock.except[4]");
  j = np;
  j["spec"]["egress"][0]["to"][1]["ipBlock"]["except"][0] = "10.0.0.0/8";  // v4 in ::/0
  ExpectRefused(j, "spec.egress[0].to[1].ipBlock.except[0]");
  j = np;
  j["spec"]["egress"][1]["ports"][0]["port"] = 0;
  ExpectRefused(j, "spec.egress[1].ports[0].port");
  j = np;
  j["spec"]["egress"][2]["ports"][0]["protocol"] = "ICMP";
  ExpectRefused(j, "spec.egress[2].ports[0].protocol");
  json svc = Build(&BuildService);
  svc["spec"]["ports"][0]["port"] = 65536;
  ExpectRefused(svc, "spec.ports[0].port");
  json secret = Build(&BuildSecret);
  secret["data"]["jupyter-token"] = "not base64!";
  ExpectRefused(secret, "data[\"jupyter-token\"]");
}

TEST(K8sValidate, SyntaxHelpers) {
  EXPECT_TRUE(IsValidQuantity("512Mi"));
  EXPECT_TRUE(IsValidQuantity("100m"));
  EXPECT_TRUE(IsValidQuantity("1.5"));
  EXPECT_TRUE(IsValidQuantity("1e3"));
  EXPECT_FALSE(IsValidQuantity("1.5.2"));
  EXPECT_FALSE(IsValidQuantity("Mi"));
  EXPECT_FALSE(IsValidQuantity("-1"));
  EXPECT_FALSE(IsValidQuantity("12MB"));
  EXPECT_TRUE(IsValidCidr("::/0"));
  EXPECT_TRUE(IsValidCidr("fe80::/10"));
  EXPECT_FALSE(IsValidCidr("10.0.0.0"));
  EXPECT_FALSE(IsValidCidr("10.0.0.0/08"));
  EXPECT_FALSE(IsValidCidr("fe80::1/10"));
  EXPECT_TRUE(IsDns1123Label("xs-0123456789abcdef"));
  EXPECT_FALSE(IsDns1123Label("-a"));
  EXPECT_FALSE(IsDns1123Label("A"));
}

}  // namespace
}  // namespace cce::explore::k8s
