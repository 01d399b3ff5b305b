// Private to src/plane: reading an output bundle (the agent's POSIX tar,
// agent/bundle.h) as a stream, for reviewers (reviews.cc). The tar is pulled
// piece by piece from a source (the sealed output's reader, a segment at a
// time), so a bundle is never held in memory whatever its size; and the
// type of a file's bytes is decided from its content, never its name.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::plane {

class BundleTar {
 public:
  // The next piece of the tar, valid until the next call; empty at the end.
  // An error (a segment that failed to authenticate) ends the walk with it.
  using Source = std::function<StatusOr<crypto::ByteSpan>()>;
  // What a tar member is (NextAny; Next returns kFile entries only).
  enum class Kind { kFile, kDirectory, kSymlink, kHardlink, kOther };
  struct Entry {
    std::string path;  // as stored (pax path when present)
    uint64_t size = 0;
    Kind kind = Kind::kFile;
  };
  // `what` names the bundle in errors ("output of job-...").
  static StatusOr<std::unique_ptr<BundleTar>> Open(Source source, std::string what,
                                                   uint64_t max_entries);
  ~BundleTar();
  BundleTar(const BundleTar&) = delete;
  BundleTar& operator=(const BundleTar&) = delete;

  // The next regular file (directories, links and the rest are skipped);
  // nullopt at the end. Malformed tar: kInvalidArgument naming `what` (the
  // source's own error, e.g. kDataLoss, when it failed); more than
  // max_entries headers: kResourceExhausted.
  StatusOr<std::optional<Entry>> Next();
  // The next entry of any kind (a hard link is kHardlink whatever its
  // type flag; devices, FIFOs and sockets are kOther), for readers that
  // must refuse what they do not expect rather than skip it. A name that
  // cannot be represented is kInvalidArgument; otherwise as Next().
  StatusOr<std::optional<Entry>> NextAny();
  // Data of the entry Next() returned last; 0 at its end.
  StatusOr<size_t> Read(std::span<uint8_t> out);

 private:
  struct Impl;
  explicit BundleTar(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Valid UTF-8 (no overlongs, surrogates or C1 controls) without control
// characters other than tab, LF and CR. `more`: the text goes on after `s`,
// so a sequence cut at its end is not an error.
bool LooksLikeText(std::string_view s, bool more);

// The Content-Type a reviewer's browser gets for a file starting with
// `head` (`more`: the file is longer): PNG or JPEG by magic bytes,
// "text/plain; charset=utf-8" for text, else "application/octet-stream"
// with *attachment set.
std::string SniffContentType(std::string_view head, bool more, bool* attachment);

}  // namespace cce::plane
