// Fuzz target: kubeconfig parsing (ParseKubeconfig), a parser of bytes the
// operator points the plane at. Any input must give a Status, never a
// crash; an accepted config always has an https server and a CA.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "explore/kubernetes_backend.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto access = cce::explore::ParseKubeconfig(text, "/nonexistent/kubeconfig");
  if (access.ok() && (access->server.rfind("https://", 0) != 0 || access->ca_pem.empty()))
    std::abort();
  // The same bytes with a named context.
  auto named = cce::explore::ParseKubeconfig(text, "/nonexistent/kubeconfig", "fuzz");
  static_cast<void>(named);
  return 0;
}
