// build/bin/cce-decryptfs's one command: flags in (the key is named by a file
// descriptor or a file, never passed in argv or the environment), then
// decryptfs::RunDecryptFs. Kept out of the main so the main stays short.
#pragma once

#include "cli/command_table.h"

namespace cce::cmd {

// Runs cce-decryptfs with argv[1..]; returns the exit code (base/exit_code.h).
int RunDecryptFsCommand(const cli::Args& args);

}  // namespace cce::cmd
