// Mandatory access control for the consumer's container. DetectMacLayer
// reads which LSMs the kernel runs; the executor then confines the container
// with AppArmor (a profile rendered here from the policy and loaded with
// apparmor_parser) or, where AppArmor is absent, with Landlock (the static
// /.cce/sandbox-init helper, see oci_spec.h). The AppArmor profile is
// generated and compiled in tests on every host, loaded only where the
// kernel has AppArmor (docs/isolation.md).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cce::executor {

struct IsolationPolicy;

enum class MacLayer {
  kUnknown,  // the LSM list could not be read
  kNone,     // none we can use
  kAppArmor,
  kSelinux,  // SELinux without Landlock: we generate no SELinux policy
  kLandlock,
};
std::string_view MacLayerName(MacLayer layer);  // "unknown", "none", "apparmor", ...

// From the kernel's comma-separated LSM list ("lockdown,capability,landlock,bpf"):
// AppArmor if present, else Landlock, else SELinux, else none.
MacLayer MacLayerFromLsmList(std::string_view lsm_list);

// Reads `lsm_file` (/sys/kernel/security/lsm; securityfs is not mounted by
// us). An unreadable file gives kUnknown, never an error: callers fail closed.
MacLayer DetectMacLayer(const std::string& lsm_file = "/sys/kernel/security/lsm");

// Renders an AppArmor profile (abi 3.0, no includes) named `profile_name`
// ([A-Za-z0-9._-], 1..64) for a container under `policy`: read and execute
// anywhere it can see; write only below /output, /tmp and /dev/shm (and the
// few character devices runc creates); data_paths (container paths of the
// read-only datasets) explicitly write-denied; no mount, umount, pivot_root,
// no ptrace or signals to processes outside the profile, no raw or packet
// sockets, no writes to /proc/sys, /sys or other /proc files, no capability.
// Errors: kInvalidArgument (a bad profile name or path, naming it).
StatusOr<std::string> RenderAppArmorProfile(const IsolationPolicy& policy,
                                            std::string_view profile_name,
                                            const std::vector<std::string>& data_paths);

}  // namespace cce::executor
