// seccomp for the consumer's container: Docker's default profile (moby
// format, shipped as data/seccomp/docker-default.json) resolved into the OCI
// runtime-spec `linux.seccomp` object for one target (architecture, the
// container's capability set, kernel version), exactly as moby resolves it
// when it creates a container, then tightened for untrusted code (Tighten).
// docs/isolation.md lists what Tighten denies and why.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"

namespace cce::executor {

struct IsolationPolicy;

inline constexpr size_t kMaxSeccompProfileBytes = size_t{1} << 20;

struct SeccompTarget {
  std::string machine = "x86_64";         // uname -m: x86_64, aarch64, s390x, ppc64le, riscv64
  std::vector<std::string> capabilities;  // the container's capabilities ("CAP_..."); ours: none
  int kernel_major = 0;                   // from uname -r, for `minKernel` conditions
  int kernel_minor = 0;
};

// This machine: uname's machine and kernel release, no capabilities.
// Errors: kIo (uname failed), kInvalidArgument (a release it cannot parse).
StatusOr<SeccompTarget> HostSeccompTarget();

// Resolves a moby-format profile for `target`: flattens archMap (the native
// architecture and its sub-architectures, e.g. SCMP_ARCH_X86_64, SCMP_ARCH_X86,
// SCMP_ARCH_X32) into `architectures`, drops every rule whose includes /
// excludes (caps, arches, minKernel) do not hold for the target, strips the
// condition keys and comments, and keeps defaultAction / defaultErrnoRet.
// Strict (fail closed): unknown keys, actions, operators or condition kinds
// are errors, and so is an archMap without the target's architecture.
// Errors: kInvalidArgument "seccomp profile: syscalls[i].FIELD: why".
StatusOr<nlohmann::json> ResolveDockerSeccomp(const nlohmann::json& docker_profile,
                                              const SeccompTarget& target);

// The syscalls Tighten always denies with EPERM (clone3 gets ENOSYS so glibc
// falls back to clone, whose namespace flags are filtered).
const std::vector<std::string>& TightenedDenies();

// Tightens a resolved OCI profile for untrusted code:
// - every syscall in TightenedDenies() plus `extra_denies` is removed from
//   every rule and denied by an explicit ERRNO(EPERM) rule;
// - clone3 -> ERRNO(ENOSYS);
// - clone is allowed only without namespace flags (CLONE_NEW*), as Docker
//   does without CAP_SYS_ADMIN; personality only for Docker's safe values;
//   socket only for AF_UNIX, AF_INET/AF_INET6 stream and datagram, and
//   AF_NETLINK NETLINK_ROUTE (no raw, packet, AF_ALG, vsock, ...);
//   memfd_create only with MFD_NOEXEC_SEAL (no executable memory files);
// - only the native architecture is kept: the 32-bit compat ABIs would need
//   socketcall, which hides socket()'s arguments from the filter;
// - the default action must deny (SCMP_ACT_ERRNO / KILL*/TRAP), else an error.
// Errors: kInvalidArgument (not a resolved OCI profile, a bad extra name).
StatusOr<nlohmann::json> TightenSeccomp(const nlohmann::json& oci_profile,
                                        const std::vector<std::string>& extra_denies);

// Parses a moby-format profile file (at most kMaxSeccompProfileBytes).
// Errors: kNotFound / kIo (unreadable), kInvalidArgument (not JSON).
StatusOr<nlohmann::json> LoadDockerSeccompProfile(const std::string& path);

// Where the shipped profile is: <dir of this executable>/../share/cce/seccomp/
// docker-default.json (CMake copies data/seccomp there next to build/bin;
// an install puts it in <prefix>/share/cce/seccomp).
// Errors: kIo (/proc/self/exe unreadable).
StatusOr<std::string> DefaultSeccompProfilePath();

// The whole pipeline for this host: load `profile_path`, resolve for
// HostSeccompTarget() with no capabilities, tighten with the policy's
// seccomp_extra_denies. The result is the OCI `linux.seccomp` object.
StatusOr<nlohmann::json> BuildSeccompProfile(const std::string& profile_path,
                                             const IsolationPolicy& policy);

}  // namespace cce::executor
