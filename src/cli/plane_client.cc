#include "cli/plane_client.h"

#include <fcntl.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "base/fd.h"

namespace cce::cli {

namespace fs = std::filesystem;
using nlohmann::json;

std::string ClientConfigPath() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg != nullptr && *xdg != '\0') return std::string(xdg) + "/cce/config.yaml";
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.config/cce/config.yaml";
}

StatusOr<ClientConfig> LoadClientConfig() {
  ClientConfig c;
  std::string path = ClientConfigPath();
  if (fs::exists(path)) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 16));
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
  }
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
  std::string path = ClientConfigPath();
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return InvalidArgument(path + ": " + ec.message());
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "plane_url" << YAML::Value << c.plane_url << YAML::Key
      << "token" << YAML::Value << c.token << YAML::Key << "ca_file" << YAML::Value << c.ca_file
      << YAML::EndMap;
  std::string text =
      std::string("# cce client configuration (written by `cce login`)\n") + out.c_str() + "\n";
  return WriteFileAtomic(path, {reinterpret_cast<const uint8_t*>(text.data()), text.size()}, 0600);
}

struct PlaneClient::Impl {
  std::string url;
  std::string token;
  std::unique_ptr<httplib::Client> http;
};

PlaneClient::PlaneClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PlaneClient::PlaneClient(PlaneClient&&) noexcept = default;
PlaneClient& PlaneClient::operator=(PlaneClient&&) noexcept = default;
PlaneClient::~PlaneClient() = default;

StatusOr<PlaneClient> PlaneClient::Connect(const ClientConfig& config) {
  if (config.plane_url.rfind("https://", 0) != 0) {
    return InvalidArgument("plane URL '" + config.plane_url + "': expected https://HOST:PORT");
  }
  if (!fs::exists(config.ca_file)) {
    return InvalidArgument("CA file '" + config.ca_file + "' does not exist");
  }
  auto impl = std::make_unique<Impl>();
  impl->url = config.plane_url;
  impl->token = config.token;
  impl->http = std::make_unique<httplib::Client>(config.plane_url);
  impl->http->set_ca_cert_path(config.ca_file.c_str());
  impl->http->enable_server_certificate_verification(true);
  impl->http->set_connection_timeout(10);
  impl->http->set_read_timeout(60);
  impl->http->set_keep_alive(true);
  impl->http->set_tcp_nodelay(true);  // else Nagle + delayed ACK: ~40 ms per request
  return PlaneClient(std::move(impl));
}

namespace {

// The plane's JSON error code names the Status code ("failed_precondition");
// the HTTP status is the fallback.
StatusCode CodeFor(int status, const json& body) {
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const std::string code = body["error"].value("code", "");
    for (StatusCode c :
         {StatusCode::kInvalidArgument, StatusCode::kNotFound, StatusCode::kAlreadyExists,
          StatusCode::kPermissionDenied, StatusCode::kFailedPrecondition, StatusCode::kUnavailable,
          StatusCode::kDataLoss, StatusCode::kInternal, StatusCode::kIo}) {
      std::string name(StatusCodeName(c));
      for (char& ch : name) ch = ch == ' ' ? '_' : ch;
      if (name == code) return c;
    }
  }
  switch (status) {
    case 400: return StatusCode::kInvalidArgument;
    case 401:
    case 403: return StatusCode::kPermissionDenied;
    case 404: return StatusCode::kNotFound;
    case 409: return StatusCode::kFailedPrecondition;
    case 413: return StatusCode::kInvalidArgument;
    default: return status >= 429 ? StatusCode::kUnavailable : StatusCode::kInternal;
  }
}

Status ErrorFor(int status, const std::string& body_text) {
  json body = json::parse(body_text, nullptr, /*allow_exceptions=*/false);
  std::string message = "HTTP " + std::to_string(status);
  if (!body.is_discarded() && body.contains("error") && body["error"].is_object()) {
    message = body["error"].value("message", message);
  }
  return {CodeFor(status, body.is_discarded() ? json() : body), "plane: " + message};
}

StatusOr<json> Decode(const std::string& url, const httplib::Result& r) {
  if (!r) {
    return Status(StatusCode::kUnavailable,
                  "cannot reach the plane at " + url + ": " + httplib::to_string(r.error()));
  }
  if (r->status >= 200 && r->status < 300) {
    json body = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return Internal("plane sent a response that is not JSON");
    return body;
  }
  return ErrorFor(r->status, r->body);
}

}  // namespace

StatusOr<json> PlaneClient::Get(const std::string& path) {
  httplib::Headers h = {{"Authorization", "Bearer " + impl_->token}};
  return Decode(impl_->url, impl_->http->Get(path, h));
}

StatusOr<json> PlaneClient::Post(const std::string& path, const json& body) {
  httplib::Headers h = {{"Authorization", "Bearer " + impl_->token}};
  return Decode(impl_->url, impl_->http->Post(path, h, body.dump(), "application/json"));
}

StatusOr<json> PlaneClient::Put(const std::string& path, const std::string& body,
                                const std::string& content_type) {
  httplib::Headers h = {{"Authorization", "Bearer " + impl_->token}};
  return Decode(impl_->url, impl_->http->Put(path, h, body, content_type.c_str()));
}

StatusOr<json> PlaneClient::PutStream(const std::string& path, const BodyReader& read) {
  httplib::Headers h = {{"Authorization", "Bearer " + impl_->token}};
  Status read_status;
  std::vector<uint8_t> buf(size_t{256} * 1024);
  auto r = impl_->http->Put(
      path, h,
      [&](size_t, httplib::DataSink& sink) {
        auto n = read(buf);
        if (!n.ok()) {
          read_status = n.status();
          return false;
        }
        if (*n == 0) {
          sink.done();
        } else if (!sink.write(reinterpret_cast<const char*>(buf.data()), *n)) {
          return false;
        }
        return true;
      },
      "application/octet-stream");
  RETURN_IF_ERROR(read_status);
  return Decode(impl_->url, r);
}

StatusOr<json> PlaneClient::PostRaw(
    const std::string& path, const std::string& body, const std::string& content_type,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  httplib::Headers h = {{"Authorization", "Bearer " + impl_->token}};
  for (const auto& [k, v] : headers) h.emplace(k, v);
  return Decode(impl_->url, impl_->http->Post(path, h, body, content_type.c_str()));
}

Status PlaneClient::Download(const std::string& path, const BodySink& sink,
                             std::vector<std::pair<std::string, std::string>>* response_headers) {
  httplib::Headers h = {{"Authorization", "Bearer " + impl_->token}};
  Status sink_status;
  std::string error_body;  // a non-2xx answer is JSON, kept for the message
  int status = 0;
  auto r = impl_->http->Get(
      path, h,
      [&](const httplib::Response& res) {
        status = res.status;
        if (response_headers != nullptr) {
          for (const auto& [k, v] : res.headers) response_headers->emplace_back(k, v);
        }
        return true;
      },
      [&](const char* data, size_t n) {
        if (status < 200 || status >= 300) {
          if (error_body.size() < 65536) error_body.append(data, n);
          return true;
        }
        sink_status = sink({reinterpret_cast<const uint8_t*>(data), n});
        return sink_status.ok();
      });
  RETURN_IF_ERROR(sink_status);
  if (!r) {
    return {StatusCode::kUnavailable,
            "cannot reach the plane at " + impl_->url + ": " + httplib::to_string(r.error())};
  }
  if (r->status < 200 || r->status >= 300) return ErrorFor(r->status, error_body);
  return Status::Ok();
}

}  // namespace cce::cli
