// The `cce` side of the plane's HTTPS API: where the plane is and how to
// authenticate (~/.config/cce/config.yaml, overridden by CCE_PLANE_URL,
// CCE_TOKEN, CCE_CA_FILE), and JSON requests whose failures become Status
// values carrying the plane's own error message.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"

namespace cce::cli {

struct ClientConfig {
  std::string plane_url;  // https://HOST:PORT
  std::string token;
  std::string ca_file;
};

std::string ClientConfigPath();  // $XDG_CONFIG_HOME or ~/.config, + /cce/config.yaml
// File values overridden by the environment; errors name what is missing.
StatusOr<ClientConfig> LoadClientConfig();
// Writes the config file atomically with mode 0600.
Status SaveClientConfig(const ClientConfig& config);

class PlaneClient {
 public:
  static StatusOr<PlaneClient> Connect(const ClientConfig& config);
  PlaneClient(PlaneClient&&) noexcept;
  PlaneClient& operator=(PlaneClient&&) noexcept;
  ~PlaneClient();

  StatusOr<nlohmann::json> Get(const std::string& path);
  StatusOr<nlohmann::json> Post(const std::string& path, const nlohmann::json& body);

 private:
  struct Impl;
  explicit PlaneClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cce::cli
