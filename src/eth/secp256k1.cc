#include "eth/secp256k1.h"

#include <fcntl.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string_view>
#include <utility>

#include "base/fd.h"

namespace cce::eth {
namespace {

// The curve order n and n/2, big-endian.
constexpr std::array<uint8_t, 32> kOrder = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
constexpr std::array<uint8_t, 32> kHalfOrder = {
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0};

bool IsZero(crypto::ByteSpan b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

// Big-endian comparison of two 32-byte values.
bool Less(crypto::ByteSpan a, const std::array<uint8_t, 32>& b) {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
}

// EIP-2: s above n/2 is the malleated twin (n - s) of a valid signature.
bool IsHighS(crypto::ByteSpan s) {
  return !Less(s, kHalfOrder) && !std::equal(s.begin(), s.end(), kHalfOrder.begin());
}

// One context for the process, randomized once against side channels (blinding
// of the signing and key-generation multiplications). After that it is only
// read, which libsecp256k1 allows from many threads.
const secp256k1_context* Context() {
  static const secp256k1_context* const ctx = [] {
    secp256k1_context* c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    std::array<uint8_t, 32> seed{};
    if (crypto::RandomBytes(seed).ok()) {
      // A failed randomization leaves the context unblinded but correct.
      const bool blinded = secp256k1_context_randomize(c, seed.data()) == 1;
      static_cast<void>(blinded);
    }
    return c;
  }();
  return ctx;
}

std::array<uint8_t, 64> SerializeUncompressed(const secp256k1_pubkey& pub) {
  std::array<uint8_t, 65> buf{};
  size_t len = buf.size();
  secp256k1_ec_pubkey_serialize(Context(), buf.data(), &len, &pub, SECP256K1_EC_UNCOMPRESSED);
  std::array<uint8_t, 64> out{};
  std::copy(buf.begin() + 1, buf.end(), out.begin());
  return out;
}

}  // namespace

std::array<uint8_t, 65> Signature::Rsv(uint8_t v_base) const {
  std::array<uint8_t, 65> out{};
  std::copy(r.begin(), r.end(), out.begin());
  std::copy(s.begin(), s.end(), out.begin() + 32);
  out[64] = static_cast<uint8_t>(v_base + recovery_id);
  return out;
}

PrivateKey::PrivateKey(crypto::SecretBytes key, Address address, std::array<uint8_t, 64> pub)
    : key_(std::move(key)), address_(address), public_key_(pub) {}

StatusOr<PrivateKey> PrivateKey::FromBytes(crypto::ByteSpan key32) {
  if (key32.size() != 32) {
    return InvalidArgument("private key: expected 32 bytes, got " + std::to_string(key32.size()));
  }
  if (IsZero(key32)) return InvalidArgument("private key: zero is not a valid secp256k1 key");
  if (!Less(key32, kOrder)) {
    return InvalidArgument("private key: not below the secp256k1 group order n");
  }
  crypto::SecretBytes key = crypto::SecretBytes::CopyOf(key32);
  secp256k1_pubkey pub;
  if (!secp256k1_ec_pubkey_create(Context(), &pub, key.data())) {
    return InvalidArgument("private key: rejected by libsecp256k1");
  }
  const std::array<uint8_t, 64> public_key = SerializeUncompressed(pub);
  return PrivateKey(std::move(key), AddressOfPublicKey(public_key), public_key);
}

StatusOr<PrivateKey> PrivateKey::ReadFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ENOENT) return NotFound(path + ": no such key file");
    return ErrnoStatus(path + ": open", err);
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus(path + ": fstat", errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(path + ": key file is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDenied(path + ": key file has mode " + mode +
                            "; group and others must have no access (chmod 600 " + path + ")");
  }
  // "0x" + 64 hex + "\r\n" is 68 bytes: read at most one byte more to detect
  // a longer file, straight into locked memory.
  constexpr size_t kMax = 68;
  crypto::SecretBytes buf(kMax + 1);
  size_t len = 0;
  while (len < buf.size()) {
    const ssize_t n = read(fd.get(), buf.data() + len, buf.size() - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(path + ": read", errno);
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  if (len > kMax) return InvalidArgument(path + ": key file is larger than one key line");
  std::string_view text(reinterpret_cast<const char*>(buf.data()), len);
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (text.size() >= 2 && text[0] == '0' && text[1] == 'x') {
    text.remove_prefix(2);
  }
  if (text.size() != 64) {
    return InvalidArgument(path + ": expected one line of 64 hex digits (optionally 0x-prefixed)");
  }
  auto key = crypto::SecretFromHex(text);
  // The decoder's message could quote the input: never pass it on.
  if (!key.ok()) return InvalidArgument(path + ": key is not valid hex");
  auto parsed = FromBytes(key->span());
  if (!parsed.ok()) return parsed.status().WithContext(path);
  return parsed;
}

StatusOr<PrivateKey> PrivateKey::Generate() {
  // A uniform 32-byte string is a valid key except with probability ~2^-128.
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto secret = crypto::RandomSecret(32);
    if (!secret.ok()) return Internal("generating a key: " + secret.status().message());
    auto key = FromBytes(secret->span());
    if (key.ok()) return key;
  }
  return Internal("generating a key: no valid scalar in 16 attempts");
}

Address PrivateKey::address() const {
  return address_;
}

std::array<uint8_t, 64> PrivateKey::PublicKey() const {
  return public_key_;
}

StatusOr<Signature> PrivateKey::Sign(const Hash32& digest) const {
  if (key_.size() != 32) return Internal("sign: moved-from private key");
  secp256k1_ecdsa_recoverable_signature sig;
  // A null nonce function is RFC 6979 (HMAC-SHA256); libsecp256k1 always
  // returns the low-s form.
  if (!secp256k1_ecdsa_sign_recoverable(Context(), &sig, digest.bytes.data(), key_.data(), nullptr,
                                        nullptr)) {
    return Internal("sign: libsecp256k1 refused to sign");
  }
  std::array<uint8_t, 64> compact{};
  int recid = 0;
  secp256k1_ecdsa_recoverable_signature_serialize_compact(Context(), compact.data(), &recid, &sig);
  Signature out;
  std::copy(compact.begin(), compact.begin() + 32, out.r.begin());
  std::copy(compact.begin() + 32, compact.end(), out.s.begin());
  out.recovery_id = static_cast<uint8_t>(recid);
  if (out.recovery_id > 1 || IsHighS(out.s)) {
    return Internal("sign: unexpected signature form from libsecp256k1");
  }
  return out;
}

StatusOr<Address> RecoverAddress(const Hash32& digest, crypto::ByteSpan rsv65) {
  if (rsv65.size() != 65) {
    return InvalidArgument("signature: expected 65 bytes (r || s || v), got " +
                           std::to_string(rsv65.size()));
  }
  const crypto::ByteSpan r = rsv65.subspan(0, 32);
  const crypto::ByteSpan s = rsv65.subspan(32, 32);
  const uint8_t v = rsv65[64];
  int recid = 0;
  if (v == 0 || v == 1) {
    recid = v;
  } else if (v == 27 || v == 28) {
    recid = v - 27;
  } else {
    return InvalidArgument("signature: v must be 0, 1, 27 or 28, got " + std::to_string(v));
  }
  if (IsZero(r) || !Less(r, kOrder)) return InvalidArgument("signature: r out of range");
  if (IsZero(s) || !Less(s, kOrder)) return InvalidArgument("signature: s out of range");
  if (IsHighS(s)) {
    return InvalidArgument("signature: s is in the upper half of the group order (malleable)");
  }
  secp256k1_ecdsa_recoverable_signature sig;
  if (!secp256k1_ecdsa_recoverable_signature_parse_compact(Context(), &sig, rsv65.data(), recid)) {
    return InvalidArgument("signature: not a valid secp256k1 signature");
  }
  secp256k1_pubkey pub;
  if (!secp256k1_ecdsa_recover(Context(), &pub, &sig, digest.bytes.data())) {
    return InvalidArgument("signature: no public key recovers from it");
  }
  return AddressOfPublicKey(SerializeUncompressed(pub));
}

Address AddressOfPublicKey(crypto::ByteSpan uncompressed64) {
  Address a;
  if (uncompressed64.size() != 64) return a;
  const Hash32 h = Keccak256(uncompressed64);
  std::copy(h.bytes.begin() + 12, h.bytes.end(), a.bytes.begin());
  return a;
}

}  // namespace cce::eth
