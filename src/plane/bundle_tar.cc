#include "plane/bundle_tar.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>

namespace cce::plane {

struct BundleTar::Impl {
  struct ArchiveFree {
    void operator()(archive* ar) const { archive_read_free(ar); }
  };

  // libarchive's read callback: hands it the source's current piece, which
  // stays valid until the next pull (the callback's contract).
  static la_ssize_t Pull(archive* a, void* self, const void** buffer) {
    auto* impl = static_cast<Impl*>(self);
    auto next = impl->source();
    if (!next.ok()) {
      impl->pull_error = next.status();
      archive_set_error(a, EIO, "%s", "the bundle's source failed");
      return -1;
    }
    *buffer = next->data();
    return static_cast<la_ssize_t>(next->size());
  }

  // The source's own error (kDataLoss for a segment that did not
  // authenticate) wins over libarchive's view of it. Authentic bytes that
  // are not a valid tar are kInvalidArgument.
  Status Error(const std::string& doing) const {
    if (!pull_error.ok()) return pull_error;
    const char* msg = archive_error_string(a.get());
    return InvalidArgument(what + ": " + doing + ": " + (msg != nullptr ? msg : "malformed tar"));
  }

  Source source;
  std::string what;
  uint64_t max_entries = 0;
  uint64_t entries = 0;
  Status pull_error;
  std::unique_ptr<archive, ArchiveFree> a;
};

BundleTar::BundleTar(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BundleTar::~BundleTar() = default;

StatusOr<std::unique_ptr<BundleTar>> BundleTar::Open(Source source, std::string what,
                                                     uint64_t max_entries) {
  auto impl = std::make_unique<Impl>();
  impl->source = std::move(source);
  impl->what = std::move(what);
  impl->max_entries = max_entries;
  impl->a.reset(archive_read_new());
  if (!impl->a) return Internal(impl->what + ": cannot allocate a tar reader");
  // Tar only (ustar, pax, GNU): the bundle is never compressed, and no other
  // format's parser is exposed to its bytes.
  archive_read_support_format_tar(impl->a.get());
  if (archive_read_open(impl->a.get(), impl.get(), nullptr, &Impl::Pull, nullptr) != ARCHIVE_OK) {
    return impl->Error("opening the bundle");
  }
  return std::unique_ptr<BundleTar>(new BundleTar(std::move(impl)));
}

StatusOr<std::optional<BundleTar::Entry>> BundleTar::Next() {
  Impl& i = *impl_;
  for (;;) {
    archive_entry* e = nullptr;
    const int r = archive_read_next_header(i.a.get(), &e);
    if (r == ARCHIVE_EOF) return std::optional<Entry>();
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return i.Error("reading a tar header");
    if (++i.entries > i.max_entries) {
      return ResourceExhausted(i.what + ": more than " + std::to_string(i.max_entries) +
                               " entries");
    }
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    const char* name = archive_entry_pathname(e);
    if (name == nullptr) continue;  // not representable: never listed, never served
    const la_int64_t size = archive_entry_size(e);
    return std::optional<Entry>(Entry{name, static_cast<uint64_t>(std::max<la_int64_t>(size, 0))});
  }
}

StatusOr<std::optional<BundleTar::Entry>> BundleTar::NextAny() {
  Impl& i = *impl_;
  archive_entry* e = nullptr;
  const int r = archive_read_next_header(i.a.get(), &e);
  if (r == ARCHIVE_EOF) return std::optional<Entry>();
  if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return i.Error("reading a tar header");
  if (++i.entries > i.max_entries) {
    return ResourceExhausted(i.what + ": more than " + std::to_string(i.max_entries) + " entries");
  }
  const char* name = archive_entry_pathname(e);
  if (name == nullptr) {
    return InvalidArgument(i.what + ": entry " + std::to_string(i.entries) +
                           ": a name that cannot be represented");
  }
  Entry out{name, 0, Kind::kOther};
  if (archive_entry_hardlink(e) != nullptr) {
    out.kind = Kind::kHardlink;  // libarchive types a hard link as the file it names
  } else {
    switch (archive_entry_filetype(e)) {
      case AE_IFREG: out.kind = Kind::kFile; break;
      case AE_IFDIR: out.kind = Kind::kDirectory; break;
      case AE_IFLNK: out.kind = Kind::kSymlink; break;
      default: out.kind = Kind::kOther; break;
    }
  }
  if (out.kind == Kind::kFile) {
    out.size = static_cast<uint64_t>(std::max<la_int64_t>(archive_entry_size(e), 0));
  }
  return std::optional<Entry>(std::move(out));
}

StatusOr<size_t> BundleTar::Read(std::span<uint8_t> out) {
  const la_ssize_t n = archive_read_data(impl_->a.get(), out.data(), out.size());
  if (n < 0) return impl_->Error("reading a file's data");
  return static_cast<size_t>(n);
}

bool LooksLikeText(std::string_view s, bool more) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return false;
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + len > s.size()) {
      // Cut at the end: fine if the text goes on and the bytes so far fit.
      if (!more) return false;
      for (size_t k = i + 1; k < s.size(); ++k) {
        if ((static_cast<uint8_t>(s[k]) & 0xc0) != 0x80) return false;
      }
      return true;
    }
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    const uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    if (cp < 0xa0) return false;  // C1 controls (0x80..0x9f)
    i += len;
  }
  return true;
}

std::string SniffContentType(std::string_view head, bool more, bool* attachment) {
  *attachment = false;
  if (head.starts_with(std::string_view("\x89PNG\r\n\x1a\n", 8))) return "image/png";
  if (head.starts_with("\xff\xd8\xff")) return "image/jpeg";
  if (LooksLikeText(head, more)) return "text/plain; charset=utf-8";
  *attachment = true;
  return "application/octet-stream";
}

}  // namespace cce::plane
