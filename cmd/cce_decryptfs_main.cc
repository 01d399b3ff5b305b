// build/bin/cce-decryptfs: mount the plaintext view of an encrypted dataset,
// read-only (cce_decryptfs_command.h). Exit codes: base/exit_code.h.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "base/exit_code.h"
#include "cce_decryptfs_command.h"

int main(int argc, char** argv) {
  try {
    return cce::cmd::RunDecryptFsCommand(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    (void)std::fprintf(stderr, "cce-decryptfs: internal error: %s\n", e.what());
  } catch (...) {
    (void)std::fprintf(stderr, "cce-decryptfs: internal error\n");
  }
  return cce::kExitFailure;
}

// LeakSanitizer hook (read only in `make asan` builds; inert otherwise).
// libfuse 3.14 frees the mountpoint string it strdup()s in
// fuse_session_mount only in fuse_session_unmount, and the parent of a
// detached server exits without unmounting (the child owns the mount). It is
// compiled into the binary because tests start it with a scrubbed
// environment, where LSAN_OPTIONS would not reach it.
extern "C" const char* __lsan_default_suppressions() {  // NOLINT
  return "leak:fuse_session_mount\n";
}
