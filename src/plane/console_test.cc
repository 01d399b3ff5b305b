// The console's routes serve the embedded files byte for byte with the
// security headers, and the files themselves keep to what the CSP allows
// (no inline script or style, nothing fetched from elsewhere). The browser
// side is tests/console/console_test.mjs (ctest console_test, in Chromium).
#include "plane/console.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace cce::plane {
namespace {

std::string SourceFile(const std::string& name) {
  std::ifstream in(std::string(CCE_SOURCE_DIR) + "/src/plane/console/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const http::Route* Match(const std::vector<http::Route>& routes, const std::string& path) {
  for (const http::Route& r : routes) {
    if (r.method == "GET" && std::regex_match(path, std::regex(r.pattern))) return &r;
  }
  return nullptr;
}

std::string Header(const http::Response& r, const std::string& name) {
  for (const http::Header& h : r.headers) {
    if (h.name == name) return h.value;
  }
  return "";
}

TEST(Console, EmbedsEveryFileByteForByte) {
  ASSERT_EQ(ConsoleAssets().size(), 3u);
  for (const ConsoleAsset& a : ConsoleAssets()) {
    EXPECT_EQ(std::string(a.bytes), SourceFile(std::string(a.name))) << a.name;
    EXPECT_GT(a.bytes.size(), 100u) << a.name;
  }
}

TEST(Console, ServesEachFileWithTheSecurityHeaders) {
  std::vector<http::Route> routes;
  AppendConsoleRoutes(routes);
  const struct {
    std::string path, file, type;
  } cases[] = {
      {"/console", "index.html", "text/html; charset=utf-8"},
      {"/console/", "index.html", "text/html; charset=utf-8"},
      {"/console/app.js", "app.js", "text/javascript; charset=utf-8"},
      {"/console/app.css", "app.css", "text/css; charset=utf-8"},
  };
  for (const auto& c : cases) {
    const http::Route* r = Match(routes, c.path);
    ASSERT_NE(r, nullptr) << c.path;
    EXPECT_EQ(r->body, http::BodyPolicy::kNone) << c.path;
    EXPECT_FALSE(r->admit) << c.path << ": static files need no token";
    http::Request req;
    req.method = "GET";
    req.path = c.path;
    http::Response res = r->handle(req);
    EXPECT_EQ(res.status, 200) << c.path;
    EXPECT_EQ(res.content_type, c.type) << c.path;
    EXPECT_EQ(res.body, SourceFile(c.file)) << c.path;
    EXPECT_EQ(Header(res, "Content-Security-Policy"),
              "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
              "script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
        << c.path;
    EXPECT_EQ(Header(res, "X-Frame-Options"), "DENY") << c.path;
    EXPECT_EQ(Header(res, "X-Content-Type-Options"), "nosniff") << c.path;
    EXPECT_EQ(Header(res, "Referrer-Policy"), "no-referrer") << c.path;
    EXPECT_EQ(Header(res, "Cache-Control"), "no-store") << c.path;
  }
  for (const std::string path :
       {"/console/x.js", "/consolex", "/console/app.jsx", "/console//", "/console/app.js/",
        "/console/../etc/passwd", "/console/index.html"}) {
    EXPECT_EQ(Match(routes, path), nullptr) << path;
  }
}

// The CSP forbids inline script and style: a file that needed them would
// break in the browser, so none may have them; and nothing may be fetched
// from anywhere but the plane.
TEST(Console, FilesNeedNothingTheCspForbids) {
  const std::string html = SourceFile("index.html");
  EXPECT_FALSE(
      std::regex_search(html, std::regex("<script(?![^>]*\\bsrc=)[^>]*>", std::regex::icase)))
      << "inline <script> in index.html";
  EXPECT_FALSE(std::regex_search(html, std::regex("\\son[a-z]+\\s*=", std::regex::icase)))
      << "inline event handler in index.html";
  EXPECT_FALSE(std::regex_search(html, std::regex("<style|\\sstyle\\s*=", std::regex::icase)))
      << "inline style in index.html";
  for (const std::string name : {"index.html", "app.js", "app.css"}) {
    const std::string text = SourceFile(name);
    EXPECT_EQ(text.find("http://"), std::string::npos) << name << " names an external URL";
    EXPECT_EQ(text.find("https://"), std::string::npos) << name << " names an external URL";
    EXPECT_EQ(text.find("@import"), std::string::npos) << name;
  }
  // API data reaches the page as text only (the XSS test in Chromium shows it).
  const std::string js = SourceFile("app.js");
  for (const std::string sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                                 "eval(", "new Function", ".style."}) {
    EXPECT_EQ(js.find(sink), std::string::npos) << "app.js uses " << sink;
  }
}

}  // namespace
}  // namespace cce::plane
