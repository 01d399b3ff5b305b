// Key file, file header and per-file segment cipher (docs/format.md §2-§4).
#include "format/format.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cce::format {
namespace {

constexpr std::string_view kKeyFilePrefix = "cce4long-dataset-key-v1 ";
constexpr std::string_view kKeyIdInfo = "cce4long/v1 key id";
constexpr std::string_view kFileKeyInfo = "cce4long/v1 file key";

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
  b[10] = segment_exponent;
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
  if (b[8] != kVersion) {
    return DataLoss("header byte 8: version " + std::to_string(b[8]) + ", expected 1");
  }
  if (b[9] != kAlgAes256GcmHkdfSha256) {
    return DataLoss("header byte 9: algorithm " + std::to_string(b[9]) +
                    ", expected 1 (AES-256-GCM, HKDF-SHA256)");
  }
  if (b[10] < kMinSegmentExponent || b[10] > kMaxSegmentExponent) {
    return DataLoss("header byte 10: segment size exponent " + std::to_string(b[10]) +
                    ", expected 12..24");
  }
  if (b[11] != static_cast<uint8_t>(FileKind::kData) &&
      b[11] != static_cast<uint8_t>(FileKind::kManifest)) {
    return DataLoss("header byte 11: file kind " + std::to_string(b[11]) +
                    ", expected 1 (data) or 2 (manifest)");
  }
  FileHeader h;
  h.segment_exponent = b[10];
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
                                            uint64_t plaintext_size, uint8_t segment_exponent) {
  std::array<uint8_t, kSaltSize> salt{};
  RETURN_IF_ERROR(crypto::RandomBytes(salt));
  return ForWritingWithSalt(key, kind, plaintext_size, segment_exponent, salt);
}

StatusOr<FileCipher> FileCipher::ForWritingWithSalt(const DatasetKey& key, FileKind kind,
                                                    uint64_t plaintext_size,
                                                    uint8_t segment_exponent, ByteSpan salt) {
  if (segment_exponent < kMinSegmentExponent || segment_exponent > kMaxSegmentExponent) {
    return InvalidArgument("segment size exponent " + std::to_string(segment_exponent) +
                           ": expected 12..24");
  }
  if (salt.size() != kSaltSize) return InvalidArgument("salt: expected 32 bytes");
  FileHeader h;
  h.segment_exponent = segment_exponent;
  h.kind = kind;
  h.key_id = key.id();
  std::memcpy(h.salt.data(), salt.data(), kSaltSize);
  h.plaintext_size = plaintext_size;
  return Make(key, h);
}

StatusOr<SegmentCrypter> FileCipher::NewCrypter() const {
  ASSIGN_OR_RETURN(crypto::Aes256Gcm gcm, crypto::Aes256Gcm::Create(file_key_->span()));
  return SegmentCrypter(*this, std::move(gcm));
}

Status FileCipher::SealSegment(uint64_t index, ByteSpan plaintext, std::span<uint8_t> out) const {
  ASSIGN_OR_RETURN(SegmentCrypter c, NewCrypter());
  return c.Seal(index, plaintext, out);
}

Status FileCipher::OpenSegment(uint64_t index, ByteSpan sealed, std::span<uint8_t> out) const {
  ASSIGN_OR_RETURN(SegmentCrypter c, NewCrypter());
  return c.Open(index, sealed, out);
}

Status SegmentCrypter::Seal(uint64_t index, ByteSpan plaintext, std::span<uint8_t> out) {
  const Geometry& g = cipher_->geometry();
  if (index >= g.SegmentCount() || plaintext.size() != g.PlainSegmentSize(index) ||
      out.size() != plaintext.size() + kTagSize) {
    return InvalidArgument(SegmentName(index) + ": wrong index or buffer size");
  }
  auto nonce = SegmentNonce(index, index + 1 == g.SegmentCount());
  return gcm_.Seal(nonce, {}, plaintext, out);
}

Status SegmentCrypter::Open(uint64_t index, ByteSpan sealed, std::span<uint8_t> out) {
  const Geometry& g = cipher_->geometry();
  if (index >= g.SegmentCount()) {
    return DataLoss(SegmentName(index) + ": beyond the last segment " +
                    std::to_string(g.SegmentCount() - 1));
  }
  size_t plain = g.PlainSegmentSize(index);
  if (sealed.size() != plain + kTagSize) {
    return DataLoss(SegmentName(index) + ": " + std::to_string(sealed.size()) +
                    " ciphertext bytes, expected " + std::to_string(plain + kTagSize) +
                    " (truncated?)");
  }
  if (out.size() != plain) return InvalidArgument(SegmentName(index) + ": output buffer size");
  auto nonce = SegmentNonce(index, index + 1 == g.SegmentCount());
  Status s = gcm_.Open(nonce, {}, sealed, out);
  if (s.ok()) return s;
  if (s.code() == StatusCode::kDataLoss) {
    return DataLoss(SegmentName(index) + ": authentication failed");
  }
  return s.WithContext(SegmentName(index));  // an internal failure, not tampering
}

}  // namespace cce::format
