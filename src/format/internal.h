// Private to src/format: helpers shared by manifest.cc and dataset.cc.
#pragma once

#include <string>
#include <string_view>

#include "format/format.h"

namespace cce::format {

// A manifest path: relative, '/'-separated, UTF-8, no empty/"."/".." parts.
Status ValidateRelativePath(std::string_view path);

// Reads and authenticates a whole small sealed file (the manifest).
StatusOr<std::string> ReadSealedFile(int fd, const DatasetKey& key, FileKind kind,
                                     const std::string& what);

}  // namespace cce::format
