// libFuzzer target for ParseJobSpec (built with -DCCE_FUZZ=ON under clang; see
// src/jobspec/CMakeLists.txt). Beyond "no crash, no sanitizer report" it checks the
// properties the plane relies on: a failure is a non-empty, capped list of errors that is
// valid UTF-8 (it goes into JSON responses), and an accepted spec survives the canonical
// JSON round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "jobspec/jobspec.h"

namespace {

[[noreturn]] void Fail() {
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const cce::StatusOr<cce::JobSpec> spec = cce::ParseJobSpec(text, "fuzz.yaml");
  if (!spec.ok()) {
    const std::string& message = spec.status().message();
    if (message.empty() || spec.status().code() != cce::StatusCode::kInvalidArgument) Fail();
    size_t lines = 1;
    for (char c : message) lines += c == '\n' ? 1 : 0;
    if (lines > cce::kMaxJobSpecErrors + 1) Fail();
    try {
      (void)nlohmann::json(message).dump();  // throws on invalid UTF-8
    } catch (const nlohmann::json::exception&) {
      Fail();
    }
    return 0;
  }
  const std::string json = cce::JobSpecToJson(*spec);
  const cce::StatusOr<cce::JobSpec> again = cce::ParseJobSpec(json, "canonical.json");
  if (!again.ok() || !(*again == *spec)) Fail();
  if (cce::JobSpecToJson(*again) != json) Fail();
  (void)cce::ValidateAgainstLimits(*spec, cce::PlaneLimits{});
  return 0;
}
