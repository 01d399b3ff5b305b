// Key file, file header and per-file segment cipher (docs/format.md §2-§4).
#include "format/format.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace cce::format {
namespace {

constexpr std::string_view kKeyFilePrefix = "cce4long-dataset-key-v1 ";
constexpr std::string_view kKeyIdInfo = "cce4long/v1 key id";
constexpr std::string_view kFileKeyInfo = "cce4long/v2 file key";

void PutU64Le(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t GetU64Le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string SegmentName(uint64_t index) {
  return "segment " + std::to_string(index);
}

// ---- The per-thread AES-256-GCM context ----

std::atomic<uint64_t> g_next_key_serial{1};

// One OpenSSL cipher context per thread, keyed with the file key whose serial
// it records (0: none). EVP_CIPHER_CTX_free cleanses the key schedule, so a
// thread leaves no key material behind when it exits.
struct ThreadGcm {
  EVP_CIPHER_CTX* ctx = nullptr;
  uint64_t serial = 0;
  ThreadGcm() = default;
  ThreadGcm(const ThreadGcm&) = delete;
  ThreadGcm& operator=(const ThreadGcm&) = delete;
  ~ThreadGcm() { EVP_CIPHER_CTX_free(ctx); }
};
thread_local ThreadGcm t_gcm;

Status GcmFailure(std::string_view what) {
  t_gcm.serial = 0;  // re-key before the next use
  std::string detail;
  while (unsigned long e = ERR_get_error()) {  // NOLINT(google-runtime-int): OpenSSL's type
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    detail += detail.empty() ? ": " : "; ";
    detail += buf;
  }
  return Internal("AES-256-GCM " + std::string(what) + detail);
}

// This thread's context holding the key `serial` names; nullptr on an OpenSSL
// failure (the caller reports it with GcmFailure).
EVP_CIPHER_CTX* ThreadContext(uint64_t serial, const crypto::SecretBytes& key) {
  ThreadGcm& t = t_gcm;
  if (t.ctx == nullptr) {
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    if (ctx == nullptr) return nullptr;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, nullptr) != 1) {
      EVP_CIPHER_CTX_free(ctx);
      return nullptr;
    }
    t.ctx = ctx;
    t.serial = 0;
  }
  if (t.serial != serial) {
    t.serial = 0;
    if (key.size() != crypto::Aes256Gcm::kKeySize ||
        EVP_EncryptInit_ex(t.ctx, nullptr, nullptr, key.data(), nullptr) != 1) {
      return nullptr;
    }
    t.serial = serial;
  }
  return t.ctx;
}

void PutNonce(uint8_t* n, uint64_t index, bool last) {
  for (int i = 0; i < 8; ++i) n[i] = static_cast<uint8_t>(index >> (56 - 8 * i));
  n[8] = n[9] = n[10] = 0;
  n[11] = last ? 1 : 0;
}

enum class OpenResult { kOk, kAuthFailed, kInternal };

// Decrypts n bytes at ct (followed by its 16-byte tag) into out (== ct or
// disjoint).
OpenResult OpenOne(EVP_CIPHER_CTX* ctx, uint64_t index, bool last, const uint8_t* ct, size_t n,
                   uint8_t* out) {
  uint8_t nonce[12];
  PutNonce(nonce, index, last);
  uint8_t tag[kTagSize];
  std::memcpy(tag, ct + n, kTagSize);  // EVP takes a non-const pointer
  int len = 0;
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize), tag) != 1 ||
      (n > 0 && (EVP_DecryptUpdate(ctx, out, &len, ct, static_cast<int>(n)) != 1 ||
                 static_cast<size_t>(len) != n))) {
    return OpenResult::kInternal;
  }
  if (EVP_DecryptFinal_ex(ctx, out + n, &len) != 1) {
    ERR_clear_error();
    return OpenResult::kAuthFailed;
  }
  return OpenResult::kOk;
}

bool SealOne(EVP_CIPHER_CTX* ctx, uint64_t index, bool last, const uint8_t* plain, size_t n,
             uint8_t* out) {
  uint8_t nonce[12];
  PutNonce(nonce, index, last);
  int len = 0;
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) != 1 ||
      (n > 0 && (EVP_EncryptUpdate(ctx, out, &len, plain, static_cast<int>(n)) != 1 ||
                 static_cast<size_t>(len) != n)) ||
      EVP_EncryptFinal_ex(ctx, out + n, &len) != 1 || len != 0 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize), out + n) != 1) {
    return false;
  }
  return true;
}

bool Overlap(const uint8_t* a, size_t la, const uint8_t* b, size_t lb) {
  if (la == 0 || lb == 0) return false;
  auto x = reinterpret_cast<uintptr_t>(a);
  auto y = reinterpret_cast<uintptr_t>(b);
  return x < y + lb && y < x + la;
}

}  // namespace

// ---- DatasetKey ----

StatusOr<DatasetKey> DatasetKey::FromBytes(ByteSpan key) {
  if (key.size() != kKeySize) {
    return InvalidArgument("dataset key: " + std::to_string(key.size()) + " bytes, expected " +
                           std::to_string(kKeySize));
  }
  DatasetKey k;
  k.key_ = crypto::SecretBytes::CopyOf(key);
  RETURN_IF_ERROR(crypto::HkdfSha256(key, {}, crypto::AsBytes(kKeyIdInfo), k.id_));
  return k;
}

StatusOr<DatasetKey> DatasetKey::Generate() {
  ASSIGN_OR_RETURN(crypto::SecretBytes raw, crypto::RandomSecret(kKeySize));
  return FromBytes(raw.span());
}

StatusOr<DatasetKey> DatasetKey::ParseKeyFile(std::string_view contents, std::string_view what) {
  std::string w(what);
  if (contents.substr(0, kKeyFilePrefix.size()) != kKeyFilePrefix) {
    return InvalidArgument(w + ": byte 0: expected a key file starting with \"" +
                           std::string(kKeyFilePrefix) + "\"");
  }
  std::string_view hex = contents.substr(kKeyFilePrefix.size());
  if (!hex.empty() && hex.back() == '\n') hex.remove_suffix(1);
  if (hex.size() != 2 * kKeySize) {
    return InvalidArgument(w + ": byte " + std::to_string(kKeyFilePrefix.size()) + ": expected " +
                           std::to_string(2 * kKeySize) + " hex digits and a newline, found " +
                           std::to_string(hex.size()) + " characters");
  }
  size_t bad = hex.find_first_not_of("0123456789abcdefABCDEF");
  if (bad != std::string_view::npos) {
    return InvalidArgument(w + ": byte " + std::to_string(kKeyFilePrefix.size() + bad) +
                           ": expected a hex digit");
  }
  ASSIGN_OR_RETURN(crypto::SecretBytes raw, crypto::SecretFromHex(hex));
  return FromBytes(raw.span());
}

StatusOr<DatasetKey> DatasetKey::LoadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return ErrnoStatus("key file " + path, errno);
  auto key = ReadFromFd(fd.get());
  if (!key.ok()) return key.status().WithContext("key file " + path);
  return key;
}

StatusOr<DatasetKey> DatasetKey::ReadFromFd(int fd) {
  // Read into locked memory; a key file is tiny and fixed-size.
  constexpr size_t kMax = kKeyFilePrefix.size() + 2 * kKeySize + 1;
  crypto::SecretBytes buf(kMax + 1);
  size_t len = 0;
  while (len < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + len, buf.size() - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read key", errno);
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  if (len > kMax) {
    return InvalidArgument("key: longer than " + std::to_string(kMax) + " bytes; not a key file");
  }
  return ParseKeyFile({reinterpret_cast<const char*>(buf.data()), len}, "key");
}

crypto::SecretBytes DatasetKey::EncodeKeyFile() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  crypto::SecretBytes out(kKeyFilePrefix.size() + 2 * kKeySize + 1);
  std::memcpy(out.data(), kKeyFilePrefix.data(), kKeyFilePrefix.size());
  uint8_t* p = out.data() + kKeyFilePrefix.size();
  for (size_t i = 0; i < kKeySize; ++i) {
    *p++ = static_cast<uint8_t>(kDigits[key_.data()[i] >> 4]);
    *p++ = static_cast<uint8_t>(kDigits[key_.data()[i] & 15]);
  }
  *p = '\n';
  return out;
}

// ---- FileHeader ----

std::array<uint8_t, kHeaderSize> FileHeader::Serialize() const {
  std::array<uint8_t, kHeaderSize> b{};
  std::memcpy(b.data(), kMagic.data(), kMagic.size());
  b[8] = kVersion;
  b[9] = kAlgAes256GcmHkdfSha256;
  b[10] = kBlockExponent;
  b[11] = static_cast<uint8_t>(kind);
  std::memcpy(b.data() + 12, key_id.data(), kKeyIdSize);
  std::memcpy(b.data() + 28, salt.data(), kSaltSize);
  PutU64Le(b.data() + 60, plaintext_size);
  return b;
}

StatusOr<FileHeader> FileHeader::Parse(ByteSpan b) {
  if (b.size() < kHeaderSize) {
    return DataLoss("header: " + std::to_string(b.size()) + " bytes, expected " +
                    std::to_string(kHeaderSize));
  }
  if (std::memcmp(b.data(), kMagic.data(), kMagic.size()) != 0) {
    return DataLoss("header byte 0: bad magic, expected \"CCE4DSF\\n\"");
  }
  if (b[8] == 1) {
    return DataLoss(
        "header byte 8: version 1 (dropped in format v2, 2026-12): re-encrypt the plaintext with "
        "this cce");
  }
  if (b[8] != kVersion) {
    return DataLoss("header byte 8: version " + std::to_string(b[8]) + ", expected 2");
  }
  if (b[9] != kAlgAes256GcmHkdfSha256) {
    return DataLoss("header byte 9: algorithm " + std::to_string(b[9]) +
                    ", expected 1 (AES-256-GCM, HKDF-SHA256)");
  }
  if (b[10] != kBlockExponent) {
    return DataLoss("header byte 10: segment size exponent " + std::to_string(b[10]) +
                    ", expected 12 (4 KiB, the only size in format v2)");
  }
  if (b[11] != static_cast<uint8_t>(FileKind::kData) &&
      b[11] != static_cast<uint8_t>(FileKind::kManifest)) {
    return DataLoss("header byte 11: file kind " + std::to_string(b[11]) +
                    ", expected 1 (data) or 2 (manifest)");
  }
  FileHeader h;
  h.kind = static_cast<FileKind>(b[11]);
  std::memcpy(h.key_id.data(), b.data() + 12, kKeyIdSize);
  std::memcpy(h.salt.data(), b.data() + 28, kSaltSize);
  h.plaintext_size = GetU64Le(b.data() + 60);
  // Bound the size so segment arithmetic cannot overflow (2^62 bytes).
  if (h.plaintext_size > (uint64_t{1} << 62)) {
    return DataLoss("header byte 60: plaintext size " + std::to_string(h.plaintext_size) +
                    " exceeds 2^62");
  }
  return h;
}

// ---- FileCipher ----

std::array<uint8_t, 12> SegmentNonce(uint64_t index, bool last) {
  std::array<uint8_t, 12> n{};
  for (int i = 0; i < 8; ++i)
    n[static_cast<size_t>(i)] = static_cast<uint8_t>(index >> (56 - 8 * i));
  n[11] = last ? 1 : 0;
  return n;
}

StatusOr<FileCipher> FileCipher::Make(const DatasetKey& key, const FileHeader& header) {
  FileCipher c;
  c.header_ = header;
  c.header_bytes_ = header.Serialize();
  c.geometry_ = Geometry::For(header);
  // info = label || whole header: any header change yields another key.
  std::vector<uint8_t> info(kFileKeyInfo.begin(), kFileKeyInfo.end());
  info.insert(info.end(), c.header_bytes_.begin(), c.header_bytes_.end());
  c.file_key_ = std::make_shared<crypto::SecretBytes>(crypto::Aes256Gcm::kKeySize);
  RETURN_IF_ERROR(crypto::HkdfSha256(key.bytes(), header.salt, info, c.file_key_->span()));
  c.key_serial_ = g_next_key_serial.fetch_add(1, std::memory_order_relaxed);
  return c;
}

StatusOr<FileCipher> FileCipher::ForReading(const DatasetKey& key, ByteSpan header_bytes,
                                            FileKind expected_kind) {
  ASSIGN_OR_RETURN(FileHeader h, FileHeader::Parse(header_bytes));
  if (h.kind != expected_kind) {
    return DataLoss("header byte 11: file kind " + std::to_string(static_cast<int>(h.kind)) +
                    ", expected " + std::to_string(static_cast<int>(expected_kind)));
  }
  if (!crypto::ConstantTimeEquals(h.key_id, key.id())) {
    return PermissionDenied("header byte 12: key id " + crypto::ToHex(h.key_id) +
                            " does not match the given key (" + crypto::ToHex(key.id()) +
                            "): wrong key");
  }
  return Make(key, h);
}

StatusOr<FileCipher> FileCipher::ForWriting(const DatasetKey& key, FileKind kind,
                                            uint64_t plaintext_size) {
  std::array<uint8_t, kSaltSize> salt{};
  RETURN_IF_ERROR(crypto::RandomBytes(salt));
  return ForWritingWithSalt(key, kind, plaintext_size, salt);
}

StatusOr<FileCipher> FileCipher::ForWritingWithSalt(const DatasetKey& key, FileKind kind,
                                                    uint64_t plaintext_size, ByteSpan salt) {
  if (salt.size() != kSaltSize) return InvalidArgument("salt: expected 32 bytes");
  FileHeader h;
  h.kind = kind;
  h.key_id = key.id();
  std::memcpy(h.salt.data(), salt.data(), kSaltSize);
  h.plaintext_size = plaintext_size;
  return Make(key, h);
}

Status FileCipher::OpenRun(uint64_t first, uint64_t count, ByteSpan sealed,
                           std::span<uint8_t> out) const {
  const bool in_place = !out.empty() && out.data() == sealed.data();
  // Fail closed: whatever goes wrong, no plaintext of the run stays behind.
  auto fail = [&](Status s) {
    if (!out.empty()) OPENSSL_cleanse(out.data(), out.size());
    if (in_place) OPENSSL_cleanse(const_cast<uint8_t*>(sealed.data()), sealed.size());
    return s;
  };
  const Geometry& g = geometry_;
  const uint64_t segments = g.SegmentCount();
  if (first >= segments || count > segments - first) {
    if (count == 0 && first <= segments && out.empty() && sealed.empty()) return Status::Ok();
    return fail(DataLoss(SegmentName(first < segments ? segments : first) +
                         ": beyond the last segment " + std::to_string(segments - 1)));
  }
  const uint64_t plain_size = g.RunPlainSize(first, count);
  const uint64_t sealed_size = plain_size + count * kTagSize;
  if (out.size() != plain_size) {
    return fail(InvalidArgument(SegmentName(first) + ": output buffer holds " +
                                std::to_string(out.size()) + " bytes, the run's plaintext is " +
                                std::to_string(plain_size)));
  }
  if (sealed.size() > sealed_size) {
    return fail(InvalidArgument(SegmentName(first) + ": " + std::to_string(sealed.size()) +
                                " sealed bytes, more than the run's " +
                                std::to_string(sealed_size)));
  }
  if (!in_place && Overlap(sealed.data(), sealed.size(), out.data(), out.size())) {
    return fail(InvalidArgument(SegmentName(first) +
                                ": output overlaps the sealed input (only exact in-place works)"));
  }
  if (sealed.size() < sealed_size) {
    // Only the run's last segment may be shorter than a full one, so the
    // first incomplete segment follows the last complete one.
    const uint64_t full = sealed.size() / (uint64_t{g.segment_size} + kTagSize);
    const uint64_t bad = first + std::min(full, count - 1);
    return fail(DataLoss(SegmentName(bad) + ": truncated: " + std::to_string(sealed.size()) +
                         " ciphertext bytes for segments " + std::to_string(first) + ".." +
                         std::to_string(first + count - 1) + ", expected " +
                         std::to_string(sealed_size)));
  }
  if (!file_key_) return fail(FailedPrecondition("file cipher was moved from"));
  EVP_CIPHER_CTX* ctx = ThreadContext(key_serial_, *file_key_);
  if (ctx == nullptr) return fail(GcmFailure("open: keying the cipher context"));
  const uint8_t* in = sealed.data();
  uint8_t* dst = out.data();
  for (uint64_t i = first; i < first + count; ++i) {
    const size_t n = g.PlainSegmentSize(i);
    const bool last = i + 1 == segments;
    OpenResult r;
    if (in_place) {
      auto* at = const_cast<uint8_t*>(in);
      r = OpenOne(ctx, i, last, in, n, at);
      if (r == OpenResult::kOk && at != dst) std::memmove(dst, at, n);
    } else {
      r = OpenOne(ctx, i, last, in, n, dst);
    }
    if (r == OpenResult::kAuthFailed) {
      return fail(DataLoss(SegmentName(i) + ": authentication failed"));
    }
    if (r == OpenResult::kInternal) return fail(GcmFailure("open: " + SegmentName(i)));
    in += n + kTagSize;
    dst += n;
  }
  return Status::Ok();
}

Status FileCipher::SealRun(uint64_t first, uint64_t count, ByteSpan plaintext,
                           std::span<uint8_t> out) const {
  const Geometry& g = geometry_;
  const uint64_t segments = g.SegmentCount();
  if (first > segments || count > segments - first) {
    return InvalidArgument(SegmentName(first) + ": a run of " + std::to_string(count) +
                           " goes beyond the last segment " + std::to_string(segments - 1));
  }
  const uint64_t plain_size = g.RunPlainSize(first, count);
  const uint64_t sealed_size = plain_size + count * kTagSize;
  if (plaintext.size() != plain_size || out.size() != sealed_size) {
    return InvalidArgument(SegmentName(first) + ": run of " + std::to_string(count) +
                           " segments takes " + std::to_string(plain_size) + " plaintext and " +
                           std::to_string(sealed_size) + " sealed bytes, got " +
                           std::to_string(plaintext.size()) + " and " +
                           std::to_string(out.size()));
  }
  if (Overlap(plaintext.data(), plaintext.size(), out.data(), out.size())) {
    return InvalidArgument(SegmentName(first) + ": output overlaps the plaintext");
  }
  if (count == 0) return Status::Ok();
  if (!file_key_) return FailedPrecondition("file cipher was moved from");
  EVP_CIPHER_CTX* ctx = ThreadContext(key_serial_, *file_key_);
  if (ctx == nullptr) return GcmFailure("seal: keying the cipher context");
  const uint8_t* src = plaintext.data();
  uint8_t* dst = out.data();
  for (uint64_t i = first; i < first + count; ++i) {
    const size_t n = g.PlainSegmentSize(i);
    if (!SealOne(ctx, i, i + 1 == segments, src, n, dst)) {
      OPENSSL_cleanse(out.data(), out.size());
      return GcmFailure("seal: " + SegmentName(i));
    }
    src += n;
    dst += n + kTagSize;
  }
  return Status::Ok();
}

StatusOr<SegmentCrypter> FileCipher::NewCrypter() const {
  if (!file_key_) return FailedPrecondition("file cipher was moved from");
  return SegmentCrypter(*this);
}

Status FileCipher::SealSegment(uint64_t index, ByteSpan plaintext, std::span<uint8_t> out) const {
  const Geometry& g = geometry_;
  if (index >= g.SegmentCount() || plaintext.size() != g.PlainSegmentSize(index) ||
      out.size() != plaintext.size() + kTagSize) {
    return InvalidArgument(SegmentName(index) + ": wrong index or buffer size");
  }
  return SealRun(index, 1, plaintext, out);
}

Status FileCipher::OpenSegment(uint64_t index, ByteSpan sealed, std::span<uint8_t> out) const {
  const Geometry& g = geometry_;
  auto fail = [&out](Status s) {
    if (!out.empty()) OPENSSL_cleanse(out.data(), out.size());
    return s;
  };
  if (index >= g.SegmentCount()) {
    return fail(DataLoss(SegmentName(index) + ": beyond the last segment " +
                         std::to_string(g.SegmentCount() - 1)));
  }
  size_t plain = g.PlainSegmentSize(index);
  if (sealed.size() != plain + kTagSize) {
    return fail(DataLoss(SegmentName(index) + ": " + std::to_string(sealed.size()) +
                         " ciphertext bytes, expected " + std::to_string(plain + kTagSize) +
                         " (truncated?)"));
  }
  if (out.size() != plain) return fail(InvalidArgument(SegmentName(index) + ": output buffer size"));
  return OpenRun(index, 1, sealed, out);
}

Status SegmentCrypter::Seal(uint64_t index, ByteSpan plaintext, std::span<uint8_t> out) {
  return cipher_->SealSegment(index, plaintext, out);
}

Status SegmentCrypter::Open(uint64_t index, ByteSpan sealed, std::span<uint8_t> out) {
  return cipher_->OpenSegment(index, sealed, out);
}

}  // namespace cce::format
