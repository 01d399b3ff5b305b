// Fuzz target: the API server's answers the kubernetes backend reads (a Pod
// object for Observe, a metav1.Status for errors), and ValidateManifest over
// arbitrary JSON. Any input must give a Status, never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "explore/k8s_manifests.h"
#include "explore/kubernetes_backend.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto observed = cce::explore::ObservedFromPod(body);
  if (observed.ok() && observed->state != cce::explore::SessionState::kRunning &&
      observed->state != cce::explore::SessionState::kStarting && observed->detail.empty()) {
    std::abort();  // a session that is gone or failed always says why
  }
  for (int status : {401, 403, 404, 409, 422, 500}) {
    if (cce::explore::ApiError(status, body, "fuzz").ok()) std::abort();
  }
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) static_cast<void>(cce::explore::k8s::ValidateManifest(j));
  return 0;
}
