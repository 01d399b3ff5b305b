#include "decryptfs/file_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace cce::decryptfs {
namespace {

using format::kHeaderSize;
using format::kTagSize;

// O_DIRECT wants offsets, lengths and buffers aligned to the device's logical
// block size. Buffers are always aligned to 4 KiB (covers every common device);
// offsets and lengths to the file's own alignment (statx STATX_DIOALIGN, often
// 512), else to 4 KiB.
constexpr size_t kDirectAlign = 4096;
// Buffers grow in steps of this much (and never shrink while the thread lives).
constexpr size_t kGrowStep = size_t{64} << 10;

size_t RoundUp(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

std::string BlockWhere(const OpenFile& f, uint64_t index) {
  return f.path() + ": segment " + std::to_string(index);
}

// Each reading thread's buffers: the sealed bytes as read from the lower
// file (ciphertext; aligned for O_DIRECT) and the plaintext of the request
// (locked, kept out of core dumps, wiped when replaced or the thread ends).
struct ThreadBuffers {
  uint8_t* sealed = nullptr;
  size_t sealed_size = 0;
  crypto::SecretBytes plain;

  ThreadBuffers() = default;
  ThreadBuffers(const ThreadBuffers&) = delete;
  ThreadBuffers& operator=(const ThreadBuffers&) = delete;
  ~ThreadBuffers() { std::free(sealed); }

  uint8_t* Sealed(size_t size) {
    if (sealed_size < size) {
      std::free(sealed);
      sealed_size = RoundUp(size, kGrowStep);
      sealed = static_cast<uint8_t*>(std::aligned_alloc(kDirectAlign, sealed_size));
      if (sealed == nullptr) sealed_size = 0;
    }
    return sealed;
  }
  std::span<uint8_t> Plain(size_t size) {
    if (plain.size() < size) plain = crypto::SecretBytes(RoundUp(size, kGrowStep));
    return plain.span().first(size);
  }
};

thread_local ThreadBuffers t_buffers;

// pread until `size` bytes or end of file; returns the count.
StatusOr<size_t> PreadAll(const OpenFile& f, uint8_t* buf, size_t size, uint64_t offset) {
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(f.fd(), buf + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(f.path() + ": read at byte " + std::to_string(offset + got), errno);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

// O_DIRECT: reads the aligned superset of [offset, offset + size) into the
// thread's buffer. kUnavailable if the file system refused the O_DIRECT read.
StatusOr<std::span<const uint8_t>> ReadDirect(const OpenFile& f, uint64_t offset, size_t size) {
  const size_t align = f.direct_align();
  const uint64_t begin = offset & ~uint64_t{align - 1};
  const uint64_t end = RoundUp(static_cast<size_t>(offset + size), align);
  const auto span = static_cast<size_t>(end - begin);
  const auto want = static_cast<size_t>(offset + size - begin);
  uint8_t* buf = t_buffers.Sealed(span);
  if (buf == nullptr) return Internal(f.path() + ": out of memory for a read buffer");
  size_t got = 0;
  while (got < want) {
    // After a short read, continue from the aligned offset below it (O_DIRECT
    // needs one); no progress means end of file.
    const size_t at = got & ~(align - 1);
    ssize_t n = ::pread(f.fd(), buf + at, span - at, static_cast<off_t>(begin + at));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && got == 0) return Status{StatusCode::kUnavailable, "O_DIRECT refused"};
      return ErrnoStatus(f.path() + ": read at byte " + std::to_string(begin + at), errno);
    }
    if (at + static_cast<size_t>(n) <= got) break;
    got = at + static_cast<size_t>(n);
  }
  const auto skip = static_cast<size_t>(offset - begin);
  const size_t have = got > skip ? std::min(got - skip, size) : 0;
  return std::span<const uint8_t>(buf + skip, have);
}

}  // namespace

// ---- KeyCache ----

std::shared_ptr<const format::FileCipher> KeyCache::Get(uint64_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(ino);
  if (it == map_.end()) {
    ++stats_.misses;
    return nullptr;
  }
  ++stats_.hits;
  return it->second;
}

void KeyCache::Put(uint64_t ino, std::shared_ptr<const format::FileCipher> cipher) {
  if (capacity_ == 0) return;
  std::shared_ptr<const format::FileCipher> dropped;  // released outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  if (map_.size() >= capacity_ && map_.find(ino) == map_.end()) {
    auto victim = map_.begin();
    dropped = std::move(victim->second);
    map_.erase(victim);
  }
  map_[ino] = std::move(cipher);
}

void KeyCache::Clear() {
  std::unordered_map<uint64_t, std::shared_ptr<const format::FileCipher>> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    old.swap(map_);
  }
}

size_t KeyCache::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size();
}

KeyCache::Stats KeyCache::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

// ---- OpenFile ----

StatusOr<std::shared_ptr<OpenFile>> OpenFile::Open(const std::string& dataset_dir,
                                                   const format::ManifestEntry& entry,
                                                   const format::DatasetKey& key, uint64_t ino,
                                                   uint32_t block_size, bool direct_io,
                                                   KeyCache* keys) {
  std::string path = "'" + entry.path + "' (" + format::kObjectsDir + "/" + entry.id + ")";
  const std::string object = format::ObjectPath(dataset_dir, entry.id);
  constexpr int kFlags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW;
  UniqueFd fd;
  bool direct = false;
  if (direct_io) {
    fd.reset(::open(object.c_str(), kFlags | O_DIRECT));
    direct = fd.valid();  // EINVAL: the file system has no O_DIRECT
  }
  if (!fd.valid()) fd.reset(::open(object.c_str(), kFlags));
  if (!fd.valid()) {
    if (errno == ENOENT) return DataLoss(path + ": object missing (deleted or renamed)");
    return ErrnoStatus(path, errno);
  }
  // The length rule, from the manifest's size (the header, checked on the
  // first read, must agree with it).
  const format::Geometry g{block_size, entry.size};
  struct statx st {};
  const unsigned mask = STATX_TYPE | STATX_SIZE | (direct ? STATX_DIOALIGN : 0u);
  if (::statx(fd.get(), "", AT_EMPTY_PATH, mask, &st) != 0) return ErrnoStatus(path, errno);
  if ((st.stx_mask & (STATX_TYPE | STATX_SIZE)) != (STATX_TYPE | STATX_SIZE)) {
    return Internal(path + ": statx returned no type or size");
  }
  if (!S_ISREG(st.stx_mode)) return DataLoss(path + ": not a regular file");
  if (st.stx_size != g.CiphertextSize()) {
    return DataLoss(path + ": " + std::to_string(st.stx_size) + " bytes, expected " +
                    std::to_string(g.CiphertextSize()) + " (truncated or extended)");
  }
  std::shared_ptr<OpenFile> file(
      new OpenFile(ino, std::move(path), entry, key, g, std::move(fd), keys));
  file->direct_.store(direct, std::memory_order_relaxed);
  // O_DIRECT reads align to what the kernel reports for this file (statx
  // STATX_DIOALIGN: 512 on most disks) rather than 4 KiB, so a random 4 KiB
  // read (4,112 sealed bytes) reads 4.5 KiB instead of 8. Offsets into our
  // 4 KiB-aligned buffer move in the same steps, so they must satisfy the
  // memory alignment too: the larger of the two, if a power of two up to
  // 4 KiB; otherwise (older kernels, no report) 4 KiB.
  if (direct && (st.stx_mask & STATX_DIOALIGN) != 0 && st.stx_dio_offset_align != 0) {
    const size_t align = std::max<size_t>(st.stx_dio_offset_align, st.stx_dio_mem_align);
    if (align <= kDirectAlign && (align & (align - 1)) == 0) file->direct_align_ = align;
  }
  if (g.plaintext_size == 0) {
    // Header and the empty final block's tag, in one read.
    auto sealed = BlockReader::ReadLower(*file, 0, kHeaderSize + kTagSize);
    if (!sealed.ok()) return sealed.status();
    if (sealed->size() != kHeaderSize + kTagSize) {
      return DataLoss(file->path_ + ": lower object is truncated");
    }
    RETURN_IF_ERROR(file->AcceptHeader(sealed->first(kHeaderSize)));
    Status s = file->cipher()->OpenRun(0, 1, sealed->subspan(kHeaderSize), {});
    if (!s.ok()) return s.WithContext(file->path_);
  }
  return file;
}

void OpenFile::DisableDirect() const {
  int flags = ::fcntl(fd(), F_GETFL);
  if (flags >= 0) ::fcntl(fd(), F_SETFL, flags & ~O_DIRECT);
  direct_.store(false, std::memory_order_relaxed);
}

std::shared_ptr<const format::FileCipher> OpenFile::cipher() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cipher_;
}

Status OpenFile::AcceptHeader(std::span<const uint8_t> header) {
  if (header.size() != kHeaderSize) return DataLoss(path_ + ": shorter than the 68-byte header");
  if (!crypto::ConstantTimeEquals(crypto::Sha256(header), entry_.header_sha256)) {
    return DataLoss(path_ +
                    ": header digest differs from the manifest (tampered, swapped or rolled back)");
  }
  // The header is the manifest's: a cached cipher for this inode was derived
  // from these very bytes.
  std::shared_ptr<const format::FileCipher> cipher = keys_ ? keys_->Get(ino_) : nullptr;
  if (!cipher) {
    auto c = format::FileCipher::ForReading(key_, header, format::FileKind::kData);
    if (!c.ok()) return c.status().WithContext(path_);
    if (c->geometry().plaintext_size != geometry_.plaintext_size) {
      return DataLoss(path_ + ": header size differs from the manifest");
    }
    if (c->geometry().segment_size != geometry_.segment_size) {
      return DataLoss(path_ + ": header block size " + std::to_string(c->geometry().segment_size) +
                      " differs from the manifest's " + std::to_string(geometry_.segment_size));
    }
    cipher = std::make_shared<const format::FileCipher>(std::move(*c));
    if (keys_) keys_->Put(ino_, cipher);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!cipher_) cipher_ = std::move(cipher);
  return Status::Ok();
}

// ---- BlockReader ----

StatusOr<std::span<const uint8_t>> BlockReader::ReadLower(const OpenFile& f, uint64_t offset,
                                                          size_t size) {
  if (f.direct()) {
    auto got = ReadDirect(f, offset, size);
    if (got.ok() || got.status().code() != StatusCode::kUnavailable) return got;
    f.DisableDirect();
  }
  uint8_t* buf = t_buffers.Sealed(size);
  if (buf == nullptr) return Internal(f.path() + ": out of memory for a read buffer");
  ASSIGN_OR_RETURN(size_t got, PreadAll(f, buf, size, offset));
  return std::span<const uint8_t>(buf, got);
}

StatusOr<std::span<const uint8_t>> BlockReader::Read(OpenFile& f, uint64_t offset, size_t size) {
  const format::Geometry& g = f.geometry();
  if (offset >= g.plaintext_size || size == 0) return std::span<const uint8_t>();
  const uint64_t end = offset + std::min<uint64_t>(size, g.plaintext_size - offset);
  const uint64_t bs = g.segment_size;
  const uint64_t first = offset / bs;
  const uint64_t last = (end - 1) / bs;
  const uint64_t sealed_begin = g.SegmentOffset(first);
  const uint64_t sealed_end = g.SegmentOffset(last) + g.PlainSegmentSize(last) + kTagSize;

  // No block is decrypted before this handle has checked the header. A read
  // from block 0 brings the header along (with O_DIRECT it is in the aligned
  // read anyway); any other first read checks it with a read of its own.
  std::shared_ptr<const format::FileCipher> cipher = f.cipher();
  uint64_t read_begin = sealed_begin;
  if (!cipher) {
    if (first == 0) {
      read_begin = 0;
    } else {
      ASSIGN_OR_RETURN(std::span<const uint8_t> header, ReadLower(f, 0, kHeaderSize));
      RETURN_IF_ERROR(f.AcceptHeader(header));
      cipher = f.cipher();
    }
  }
  const auto want = static_cast<size_t>(sealed_end - read_begin);
  ASSIGN_OR_RETURN(std::span<const uint8_t> run, ReadLower(f, read_begin, want));
  if (!cipher) {
    RETURN_IF_ERROR(f.AcceptHeader(run.first(std::min(run.size(), kHeaderSize))));
    cipher = f.cipher();
  }
  // One call authenticates and decrypts the whole run (one cipher context
  // per thread, keyed once per file); a short `run` is a truncated object.
  const uint64_t count = last - first + 1;
  const auto skip = static_cast<size_t>(sealed_begin - read_begin);
  if (run.size() < skip) return DataLoss(BlockWhere(f, first) + ": lower object is truncated");
  std::span<uint8_t> plain = t_buffers.Plain(static_cast<size_t>(g.RunPlainSize(first, count)));
  Status s = cipher->OpenRun(first, count, run.subspan(skip), plain);
  if (!s.ok()) return s.WithContext(f.path());
  return std::span<const uint8_t>(
      plain.subspan(static_cast<size_t>(offset - first * bs), static_cast<size_t>(end - offset)));
}

void BlockReader::ReleaseThreadBuffers() {
  std::free(t_buffers.sealed);
  t_buffers.sealed = nullptr;
  t_buffers.sealed_size = 0;
  t_buffers.plain = crypto::SecretBytes();
}

}  // namespace cce::decryptfs
