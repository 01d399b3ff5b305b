// libFuzzer target for the isolation policy file (docs/fuzzing.md): bytes as
// YAML through LoadIsolationPolicy. Beyond "no crash": an accepted policy
// passes ValidateIsolationPolicy, keeps every mandatory control (no
// capability, read-only root, no_new_privileges, non-root user, every
// mandatory masked path) and renders into a runtime config.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "executor/oci_spec.h"
#include "executor/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cce::executor;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  cce::StatusOr<IsolationPolicy> p = LoadIsolationPolicy(text, "fuzz.yaml");
  if (!p.ok()) return 0;
  if (!ValidateIsolationPolicy(*p).ok()) abort();
  if (!p->capabilities.empty() || !p->readonly_rootfs || !p->no_new_privileges || p->uid == 0 ||
      p->gid == 0 || p->host_id_base < 65536) {
    abort();
  }
  RunSpec spec;
  spec.rootfs = "/r";
  spec.args = {"true"};
  spec.output_host_dir = "/o";
  spec.mac = MacLayer::kLandlock;
  spec.sandbox_init_host_path = "/s";
  spec.seccomp = {{"defaultAction", "SCMP_ACT_ERRNO"}, {"syscalls", nlohmann::json::array()}};
  spec.cgroups_path = "/cce/workload/fuzz";
  cce::StatusOr<nlohmann::json> config = RenderRuntimeConfig(*p, spec);
  if (!config.ok()) abort();
  if ((*config)["process"]["capabilities"]["bounding"] != nlohmann::json::array()) abort();
  return 0;
}
