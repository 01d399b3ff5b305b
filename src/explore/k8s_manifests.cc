#include "explore/k8s_manifests.h"

#include <arpa/inet.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <utility>

namespace cce::explore::k8s {
namespace {

using nlohmann::json;

constexpr char kAppName[] = "cce-explore";
constexpr int64_t kJupyterUid = 1000;  // "jovyan" in the Jupyter Docker Stacks images
constexpr int64_t kJupyterGid = 100;   // "users" there
constexpr char kConfigMountPath[] = "/etc/cce4long";
constexpr char kSamplesFetchDir[] = "/samples";

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// Label/annotation key name part and label values: [A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?
bool IsQualifiedNamePart(std::string_view s) {
  if (s.empty() || s.size() > 63 || !IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  for (char c : s) {
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

bool IsDns1123Subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    const std::string_view part =
        s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (part.empty() || !IsLowerAlnum(part.front()) || !IsLowerAlnum(part.back())) return false;
    for (char c : part) {
      if (!IsLowerAlnum(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool IsLabelKey(std::string_view key) {
  const size_t slash = key.find('/');
  if (slash == std::string_view::npos) return IsQualifiedNamePart(key);
  return IsDns1123Subdomain(key.substr(0, slash)) && IsQualifiedNamePart(key.substr(slash + 1));
}

bool IsLabelValue(std::string_view v) {
  return v.empty() || IsQualifiedNamePart(v);
}

// IANA_SVC_NAME: 1-15 lower-case alphanumerics and '-', at least one letter,
// no leading/trailing/double '-'.
bool IsPortName(std::string_view s) {
  if (s.empty() || s.size() > 15 || s.front() == '-' || s.back() == '-') return false;
  bool letter = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '-' && i > 0 && s[i - 1] == '-') return false;
    if (!IsLowerAlnum(s[i]) && s[i] != '-') return false;
    if (s[i] >= 'a' && s[i] <= 'z') letter = true;
  }
  return letter;
}

bool IsEnvName(std::string_view s) {
  if (s.empty() || (s.front() >= '0' && s.front() <= '9')) return false;
  for (char c : s) {
    if (!IsAlnum(c) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

bool IsRelativePath(std::string_view p) {
  if (p.empty() || p.front() == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    const size_t slash = p.find('/', start);
    const std::string_view part = p.substr(start, slash == p.npos ? p.npos : slash - start);
    if (part == "..") return false;
    if (slash == p.npos) break;
    start = slash + 1;
  }
  return true;
}

bool IsBase64(std::string_view s) {
  if (s.size() % 4 != 0) return false;
  size_t pad = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '=') {
      if (i + 2 < s.size()) return false;
      ++pad;
    } else if (pad > 0 || !(IsAlnum(c) || c == '+' || c == '/')) {
      return false;
    }
  }
  return pad <= 2;
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) |
                       (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// A quantity's value (suffixes: binary Ki..Ei, decimal n u m k M G T P E, or
// an exponent), or nullopt if it is not Kubernetes quantity syntax.
std::optional<long double> QuantityValue(std::string_view s) {
  if (s.empty() || s.size() > 64) return std::nullopt;
  size_t i = 0;
  if (s[i] == '+' || s[i] == '-') ++i;
  const size_t digits_start = i;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  size_t digits = i - digits_start;
  if (i < s.size() && s[i] == '.') {
    ++i;
    const size_t frac_start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    digits += i - frac_start;
  }
  if (digits == 0) return std::nullopt;
  const std::string number(s.substr(0, i));
  const std::string_view suffix = s.substr(i);
  long double scale = 1;
  static const std::array<std::pair<std::string_view, long double>, 15> kSuffixes = {{
      {"Ki", 1024.0L},
      {"Mi", 1048576.0L},
      {"Gi", 1073741824.0L},
      {"Ti", 1099511627776.0L},
      {"Pi", 1125899906842624.0L},
      {"Ei", 1152921504606846976.0L},
      {"n", 1e-9L},
      {"u", 1e-6L},
      {"m", 1e-3L},
      {"", 1.0L},
      {"k", 1e3L},
      {"M", 1e6L},
      {"G", 1e9L},
      {"T", 1e12L},
      {"P", 1e15L},
  }};
  bool known = false;
  for (const auto& [name, factor] : kSuffixes) {
    if (suffix == name) {
      scale = factor;
      known = true;
      break;
    }
  }
  if (!known && suffix == "E") {
    scale = 1e18L;
    known = true;
  }
  if (!known && (suffix.front() == 'e' || suffix.front() == 'E')) {
    std::string_view exp = suffix.substr(1);
    if (!exp.empty() && (exp.front() == '+' || exp.front() == '-')) exp.remove_prefix(1);
    if (exp.empty() || exp.size() > 3) return std::nullopt;
    for (char c : exp) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    }
    int e = 0;
    std::from_chars(suffix.data() + 1 + (suffix[1] == '+' || suffix[1] == '-' ? 1 : 0),
                    suffix.data() + suffix.size(), e);
    scale = std::pow(10.0L, suffix[1] == '-' ? -e : e);
    known = true;
  }
  if (!known) return std::nullopt;
  return std::strtold(number.c_str(), nullptr) * scale;
}

// ---- validation -------------------------------------------------------------

class Validator {
 public:
  explicit Validator(std::string kind) : kind_(std::move(kind)) {}

  Status Fail(const std::string& path, const std::string& what) const {
    return InvalidArgument(kind_ + " " + path + ": " + what);
  }

  Status Object(const json& j, const std::string& path) const {
    if (!j.is_object()) return Fail(path, "must be an object");
    return Status::Ok();
  }
  Status Array(const json& j, const std::string& path) const {
    if (!j.is_array()) return Fail(path, "must be a list");
    return Status::Ok();
  }
  Status String(const json& j, const std::string& path) const {
    if (!j.is_string()) return Fail(path, "must be a string");
    return Status::Ok();
  }
  Status Bool(const json& j, const std::string& path) const {
    if (!j.is_boolean()) return Fail(path, "must be true or false");
    return Status::Ok();
  }
  Status Int(const json& j, const std::string& path, int64_t min, int64_t max) const {
    if (!j.is_number_integer()) return Fail(path, "must be an integer");
    const int64_t v =
        j.is_number_unsigned() && j.get<uint64_t>() > INT64_MAX ? INT64_MAX : j.get<int64_t>();
    if (v < min || v > max) {
      return Fail(path, "must be in " + std::to_string(min) + ".." + std::to_string(max) +
                            ", not " + std::to_string(v));
    }
    return Status::Ok();
  }
  // Fields outside `known` are refused: a typo is an error here, where a
  // real API server would drop it silently (and a security field with it).
  Status Known(const json& j, const std::string& path,
               std::initializer_list<std::string_view> known) const {
    for (const auto& [key, value] : j.items()) {
      bool ok = false;
      for (std::string_view k : known) ok = ok || key == k;
      if (!ok) return Fail(path + (path.empty() ? "" : ".") + key, "unknown field");
    }
    return Status::Ok();
  }

  Status Labels(const json& j, const std::string& path) const {
    RETURN_IF_ERROR(Object(j, path));
    for (const auto& [key, value] : j.items()) {
      if (!IsLabelKey(key)) {
        return Fail(path + "[\"" + key + "\"]",
                    "not a label key ([prefix/]name, name <= 63 of [-_.A-Za-z0-9], "
                    "alphanumeric at both ends)");
      }
      RETURN_IF_ERROR(String(value, path + "[\"" + key + "\"]"));
      if (!IsLabelValue(value.get<std::string>())) {
        return Fail(path + "[\"" + key + "\"]",
                    "not a label value (<= 63 of [-_.A-Za-z0-9], alphanumeric at both ends)");
      }
    }
    return Status::Ok();
  }

  Status Selector(const json& j, const std::string& path) const {
    RETURN_IF_ERROR(Object(j, path));
    RETURN_IF_ERROR(Known(j, path, {"matchLabels"}));
    if (j.contains("matchLabels")) RETURN_IF_ERROR(Labels(j["matchLabels"], path + ".matchLabels"));
    return Status::Ok();
  }

  Status Quantity(const json& j, const std::string& path) const {
    RETURN_IF_ERROR(String(j, path));
    const auto v = QuantityValue(j.get<std::string>());
    if (!v)
      return Fail(path, "'" + j.get<std::string>() + "' is not a quantity (e.g. 512Mi, 500m, 2)");
    if (*v < 0) return Fail(path, "must not be negative");
    return Status::Ok();
  }

  Status Metadata(const json& obj, bool dns1035) const {
    if (!obj.contains("metadata")) return Fail("metadata", "is required");
    const json& m = obj["metadata"];
    RETURN_IF_ERROR(Object(m, "metadata"));
    RETURN_IF_ERROR(
        Known(m, "metadata", {"name", "namespace", "labels", "annotations", "ownerReferences"}));
    if (!m.contains("name")) return Fail("metadata.name", "is required");
    RETURN_IF_ERROR(String(m["name"], "metadata.name"));
    const std::string name = m["name"];
    if (!IsDns1123Label(name)) {
      return Fail("metadata.name", "'" + name +
                                       "' is not a DNS-1123 label (<= 63 of [a-z0-9-], "
                                       "alphanumeric at both ends)");
    }
    if (dns1035 && !(name.front() >= 'a' && name.front() <= 'z')) {
      return Fail("metadata.name", "a Service name must start with a letter (DNS-1035)");
    }
    if (m.contains("namespace")) {
      RETURN_IF_ERROR(String(m["namespace"], "metadata.namespace"));
      if (!IsDns1123Label(m["namespace"].get<std::string>())) {
        return Fail("metadata.namespace", "not a DNS-1123 label");
      }
    }
    if (m.contains("labels")) RETURN_IF_ERROR(Labels(m["labels"], "metadata.labels"));
    if (m.contains("annotations")) {
      RETURN_IF_ERROR(Object(m["annotations"], "metadata.annotations"));
      size_t total = 0;
      for (const auto& [key, value] : m["annotations"].items()) {
        const std::string p = "metadata.annotations[\"" + key + "\"]";
        if (!IsLabelKey(key)) return Fail(p, "not an annotation key");
        RETURN_IF_ERROR(String(value, p));
        total += key.size() + value.get<std::string>().size();
      }
      if (total > 256 * 1024) return Fail("metadata.annotations", "larger than 256 KiB");
    }
    if (m.contains("ownerReferences")) {
      RETURN_IF_ERROR(Array(m["ownerReferences"], "metadata.ownerReferences"));
      for (size_t i = 0; i < m["ownerReferences"].size(); ++i) {
        const json& r = m["ownerReferences"][i];
        const std::string p = "metadata.ownerReferences[" + std::to_string(i) + "]";
        RETURN_IF_ERROR(Object(r, p));
        for (const char* f : {"apiVersion", "kind", "name", "uid"}) {
          if (!r.contains(f) || !r[f].is_string() || r[f].get<std::string>().empty()) {
            return Fail(p + "." + f, "is required");
          }
        }
      }
    }
    return Status::Ok();
  }

 private:
  std::string kind_;
};

std::string Idx(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

Status ValidatePorts(const Validator& v, const json& ports, const std::string& path,
                     bool container) {
  RETURN_IF_ERROR(v.Array(ports, path));
  for (size_t i = 0; i < ports.size(); ++i) {
    const json& p = ports[i];
    const std::string pp = Idx(path, i);
    RETURN_IF_ERROR(v.Object(p, pp));
    if (container) {
      RETURN_IF_ERROR(v.Known(p, pp, {"name", "containerPort", "protocol"}));
      if (!p.contains("containerPort")) return v.Fail(pp + ".containerPort", "is required");
      RETURN_IF_ERROR(v.Int(p["containerPort"], pp + ".containerPort", 1, 65535));
    } else {
      RETURN_IF_ERROR(v.Known(p, pp, {"name", "port", "targetPort", "protocol"}));
      if (!p.contains("port")) return v.Fail(pp + ".port", "is required");
      RETURN_IF_ERROR(v.Int(p["port"], pp + ".port", 1, 65535));
      if (p.contains("targetPort")) {
        if (p["targetPort"].is_string()) {
          if (!IsPortName(p["targetPort"].get<std::string>())) {
            return v.Fail(pp + ".targetPort", "not a port number or name");
          }
        } else {
          RETURN_IF_ERROR(v.Int(p["targetPort"], pp + ".targetPort", 1, 65535));
        }
      }
    }
    if (p.contains("name")) {
      RETURN_IF_ERROR(v.String(p["name"], pp + ".name"));
      if (!IsPortName(p["name"].get<std::string>())) {
        return v.Fail(pp + ".name", "not a port name (IANA_SVC_NAME, <= 15 characters)");
      }
    }
    if (p.contains("protocol")) {
      RETURN_IF_ERROR(v.String(p["protocol"], pp + ".protocol"));
      const std::string proto = p["protocol"];
      if (proto != "TCP" && proto != "UDP" && proto != "SCTP") {
        return v.Fail(pp + ".protocol", "must be TCP, UDP or SCTP");
      }
    }
  }
  return Status::Ok();
}

Status ValidateSecurityContext(const Validator& v, const json& sc, const std::string& path,
                               bool pod_level) {
  RETURN_IF_ERROR(v.Object(sc, path));
  if (pod_level) {
    RETURN_IF_ERROR(v.Known(sc, path,
                            {"runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile",
                             "supplementalGroups"}));
  } else {
    RETURN_IF_ERROR(v.Known(
        sc, path,
        {"runAsNonRoot", "runAsUser", "runAsGroup", "privileged", "allowPrivilegeEscalation",
         "readOnlyRootFilesystem", "capabilities", "seccompProfile"}));
  }
  for (const char* f : {"runAsUser", "runAsGroup", "fsGroup"}) {
    if (sc.contains(f)) RETURN_IF_ERROR(v.Int(sc[f], path + "." + f, 0, 2147483647));
  }
  for (const char* f :
       {"runAsNonRoot", "privileged", "allowPrivilegeEscalation", "readOnlyRootFilesystem"}) {
    if (sc.contains(f)) RETURN_IF_ERROR(v.Bool(sc[f], path + "." + f));
  }
  if (sc.contains("runAsNonRoot") && sc["runAsNonRoot"] == true && sc.contains("runAsUser") &&
      sc["runAsUser"] == 0) {
    return v.Fail(path + ".runAsUser", "0 contradicts runAsNonRoot");
  }
  if (sc.contains("privileged") && sc["privileged"] == true &&
      sc.contains("allowPrivilegeEscalation") && sc["allowPrivilegeEscalation"] == false) {
    return v.Fail(path + ".allowPrivilegeEscalation", "cannot be false with privileged: true");
  }
  if (sc.contains("capabilities")) {
    const json& caps = sc["capabilities"];
    const std::string cp = path + ".capabilities";
    RETURN_IF_ERROR(v.Object(caps, cp));
    RETURN_IF_ERROR(v.Known(caps, cp, {"add", "drop"}));
    for (const char* f : {"add", "drop"}) {
      if (!caps.contains(f)) continue;
      RETURN_IF_ERROR(v.Array(caps[f], cp + "." + f));
      for (size_t i = 0; i < caps[f].size(); ++i) {
        RETURN_IF_ERROR(v.String(caps[f][i], Idx(cp + "." + f, i)));
      }
    }
  }
  if (sc.contains("seccompProfile")) {
    const json& s = sc["seccompProfile"];
    const std::string sp = path + ".seccompProfile";
    RETURN_IF_ERROR(v.Object(s, sp));
    RETURN_IF_ERROR(v.Known(s, sp, {"type", "localhostProfile"}));
    if (!s.contains("type")) return v.Fail(sp + ".type", "is required");
    RETURN_IF_ERROR(v.String(s["type"], sp + ".type"));
    const std::string t = s["type"];
    if (t != "RuntimeDefault" && t != "Localhost" && t != "Unconfined") {
      return v.Fail(sp + ".type", "must be RuntimeDefault, Localhost or Unconfined");
    }
    if ((t == "Localhost") != s.contains("localhostProfile")) {
      return v.Fail(sp + ".localhostProfile", "is required exactly when type is Localhost");
    }
  }
  return Status::Ok();
}

Status ValidateResources(const Validator& v, const json& r, const std::string& path) {
  RETURN_IF_ERROR(v.Object(r, path));
  RETURN_IF_ERROR(v.Known(r, path, {"requests", "limits"}));
  for (const char* f : {"requests", "limits"}) {
    if (!r.contains(f)) continue;
    RETURN_IF_ERROR(v.Object(r[f], path + "." + f));
    for (const auto& [name, q] : r[f].items()) {
      if (name != "cpu" && name != "memory" && name != "ephemeral-storage") {
        return v.Fail(path + "." + f + "." + name,
                      "unknown resource (cpu, memory, ephemeral-storage)");
      }
      RETURN_IF_ERROR(v.Quantity(q, path + "." + f + "." + name));
    }
  }
  if (r.contains("requests") && r.contains("limits")) {
    for (const auto& [name, q] : r["requests"].items()) {
      if (!r["limits"].contains(name)) continue;
      if (*QuantityValue(q.get<std::string>()) >
          *QuantityValue(r["limits"][name].get<std::string>())) {
        return v.Fail(path + ".requests." + name,
                      "must be less than or equal to the " + name + " limit");
      }
    }
  }
  return Status::Ok();
}

Status ValidateContainer(const Validator& v, const json& c, const std::string& path,
                         const std::set<std::string>& volumes, bool init) {
  RETURN_IF_ERROR(v.Object(c, path));
  RETURN_IF_ERROR(
      v.Known(c, path,
              {"name", "image", "imagePullPolicy", "command", "args", "env", "ports",
               "volumeMounts", "resources", "securityContext", "readinessProbe", "workingDir"}));
  if (!c.contains("name")) return v.Fail(path + ".name", "is required");
  RETURN_IF_ERROR(v.String(c["name"], path + ".name"));
  if (!IsDns1123Label(c["name"].get<std::string>()))
    return v.Fail(path + ".name", "not a DNS-1123 label");
  if (!c.contains("image")) return v.Fail(path + ".image", "is required");
  RETURN_IF_ERROR(v.String(c["image"], path + ".image"));
  const std::string image = c["image"];
  if (image.empty() || image.size() > 1024 ||
      image.find_first_of(" \t\r\n\"'") != std::string::npos) {
    return v.Fail(path + ".image", "not an image reference");
  }
  if (c.contains("imagePullPolicy")) {
    RETURN_IF_ERROR(v.String(c["imagePullPolicy"], path + ".imagePullPolicy"));
    const std::string p = c["imagePullPolicy"];
    if (p != "Always" && p != "IfNotPresent" && p != "Never") {
      return v.Fail(path + ".imagePullPolicy", "must be Always, IfNotPresent or Never");
    }
  }
  for (const char* f : {"command", "args"}) {
    if (!c.contains(f)) continue;
    RETURN_IF_ERROR(v.Array(c[f], path + "." + f));
    for (size_t i = 0; i < c[f].size(); ++i)
      RETURN_IF_ERROR(v.String(c[f][i], Idx(path + "." + f, i)));
  }
  if (c.contains("workingDir")) RETURN_IF_ERROR(v.String(c["workingDir"], path + ".workingDir"));
  if (c.contains("env")) {
    RETURN_IF_ERROR(v.Array(c["env"], path + ".env"));
    for (size_t i = 0; i < c["env"].size(); ++i) {
      const json& e = c["env"][i];
      const std::string ep = Idx(path + ".env", i);
      RETURN_IF_ERROR(v.Object(e, ep));
      RETURN_IF_ERROR(v.Known(e, ep, {"name", "value", "valueFrom"}));
      if (!e.contains("name") || !e["name"].is_string() ||
          !IsEnvName(e["name"].get<std::string>())) {
        return v.Fail(ep + ".name", "is required: [-._a-zA-Z][-._a-zA-Z0-9]*");
      }
      if (e.contains("value") == e.contains("valueFrom")) {
        return v.Fail(ep, "needs exactly one of value and valueFrom");
      }
      if (e.contains("value")) RETURN_IF_ERROR(v.String(e["value"], ep + ".value"));
      if (e.contains("valueFrom")) {
        const json& from = e["valueFrom"];
        RETURN_IF_ERROR(v.Object(from, ep + ".valueFrom"));
        RETURN_IF_ERROR(v.Known(from, ep + ".valueFrom", {"secretKeyRef"}));
        if (!from.contains("secretKeyRef"))
          return v.Fail(ep + ".valueFrom.secretKeyRef", "is required");
        const json& ref = from["secretKeyRef"];
        const std::string rp = ep + ".valueFrom.secretKeyRef";
        RETURN_IF_ERROR(v.Object(ref, rp));
        RETURN_IF_ERROR(v.Known(ref, rp, {"name", "key", "optional"}));
        if (!ref.contains("name") || !ref["name"].is_string() ||
            !IsDns1123Subdomain(ref["name"].get<std::string>())) {
          return v.Fail(rp + ".name", "is required: a Secret's name");
        }
        if (!ref.contains("key") || !ref["key"].is_string() ||
            ref["key"].get<std::string>().empty()) {
          return v.Fail(rp + ".key", "is required");
        }
      }
    }
  }
  if (c.contains("ports")) {
    if (init) return v.Fail(path + ".ports", "an init container has no ports");
    RETURN_IF_ERROR(ValidatePorts(v, c["ports"], path + ".ports", true));
  }
  if (c.contains("volumeMounts")) {
    RETURN_IF_ERROR(v.Array(c["volumeMounts"], path + ".volumeMounts"));
    std::set<std::string> paths;
    for (size_t i = 0; i < c["volumeMounts"].size(); ++i) {
      const json& m = c["volumeMounts"][i];
      const std::string mp = Idx(path + ".volumeMounts", i);
      RETURN_IF_ERROR(v.Object(m, mp));
      RETURN_IF_ERROR(v.Known(m, mp, {"name", "mountPath", "readOnly", "subPath"}));
      if (!m.contains("name") || !m["name"].is_string()) return v.Fail(mp + ".name", "is required");
      if (volumes.count(m["name"].get<std::string>()) == 0) {
        return v.Fail(mp + ".name",
                      "'" + m["name"].get<std::string>() + "' names no volume of the pod");
      }
      if (!m.contains("mountPath") || !m["mountPath"].is_string() ||
          m["mountPath"].get<std::string>().empty() ||
          m["mountPath"].get<std::string>()[0] != '/') {
        return v.Fail(mp + ".mountPath", "is required: an absolute path");
      }
      if (!paths.insert(m["mountPath"].get<std::string>()).second) {
        return v.Fail(mp + ".mountPath", "must be unique");
      }
      if (m.contains("readOnly")) RETURN_IF_ERROR(v.Bool(m["readOnly"], mp + ".readOnly"));
      if (m.contains("subPath")) {
        RETURN_IF_ERROR(v.String(m["subPath"], mp + ".subPath"));
        if (!IsRelativePath(m["subPath"].get<std::string>())) {
          return v.Fail(mp + ".subPath", "must be a relative path without '..'");
        }
      }
    }
  }
  if (c.contains("resources"))
    RETURN_IF_ERROR(ValidateResources(v, c["resources"], path + ".resources"));
  if (c.contains("securityContext")) {
    RETURN_IF_ERROR(
        ValidateSecurityContext(v, c["securityContext"], path + ".securityContext", false));
  }
  if (c.contains("readinessProbe")) {
    if (init) return v.Fail(path + ".readinessProbe", "an init container has no probes");
    const json& p = c["readinessProbe"];
    const std::string pp = path + ".readinessProbe";
    RETURN_IF_ERROR(v.Object(p, pp));
    RETURN_IF_ERROR(v.Known(p, pp,
                            {"tcpSocket", "periodSeconds", "initialDelaySeconds",
                             "failureThreshold", "timeoutSeconds"}));
    if (!p.contains("tcpSocket")) return v.Fail(pp + ".tcpSocket", "is required");
    RETURN_IF_ERROR(v.Object(p["tcpSocket"], pp + ".tcpSocket"));
    RETURN_IF_ERROR(v.Known(p["tcpSocket"], pp + ".tcpSocket", {"port"}));
    if (!p["tcpSocket"].contains("port")) return v.Fail(pp + ".tcpSocket.port", "is required");
    RETURN_IF_ERROR(v.Int(p["tcpSocket"]["port"], pp + ".tcpSocket.port", 1, 65535));
    for (const char* f :
         {"periodSeconds", "initialDelaySeconds", "failureThreshold", "timeoutSeconds"}) {
      if (p.contains(f)) RETURN_IF_ERROR(v.Int(p[f], pp + "." + f, 0, 86400));
    }
  }
  return Status::Ok();
}

Status ValidateVolumes(const Validator& v, const json& vols, std::set<std::string>* names) {
  RETURN_IF_ERROR(v.Array(vols, "spec.volumes"));
  for (size_t i = 0; i < vols.size(); ++i) {
    const json& vol = vols[i];
    const std::string p = Idx("spec.volumes", i);
    RETURN_IF_ERROR(v.Object(vol, p));
    RETURN_IF_ERROR(v.Known(vol, p, {"name", "emptyDir", "secret", "configMap"}));
    if (!vol.contains("name") || !vol["name"].is_string() ||
        !IsDns1123Label(vol["name"].get<std::string>())) {
      return v.Fail(p + ".name", "is required: a DNS-1123 label");
    }
    if (!names->insert(vol["name"].get<std::string>()).second)
      return v.Fail(p + ".name", "must be unique");
    const int sources = static_cast<int>(vol.contains("emptyDir")) +
                        static_cast<int>(vol.contains("secret")) +
                        static_cast<int>(vol.contains("configMap"));
    if (sources != 1) return v.Fail(p, "needs exactly one source (emptyDir, secret, configMap)");
    if (vol.contains("emptyDir")) {
      const json& e = vol["emptyDir"];
      RETURN_IF_ERROR(v.Object(e, p + ".emptyDir"));
      RETURN_IF_ERROR(v.Known(e, p + ".emptyDir", {"medium", "sizeLimit"}));
      if (e.contains("medium")) {
        RETURN_IF_ERROR(v.String(e["medium"], p + ".emptyDir.medium"));
        if (e["medium"] != "" && e["medium"] != "Memory") {
          return v.Fail(p + ".emptyDir.medium", "must be \"\" or Memory");
        }
      }
      if (e.contains("sizeLimit"))
        RETURN_IF_ERROR(v.Quantity(e["sizeLimit"], p + ".emptyDir.sizeLimit"));
      continue;
    }
    const bool secret = vol.contains("secret");
    const json& s = secret ? vol["secret"] : vol["configMap"];
    const std::string sp = p + (secret ? ".secret" : ".configMap");
    const char* name_field = secret ? "secretName" : "name";
    RETURN_IF_ERROR(v.Object(s, sp));
    RETURN_IF_ERROR(v.Known(s, sp, {name_field, "defaultMode", "items", "optional"}));
    if (!s.contains(name_field) || !s[name_field].is_string() ||
        !IsDns1123Subdomain(s[name_field].get<std::string>())) {
      return v.Fail(sp + "." + name_field, "is required: a DNS-1123 subdomain");
    }
    if (s.contains("defaultMode"))
      RETURN_IF_ERROR(v.Int(s["defaultMode"], sp + ".defaultMode", 0, 0777));
    if (s.contains("items")) {
      RETURN_IF_ERROR(v.Array(s["items"], sp + ".items"));
      for (size_t k = 0; k < s["items"].size(); ++k) {
        const json& item = s["items"][k];
        const std::string ip = Idx(sp + ".items", k);
        RETURN_IF_ERROR(v.Object(item, ip));
        RETURN_IF_ERROR(v.Known(item, ip, {"key", "path", "mode"}));
        if (!item.contains("key") || !item["key"].is_string())
          return v.Fail(ip + ".key", "is required");
        if (!item.contains("path") || !item["path"].is_string() ||
            !IsRelativePath(item["path"].get<std::string>())) {
          return v.Fail(ip + ".path", "is required: a relative path without '..'");
        }
        if (item.contains("mode")) RETURN_IF_ERROR(v.Int(item["mode"], ip + ".mode", 0, 0777));
      }
    }
  }
  return Status::Ok();
}

Status ValidatePod(const Validator& v, const json& spec) {
  RETURN_IF_ERROR(v.Object(spec, "spec"));
  RETURN_IF_ERROR(v.Known(
      spec, "spec",
      {"containers", "initContainers", "volumes", "securityContext", "automountServiceAccountToken",
       "enableServiceLinks", "restartPolicy", "runtimeClassName", "terminationGracePeriodSeconds",
       "hostNetwork", "hostPID", "hostIPC"}));
  std::set<std::string> volumes;
  if (spec.contains("volumes")) RETURN_IF_ERROR(ValidateVolumes(v, spec["volumes"], &volumes));
  if (!spec.contains("containers")) return v.Fail("spec.containers", "is required");
  RETURN_IF_ERROR(v.Array(spec["containers"], "spec.containers"));
  if (spec["containers"].empty()) return v.Fail("spec.containers", "must not be empty");
  std::set<std::string> names;
  for (const char* list : {"initContainers", "containers"}) {
    if (!spec.contains(list)) continue;
    const std::string lp = std::string("spec.") + list;
    RETURN_IF_ERROR(v.Array(spec[list], lp));
    for (size_t i = 0; i < spec[list].size(); ++i) {
      RETURN_IF_ERROR(ValidateContainer(v, spec[list][i], Idx(lp, i), volumes,
                                        std::string_view(list) == "initContainers"));
      if (!names.insert(spec[list][i]["name"].get<std::string>()).second) {
        return v.Fail(Idx(lp, i) + ".name", "must be unique among the pod's containers");
      }
    }
  }
  if (spec.contains("securityContext")) {
    RETURN_IF_ERROR(
        ValidateSecurityContext(v, spec["securityContext"], "spec.securityContext", true));
  }
  for (const char* f : {"automountServiceAccountToken", "enableServiceLinks", "hostNetwork",
                        "hostPID", "hostIPC"}) {
    if (spec.contains(f)) RETURN_IF_ERROR(v.Bool(spec[f], std::string("spec.") + f));
  }
  if (spec.contains("restartPolicy")) {
    RETURN_IF_ERROR(v.String(spec["restartPolicy"], "spec.restartPolicy"));
    const std::string r = spec["restartPolicy"];
    if (r != "Always" && r != "OnFailure" && r != "Never") {
      return v.Fail("spec.restartPolicy", "must be Always, OnFailure or Never");
    }
  }
  if (spec.contains("runtimeClassName")) {
    RETURN_IF_ERROR(v.String(spec["runtimeClassName"], "spec.runtimeClassName"));
    if (!IsDns1123Subdomain(spec["runtimeClassName"].get<std::string>())) {
      return v.Fail("spec.runtimeClassName", "not a DNS-1123 subdomain");
    }
  }
  if (spec.contains("terminationGracePeriodSeconds")) {
    RETURN_IF_ERROR(v.Int(spec["terminationGracePeriodSeconds"],
                          "spec.terminationGracePeriodSeconds", 0, 86400));
  }
  return Status::Ok();
}

Status ValidateService(const Validator& v, const json& spec) {
  RETURN_IF_ERROR(v.Object(spec, "spec"));
  RETURN_IF_ERROR(v.Known(spec, "spec", {"type", "selector", "ports"}));
  if (spec.contains("type")) {
    RETURN_IF_ERROR(v.String(spec["type"], "spec.type"));
    const std::string t = spec["type"];
    if (t != "ClusterIP" && t != "NodePort" && t != "LoadBalancer") {
      return v.Fail("spec.type", "must be ClusterIP, NodePort or LoadBalancer");
    }
  }
  if (spec.contains("selector")) RETURN_IF_ERROR(v.Labels(spec["selector"], "spec.selector"));
  if (!spec.contains("ports")) return v.Fail("spec.ports", "is required");
  if (spec["ports"].is_array() && spec["ports"].empty())
    return v.Fail("spec.ports", "must not be empty");
  return ValidatePorts(v, spec["ports"], "spec.ports", false);
}

Status ValidateSecret(const Validator& v, const json& obj) {
  if (obj.contains("type")) RETURN_IF_ERROR(v.String(obj["type"], "type"));
  if (obj.contains("data")) {
    RETURN_IF_ERROR(v.Object(obj["data"], "data"));
    size_t total = 0;
    for (const auto& [key, value] : obj["data"].items()) {
      const std::string p = "data[\"" + key + "\"]";
      if (key.empty() || key.size() > 253 || key == "." || key == ".." ||
          key.find_first_not_of(
              "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") !=
              std::string::npos) {
        return v.Fail(p, "not a Secret key ([-._a-zA-Z0-9]+)");
      }
      RETURN_IF_ERROR(v.String(value, p));
      if (!IsBase64(value.get<std::string>())) return v.Fail(p, "not base64");
      total += value.get<std::string>().size() / 4 * 3;
    }
    if (total > 1024 * 1024) return v.Fail("data", "larger than 1 MiB");
  }
  return Status::Ok();
}

// An address family and the address bytes of "a.b.c.d/n" or "x::/n".
struct Cidr {
  int family = 0;
  std::array<uint8_t, 16> addr{};
  int prefix = 0;
};

std::optional<Cidr> ParseCidr(std::string_view s) {
  const size_t slash = s.find('/');
  if (slash == s.npos || slash == 0 || slash + 1 == s.size() || s.size() > 64) return std::nullopt;
  const std::string ip(s.substr(0, slash));
  const std::string_view len = s.substr(slash + 1);
  Cidr c;
  if (inet_pton(AF_INET, ip.c_str(), c.addr.data()) == 1) {
    c.family = 4;
  } else if (inet_pton(AF_INET6, ip.c_str(), c.addr.data()) == 1) {
    c.family = 6;
  } else {
    return std::nullopt;
  }
  if (len.size() > 3 || (len.size() > 1 && len.front() == '0')) return std::nullopt;
  const auto [ptr, ec] = std::from_chars(len.data(), len.data() + len.size(), c.prefix);
  if (ec != std::errc() || ptr != len.data() + len.size()) return std::nullopt;
  const int bits = c.family == 4 ? 32 : 128;
  if (c.prefix < 0 || c.prefix > bits) return std::nullopt;
  // No host bits: "10.0.0.1/8" is refused (the API server warns; we fail).
  for (int b = c.prefix; b < bits; ++b) {
    if ((c.addr[b / 8] >> (7 - b % 8)) & 1) return std::nullopt;
  }
  return c;
}

bool CidrContains(const Cidr& outer, const Cidr& inner) {
  if (outer.family != inner.family || inner.prefix < outer.prefix) return false;
  for (int b = 0; b < outer.prefix; ++b) {
    if (((outer.addr[b / 8] >> (7 - b % 8)) & 1) != ((inner.addr[b / 8] >> (7 - b % 8)) & 1)) {
      return false;
    }
  }
  return true;
}

Status ValidatePeers(const Validator& v, const json& peers, const std::string& path) {
  RETURN_IF_ERROR(v.Array(peers, path));
  for (size_t i = 0; i < peers.size(); ++i) {
    const json& peer = peers[i];
    const std::string p = Idx(path, i);
    RETURN_IF_ERROR(v.Object(peer, p));
    RETURN_IF_ERROR(v.Known(peer, p, {"ipBlock", "podSelector", "namespaceSelector"}));
    const bool ip = peer.contains("ipBlock");
    if (ip == (peer.contains("podSelector") || peer.contains("namespaceSelector"))) {
      return v.Fail(p, "needs either ipBlock or podSelector/namespaceSelector");
    }
    if (!ip) {
      if (peer.contains("podSelector"))
        RETURN_IF_ERROR(v.Selector(peer["podSelector"], p + ".podSelector"));
      if (peer.contains("namespaceSelector")) {
        RETURN_IF_ERROR(v.Selector(peer["namespaceSelector"], p + ".namespaceSelector"));
      }
      continue;
    }
    const json& block = peer["ipBlock"];
    RETURN_IF_ERROR(v.Object(block, p + ".ipBlock"));
    RETURN_IF_ERROR(v.Known(block, p + ".ipBlock", {"cidr", "except"}));
    if (!block.contains("cidr")) return v.Fail(p + ".ipBlock.cidr", "is required");
    RETURN_IF_ERROR(v.String(block["cidr"], p + ".ipBlock.cidr"));
    const auto cidr = ParseCidr(block["cidr"].get<std::string>());
    if (!cidr)
      return v.Fail(p + ".ipBlock.cidr",
                    "'" + block["cidr"].get<std::string>() + "' is not a CIDR");
    if (block.contains("except")) {
      RETURN_IF_ERROR(v.Array(block["except"], p + ".ipBlock.except"));
      for (size_t k = 0; k < block["except"].size(); ++k) {
        const std::string ep = Idx(p + ".ipBlock.except", k);
        RETURN_IF_ERROR(v.String(block["except"][k], ep));
        const auto ex = ParseCidr(block["except"][k].get<std::string>());
        if (!ex) return v.Fail(ep, "'" + block["except"][k].get<std::string>() + "' is not a CIDR");
        if (!CidrContains(*cidr, *ex) || ex->prefix == cidr->prefix) {
          return v.Fail(ep, "must be strictly inside " + block["cidr"].get<std::string>());
        }
      }
    }
  }
  return Status::Ok();
}

Status ValidateNetworkPolicy(const Validator& v, const json& spec) {
  RETURN_IF_ERROR(v.Object(spec, "spec"));
  RETURN_IF_ERROR(v.Known(spec, "spec", {"podSelector", "policyTypes", "ingress", "egress"}));
  if (!spec.contains("podSelector")) return v.Fail("spec.podSelector", "is required");
  RETURN_IF_ERROR(v.Selector(spec["podSelector"], "spec.podSelector"));
  if (spec.contains("policyTypes")) {
    RETURN_IF_ERROR(v.Array(spec["policyTypes"], "spec.policyTypes"));
    for (size_t i = 0; i < spec["policyTypes"].size(); ++i) {
      const json& t = spec["policyTypes"][i];
      if (t != "Ingress" && t != "Egress")
        return v.Fail(Idx("spec.policyTypes", i), "must be Ingress or Egress");
    }
  }
  for (const char* dir : {"ingress", "egress"}) {
    if (!spec.contains(dir)) continue;
    const std::string dp = std::string("spec.") + dir;
    RETURN_IF_ERROR(v.Array(spec[dir], dp));
    const char* peers = std::string_view(dir) == "ingress" ? "from" : "to";
    for (size_t i = 0; i < spec[dir].size(); ++i) {
      const json& rule = spec[dir][i];
      const std::string rp = Idx(dp, i);
      RETURN_IF_ERROR(v.Object(rule, rp));
      RETURN_IF_ERROR(v.Known(rule, rp, {peers, "ports"}));
      if (rule.contains(peers)) RETURN_IF_ERROR(ValidatePeers(v, rule[peers], rp + "." + peers));
      if (!rule.contains("ports")) continue;
      RETURN_IF_ERROR(v.Array(rule["ports"], rp + ".ports"));
      for (size_t k = 0; k < rule["ports"].size(); ++k) {
        const json& port = rule["ports"][k];
        const std::string pp = Idx(rp + ".ports", k);
        RETURN_IF_ERROR(v.Object(port, pp));
        RETURN_IF_ERROR(v.Known(port, pp, {"protocol", "port", "endPort"}));
        if (port.contains("protocol")) {
          const json& proto = port["protocol"];
          if (proto != "TCP" && proto != "UDP" && proto != "SCTP") {
            return v.Fail(pp + ".protocol", "must be TCP, UDP or SCTP");
          }
        }
        if (port.contains("port")) {
          if (port["port"].is_string()) {
            if (!IsPortName(port["port"].get<std::string>()))
              return v.Fail(pp + ".port", "not a port name");
          } else {
            RETURN_IF_ERROR(v.Int(port["port"], pp + ".port", 1, 65535));
          }
        }
        if (port.contains("endPort")) {
          if (!port.contains("port") || !port["port"].is_number_integer()) {
            return v.Fail(pp + ".endPort", "needs a numeric port");
          }
          RETURN_IF_ERROR(
              v.Int(port["endPort"], pp + ".endPort", port["port"].get<int64_t>(), 65535));
        }
      }
    }
  }
  return Status::Ok();
}

// ---- building ---------------------------------------------------------------

bool IsDatasetName(std::string_view s) {
  if (s.empty() || s.size() > 253 || s == "." || s == "..") return false;
  for (char c : s) {
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

Status CheckSpec(const SessionSpec& spec) {
  if (!ValidSessionId(spec.id)) {
    return InvalidArgument("session spec: id '" + spec.id +
                           "': expected xs- and 16 lower-case hex digits");
  }
  if (spec.base_url != "/explore/" + spec.id + "/") {
    return InvalidArgument("session spec: base_url '" + spec.base_url + "': expected /explore/" +
                           spec.id + "/");
  }
  if (spec.memory_mib < 256 || spec.memory_mib > 1024 * 1024) {
    return InvalidArgument("session spec: memory_mib " + std::to_string(spec.memory_mib) +
                           ": expected 256..1048576");
  }
  if (spec.cpus < 1 || spec.cpus > 256) {
    return InvalidArgument("session spec: cpus " + std::to_string(spec.cpus) + ": expected 1..256");
  }
  std::set<std::string> datasets;
  std::set<std::string> paths;
  for (size_t i = 0; i < spec.samples.size(); ++i) {
    const SampleMount& s = spec.samples[i];
    const std::string p = "session spec: samples[" + std::to_string(i) + "]";
    if (!IsDatasetName(s.dataset)) {
      return InvalidArgument(p + ".dataset '" + s.dataset + "': expected [A-Za-z0-9._-]+");
    }
    if (!datasets.insert(s.dataset).second)
      return InvalidArgument(p + ".dataset '" + s.dataset + "': given twice");
    if (s.mount_path.size() < 2 || s.mount_path.front() != '/' ||
        !IsRelativePath(s.mount_path.substr(1)) || s.mount_path.back() == '/' ||
        s.mount_path.find("//") != std::string::npos ||
        s.mount_path.rfind("/etc/cce4long", 0) == 0 || s.mount_path.rfind("/home/jovyan", 0) == 0 ||
        s.mount_path == "/tmp" || s.mount_path.rfind("/tmp/", 0) == 0) {
      return InvalidArgument(p + ".mount_path '" + s.mount_path +
                             "': expected an absolute path like /data/<dataset>");
    }
    if (!paths.insert(s.mount_path).second)
      return InvalidArgument(p + ".mount_path '" + s.mount_path + "': given twice");
  }
  if (spec.jupyter_token.size() < 16) {
    return InvalidArgument("session spec: jupyter_token: expected at least 16 bytes");
  }
  if (spec.sdk_config_json.empty()) return InvalidArgument("session spec: sdk_config_json: empty");
  return Status::Ok();
}

Status CheckOptions(const ManifestOptions& o) {
  if (!IsDns1123Label(o.namespace_name)) {
    return InvalidArgument("kubernetes namespace '" + o.namespace_name + "': not a DNS-1123 label");
  }
  if (o.image.empty()) return InvalidArgument("kubernetes image: empty");
  if (o.plane.namespace_name.empty() || !IsDns1123Label(o.plane.namespace_name)) {
    return InvalidArgument("kubernetes plane namespace '" + o.plane.namespace_name +
                           "': not a DNS-1123 label");
  }
  if (o.plane.pod_labels.empty()) {
    return InvalidArgument(
        "kubernetes plane pod labels: empty (the session would accept every pod)");
  }
  if (o.plane.api_port < 1 || o.plane.api_port > 65535) {
    return InvalidArgument("kubernetes plane api port " + std::to_string(o.plane.api_port) +
                           ": expected 1..65535");
  }
  for (const std::string& c : o.extra_denied_cidrs) {
    const auto cidr = ParseCidr(c);
    if (!cidr || cidr->prefix == 0)
      return InvalidArgument("kubernetes extra denied CIDR '" + c + "': not a CIDR");
  }
  return Status::Ok();
}

json Labels(const SessionSpec& spec) {
  return {{"app.kubernetes.io/name", kAppName},
          {"app.kubernetes.io/managed-by", "cce-plane"},
          {"cce4long.io/session", spec.id},
          {"cce4long.io/owner", SanitizedLabelValue(spec.owner)}};
}

json Metadata(const std::string& name, const SessionSpec& spec, const ManifestOptions& o) {
  return {{"name", name}, {"namespace", o.namespace_name}, {"labels", Labels(spec)}};
}

json MatchLabels(const std::map<std::string, std::string>& labels) {
  json m = json::object();
  for (const auto& [k, v] : labels) m[k] = v;
  return {{"matchLabels", m}};
}

json NamespaceSelector(const std::string& ns) {
  return {{"matchLabels", {{"kubernetes.io/metadata.name", ns}}}};
}

json ContainerSecurity() {
  return {{"runAsNonRoot", true},
          {"runAsUser", kJupyterUid},
          {"runAsGroup", kJupyterGid},
          {"privileged", false},
          {"allowPrivilegeEscalation", false},
          {"readOnlyRootFilesystem", true},
          {"capabilities", {{"drop", json::array({"ALL"})}}},
          {"seccompProfile", {{"type", "RuntimeDefault"}}}};
}

constexpr char kFetcherScript[] = R"PY(
import hashlib, json, os, ssl, sys, urllib.parse, urllib.request
cfg = json.load(open(os.environ.get("CCE4LONG_CONFIG", "/etc/cce4long/session.json")))
samples = os.environ.get("CCE4LONG_SAMPLES_DIR", "/samples")
ctx = ssl.create_default_context(cadata=cfg["ca_pem"]) if cfg.get("ca_pem") else ssl.create_default_context()
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), NoRedirect)
base = cfg["plane_url"].rstrip("/")
if not base.startswith("https://"):
    sys.exit("session.json: plane_url must be https://")
def get(path):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + cfg["token"]})
    return opener.open(req, timeout=120)
for ds in sys.argv[1:]:
    q = "/api/v1/datasets/" + urllib.parse.quote(ds, safe="") + "/sample"
    with get(q) as r:
        listing = json.loads(r.read(16 << 20))
    root = os.path.join(samples, ds)
    os.makedirs(root, mode=0o755, exist_ok=True)
    for f in listing["files"]:
        path, size, want = f["path"], int(f["size"]), f["sha256"].removeprefix("sha256:")
        parts = path.split("/")
        if path.startswith("/") or "\0" in path or any(p in ("", ".", "..") for p in parts):
            sys.exit("%s: sample file path %r refused" % (ds, path))
        dest = os.path.join(root, *parts)
        os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
        h, n = hashlib.sha256(), 0
        with get(q + "/files/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)) as r, \
             open(dest + ".part", "xb") as out:
            while True:
                chunk = r.read(1 << 16)
                if not chunk:
                    break
                n += len(chunk)
                if n > size:
                    sys.exit("%s: %s: longer than the listed %d bytes" % (ds, path, size))
                h.update(chunk)
                out.write(chunk)
        if n != size or h.hexdigest() != want:
            sys.exit("%s: %s: size or sha256 differs from the plane's listing" % (ds, path))
        os.chmod(dest + ".part", 0o444)
        os.rename(dest + ".part", dest)
    print("%s: %d files" % (ds, len(listing["files"])))
)PY";

}  // namespace

const std::vector<std::string>& DeniedIpv4Ranges() {
  static const std::vector<std::string> kRanges = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                   "100.64.0.0/10", "169.254.0.0/16"};
  return kRanges;
}

const std::vector<std::string>& DeniedIpv6Ranges() {
  static const std::vector<std::string> kRanges = {"fc00::/7", "fe80::/10"};
  return kRanges;
}

std::string PodName(std::string_view session_id) {
  return std::string(session_id);
}
std::string ServiceName(std::string_view session_id) {
  return std::string(session_id);
}
std::string NetworkPolicyName(std::string_view session_id) {
  return std::string(session_id);
}
std::string SecretName(std::string_view session_id) {
  return std::string(session_id) + "-config";
}

std::string SanitizedLabelValue(std::string_view owner) {
  std::string out;
  for (char c : owner.substr(0, 63))
    out += (IsAlnum(c) || c == '.' || c == '_' || c == '-') ? c : '-';
  while (!out.empty() && !IsAlnum(out.back())) out.pop_back();
  size_t start = 0;
  while (start < out.size() && !IsAlnum(out[start])) ++start;
  out.erase(0, start);
  return out.empty() ? "unknown" : out;
}

bool IsDns1123Label(std::string_view s) {
  if (s.empty() || s.size() > 63 || !IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back()))
    return false;
  for (char c : s) {
    if (!IsLowerAlnum(c) && c != '-') return false;
  }
  return true;
}

bool IsValidQuantity(std::string_view s) {
  const auto v = QuantityValue(s);
  return v.has_value() && *v >= 0;
}

bool IsValidCidr(std::string_view s) {
  return ParseCidr(s).has_value();
}

std::string_view SampleFetcherScript() {
  return kFetcherScript;
}

StatusOr<json> BuildNetworkPolicy(const SessionSpec& spec, const ManifestOptions& o) {
  RETURN_IF_ERROR(CheckSpec(spec));
  RETURN_IF_ERROR(CheckOptions(o));
  json v4_except = DeniedIpv4Ranges();
  json v6_except = DeniedIpv6Ranges();
  for (const std::string& c : o.extra_denied_cidrs)
    (ParseCidr(c)->family == 4 ? v4_except : v6_except).push_back(c);
  json plane_peer = {{"namespaceSelector", NamespaceSelector(o.plane.namespace_name)},
                     {"podSelector", MatchLabels(o.plane.pod_labels)}};
  json dns_peer = {{"namespaceSelector", NamespaceSelector(o.dns_namespace)},
                   {"podSelector", MatchLabels(o.dns_pod_labels)}};
  json policy = {
      {"apiVersion", "networking.k8s.io/v1"},
      {"kind", "NetworkPolicy"},
      {"metadata", Metadata(NetworkPolicyName(spec.id), spec, o)},
      {"spec",
       {{"podSelector", {{"matchLabels", {{"cce4long.io/session", spec.id}}}}},
        {"policyTypes", json::array({"Ingress", "Egress"})},
        // Only the plane (its proxy) reaches the Jupyter server.
        {"ingress",
         json::array({{{"from", json::array({plane_peer})},
                       {"ports", json::array({{{"protocol", "TCP"}, {"port", kJupyterPort}}})}}})},
        {"egress",
         json::array({
             // The internet, minus private ranges and cloud metadata.
             {{"to", json::array({{{"ipBlock", {{"cidr", "0.0.0.0/0"}, {"except", v4_except}}}},
                                  {{"ipBlock", {{"cidr", "::/0"}, {"except", v6_except}}}}})}},
             // The plane's API (the SDK, the sample fetcher).
             {{"to", json::array({plane_peer})},
              {"ports", json::array({{{"protocol", "TCP"}, {"port", o.plane.api_port}}})}},
             // The cluster's DNS.
             {{"to", json::array({dns_peer})},
              {"ports", json::array({{{"protocol", "UDP"}, {"port", 53}},
                                     {{"protocol", "TCP"}, {"port", 53}}})}},
         })}}}};
  return policy;
}

StatusOr<json> BuildSecret(const SessionSpec& spec, const ManifestOptions& o) {
  RETURN_IF_ERROR(CheckSpec(spec));
  RETURN_IF_ERROR(CheckOptions(o));
  const std::string_view token(reinterpret_cast<const char*>(spec.jupyter_token.data()),
                               spec.jupyter_token.size());
  const std::string_view config(reinterpret_cast<const char*>(spec.sdk_config_json.data()),
                                spec.sdk_config_json.size());
  return json{{"apiVersion", "v1"},
              {"kind", "Secret"},
              {"metadata", Metadata(SecretName(spec.id), spec, o)},
              {"type", "Opaque"},
              {"data", {{"jupyter-token", Base64(token)}, {"session.json", Base64(config)}}}};
}

StatusOr<json> BuildService(const SessionSpec& spec, const ManifestOptions& o) {
  RETURN_IF_ERROR(CheckSpec(spec));
  RETURN_IF_ERROR(CheckOptions(o));
  return json{{"apiVersion", "v1"},
              {"kind", "Service"},
              {"metadata", Metadata(ServiceName(spec.id), spec, o)},
              {"spec",
               {{"type", "ClusterIP"},
                {"selector", {{"cce4long.io/session", spec.id}}},
                {"ports", json::array({{{"name", "http"},
                                        {"protocol", "TCP"},
                                        {"port", kJupyterPort},
                                        {"targetPort", kJupyterPort}}})}}}};
}

StatusOr<json> BuildPod(const SessionSpec& spec, const ManifestOptions& o) {
  RETURN_IF_ERROR(CheckSpec(spec));
  RETURN_IF_ERROR(CheckOptions(o));
  const json config_volume = {
      {"name", "cce4long-config"},
      {"secret",
       {{"secretName", SecretName(spec.id)},
        {"defaultMode", 0400},
        {"items", json::array({{{"key", "session.json"}, {"path", "session.json"}}})}}}};
  json volumes = json::array({
      config_volume,
      {{"name", "home"}, {"emptyDir", {{"sizeLimit", o.home_size_limit}}}},
      {{"name", "tmp"}, {"emptyDir", {{"sizeLimit", o.tmp_size_limit}}}},
  });
  json mounts = json::array({
      {{"name", "cce4long-config"}, {"mountPath", kConfigMountPath}, {"readOnly", true}},
      {{"name", "home"}, {"mountPath", "/home/jovyan"}},
      {{"name", "tmp"}, {"mountPath", "/tmp"}},
  });
  if (!spec.samples.empty()) {
    volumes.push_back({{"name", "samples"}, {"emptyDir", {{"sizeLimit", o.samples_size_limit}}}});
    for (const SampleMount& s : spec.samples) {
      mounts.push_back({{"name", "samples"},
                        {"mountPath", s.mount_path},
                        {"subPath", s.dataset},
                        {"readOnly", true}});
    }
  }
  if (!o.sdk_config_map.empty()) {
    volumes.push_back({{"name", "cce4long-sdk"},
                       {"configMap", {{"name", o.sdk_config_map}, {"defaultMode", 0444}}}});
    mounts.push_back(
        {{"name", "cce4long-sdk"}, {"mountPath", "/opt/cce4long/cce4long"}, {"readOnly", true}});
  }
  const std::string memory = std::to_string(spec.memory_mib) + "Mi";
  const std::string cpu = std::to_string(spec.cpus);
  json jupyter = {
      {"name", "jupyter"},
      {"image", o.image},
      {"imagePullPolicy", o.image_pull_policy},
      // JupyterLab (the image's default app) on Jupyter Server, behind the
      // plane's proxy at base_url. The token comes from the Secret; the
      // proxy adds it, the user never handles it.
      {"command",
       json::array({"start-notebook.py", "--ServerApp.base_url=" + spec.base_url,
                    "--ServerApp.ip=0.0.0.0", "--ServerApp.port=" + std::to_string(kJupyterPort),
                    "--ServerApp.allow_remote_access=True", "--ServerApp.root_dir=/home/jovyan"})},
      {"env", json::array({
                  {{"name", "JUPYTER_TOKEN"},
                   {"valueFrom",
                    {{"secretKeyRef", {{"name", SecretName(spec.id)}, {"key", "jupyter-token"}}}}}},
                  {{"name", "HOME"}, {"value", "/home/jovyan"}},
                  {{"name", "PYTHONPATH"}, {"value", "/opt/cce4long"}},
                  {{"name", "CCE4LONG_CONFIG"},
                   {"value", std::string(kConfigMountPath) + "/session.json"}},
              })},
      {"ports",
       json::array({{{"name", "http"}, {"containerPort", kJupyterPort}, {"protocol", "TCP"}}})},
      {"readinessProbe",
       {{"tcpSocket", {{"port", kJupyterPort}}}, {"periodSeconds", 2}, {"failureThreshold", 3}}},
      {"resources",
       {{"requests", {{"cpu", o.cpu_request}, {"memory", o.memory_request}}},
        {"limits",
         {{"cpu", cpu}, {"memory", memory}, {"ephemeral-storage", o.ephemeral_storage_limit}}}}},
      {"securityContext", ContainerSecurity()},
      {"volumeMounts", mounts},
  };
  json pod_spec = {
      {"automountServiceAccountToken", false},
      {"enableServiceLinks", false},
      {"hostNetwork", false},
      {"hostPID", false},
      {"hostIPC", false},
      {"restartPolicy", "Never"},
      {"terminationGracePeriodSeconds", 10},
      // fsGroup: the Secret's files (mode 0400, root-owned without it) become
      // group-readable by the session's user.
      {"securityContext",
       {{"runAsNonRoot", true},
        {"runAsUser", kJupyterUid},
        {"runAsGroup", kJupyterGid},
        {"fsGroup", kJupyterGid},
        {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
      {"containers", json::array({jupyter})},
      {"volumes", volumes},
  };
  if (!o.runtime_class_name.empty()) pod_spec["runtimeClassName"] = o.runtime_class_name;
  if (!spec.samples.empty()) {
    json command = {"python3", "-c", std::string(kFetcherScript)};
    for (const SampleMount& s : spec.samples) command.push_back(s.dataset);
    pod_spec["initContainers"] = json::array({{
        {"name", "fetch-samples"},
        {"image", o.fetcher_image.empty() ? o.image : o.fetcher_image},
        {"imagePullPolicy", o.image_pull_policy},
        {"command", command},
        {"resources",
         {{"requests", {{"cpu", o.cpu_request}, {"memory", "128Mi"}}},
          {"limits",
           {{"cpu", "1"}, {"memory", "512Mi"}, {"ephemeral-storage", o.ephemeral_storage_limit}}}}},
        {"securityContext", ContainerSecurity()},
        {"volumeMounts",
         json::array({
             {{"name", "cce4long-config"}, {"mountPath", kConfigMountPath}, {"readOnly", true}},
             {{"name", "samples"}, {"mountPath", kSamplesFetchDir}},
             {{"name", "tmp"}, {"mountPath", "/tmp"}},
         })},
    }});
  }
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", Metadata(PodName(spec.id), spec, o)},
              {"spec", pod_spec}};
  return pod;
}

Status ValidateManifest(const json& object) {
  if (!object.is_object()) return InvalidArgument("manifest: not a JSON object");
  if (!object.contains("apiVersion") || !object["apiVersion"].is_string()) {
    return InvalidArgument("manifest apiVersion: is required");
  }
  if (!object.contains("kind") || !object["kind"].is_string())
    return InvalidArgument("manifest kind: is required");
  const std::string api = object["apiVersion"];
  const std::string kind = object["kind"];
  const bool core = api == "v1" && (kind == "Pod" || kind == "Service" || kind == "Secret");
  const bool net = api == "networking.k8s.io/v1" && kind == "NetworkPolicy";
  if (!core && !net) {
    return InvalidArgument(
        "manifest apiVersion/kind: " + api + " " + kind +
        " is not one of v1 Pod, v1 Service, v1 Secret, networking.k8s.io/v1 NetworkPolicy");
  }
  const Validator v(kind);
  if (kind == "Secret") {
    RETURN_IF_ERROR(v.Known(object, "", {"apiVersion", "kind", "metadata", "type", "data"}));
  } else {
    RETURN_IF_ERROR(v.Known(object, "", {"apiVersion", "kind", "metadata", "spec"}));
  }
  RETURN_IF_ERROR(v.Metadata(object, kind == "Service"));
  if (kind == "Secret") return ValidateSecret(v, object);
  if (!object.contains("spec")) return v.Fail("spec", "is required");
  if (kind == "Pod") return ValidatePod(v, object["spec"]);
  if (kind == "Service") return ValidateService(v, object["spec"]);
  return ValidateNetworkPolicy(v, object["spec"]);
}

}  // namespace cce::explore::k8s
