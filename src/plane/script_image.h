// Private to src/plane: the pure parts of a script job (ScriptJobs,
// docs/explore/script-jobs.md) -- the checks of the consumer's script name
// and content, and the one-file layer holding the script -- in their own
// small library so that script_request_fuzz builds and instruments only them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"

namespace cce::plane::script_image {

// kInvalidArgument naming body.script.name unless `name` is 1..100 of
// [A-Za-z0-9._-], does not start with '.', and ends in .py or .sh.
Status CheckScriptName(const std::string& name);

// Strict standard base64 (RFC 4648 section 4): padded, no whitespace, no
// non-zero padding bits (so one script has one encoding). More than
// `max_bytes` decoded is refused from the length, before decoding. Errors
// are kInvalidArgument naming `field`.
StatusOr<std::string> DecodeBase64(std::string_view text, size_t max_bytes,
                                   const std::string& field);

// A ustar archive of one regular file dir/name (dir: no leading or trailing
// '/', at most 155 bytes; name: at most 100), mode 0444, owner 0:0 (root),
// mtime 0, then the two zero blocks: the same input gives the same bytes.
std::string OneFileTar(const std::string& dir, const std::string& name, const std::string& content);

// gzip (RFC 1952) of `data` by zlib, level 9, no name, mtime 0.
StatusOr<std::string> GzipBytes(const std::string& data);

}  // namespace cce::plane::script_image
