#include "executor/landlock.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace cce::executor::landlock {

StatusOr<int> LandlockAbi() {
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
  if (abi >= 1) return static_cast<int>(abi);
  int err = errno;
  if (err == ENOSYS) return Unavailable("landlock: not built into this kernel (ENOSYS)");
  if (err == EOPNOTSUPP) {
    return Unavailable("landlock: disabled at boot (EOPNOTSUPP; add it to the lsm= list)");
  }
  return ErrnoStatus("landlock_create_ruleset(VERSION)", err);
}

}  // namespace cce::executor::landlock
