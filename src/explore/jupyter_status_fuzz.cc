// libFuzzer target for what a session's Jupyter server answers on
// /api/status (docs/fuzzing.md): the session's user controls that server,
// so its bytes are outside input for the plane's culler. Beyond "no crash":
// an accepted answer has non-negative counts, and an accepted timestamp
// formats back (gmtime) to the same calendar second when it is UTC.
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "explore/jupyter_status.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cce::explore;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  cce::StatusOr<JupyterActivity> a = ParseJupyterStatus(text);
  if (a.ok() && (a->connections < 0 || a->kernels < 0)) abort();

  cce::StatusOr<int64_t> t = ParseIso8601(text);
  if (t.ok() && size >= 20 && (text[19] == 'Z' || text[19] == '.') &&
      (text.back() == 'Z' || text.back() == 'z')) {
    time_t secs = static_cast<time_t>(*t);
    struct tm tm {};
    if (gmtime_r(&secs, &tm) == nullptr) abort();
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    std::string_view head = text.substr(0, 19);
    for (size_t i = 0; i < 19; ++i) {
      char c = head[i] == 't' ? 'T' : head[i];
      if (c != buf[i]) abort();
    }
  }
  return 0;
}
