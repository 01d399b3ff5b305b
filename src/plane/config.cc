#include "plane/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "base/fd.h"
#include "eth/eth.h"

namespace cce::plane {

std::string PlaneConfig::Path(const std::string& configured) const {
  if (!configured.empty() && configured.front() == '/') return configured;
  return data_dir + "/" + configured;
}

Status ParseListen(const std::string& listen, std::string* host, int* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) {
    return InvalidArgument("listen: '" + listen + "': expected HOST:PORT");
  }
  int p = 0;
  const char* begin = listen.data() + colon + 1;
  const char* end = listen.data() + listen.size();
  auto [ptr, ec] = std::from_chars(begin, end, p);
  if (ec != std::errc() || ptr != end || p < 0 || p > 65535) {
    return InvalidArgument("listen: '" + listen + "': port must be 0..65535");
  }
  *host = listen.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  *port = p;
  return Status::Ok();
}

namespace {

std::string Where(const std::string& file, const YAML::Node& node, const std::string& field) {
  const YAML::Mark m = node.Mark();
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": " +
         field;
}

// Walks a mapping, binding known keys to setters; anything else is an error.
class MapReader {
 public:
  MapReader(std::string file, std::string prefix)
      : file_(std::move(file)), prefix_(std::move(prefix)) {}

  void String(const std::string& key, std::string* out) {
    handlers_[key] = [this, key, out](const YAML::Node& v) -> Status {
      if (!v.IsScalar()) return Bad(v, key, "a string");
      *out = v.Scalar();
      return Status::Ok();
    };
  }
  void Int(const std::string& key, int64_t* out, int64_t min, int64_t max) {
    handlers_[key] = [this, key, out, min, max](const YAML::Node& v) -> Status {
      if (!v.IsScalar()) return Bad(v, key, "an integer");
      const std::string& s = v.Scalar();
      int64_t n = 0;
      auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      if (ec != std::errc() || ptr != s.data() + s.size() || n < min || n > max) {
        return Bad(v, key, "an integer in " + std::to_string(min) + ".." + std::to_string(max));
      }
      *out = n;
      return Status::Ok();
    };
  }
  void StringList(const std::string& key, std::vector<std::string>* out) {
    handlers_[key] = [this, key, out](const YAML::Node& v) -> Status {
      if (!v.IsSequence()) return Bad(v, key, "a list of strings");
      out->clear();
      for (const auto& item : v) {
        if (!item.IsScalar()) return Bad(item, key, "a list of strings");
        out->push_back(item.Scalar());
      }
      return Status::Ok();
    };
  }
  // A list whose items `read` checks (each item with its index).
  void List(const std::string& key, const std::function<Status(const YAML::Node&, size_t)>& read) {
    handlers_[key] = [this, key, read](const YAML::Node& v) -> Status {
      if (!v.IsSequence()) return Bad(v, key, "a list");
      for (size_t i = 0; i < v.size(); ++i) RETURN_IF_ERROR(read(v[i], i));
      return Status::Ok();
    };
  }
  void Map(const std::string& key, const std::function<Status(const YAML::Node&)>& read) {
    handlers_[key] = [this, key, read](const YAML::Node& v) -> Status {
      if (!v.IsMap()) return Bad(v, key, "a mapping");
      return read(v);
    };
  }
  Status Read(const YAML::Node& node) {
    if (!node.IsMap()) return InvalidArgument(Where(file_, node, prefix_) + ": expected a mapping");
    for (const auto& kv : node) {
      std::string key = kv.first.Scalar();
      auto it = handlers_.find(key);
      if (it == handlers_.end()) {
        return InvalidArgument(Where(file_, kv.first, prefix_ + key) + ": unknown field");
      }
      RETURN_IF_ERROR(it->second(kv.second));
    }
    return Status::Ok();
  }
  const std::string& file() const { return file_; }
  const std::string& prefix() const { return prefix_; }

 private:
  Status Bad(const YAML::Node& v, const std::string& key, const std::string& expected) {
    return InvalidArgument(Where(file_, v, prefix_ + key) + ": expected " + expected);
  }
  std::string file_;
  std::string prefix_;
  std::map<std::string, std::function<Status(const YAML::Node&)>> handlers_;
};

Status OneOf(const std::string& file, const std::string& field, const std::string& value,
             std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (value == a) return Status::Ok();
    list += list.empty() ? std::string("'") + a + "'" : std::string(", '") + a + "'";
  }
  return InvalidArgument(file + ": " + field + ": '" + value + "': expected one of " + list);
}

// An allowed dataset root made absolute, without "." or ".." parts, empty
// parts or a trailing '/': the key broker compares locations against it
// textually (src/plane/dataset_location.cc).
Status NormalizeDatasetRoot(const PlaneConfig& c, std::string* root) {
  const std::string given = *root;
  auto bad = [&](const std::string& why) {
    return InvalidArgument("datasets.allowed_roots: '" + given + "': " + why);
  };
  if (given.empty()) return bad("expected a directory path");
  std::string path = c.Path(given);
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path == "/") return bad("the whole file system cannot be a dataset root");
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part = std::string_view(path).substr(start, end - start);
    if (part.empty() || part == "." || part == "..") {
      return bad("expected a path without empty, '.' or '..' parts");
    }
    start = end + 1;
  }
  for (char ch : path) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) return bad("control character");
  }
  *root = path;
  return Status::Ok();
}

// jobs.script_bases[i]: a name [a-z0-9-]{1,63} used once, an image
// reference in the job spec's syntax, a non-empty command whose program is
// not empty, an absolute normalized workdir other than "/".
Status CheckScriptBases(const std::string& file, const std::vector<ScriptBase>& bases) {
  std::set<std::string> names;
  for (size_t i = 0; i < bases.size(); ++i) {
    const ScriptBase& b = bases[i];
    const std::string field = file + ": jobs.script_bases[" + std::to_string(i) + "].";
    const bool name_ok = !b.name.empty() && b.name.size() <= 63 &&
                         std::all_of(b.name.begin(), b.name.end(), [](char ch) {
                           return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
                         });
    if (!name_ok) {
      return InvalidArgument(field + "name: '" + b.name + "': expected [a-z0-9-]{1,63}");
    }
    if (!names.insert(b.name).second) {
      return InvalidArgument(field + "name: '" + b.name + "' is used by an earlier base");
    }
    if (b.image.empty() || b.image.size() > 300 ||
        b.image.find_first_of(" \t\r\n@") != std::string::npos) {
      return InvalidArgument(field + "image: expected NAME:TAG or sha256:<hex> of a public image");
    }
    if (b.command.empty() || b.command.front().empty()) {
      return InvalidArgument(field +
                             "command: expected a non-empty list whose first entry (the "
                             "program) is not empty");
    }
    bool workdir_ok = b.workdir.size() > 1 && b.workdir.size() <= 150 && b.workdir.front() == '/' &&
                      b.workdir.back() != '/' && b.workdir.find("//") == std::string::npos &&
                      b.workdir.find("/./") == std::string::npos &&
                      b.workdir.find("/../") == std::string::npos && !b.workdir.ends_with("/.") &&
                      !b.workdir.ends_with("/..");
    for (char ch : b.workdir) {
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) workdir_ok = false;
    }
    if (!workdir_ok) {
      return InvalidArgument(
          field + "workdir: '" + b.workdir +
          "': expected an absolute, normalized directory other than / (at most 150 bytes)");
    }
  }
  return Status::Ok();
}

// ledger.*: the backend is known; ethereum names its node (an http(s) URL),
// its chain and its contract (an address, EIP-55 checked when mixed case).
Status CheckLedger(const std::string& file, const PlaneConfig& c) {
  RETURN_IF_ERROR(OneOf(file, "ledger.backend", c.ledger_backend, {"embedded", "ethereum"}));
  if (c.ledger_backend != "ethereum") return Status::Ok();
  if (c.ledger_rpc.empty()) {
    return InvalidArgument(file +
                           ": ledger.rpc: required with backend ethereum (the node's "
                           "JSON-RPC URL, http:// or https://)");
  }
  if ((c.ledger_rpc.rfind("http://", 0) != 0 && c.ledger_rpc.rfind("https://", 0) != 0) ||
      c.ledger_rpc.find_first_of(" \t\r\n\"'<>") != std::string::npos) {
    return InvalidArgument(file + ": ledger.rpc: '" + c.ledger_rpc +
                           "': expected an http:// or https:// URL");
  }
  if (c.ledger_chain_id == 0) {
    return InvalidArgument(file + ": ledger.chain_id: required with backend ethereum");
  }
  if (c.ledger_contract.empty()) {
    return InvalidArgument(file +
                           ": ledger.contract: required with backend ethereum (the "
                           "RentalMarket address `cce-plane ledger deploy` printed)");
  }
  RETURN_IF_ERROR(eth::ParseAddress(c.ledger_contract, file + ": ledger.contract").status());
  return Status::Ok();
}

}  // namespace

StatusOr<PlaneConfig> LoadConfig(const std::string& data_dir) {
  PlaneConfig c;
  // Absolute, so the paths resolved against it (the agent socket, which must
  // be absolute, and those handed to agents) do not depend on the cwd:
  // `cce-plane serve --data-dir plane` works as README.md shows.
  c.data_dir = data_dir;
  if (!data_dir.empty() && data_dir.front() != '/') {
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(data_dir, ec);
    if (!ec) c.data_dir = abs.lexically_normal().string();
  }
  std::string file = data_dir + "/plane.yaml";
  if (::access(file.c_str(), F_OK) != 0 && errno == ENOENT) {
    std::error_code ec;
    if (data_dir.empty()) return InvalidArgument("--data-dir DIR is required");
    if (!std::filesystem::is_directory(data_dir, ec)) {
      return NotFound(data_dir + ": no such directory; create a plane's data directory with "
                                 "`cce-plane init --data-dir " + data_dir + "`");
    }
    return NotFound(data_dir + " is not a plane's data directory (it has no plane.yaml); "
                               "`cce-plane init --data-dir DIR` creates one");
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(file, size_t{1} << 20));
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  MapReader top(file, "");
  top.String("listen", &c.listen);
  top.Map("tls", [&](const YAML::Node& n) {
    MapReader r(file, "tls.");
    r.String("cert_file", &c.tls_cert_file);
    r.String("key_file", &c.tls_key_file);
    r.String("ca_file", &c.tls_ca_file);
    return r.Read(n);
  });
  top.String("signing_key_file", &c.signing_key_file);
  top.Map("master_key", [&](const YAML::Node& n) {
    MapReader r(file, "master_key.");
    r.String("backend", &c.master_key_backend);
    r.String("file", &c.master_key_file);
    return r.Read(n);
  });
  top.Map("database", [&](const YAML::Node& n) {
    MapReader r(file, "database.");
    r.String("backend", &c.database_backend);
    r.String("path", &c.database_path);
    return r.Read(n);
  });
  top.Map("log", [&](const YAML::Node& n) {
    MapReader r(file, "log.");
    r.String("format", &c.log_format);
    r.String("level", &c.log_level);
    return r.Read(n);
  });
  top.Map("limits", [&](const YAML::Node& n) {
    MapReader r(file, "limits.");
    r.Int("max_body_bytes", &c.max_body_bytes, 1024, int64_t{1} << 30);
    r.Int("http_threads", &c.http_threads, 2, 4096);
    r.Int("max_connections", &c.max_connections, 16, 1000000);
    r.Int("max_connections_per_address", &c.max_connections_per_address, 1, 1000000);
    r.Int("max_concurrent_downloads", &c.max_concurrent_downloads, 1, 10000);
    r.Int("max_output_bytes", &c.max_output_bytes, 0, int64_t{1} << 40);
    return r.Read(n);
  });
  top.Int("credential_ttl_seconds", &c.credential_ttl_seconds, 60, int64_t{30} * 86400);
  top.Int("audit_checkpoint_every", &c.audit_checkpoint_every, 1, 1000000);
  top.String("audit_checkpoint_file", &c.audit_checkpoint_file);
  top.String("agent_socket", &c.agent_socket);
  top.Map("provisioner", [&](const YAML::Node& n) {
    MapReader r(file, "provisioner.");
    r.String("backend", &c.provisioner_backend);
    r.Map("local", [&](const YAML::Node& l) {
      MapReader lr(file, "provisioner.local.");
      lr.String("agent_path", &c.local_agent_path);
      lr.String("work_root", &c.local_work_root);
      lr.Int("tmpfs_mib", &c.local_tmpfs_mib, 16, int64_t{1} << 20);
      lr.Int("memory_mib", &c.local_memory_mib, 0, int64_t{1} << 30);
      lr.Int("pids_max", &c.local_pids_max, 0, int64_t{1} << 22);
      return lr.Read(l);
    });
    return r.Read(n);
  });
  top.Map("attestation", [&](const YAML::Node& n) {
    MapReader r(file, "attestation.");
    r.String("policy_file", &c.attestation_policy_file);
    r.String("collateral_dir", &c.attestation_collateral_dir);
    r.String("simulation_root_file", &c.attestation_simulation_root_file);
    r.Int("nonce_ttl_seconds", &c.kbs_nonce_ttl_seconds, 5, 3600);
    r.Int("session_ttl_seconds", &c.kbs_session_ttl_seconds, 10, 86400);
    r.Int("max_nonces_per_credential", &c.kbs_max_nonces_per_credential, 1, 1000);
    r.Int("max_nonces", &c.kbs_max_nonces, 16, 1'000'000);
    return r.Read(n);
  });
  top.Map("datasets", [&](const YAML::Node& n) {
    MapReader r(file, "datasets.");
    r.StringList("allowed_roots", &c.dataset_allowed_roots);
    r.Int("max_manifest_bytes", &c.dataset_max_manifest_bytes, 4096, int64_t{256} << 20);
    return r.Read(n);
  });
  top.Map("images", [&](const YAML::Node& n) {
    MapReader r(file, "images.");
    r.Int("quota_bytes", &c.image_quota_bytes, 0, int64_t{1} << 50);
    return r.Read(n);
  });
  top.Map("review", [&](const YAML::Node& n) {
    MapReader r(file, "review.");
    r.Int("required_approvals", &c.review_required_approvals, 1, 2);
    return r.Read(n);
  });
  top.Map("gate", [&](const YAML::Node& n) {
    MapReader r(file, "gate.");
    r.String("policy_file", &c.gate_policy_file);
    return r.Read(n);
  });
  top.Map("jobs", [&](const YAML::Node& n) {
    MapReader r(file, "jobs.");
    r.List("script_bases", [&](const YAML::Node& item, size_t i) {
      ScriptBase b;
      MapReader br(file, "jobs.script_bases[" + std::to_string(i) + "].");
      br.String("name", &b.name);
      br.String("image", &b.image);
      br.StringList("command", &b.command);
      br.String("workdir", &b.workdir);
      RETURN_IF_ERROR(br.Read(item));
      c.script_bases.push_back(std::move(b));
      return Status::Ok();
    });
    return r.Read(n);
  });
  top.Map("explore", [&](const YAML::Node& n) {
    MapReader r(file, "explore.");
    r.String("backend", &c.explore_backend);
    r.Int("idle_timeout_seconds", &c.explore_idle_timeout_seconds, 60, int64_t{7} * 86400);
    r.Int("max_idle_timeout_seconds", &c.explore_max_idle_timeout_seconds, 60, int64_t{7} * 86400);
    r.Int("max_sessions_per_user", &c.explore_max_sessions_per_user, 1, 100);
    r.Int("cull_interval_seconds", &c.explore_cull_interval_seconds, 1, 3600);
    r.String("plane_url", &c.explore_plane_url);
    r.Int("memory_mib", &c.explore_memory_mib, 256, int64_t{1} << 20);
    r.Int("cpus", &c.explore_cpus, 1, 256);
    r.Int("max_sample_bytes", &c.explore_max_sample_bytes, 0, int64_t{1} << 40);
    // The backends' own keys: explore.local.* (local backend) ...
    r.Map("local", [&](const YAML::Node& l) {
      MapReader lr(file, "explore.local.");
      lr.String("runc", &c.explore_local_runc);
      lr.String("runc_root", &c.explore_local_runc_root);
      lr.String("work_root", &c.explore_local_work_root);
      lr.Int("uid_base", &c.explore_local_uid_base, 1000, 2147483647);
      lr.String("sdk_dir", &c.explore_local_sdk_dir);
      lr.Int("start_timeout_seconds", &c.explore_local_start_timeout_seconds, 1, 3600);
      return lr.Read(l);
    });
    // ... and explore.kubernetes.* (kubernetes backend).
    r.Map("kubernetes", [&](const YAML::Node& k) {
      MapReader kr(file, "explore.kubernetes.");
      kr.String("kubeconfig", &c.explore_kubernetes_kubeconfig);
      kr.String("context", &c.explore_kubernetes_context);
      kr.String("api_server", &c.explore_kubernetes_api_server);
      kr.String("namespace", &c.explore_kubernetes_namespace);
      kr.String("image", &c.explore_kubernetes_image);
      kr.String("fetcher_image", &c.explore_kubernetes_fetcher_image);
      kr.String("sdk_config_map", &c.explore_kubernetes_sdk_config_map);
      kr.String("runtime_class", &c.explore_kubernetes_runtime_class);
      kr.String("plane_namespace", &c.explore_kubernetes_plane_namespace);
      kr.Map("plane_pod_labels", [&](const YAML::Node& labels) -> Status {
        c.explore_kubernetes_plane_pod_labels.clear();
        for (const auto& kv : labels) {
          if (!kv.second.IsScalar()) {
            return InvalidArgument(Where(file, kv.second,
                                         "explore.kubernetes.plane_pod_labels." + kv.first.Scalar()) +
                                   ": expected a string");
          }
          c.explore_kubernetes_plane_pod_labels.emplace_back(kv.first.Scalar(), kv.second.Scalar());
        }
        return Status::Ok();
      });
      kr.Int("plane_api_port", &c.explore_kubernetes_plane_api_port, 1, 65535);
      kr.StringList("extra_denied_cidrs", &c.explore_kubernetes_extra_denied_cidrs);
      kr.String("cpu_request", &c.explore_kubernetes_cpu_request);
      kr.String("memory_request", &c.explore_kubernetes_memory_request);
      kr.Int("request_timeout_seconds", &c.explore_kubernetes_request_timeout_seconds, 1, 600);
      return kr.Read(k);
    });
    return r.Read(n);
  });
  top.Map("ledger", [&](const YAML::Node& n) {
    MapReader r(file, "ledger.");
    r.String("backend", &c.ledger_backend);
    r.String("rpc", &c.ledger_rpc);
    r.Int("chain_id", &c.ledger_chain_id, 1, std::numeric_limits<int64_t>::max());
    r.String("contract", &c.ledger_contract);
    r.Int("start_block", &c.ledger_start_block, 0, std::numeric_limits<int64_t>::max());
    r.Int("confirmations", &c.ledger_confirmations, 1, 10000);
    r.Int("poll_seconds", &c.ledger_poll_seconds, 1, 3600);
    r.String("rpc_ca_file", &c.ledger_rpc_ca_file);
    return r.Read(n);
  });
  RETURN_IF_ERROR(top.Read(root));
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(ParseListen(c.listen, &host, &port).WithContext(file));
  RETURN_IF_ERROR(
      OneOf(file, "explore.backend", c.explore_backend, {"local", "kubernetes", "none"}));
  if (c.explore_idle_timeout_seconds > c.explore_max_idle_timeout_seconds) {
    return InvalidArgument(
        file + ": explore.idle_timeout_seconds: " + std::to_string(c.explore_idle_timeout_seconds) +
        " is above explore.max_idle_timeout_seconds (" +
        std::to_string(c.explore_max_idle_timeout_seconds) + ")");
  }
  if (!c.explore_plane_url.empty() &&
      (c.explore_plane_url.rfind("https://", 0) != 0 || c.explore_plane_url.back() == '/' ||
       c.explore_plane_url.find_first_of(" \t\r\n\"'<>") != std::string::npos)) {
    return InvalidArgument(file + ": explore.plane_url: '" + c.explore_plane_url +
                           "': expected https://HOST[:PORT] without a trailing '/'");
  }
  RETURN_IF_ERROR(OneOf(file, "master_key.backend", c.master_key_backend, {"file"}));
  RETURN_IF_ERROR(OneOf(file, "database.backend", c.database_backend, {"sqlite"}));
  RETURN_IF_ERROR(OneOf(file, "log.format", c.log_format, {"json", "text"}));
  RETURN_IF_ERROR(OneOf(file, "log.level", c.log_level, {"debug", "info", "warn", "error"}));
  RETURN_IF_ERROR(
      OneOf(file, "provisioner.backend", c.provisioner_backend, {"none", "local", "fake"}));
  if (!c.local_agent_path.empty() && c.local_agent_path.front() != '/') {
    return InvalidArgument(file + ": provisioner.local.agent_path: '" + c.local_agent_path +
                           "': expected an absolute path (or none: next to cce-plane)");
  }
  if (c.local_work_root.size() < 2 || c.local_work_root.front() != '/' ||
      c.local_work_root.back() == '/') {
    return InvalidArgument(file + ": provisioner.local.work_root: '" + c.local_work_root +
                           "': expected an absolute directory path without a trailing '/'");
  }
  if (c.agent_socket.empty() || c.agent_socket.back() == '/' ||
      c.Path(c.agent_socket).size() > 100) {
    return InvalidArgument(file + ": agent_socket: '" + c.agent_socket +
                           "': expected a file path of at most 100 bytes once resolved");
  }
  if (c.audit_checkpoint_file.empty() || c.audit_checkpoint_file.back() == '/') {
    return InvalidArgument(file + ": audit_checkpoint_file: expected a file path, got '" +
                           c.audit_checkpoint_file + "'");
  }
  for (std::string& dataset_root : c.dataset_allowed_roots) {
    RETURN_IF_ERROR(NormalizeDatasetRoot(c, &dataset_root).WithContext(file));
  }
  RETURN_IF_ERROR(CheckScriptBases(file, c.script_bases));
  RETURN_IF_ERROR(CheckLedger(file, c));
  return c;
}

namespace {
// The ledger section. Embedded (the default): a comment only, so that
// `cce-plane ledger deploy` can add the section without replacing one.
std::string RenderLedger(const PlaneConfig& c) {
  std::string out =
      "# Rentals ledger (docs/ledger.md): embedded (signed records in the plane's\n"
      "# store; the default) or ethereum (a RentalMarket contract read over JSON-RPC;\n"
      "# `cce-plane ledger deploy` writes this section).\n";
  if (c.ledger_backend != "ethereum") {
    return out +
           "# ledger: {backend: ethereum, rpc: URL, chain_id: N, contract: 0x..., "
           "start_block: N, confirmations: 12, poll_seconds: 5}\n";
  }
  return out + "ledger:\n  backend: ethereum\n  rpc: " + nlohmann::json(c.ledger_rpc).dump() +
         "\n  chain_id: " + std::to_string(c.ledger_chain_id) + "\n  contract: \"" +
         c.ledger_contract + "\"" + "\n  start_block: " + std::to_string(c.ledger_start_block) +
         "   # the deployment block: indexing starts here" +
         "\n  confirmations: " + std::to_string(c.ledger_confirmations) +
         "   # a rental counts once its block is this deep" +
         "\n  poll_seconds: " + std::to_string(c.ledger_poll_seconds) +
         "\n  rpc_ca_file: " + nlohmann::json(c.ledger_rpc_ca_file).dump() +
         "   # empty: the system's CAs for an https rpc\n";
}
}  // namespace

std::string RenderConfig(const PlaneConfig& c) {
  return "# cce-plane configuration. Reference: docs/plane.md (\"Configuration\").\n"
         "# Relative paths are relative to this file's directory (the data directory).\n"
         "\n"
         "# HTTPS listen address (HOST:PORT). TLS is always on.\n"
         "listen: " +
         c.listen +
         "\n"
         "tls:\n"
         "  cert_file: " +
         c.tls_cert_file +
         "    # server certificate (PEM)\n"
         "  key_file: " +
         c.tls_key_file +
         "      # its private key (PEM, mode 0600)\n"
         "  ca_file: " +
         c.tls_ca_file +
         "        # CA that clients pin (`cce login --ca`)\n"
         "# Ed25519 key signing job credentials, rental records and audit checkpoints.\n"
         "signing_key_file: " +
         c.signing_key_file +
         "\n"
         "# Seals secrets at rest (dataset keys, outputs). Backends: file (PKCS#11 planned).\n"
         "master_key:\n"
         "  backend: " +
         c.master_key_backend +
         "\n"
         "  file: " +
         c.master_key_file +
         "\n"
         "database:\n"
         "  backend: " +
         c.database_backend +
         "   # sqlite (postgresql planned)\n"
         "  path: " +
         c.database_path +
         "\n"
         "log:\n"
         "  format: " +
         c.log_format +
         "   # json (JSON lines on stderr) or text\n"
         "  level: " +
         c.log_level +
         "     # debug, info, warn, error\n"
         "limits:\n"
         "  max_body_bytes: " +
         std::to_string(c.max_body_bytes) +
         "   # larger requests get 413\n"
         "  http_threads: " +
         std::to_string(c.http_threads) +
         "       # worker threads running requests; connections are event-driven\n"
         "  max_connections: " +
         std::to_string(c.max_connections) +
         "   # in total; more are closed at once\n"
         "  max_connections_per_address: " +
         std::to_string(c.max_connections_per_address) +
         "   # from one client address\n"
         "  max_concurrent_downloads: " +
         std::to_string(c.max_concurrent_downloads) +
         "   # job outputs streaming at once; more get 503 + Retry-After\n"
         "  max_output_bytes: " +
         std::to_string(c.max_output_bytes) +
         "   # the largest output bundle an agent may submit\n"
         "# Lifetime of a job credential (the agent must attest within it).\n"
         "credential_ttl_seconds: " +
         std::to_string(c.credential_ttl_seconds) +
         "\n"
         "# Sign an audit checkpoint after this many entries (and at shutdown).\n"
         "audit_checkpoint_every: " +
         std::to_string(c.audit_checkpoint_every) +
         "\n"
         "# Every signed checkpoint is also appended to this file, outside the database;\n"
         "# keep a copy elsewhere (docs/store.md).\n"
         "audit_checkpoint_file: " +
         c.audit_checkpoint_file +
         "\n"
         "# The plane's Unix socket for agents of the local provisioner (same TLS API).\n"
         "agent_socket: " +
         c.agent_socket +
         "\n"
         "# Who starts a job's confidential VM: none (jobs wait for an agent), local\n"
         "# (cce-agent in fresh namespaces, as root; docs/provisioners.md) or fake\n"
         "# (an in-process stand-in for tests and demos; never for real data).\n"
         "provisioner:\n"
         "  backend: " +
         c.provisioner_backend +
         "\n"
         "  local:\n"
         "    agent_path: \"" +
         c.local_agent_path +
         "\"   # empty: cce-agent next to cce-plane\n"
         "    work_root: " +
         c.local_work_root +
         "   # each job's tmpfs work directory (in its own mount namespace)\n"
         "    tmpfs_mib: " +
         std::to_string(c.local_tmpfs_mib) +
         "\n"
         "    memory_mib: " +
         std::to_string(c.local_memory_mib) +
         "   # platform cgroup: agent, DecryptFS, runc (0: no limit)\n"
         "    pids_max: " +
         std::to_string(c.local_pids_max) +
         "\n"
         "# Key broker: which TDX quotes may receive dataset keys (docs/attestation.md).\n"
         "attestation:\n"
         "  policy_file: " +
         c.attestation_policy_file +
         "           # absent: UpToDate TCB only, no simulation\n"
         "  collateral_dir: " +
         c.attestation_collateral_dir +
         "     # filled by `cce-plane collateral import`\n"
         "  simulation_root_file: " +
         c.attestation_simulation_root_file +
         "  # dev root of the simulated TEE\n"
         "  nonce_ttl_seconds: " +
         std::to_string(c.kbs_nonce_ttl_seconds) +
         "    # POST /kbs/v0/auth nonces\n"
         "  session_ttl_seconds: " +
         std::to_string(c.kbs_session_ttl_seconds) +
         "  # sessions returned by /kbs/v0/attest\n"
         "  max_nonces_per_credential: " +
         std::to_string(c.kbs_max_nonces_per_credential) +
         "  # unused, unexpired nonces one credential may hold\n"
         "  max_nonces: " +
         std::to_string(c.kbs_max_nonces) +
         "  # all unused nonces held at once (in memory, ~300 bytes each)\n"
         "# Registered datasets. A file:// location must lie under one of these\n"
         "# directories (relative to the data directory unless absolute; [] refuses\n"
         "# every file:// location). Symlinks and '..' below a root are refused.\n"
         "datasets:\n"
         "  allowed_roots: [" +
         [&c] {
           std::string list;
           for (const auto& r : c.dataset_allowed_roots) {
             list += (list.empty() ? "\"" : ", \"") + r + "\"";
           }
           return list;
         }() +
         "]\n"
         "  max_manifest_bytes: " +
         std::to_string(c.dataset_max_manifest_bytes) +
         "  # larger manifest.cce files are refused\n" +
         "# Container images (docs/images.md).\n"
         "images:\n"
         "  quota_bytes: " +
         std::to_string(c.image_quota_bytes) + "  # image blobs one user may store\n" +
         "# Review of held outputs (docs/review.md).\n"
         "review:\n"
         "  required_approvals: " +
         std::to_string(c.review_required_approvals) +
         "  # distinct reviewers' approvals that release a held output (1 or 2)\n"
         "# The Output Gate (docs/gate.md): a policy YAML file; empty for the defaults.\n"
         "gate:\n"
         "  policy_file: \"" +
         c.gate_policy_file + "\"\n" +
         "# Script jobs (`cce job submit --script`, docs/explore/script-jobs.md): curated\n"
         "# base images, each a public (library/) image an operator pushed, e.g.\n"
         "#   - {name: python-data, image: \"library/python-data:3.11\",\n"
         "#      command: [\"/usr/bin/python3\"]}\n"
         "jobs:\n"
         "  script_bases: [" +
         [&c] {
           std::string list;
           for (const auto& b : c.script_bases) {
             nlohmann::json cmd = b.command;
             list += std::string(list.empty() ? "" : ", ") +
                     "{name: " + nlohmann::json(b.name).dump() +
                     ", image: " + nlohmann::json(b.image).dump() + ", command: " + cmd.dump() +
                     ", workdir: " + nlohmann::json(b.workdir).dump() + "}";
           }
           return list;
         }() +
         "]\n" +
         "# Explore sessions (docs/explore/sessions.md): Jupyter over rented datasets'\n"
         "# samples. backend: local | kubernetes | none (sessions refused).\n"
         "explore:\n"
         "  backend: " +
         c.explore_backend + "\n" +
         "  idle_timeout_seconds: " + std::to_string(c.explore_idle_timeout_seconds) +
         "  # default idle timeout of a session\n" +
         "  max_idle_timeout_seconds: " + std::to_string(c.explore_max_idle_timeout_seconds) +
         "  # the most a consumer may ask for\n" +
         "  max_sessions_per_user: " + std::to_string(c.explore_max_sessions_per_user) + "\n" +
         "  cull_interval_seconds: " + std::to_string(c.explore_cull_interval_seconds) + "\n" +
         "  max_sample_bytes: " + std::to_string(c.explore_max_sample_bytes) +
         "  # the most one published dataset sample may hold\n" + "  plane_url: \"" +
         c.explore_plane_url + "\"  # empty: https://<listen>\n" + RenderLedger(c);
}

}  // namespace cce::plane
