#include "cli/plane_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "base/fd.h"
#include "http/client.h"

namespace cce::cli {

namespace fs = std::filesystem;
using nlohmann::json;

std::string ClientConfigPath() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg != nullptr && *xdg != '\0') return std::string(xdg) + "/cce/config.yaml";
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.config/cce/config.yaml";
}

namespace {

Status ParseTrust(const std::string& where, const YAML::Node& n, PlaneTrust* t) {
  if (!n.IsMap()) return InvalidArgument(where + ": expected a map");
  for (const auto& kv : n) {
    const std::string k = kv.first.Scalar();
    const std::string field = where + "." + k;
    if (k == "public_key") {
      t->public_key = kv.second.Scalar();
    } else if (k == "audit_hash") {
      t->audit_hash = kv.second.Scalar();
    } else if (k == "rentals_hash") {
      t->rentals_hash = kv.second.Scalar();
    } else if (k == "audit_seq" || k == "rentals_seq") {
      int64_t v = 0;
      if (!YAML::convert<int64_t>::decode(kv.second, v) || v < 0) {
        return InvalidArgument(field + ": expected a non-negative integer");
      }
      (k == "audit_seq" ? t->audit_seq : t->rentals_seq) = v;
    } else {
      return InvalidArgument(field + ": unknown field");
    }
  }
  return Status::Ok();
}

// The file alone, no environment; a missing file is an empty config.
StatusOr<ClientConfig> ReadConfigFile(const std::string& path) {
  ClientConfig c;
  if (!fs::exists(path)) return c;
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 20));
  try {
    YAML::Node n = YAML::Load(text);
    for (const auto& kv : n) {
      std::string k = kv.first.Scalar();
      if (k == "plane_url") {
        c.plane_url = kv.second.Scalar();
      } else if (k == "token") {
        c.token = kv.second.Scalar();
      } else if (k == "ca_file") {
        c.ca_file = kv.second.Scalar();
      } else if (k == "planes") {
        if (!kv.second.IsMap()) return InvalidArgument(path + ": planes: expected a map");
        for (const auto& p : kv.second) {
          const std::string url = p.first.Scalar();
          RETURN_IF_ERROR(ParseTrust(path + ": planes." + url, p.second, &c.planes[url]));
        }
      } else {
        std::string m = path;
        m += ": ";
        m += k;
        m += ": unknown field";
        return InvalidArgument(m);
      }
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return c;
}

Status WriteConfigFile(const std::string& path, const ClientConfig& c) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return InvalidArgument(path + ": " + ec.message());
  YAML::Emitter out;
  out << YAML::BeginMap;
  if (!c.plane_url.empty()) out << YAML::Key << "plane_url" << YAML::Value << c.plane_url;
  if (!c.token.empty()) out << YAML::Key << "token" << YAML::Value << c.token;
  if (!c.ca_file.empty()) out << YAML::Key << "ca_file" << YAML::Value << c.ca_file;
  if (!c.planes.empty()) {
    out << YAML::Key << "planes" << YAML::Value << YAML::BeginMap;
    for (const auto& [url, t] : c.planes) {
      out << YAML::Key << url << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "public_key" << YAML::Value << t.public_key;
      out << YAML::Key << "audit_seq" << YAML::Value << t.audit_seq;
      out << YAML::Key << "audit_hash" << YAML::Value << t.audit_hash;
      out << YAML::Key << "rentals_seq" << YAML::Value << t.rentals_seq;
      out << YAML::Key << "rentals_hash" << YAML::Value << t.rentals_hash;
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  std::string text =
      std::string("# cce client configuration (written by `cce login`)\n") + out.c_str() + "\n";
  return WriteFileAtomic(path, {reinterpret_cast<const uint8_t*>(text.data()), text.size()}, 0600);
}

}  // namespace

StatusOr<ClientConfig> LoadClientConfig() {
  ASSIGN_OR_RETURN(ClientConfig c, ReadConfigFile(ClientConfigPath()));
  if (const char* v = std::getenv("CCE_PLANE_URL")) c.plane_url = v;
  if (const char* v = std::getenv("CCE_TOKEN")) c.token = v;
  if (const char* v = std::getenv("CCE_CA_FILE")) c.ca_file = v;
  if (c.plane_url.empty() || c.token.empty() || c.ca_file.empty()) {
    return InvalidArgument(
        "not logged in: run `cce login --plane URL --token TOKEN --ca FILE` "
        "(or set CCE_PLANE_URL, CCE_TOKEN and CCE_CA_FILE)");
  }
  return c;
}

Status SaveClientConfig(const ClientConfig& c) {
  const std::string path = ClientConfigPath();
  ClientConfig out = c;
  // An unreadable old file has nothing to keep; the new one replaces it.
  if (auto old = ReadConfigFile(path); old.ok()) out.planes.merge(old->planes);
  return WriteConfigFile(path, out);
}

Status SavePlaneTrust(const std::string& plane_url, const PlaneTrust& trust) {
  const std::string path = ClientConfigPath();
  ASSIGN_OR_RETURN(ClientConfig c, ReadConfigFile(path));
  c.planes[plane_url] = trust;
  return WriteConfigFile(path, c);
}

struct PlaneClient::Impl {
  http::Client http;
  std::string token;

  // One request with the bearer token; transport failures come back as
  // http::Client words them ("cannot reach the plane at URL: ...").
  StatusOr<http::ClientResponse> Send(http::ClientRequest request) {
    request.headers.push_back({"Authorization", "Bearer " + token});
    return http.Send(request);
  }
};

PlaneClient::PlaneClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PlaneClient::PlaneClient(PlaneClient&&) noexcept = default;
PlaneClient& PlaneClient::operator=(PlaneClient&&) noexcept = default;
PlaneClient::~PlaneClient() = default;

StatusOr<PlaneClient> PlaneClient::Connect(const ClientConfig& config) {
  if (config.plane_url.rfind("https://", 0) != 0) {
    return InvalidArgument("plane URL '" + config.plane_url.substr(0, 80) +
                           "': expected https://HOST:PORT (the plane serves HTTPS only)");
  }
  if (!fs::exists(config.ca_file)) {
    return InvalidArgument("CA file '" + config.ca_file +
                           "' does not exist (expected the plane's CA certificate, "
                           "DATA_DIR/tls/ca.crt on the plane's host; check --ca or CCE_CA_FILE)");
  }
  if (fs::is_directory(config.ca_file)) {
    return InvalidArgument("CA file '" + config.ca_file +
                           "' is a directory; expected the plane's CA certificate file "
                           "(DATA_DIR/tls/ca.crt; check --ca or CCE_CA_FILE)");
  }
  http::ClientOptions options;
  options.base_url = config.plane_url;
  options.ca_file = config.ca_file;
  options.connect_timeout = std::chrono::seconds(10);
  // No whole-request limit (an output download takes as long as it takes);
  // a plane silent for a minute is given up on, as cpp-httplib's read
  // timeout did before.
  options.stall_timeout = std::chrono::seconds(60);
  ASSIGN_OR_RETURN(http::Client client, http::Client::Create(std::move(options)));
  return PlaneClient(std::make_unique<Impl>(Impl{std::move(client), config.token}));
}

namespace {

http::ClientRequest Request(std::string method, std::string path) {
  http::ClientRequest r;
  r.method = std::move(method);
  r.target = std::move(path);
  return r;
}

http::ClientRequest WithBody(std::string method, std::string path, std::string body,
                             std::string content_type) {
  http::ClientRequest r = Request(std::move(method), std::move(path));
  r.headers.push_back({"Content-Type", std::move(content_type)});
  r.body = std::move(body);
  return r;
}

// The plane's JSON error code names the Status code ("failed_precondition");
// the HTTP status is the fallback.
StatusCode CodeFor(int status, const json& body) {
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const std::string code = body["error"].value("code", "");
    if (code == "rate_limited") return StatusCode::kResourceExhausted;
    for (StatusCode c :
         {StatusCode::kInvalidArgument, StatusCode::kNotFound, StatusCode::kAlreadyExists,
          StatusCode::kPermissionDenied, StatusCode::kFailedPrecondition, StatusCode::kUnavailable,
          StatusCode::kDataLoss, StatusCode::kInternal, StatusCode::kIo,
          StatusCode::kUnauthenticated}) {
      std::string name(StatusCodeName(c));
      for (char& ch : name) ch = ch == ' ' ? '_' : ch;
      if (name == code) return c;
    }
  }
  switch (status) {
    case 400: return StatusCode::kInvalidArgument;
    case 401: return StatusCode::kUnauthenticated;
    case 403: return StatusCode::kPermissionDenied;
    case 404: return StatusCode::kNotFound;
    case 409: return StatusCode::kFailedPrecondition;
    case 413: return StatusCode::kInvalidArgument;
    case 429: return StatusCode::kResourceExhausted;
    default: return status > 429 ? StatusCode::kUnavailable : StatusCode::kInternal;
  }
}

// A path segment as the user typed it: %XX decoded, at most 64 bytes,
// control bytes as '?'.
std::string Shown(std::string_view segment) {
  std::string out;
  for (size_t i = 0; i < segment.size() && out.size() < 64; ++i) {
    char c = segment[i];
    if (c == '%' && i + 2 < segment.size() &&
        std::isxdigit(static_cast<unsigned char>(segment[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(segment[i + 2]))) {
      c = static_cast<char>(std::stoi(std::string(segment.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    }
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  return out;
}

}  // namespace

std::string PathSegment(std::string_view s) {
  std::string out = http::UrlEncode(s);
  // "." and ".." would be removed from the path (RFC 3986 dot segments).
  if (out == "." || out == "..") out = out == "." ? "%2E" : "%2E%2E";
  return out;
}

std::string NotFoundMessage(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  std::vector<std::string_view> seg;  // "/api/v1/jobs/x" -> api, v1, jobs, x
  for (size_t start = 1; start <= path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    seg.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  if (seg.size() < 4 || seg[0] != "api" || seg[1] != "v1") return "";
  const std::string id = Shown(seg[3]);
  if (seg[2] == "jobs") {
    return "no job '" + id + "' (job ids look like job-90fbd0285e3cbbb4; see `cce job list`)";
  }
  if (seg[2] == "datasets" || (seg[2] == "ledger" && seg.size() >= 5 && seg[3] == "datasets")) {
    const std::string name = seg[2] == "ledger" ? Shown(seg[4]) : id;
    return "no dataset '" + name + "' (see `cce dataset list`)";
  }
  if (seg[2] == "reviews") {
    return "no output held for review for job '" + id + "' (see `cce review list`)";
  }
  if (seg[2] == "explore" && seg[3] == "sessions" && seg.size() >= 5) {
    return "no Explore session '" + Shown(seg[4]) + "' (see `cce explore list`)";
  }
  if (seg[2] == "images" && seg[3] != "blobs") {
    // /api/v1/images/NAME.../tags/TAG
    std::string name;
    for (size_t i = 3; i < seg.size(); ++i) {
      if (seg[i] == "tags" && i + 1 < seg.size()) {
        return "no image '" + name + ":" + Shown(seg[i + 1]) + "' of yours (see `cce image list`)";
      }
      name += (name.empty() ? "" : "/") + Shown(seg[i]);
    }
  }
  return "";
}

namespace {

// `target` is the request's path: a 404 the plane's router gave ("GET
// /api/v1/jobs/nonsense: no such resource") is reworded as the object that
// does not exist ("no job 'nonsense' ..."), exit code unchanged.
Status ErrorFor(int status, const std::string& body_text, const std::string& target) {
  json body = json::parse(body_text, nullptr, /*allow_exceptions=*/false);
  std::string message = "HTTP " + std::to_string(status);
  if (!body.is_discarded() && body.contains("error") && body["error"].is_object()) {
    message = body["error"].value("message", message);
  }
  if (status == 404 && (message.ends_with("no such resource") || message.starts_with("HTTP "))) {
    if (std::string named = NotFoundMessage(target); !named.empty()) message = named;
  }
  return {CodeFor(status, body.is_discarded() ? json() : body), "plane: " + message};
}

StatusOr<json> Decode(const StatusOr<http::ClientResponse>& r, const std::string& target) {
  if (!r.ok()) return r.status();
  if (r->status >= 200 && r->status < 300) {
    json body = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return Internal("plane sent a response that is not JSON");
    return body;
  }
  return ErrorFor(r->status, r->body, target);
}

}  // namespace

StatusOr<json> PlaneClient::Get(const std::string& path) {
  return Decode(impl_->Send(Request("GET", path)), path);
}

StatusOr<json> PlaneClient::Post(const std::string& path, const json& body) {
  return Decode(impl_->Send(WithBody("POST", path, body.dump(), "application/json")), path);
}

StatusOr<json> PlaneClient::Put(const std::string& path, const std::string& body,
                                const std::string& content_type) {
  return Decode(impl_->Send(WithBody("PUT", path, body, content_type)), path);
}

StatusOr<json> PlaneClient::Delete(const std::string& path) {
  return Decode(impl_->Send(Request("DELETE", path)), path);
}

StatusOr<json> PlaneClient::PutStream(const std::string& path, const BodyReader& read,
                                      const std::string& content_type) {
  http::ClientRequest r = Request("PUT", path);
  r.headers.push_back({"Content-Type", content_type});
  r.body_reader = read;  // its error aborts the upload and is what Send returns
  return Decode(impl_->Send(std::move(r)), path);
}

StatusOr<json> PlaneClient::PostRaw(
    const std::string& path, const std::string& body, const std::string& content_type,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  http::ClientRequest r = WithBody("POST", path, body, content_type);
  for (const auto& [k, v] : headers) r.headers.push_back({k, v});
  return Decode(impl_->Send(std::move(r)), path);
}

Status PlaneClient::Download(const std::string& path, const BodySink& sink,
                             std::vector<std::pair<std::string, std::string>>* response_headers) {
  http::ClientRequest r = Request("GET", path);
  // Only a 2xx body reaches the sink; an error answer's JSON stays in
  // ClientResponse::body for the message. A sink error is what Send returns.
  r.body_sink = sink;
  ASSIGN_OR_RETURN(http::ClientResponse response, impl_->Send(std::move(r)));
  if (response_headers != nullptr) {
    for (http::Header& h : response.headers) {
      response_headers->emplace_back(std::move(h.name), std::move(h.value));
    }
  }
  if (response.status < 200 || response.status >= 300) {
    return ErrorFor(response.status, response.body, path);
  }
  return Status::Ok();
}

}  // namespace cce::cli
