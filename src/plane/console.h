// Private to src/plane: the web console (docs/console.md). Its static files
// (src/plane/console/) are embedded in cce-plane at build time and served
// from memory at /console; the console talks only to the plane's own API,
// with the user's bearer token, so these routes need no authentication.
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "http/server.h"

namespace cce::plane {

// One embedded file: its name under src/plane/console/ and its bytes.
struct ConsoleAsset {
  std::string_view name;
  std::string_view bytes;
};

// The files of src/plane/console/, in the order CMake listed them. Defined in
// the .cc that cmake/EmbedFiles.cmake generates from them.
std::span<const ConsoleAsset> ConsoleAssets();

// The headers every console response carries: a Content-Security-Policy that
// allows only the plane's own scripts, styles and API (plus blob:/data:
// images, for outputs under review), no framing, no referrer, no caching.
std::vector<http::Header> ConsoleSecurityHeaders();

// GET /console and /console/ (index.html), /console/app.js, /console/app.css.
// Unauthenticated: the files hold no data. A missing asset (a broken build)
// answers 500 naming it.
void AppendConsoleRoutes(std::vector<http::Route>& routes);

}  // namespace cce::plane
