// libFuzzer target for the seccomp profile reader (docs/fuzzing.md): bytes as
// a moby-format JSON profile through ResolveDockerSeccomp (x86_64, no
// capabilities, kernel 6.1) and TightenSeccomp. Beyond "no crash": a
// resolved profile has no condition keys left; a tightened one allows none
// of TightenedDenies() and keeps only the native architecture.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "executor/seccomp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nlohmann::json;
  using namespace cce::executor;
  json profile = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (profile.is_discarded()) return 0;
  SeccompTarget target;
  target.kernel_major = 6;
  target.kernel_minor = 1;
  cce::StatusOr<json> resolved = ResolveDockerSeccomp(profile, target);
  if (!resolved.ok()) return 0;
  for (const json& rule : (*resolved)["syscalls"]) {
    if (rule.contains("includes") || rule.contains("excludes") || rule.contains("comment")) abort();
  }
  cce::StatusOr<json> tight = TightenSeccomp(*resolved, {});
  if (!tight.ok()) return 0;
  if ((*tight)["architectures"].size() != 1) abort();
  const std::set<std::string> denied(TightenedDenies().begin(), TightenedDenies().end());
  for (const json& rule : (*tight)["syscalls"]) {
    if (rule["action"] == "SCMP_ACT_ERRNO" || rule["action"] == "SCMP_ACT_KILL" ||
        rule["action"] == "SCMP_ACT_KILL_PROCESS" || rule["action"] == "SCMP_ACT_KILL_THREAD" ||
        rule["action"] == "SCMP_ACT_TRAP") {
      continue;
    }
    for (const json& n : rule["names"]) {
      if (denied.count(n.get<std::string>()) != 0) abort();
    }
  }
  return 0;
}
