#include "plane/console.h"

#include <string>

namespace cce::plane {
namespace {

constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

// One route serving one embedded file.
http::Route AssetRoute(std::string pattern, std::string_view name, std::string_view content_type) {
  http::Route r;
  r.method = "GET";
  r.pattern = std::move(pattern);
  r.body = http::BodyPolicy::kNone;
  r.handle = [name, content_type](http::Request&) {
    http::Response res;
    res.headers = ConsoleSecurityHeaders();
    for (const ConsoleAsset& a : ConsoleAssets()) {
      if (a.name != name) continue;
      res.content_type = std::string(content_type);
      res.body = std::string(a.bytes);
      return res;
    }
    res.status = 500;
    res.content_type = "text/plain; charset=utf-8";
    res.body = "console: " + std::string(name) + " is not embedded in this build\n";
    return res;
  };
  return r;
}

}  // namespace

std::vector<http::Header> ConsoleSecurityHeaders() {
  return {
      {"Content-Security-Policy", std::string(kContentSecurityPolicy)},
      {"X-Frame-Options", "DENY"},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"Cache-Control", "no-store"},
      {"Cross-Origin-Opener-Policy", "same-origin"},
  };
}

void AppendConsoleRoutes(std::vector<http::Route>& routes) {
  routes.push_back(AssetRoute("/console/?", "index.html", "text/html; charset=utf-8"));
  routes.push_back(AssetRoute("/console/app\\.js", "app.js", "text/javascript; charset=utf-8"));
  routes.push_back(AssetRoute("/console/app\\.css", "app.css", "text/css; charset=utf-8"));
}

}  // namespace cce::plane
