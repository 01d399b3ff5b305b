// landlock: the Landlock ruleset the sandbox applies on hosts without
// AppArmor/SELinux (docs/isolation.md). The static helper cce-sandbox-init
// (landlock_exec.cc) applies it inside the container and then execs the
// consumer's command; this header is the one definition of which rights are
// handled and granted per ABI, shared by the helper, the policy and tests.
//
// The constants are spelled out here because the build host's
// <linux/landlock.h> (linux-libc-dev 6.1) stops at ABI 2; the values are the
// kernel's UAPI and never change.
#pragma once

#include <cstdint>

#ifndef CCE_LANDLOCK_NO_STATUS  // the static helper includes only the constants
#include "base/status.h"
#endif

namespace cce::executor::landlock {

// Filesystem access rights (LANDLOCK_ACCESS_FS_*), with the ABI that added each.
inline constexpr uint64_t kFsExecute = 1ULL << 0;     // ABI 1
inline constexpr uint64_t kFsWriteFile = 1ULL << 1;   // ABI 1
inline constexpr uint64_t kFsReadFile = 1ULL << 2;    // ABI 1
inline constexpr uint64_t kFsReadDir = 1ULL << 3;     // ABI 1
inline constexpr uint64_t kFsRemoveDir = 1ULL << 4;   // ABI 1
inline constexpr uint64_t kFsRemoveFile = 1ULL << 5;  // ABI 1
inline constexpr uint64_t kFsMakeChar = 1ULL << 6;    // ABI 1
inline constexpr uint64_t kFsMakeDir = 1ULL << 7;     // ABI 1
inline constexpr uint64_t kFsMakeReg = 1ULL << 8;     // ABI 1
inline constexpr uint64_t kFsMakeSock = 1ULL << 9;    // ABI 1
inline constexpr uint64_t kFsMakeFifo = 1ULL << 10;   // ABI 1
inline constexpr uint64_t kFsMakeBlock = 1ULL << 11;  // ABI 1
inline constexpr uint64_t kFsMakeSym = 1ULL << 12;    // ABI 1
inline constexpr uint64_t kFsRefer = 1ULL << 13;      // ABI 2
inline constexpr uint64_t kFsTruncate = 1ULL << 14;   // ABI 3
inline constexpr uint64_t kFsIoctlDev = 1ULL << 15;   // ABI 5
// Network rights (LANDLOCK_ACCESS_NET_*), ABI 4.
inline constexpr uint64_t kNetBindTcp = 1ULL << 0;
inline constexpr uint64_t kNetConnectTcp = 1ULL << 1;
// Scopes (LANDLOCK_SCOPE_*), ABI 6.
inline constexpr uint64_t kScopeAbstractUnixSocket = 1ULL << 0;
inline constexpr uint64_t kScopeSignal = 1ULL << 1;

inline constexpr unsigned kCreateRulesetVersion = 1U << 0;  // LANDLOCK_CREATE_RULESET_VERSION
inline constexpr int kRulePathBeneath = 1;                  // LANDLOCK_RULE_PATH_BENEATH

// struct landlock_ruleset_attr as of ABI 6; pass RulesetAttrSize(abi) as size.
struct RulesetAttr {
  uint64_t handled_access_fs = 0;
  uint64_t handled_access_net = 0;  // ABI >= 4
  uint64_t scoped = 0;              // ABI >= 6
};
inline constexpr unsigned long RulesetAttrSize(int abi) {
  return abi >= 6 ? 24 : abi >= 4 ? 16 : 8;
}

// struct landlock_path_beneath_attr (packed in the UAPI).
struct __attribute__((packed)) PathBeneathAttr {
  uint64_t allowed_access = 0;
  int32_t parent_fd = -1;
};

// Every filesystem right the kernel with `abi` knows: all are handled, so
// anything not granted by a rule is denied.
inline constexpr uint64_t HandledFs(int abi) {
  if (abi < 1) return 0;
  uint64_t r = (kFsMakeSym << 1) - 1;  // ABI 1: bits 0..12
  if (abi >= 2) r |= kFsRefer;
  if (abi >= 3) r |= kFsTruncate;
  if (abi >= 5) r |= kFsIoctlDev;
  return r;
}
// TCP bind and connect are handled (ABI >= 4) and no port rule is added, so
// both are denied for every port.
inline constexpr uint64_t HandledNet(int abi) {
  return abi >= 4 ? (kNetBindTcp | kNetConnectTcp) : 0;
}
// Abstract unix sockets and signals are confined to the domain (ABI >= 6):
// no connecting to the agent's abstract sockets, no signalling outside.
inline constexpr uint64_t Scoped(int abi) {
  return abi >= 6 ? (kScopeAbstractUnixSocket | kScopeSignal) : 0;
}
// Rights granted beneath an --ro path: read and execute.
inline constexpr uint64_t ReadOnlyAccess(int abi) {
  return (kFsExecute | kFsReadFile | kFsReadDir) & HandledFs(abi);
}
// Rights granted beneath an --rw path: everything handled.
inline constexpr uint64_t ReadWriteAccess(int abi) {
  return HandledFs(abi);
}
// The rights that apply to a non-directory; a rule on a file may hold no others.
inline constexpr uint64_t FileAccessMask() {
  return kFsExecute | kFsWriteFile | kFsReadFile | kFsTruncate | kFsIoctlDev;
}

#ifndef CCE_LANDLOCK_NO_STATUS
// The running kernel's Landlock ABI version (>= 1).
// Errors: kUnavailable when Landlock is not built in or not enabled at boot
// (the message says which: ENOSYS vs EOPNOTSUPP), kIo otherwise.
StatusOr<int> LandlockAbi();
#endif

}  // namespace cce::executor::landlock
