// Private to src/plane: the plane's HTTP routes, thin adapters over the
// services (services.h). A route authenticates (before the body is read),
// decodes the wire type, calls one service method and encodes its answer.
// docs/api.yaml is the contract; docs/plane.md has the picture.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "http/server.h"
#include "plane/services.h"

namespace cce::plane {

// Prometheus text-format metrics: request counts per route pattern and
// status, a latency histogram, and the transport's counters. Served only to
// operators (per-route activity is information).
class Metrics {
 public:
  void Observe(std::string_view route, int status, double seconds);
  std::string Render(const http::ServerStats& transport);

 private:
  static constexpr std::array<double, 8> kBuckets = {0.001, 0.005, 0.01, 0.025,
                                                     0.05,  0.1,   0.5,  1.0};
  std::mutex mu_;  // guards every member below
  std::map<std::string, uint64_t> requests_;
  std::array<uint64_t, kBuckets.size()> buckets_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

// The HTTP status and JSON error body for a Status (docs/api.yaml, Error).
http::Response ErrorResponse(const Status& status);

// Every route of the plane. `server_stats` is read by /metrics (it may
// return zeros until the server exists).
std::vector<http::Route> PlaneRoutes(Services& services, Metrics& metrics,
                                     std::function<http::ServerStats()> server_stats,
                                     uint64_t max_body_bytes);

}  // namespace cce::plane
