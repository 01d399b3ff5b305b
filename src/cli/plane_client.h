// The `cce` side of the plane's HTTPS API: where the plane is and how to
// authenticate (~/.config/cce/config.yaml, overridden by CCE_PLANE_URL,
// CCE_TOKEN, CCE_CA_FILE), and JSON requests whose failures become Status
// values carrying the plane's own error message.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace cce::cli {

// What `cce audit verify` learned about one plane, pinned on first use (like
// SSH known_hosts or a CT client's log key and last signed tree head).
struct PlaneTrust {
  std::string public_key;    // hex Ed25519 key of the plane
  int64_t audit_seq = 0;     // last verified signed head of the audit log
  std::string audit_hash;    // hex
  int64_t rentals_seq = 0;   // last verified signed head of the rental chain
  std::string rentals_hash;  // hex
};

struct ClientConfig {
  std::string plane_url;  // https://HOST:PORT
  std::string token;
  std::string ca_file;
  std::map<std::string, PlaneTrust> planes;  // by plane URL
};

std::string ClientConfigPath();  // $XDG_CONFIG_HOME or ~/.config, + /cce/config.yaml
// File values overridden by the environment; errors name what is missing.
StatusOr<ClientConfig> LoadClientConfig();
// Writes the config file atomically with mode 0600. Pinned planes already in
// the file and not in `config` are kept (`cce login` does not forget them).
Status SaveClientConfig(const ClientConfig& config);
// Records `trust` for `plane_url` in the config file (atomic, 0600), leaving
// everything else in the file as it is (never writes environment values).
Status SavePlaneTrust(const std::string& plane_url, const PlaneTrust& trust);

// For a 404 on `target` ("/api/v1/jobs/nonsense"): the object that does not
// exist, as the user named it, and where to look ("no job 'nonsense' (...;
// see `cce job list`)"); "" for a path that names no object.
std::string NotFoundMessage(std::string_view target);

// A user's id or name as one path segment of a request: percent-encoded, so
// "a b", "x/y" or ".." reach the plane as a name it can say it does not know.
std::string PathSegment(std::string_view s);

class PlaneClient {
 public:
  static StatusOr<PlaneClient> Connect(const ClientConfig& config);
  PlaneClient(PlaneClient&&) noexcept;
  PlaneClient& operator=(PlaneClient&&) noexcept;
  ~PlaneClient();

  StatusOr<nlohmann::json> Get(const std::string& path);
  StatusOr<nlohmann::json> Post(const std::string& path, const nlohmann::json& body);
  // POST of a raw body (a job spec as written, YAML or JSON) with extra
  // headers (Idempotency-Key).
  StatusOr<nlohmann::json> PostRaw(const std::string& path, const std::string& body,
                                   const std::string& content_type,
                                   const std::vector<std::pair<std::string, std::string>>& headers);
  // GET of a binary body, handed to `sink` piece by piece as it arrives; a
  // sink error aborts the transfer. *response_headers gets the headers.
  using BodySink = std::function<Status(std::span<const uint8_t> piece)>;
  Status Download(const std::string& path, const BodySink& sink,
                  std::vector<std::pair<std::string, std::string>>* response_headers);
  // PUT of a raw body (an image manifest), answered with JSON.
  StatusOr<nlohmann::json> Put(const std::string& path, const std::string& body,
                               const std::string& content_type);
  // DELETE (an image tag), answered with JSON.
  StatusOr<nlohmann::json> Delete(const std::string& path);
  // Fills a prefix of buf; 0 means end of body. An error aborts the request
  // and is what PutStream returns.
  using BodyReader = std::function<StatusOr<size_t>(std::span<uint8_t> buf)>;
  // PUT of a body of any size, read piece by piece and sent with chunked
  // transfer encoding (the plane's image blob upload, a dataset sample's
  // tar), answered with JSON.
  StatusOr<nlohmann::json> PutStream(const std::string& path, const BodyReader& read,
                                     const std::string& content_type = "application/octet-stream");

 private:
  struct Impl;
  explicit PlaneClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cce::cli
