// The plane's text log: a field taken from a request (the decoded path of
// GET /x%0a2026-01-01T00:00:00.000Z%20info%20login.ok%20user=admin) must not
// start a new line or forge a field.
#include "plane/log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace cce::plane {
namespace {

// Everything one Log call writes, as text.
std::string LogLine(bool json, const Logger::Fields& fields) {
  char* buf = nullptr;
  size_t size = 0;
  std::FILE* out = ::open_memstream(&buf, &size);
  EXPECT_NE(out, nullptr);
  {
    Logger log(json, Logger::Level::kDebug, out);
    log.Log(Logger::Level::kDebug, "http.request", fields);
  }
  std::fclose(out);
  std::string s(buf, size);
  std::free(buf);
  return s;
}

TEST(Logger, TextLogEscapesRequestPath) {
  // What the server hands the logger for the request target
  // "/api/v1/jobs/x%0a2026-01-01T00:00:00.000Z%20info%20login.ok%20user=%22admin%22%ff".
  const std::string decoded =
      "/api/v1/jobs/x\n2026-01-01T00:00:00.000Z info login.ok user=\"admin\"\xff";
  const std::string line =
      LogLine(false, {{"method", "GET"}, {"path", decoded}, {"status", "404"}});
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line only: " << line;
  EXPECT_NE(line.find(" method=GET path=\"/api/v1/jobs/x\\n2026-01-01T00:00:00.000Z info "
                      "login.ok user=\\\"admin\\\"\\xff\" status=404\n"),
            std::string::npos)
      << line;
}

TEST(Logger, EscapeLogValueTable) {
  const struct {
    std::string in;
    std::string want;
  } cases[] = {
      {"/api/v1/jobs", "/api/v1/jobs"},
      {"", "\"\""},
      {"a b", "\"a b\""},
      {"a=b", "\"a=b\""},
      {"say \"hi\"", "\"say \\\"hi\\\"\""},
      {"back\\slash", "\"back\\\\slash\""},
      {"cr\rlf\ntab\t", "\"cr\\rlf\\ntab\\t\""},
      {std::string("nul\0esc\x1b", 8), "\"nul\\x00esc\\x1b\""},
      {"del\x7f", "\"del\\x7f\""},
      {"bad\xff\xc3", "\"bad\\xff\\xc3\""},
      {"\xc0\xaf", "\"\\xc0\\xaf\""},         // overlong '/'
      {"K\xc3\xb6ln", "\"K\xc3\xb6ln\""},     // valid UTF-8 kept
      {"x\xc2\x85y", "\"x\\u{0085}y\""},      // C1 NEL
      {"x\xe2\x80\xa8y", "\"x\\u{2028}y\""},  // line separator
      {"x\xe2\x80\xaey", "\"x\\u{202e}y\""},  // right-to-left override
  };
  for (const auto& c : cases) EXPECT_EQ(EscapeLogValue(c.in), c.want) << c.in;
}

TEST(Logger, JsonLogStaysOneLine) {
  const std::string line = LogLine(true, {{"path", "/x\n{\"forged\":1}\xff"}});
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
}

}  // namespace
}  // namespace cce::plane
