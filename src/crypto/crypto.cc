// Implementation of the crypto component over OpenSSL 3 EVP/provider APIs.
// Deprecated low-level APIs are compiled out so a slip shows up as a build
// error rather than a warning.
#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED

#include "crypto/crypto.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "crypto/openssl_util.h"

namespace cce::crypto {
namespace {

// ---- RAII for OpenSSL handles ---------------------------------------------

using internal::DrainOpensslErrors;
using internal::Free;
using internal::MdCtxPtr;
using internal::OpensslFailure;
using internal::OpensslInternal;
using internal::P256Params;
using internal::P256PublicFromPoint;
using internal::ParamBldPtr;
using internal::ParamsPtr;
using internal::PkeyCtxPtr;
using internal::PkeyPtr;
using internal::Sz;

using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, Free<EVP_CIPHER_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Free<BN_clear_free>>;
using BnCtxPtr = std::unique_ptr<BN_CTX, Free<BN_CTX_free>>;
using EcGroupPtr = std::unique_ptr<EC_GROUP, Free<EC_GROUP_free>>;
using EcPointPtr = std::unique_ptr<EC_POINT, Free<EC_POINT_free>>;

// ---- error helpers ---------------------------------------------------------

// For the few functions whose signature returns a value rather than a Status
// (digests, PublicKey()): their only failure modes are allocation failure or a
// broken libcrypto, and continuing with a garbage digest or key would be
// unsafe, so we stop the process (fail closed).
[[noreturn]] void Fatal(std::string_view what) {
  std::string errors = DrainOpensslErrors();
  (void)std::fprintf(stderr, "cce crypto: fatal: %.*s: %s\n", static_cast<int>(what.size()),
                     what.data(), errors.c_str());
  std::abort();
}

// OpenSSL functions take (pointer, length); some reject a null pointer even
// with length 0. Empty spans may carry a null data(), so substitute a valid
// address.
const uint8_t* Ptr(ByteSpan s) {
  static constexpr uint8_t kEmpty = 0;
  return s.empty() ? &kEmpty : s.data();
}

// True if [in, in+in_len) and [out, out+out_len) are the same start or do not
// overlap. EVP ciphers handle exact aliasing but not a shifted overlap.
bool ExactOrDisjoint(const uint8_t* in, size_t in_len, const uint8_t* out, size_t out_len) {
  if (in == out || in_len == 0 || out_len == 0) return true;
  const auto a = reinterpret_cast<uintptr_t>(in);
  const auto b = reinterpret_cast<uintptr_t>(out);
  return a + in_len <= b || b + out_len <= a;
}

// EVP update functions take int lengths; feed large inputs in chunks.
constexpr size_t kMaxEvpChunk = size_t{1} << 30;

using CipherUpdateFn = int (*)(EVP_CIPHER_CTX*, unsigned char*, int*, const unsigned char*, int);

// out == nullptr feeds AAD.
bool CipherUpdate(CipherUpdateFn fn, EVP_CIPHER_CTX* ctx, uint8_t* out, ByteSpan in) {
  size_t done = 0;
  while (done < in.size()) {
    const size_t n = std::min(kMaxEvpChunk, in.size() - done);
    int outl = 0;
    if (fn(ctx, out == nullptr ? nullptr : out + done, &outl, in.data() + done,
           static_cast<int>(n)) != 1) {
      return false;
    }
    // GCM is a stream mode: every input byte produces one output byte at once.
    if (out != nullptr && static_cast<size_t>(outl) != n) return false;
    done += n;
  }
  return true;
}

// ---- SecretBytes support ---------------------------------------------------

std::atomic<size_t> g_mlock_failures{0};

size_t PageSize() {
  static const size_t page = [] {
    const long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? static_cast<size_t>(p) : size_t{4096};
  }();
  return page;
}

// Each SecretBytes gets whole pages of its own mapping: mlock/munlock are not
// reference counted, so sharing a page with another buffer (as malloc would)
// lets one object's munlock unlock another's key.
size_t MappedSize(size_t size) {
  const size_t page = PageSize();
  return (size + page - 1) / page * page;
}

// Small secrets (keys, shared secrets, tokens: up to kSlotBytes) share
// locked pages instead of each mapping, locking, unlocking and unmapping its
// own page: that was four system calls, a TLB shoot-down across cores and
// ~10 % of DecryptFS's CPU per small file, and ~4 % of the plane's per key
// release (docs/performance.md). One region of kRegionBytes is reserved
// once, kept out of core dumps, and locked chunk by chunk as it fills; its
// pages are never unlocked or unmapped, so no secret's munlock can unlock
// another's (the reason each large secret has pages of its own). A freed
// slot is wiped before it is reused. When the region is full (65,536 live
// small secrets) or cannot be mapped, secrets fall back to their own pages.
class SecretSlab {
 public:
  static constexpr size_t kSlotBytes = 64;
  static constexpr size_t kChunkBytes = 64 * 1024;
  static constexpr size_t kRegionBytes = 4 * 1024 * 1024;

  static SecretSlab& Get() {
    static SecretSlab* slab = new SecretSlab();  // never destroyed: secrets outlive statics
    return *slab;
  }

  // A zero-filled slot, or nullptr (use a mapping of its own).
  uint8_t* Take() {
    std::lock_guard<std::mutex> l(mu_);
    if (free_.empty() && !Grow()) return nullptr;
    uint8_t* p = free_.back();
    free_.pop_back();
    return p;
  }

  bool Owns(const uint8_t* p) const {
    const uint8_t* base = base_.load(std::memory_order_acquire);
    return base != nullptr && p >= base && p < base + kRegionBytes;
  }

  void Give(uint8_t* p) {
    OPENSSL_cleanse(p, kSlotBytes);  // zeroes: the next Take hands out zeros
    std::lock_guard<std::mutex> l(mu_);
    free_.push_back(p);
  }

 private:
  // Locks the next chunk and adds its slots to the free list (mu_ held).
  bool Grow() {
    if (unavailable_ || committed_ == kRegionBytes) return false;
    uint8_t* base = base_.load(std::memory_order_relaxed);
    if (base == nullptr) {
      void* p = mmap(nullptr, kRegionBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) {
        unavailable_ = true;
        return false;
      }
      (void)madvise(p, kRegionBytes, MADV_DONTDUMP);  // best effort, as for large secrets
      base = static_cast<uint8_t*>(p);
      base_.store(base, std::memory_order_release);
    }
    uint8_t* chunk = base + committed_;
    if (mlock(chunk, kChunkBytes) != 0) g_mlock_failures.fetch_add(1, std::memory_order_relaxed);
    committed_ += kChunkBytes;
    free_.reserve(free_.size() + kChunkBytes / kSlotBytes);
    for (size_t off = kChunkBytes; off > 0; off -= kSlotBytes) {
      free_.push_back(chunk + off - kSlotBytes);
    }
    return true;
  }

  std::mutex mu_;
  std::atomic<uint8_t*> base_{nullptr};
  size_t committed_ = 0;      // bytes of the region locked and handed to free_
  bool unavailable_ = false;  // the region could not be mapped
  std::vector<uint8_t*> free_;
};

}  // namespace

// ---- SecretBytes -------------------------------------------------------------

SecretBytes::SecretBytes(size_t size) {
  if (size == 0) return;
  if (size <= SecretSlab::kSlotBytes) {
    if (uint8_t* slot = SecretSlab::Get().Take()) {
      data_ = slot;
      size_ = size;
      return;
    }
  }
  if (size > std::numeric_limits<size_t>::max() - PageSize()) throw std::bad_alloc();
  const size_t mapped = MappedSize(size);
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  // Best effort: RLIMIT_MEMLOCK is often small (64 KiB) in containers.
  if (mlock(p, mapped) != 0) g_mlock_failures.fetch_add(1, std::memory_order_relaxed);
  // Best effort: keep key material out of core dumps. Ignored on kernels
  // without MADV_DONTDUMP; nothing else depends on it.
  (void)madvise(p, mapped, MADV_DONTDUMP);
  data_ = static_cast<uint8_t*>(p);  // anonymous mappings are zero-filled
  size_ = size;
}

SecretBytes SecretBytes::CopyOf(ByteSpan bytes) {
  SecretBytes s(bytes.size());
  if (!bytes.empty()) std::memcpy(s.data_, bytes.data(), bytes.size());
  return s;
}

SecretBytes::~SecretBytes() {
  Wipe();
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void SecretBytes::Wipe() {
  if (data_ == nullptr) return;
  if (SecretSlab::Get().Owns(data_)) {
    SecretSlab::Get().Give(data_);
    data_ = nullptr;
    size_ = 0;
    return;
  }
  const size_t mapped = MappedSize(size_);
  OPENSSL_cleanse(data_, mapped);
  (void)munlock(data_, mapped);  // harmless if the mlock had failed
  (void)munmap(data_, mapped);
  data_ = nullptr;
  size_ = 0;
}

size_t SecretBytes::MlockFailures() {
  return g_mlock_failures.load(std::memory_order_relaxed);
}

// ---- random ------------------------------------------------------------------

Status RandomBytes(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    const size_t n = std::min(kMaxEvpChunk, out.size() - done);
    if (RAND_bytes(out.data() + done, static_cast<int>(n)) != 1) {
      OPENSSL_cleanse(out.data(), out.size());
      return OpensslInternal("RAND_bytes");
    }
    done += n;
  }
  return Status::Ok();
}

StatusOr<SecretBytes> RandomSecret(size_t size) {
  SecretBytes s(size);
  RETURN_IF_ERROR(RandomBytes(s.span()));
  return s;
}

bool ConstantTimeEquals(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---- SHA-2 -------------------------------------------------------------------

namespace {

template <size_t N>
std::array<uint8_t, N> Digest(const EVP_MD* md, ByteSpan data, const char* name) {
  std::array<uint8_t, N> out{};
  unsigned int len = 0;
  if (EVP_Digest(Ptr(data), data.size(), out.data(), &len, md, nullptr) != 1 || len != N) {
    Fatal(name);
  }
  return out;
}

}  // namespace

Sha256Digest Sha256(ByteSpan data) {
  return Digest<32>(internal::Sha256Md(), data, "SHA-256");
}
Sha384Digest Sha384(ByteSpan data) {
  return Digest<48>(internal::Sha384Md(), data, "SHA-384");
}
Sha512Digest Sha512(ByteSpan data) {
  return Digest<64>(internal::Sha512Md(), data, "SHA-512");
}

struct Sha256Hasher::Impl {
  MdCtxPtr ctx;
};

Sha256Hasher::Sha256Hasher() : impl_(std::make_unique<Impl>()) {
  impl_->ctx.reset(EVP_MD_CTX_new());
  if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx.get(), internal::Sha256Md(), nullptr) != 1) {
    Fatal("SHA-256 init");
  }
}

Sha256Hasher::~Sha256Hasher() = default;

void Sha256Hasher::Update(ByteSpan data) {
  if (data.empty()) return;
  if (EVP_DigestUpdate(impl_->ctx.get(), data.data(), data.size()) != 1) Fatal("SHA-256 update");
}

// Finish also resets the hasher, so it can be reused for the next message.
Sha256Digest Sha256Hasher::Finish() {
  Sha256Digest out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx.get(), out.data(), &len) != 1 || len != out.size() ||
      EVP_DigestInit_ex(impl_->ctx.get(), internal::Sha256Md(), nullptr) != 1) {
    Fatal("SHA-256 final");
  }
  return out;
}

// ---- HKDF --------------------------------------------------------------------

// HkdfSha256: hmac.cc (built on the keyed SHA-256 states of HmacSha256).

// ---- AES-256-GCM -------------------------------------------------------------

// One EVP_CIPHER_CTX keyed once; each Seal/Open only re-initialises the IV,
// which also resets the GHASH state. The GCM key schedule is direction-free,
// so the same context serves both directions.
struct Aes256Gcm::Impl {
  CipherCtxPtr ctx;
};

Aes256Gcm::Aes256Gcm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Aes256Gcm::Aes256Gcm(Aes256Gcm&&) noexcept = default;
Aes256Gcm& Aes256Gcm::operator=(Aes256Gcm&&) noexcept = default;
Aes256Gcm::~Aes256Gcm() = default;  // EVP_CIPHER_CTX_free wipes the key schedule

StatusOr<Aes256Gcm> Aes256Gcm::Create(ByteSpan key) {
  if (key.size() != kKeySize) {
    return InvalidArgument("AES-256-GCM: key must be " + Sz(kKeySize) + " bytes, got " +
                           Sz(key.size()));
  }
  auto impl = std::make_unique<Impl>();
  impl->ctx.reset(EVP_CIPHER_CTX_new());
  if (!impl->ctx) return OpensslInternal("AES-256-GCM: EVP_CIPHER_CTX_new");
  EVP_CIPHER_CTX* ctx = impl->ctx.get();
  if (EVP_EncryptInit_ex(ctx, internal::Aes256GcmCipher(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, static_cast<int>(kNonceSize), nullptr) !=
          1 ||
      EVP_EncryptInit_ex(ctx, nullptr, nullptr, key.data(), nullptr) != 1) {
    return OpensslInternal("AES-256-GCM: keying the cipher context");
  }
  return Aes256Gcm(std::move(impl));
}

Status Aes256Gcm::Seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext, std::span<uint8_t> out) {
  if (!impl_) return FailedPrecondition("AES-256-GCM seal: object was moved from");
  if (nonce.size() != kNonceSize) {
    return InvalidArgument("AES-256-GCM seal: nonce must be " + Sz(kNonceSize) + " bytes, got " +
                           Sz(nonce.size()));
  }
  const size_t n = plaintext.size();
  if (out.size() < kTagSize || out.size() - kTagSize < n) {
    return InvalidArgument("AES-256-GCM seal: out holds " + Sz(out.size()) + " bytes, need " +
                           Sz(n) + " (plaintext) + " + Sz(kTagSize) + " (tag)");
  }
  if (!ExactOrDisjoint(plaintext.data(), n, out.data(), n + kTagSize)) {
    return InvalidArgument(
        "AES-256-GCM seal: out partially overlaps plaintext (only exact in-place is supported)");
  }
  EVP_CIPHER_CTX* ctx = impl_->ctx.get();
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()) != 1) {
    return OpensslInternal("AES-256-GCM seal: setting nonce");
  }
  if (!CipherUpdate(EVP_EncryptUpdate, ctx, nullptr, aad)) {
    return OpensslInternal("AES-256-GCM seal: aad");
  }
  if (!CipherUpdate(EVP_EncryptUpdate, ctx, out.data(), plaintext)) {
    return OpensslInternal("AES-256-GCM seal: encrypt");
  }
  uint8_t* tag = out.data() + n;
  int final_len = 0;
  if (EVP_EncryptFinal_ex(ctx, tag, &final_len) != 1 || final_len != 0 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize), tag) != 1) {
    return OpensslInternal("AES-256-GCM seal: finishing tag");
  }
  return Status::Ok();
}

Status Aes256Gcm::Open(ByteSpan nonce, ByteSpan aad, ByteSpan sealed, std::span<uint8_t> out) {
  // Fail closed: whatever goes wrong, the caller never sees unauthenticated
  // plaintext (or stale bytes) in out.
  auto fail = [&out](Status s) {
    if (!out.empty()) OPENSSL_cleanse(out.data(), out.size());
    return s;
  };
  if (!impl_) return fail(FailedPrecondition("AES-256-GCM open: object was moved from"));
  if (nonce.size() != kNonceSize) {
    return fail(InvalidArgument("AES-256-GCM open: nonce must be " + Sz(kNonceSize) +
                                " bytes, got " + Sz(nonce.size())));
  }
  if (sealed.size() < kTagSize) {
    return fail(InvalidArgument("AES-256-GCM open: sealed input is " + Sz(sealed.size()) +
                                " bytes, shorter than the " + Sz(kTagSize) + "-byte tag"));
  }
  const size_t n = sealed.size() - kTagSize;
  if (out.size() < n) {
    return fail(
        InvalidArgument("AES-256-GCM open: out holds " + Sz(out.size()) + " bytes, need " + Sz(n)));
  }
  const ByteSpan ciphertext = sealed.first(n);
  if (!ExactOrDisjoint(ciphertext.data(), n, out.data(), n)) {
    return fail(InvalidArgument(
        "AES-256-GCM open: out partially overlaps ciphertext (only exact in-place is supported)"));
  }
  // Copy the tag first: EVP's ctrl takes a non-const pointer, and an in-place
  // caller's out may extend over it.
  std::array<uint8_t, kTagSize> tag{};
  std::memcpy(tag.data(), sealed.data() + n, kTagSize);

  EVP_CIPHER_CTX* ctx = impl_->ctx.get();
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data()) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize), tag.data()) !=
          1) {
    return fail(OpensslInternal("AES-256-GCM open: setting nonce and tag"));
  }
  if (!CipherUpdate(EVP_DecryptUpdate, ctx, nullptr, aad)) {
    return fail(OpensslInternal("AES-256-GCM open: aad"));
  }
  if (!CipherUpdate(EVP_DecryptUpdate, ctx, out.data(), ciphertext)) {
    return fail(OpensslInternal("AES-256-GCM open: decrypt"));
  }
  uint8_t unused[kTagSize];  // GCM's final step writes no bytes
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx, unused, &final_len) != 1) {
    ERR_clear_error();
    return fail(DataLoss("AES-256-GCM open: authentication failed"));
  }
  return Status::Ok();
}

// ---- Ed25519 -----------------------------------------------------------------

namespace {

StatusOr<PkeyPtr> GenerateKey(const char* algorithm) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, algorithm, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_generate(ctx.get(), &raw) != 1) {
    return OpensslInternal(std::string(algorithm) + ": key generation");
  }
  return PkeyPtr(raw);
}

}  // namespace

struct Ed25519PrivateKey::Impl {
  PkeyPtr pkey;
};

Ed25519PrivateKey::Ed25519PrivateKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Ed25519PrivateKey::Ed25519PrivateKey(Ed25519PrivateKey&&) noexcept = default;
Ed25519PrivateKey& Ed25519PrivateKey::operator=(Ed25519PrivateKey&&) noexcept = default;
Ed25519PrivateKey::~Ed25519PrivateKey() = default;

StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::Generate() {
  ASSIGN_OR_RETURN(PkeyPtr pkey, GenerateKey("ED25519"));
  auto impl = std::make_unique<Impl>();
  impl->pkey = std::move(pkey);
  return Ed25519PrivateKey(std::move(impl));
}

StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::FromSeed(ByteSpan seed) {
  if (seed.size() != kSeedSize) {
    return InvalidArgument("Ed25519: seed must be " + Sz(kSeedSize) + " bytes, got " +
                           Sz(seed.size()));
  }
  PkeyPtr pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (!pkey) return OpensslInternal("Ed25519: importing seed");
  auto impl = std::make_unique<Impl>();
  impl->pkey = std::move(pkey);
  return Ed25519PrivateKey(std::move(impl));
}

std::array<uint8_t, Ed25519PrivateKey::kPublicKeySize> Ed25519PrivateKey::PublicKey() const {
  std::array<uint8_t, kPublicKeySize> out{};
  size_t len = out.size();
  if (!impl_ || EVP_PKEY_get_raw_public_key(impl_->pkey.get(), out.data(), &len) != 1 ||
      len != out.size()) {
    Fatal("Ed25519 PublicKey (moved-from key?)");
  }
  return out;
}

StatusOr<SecretBytes> Ed25519PrivateKey::Seed() const {
  if (!impl_) return FailedPrecondition("Ed25519: key was moved from");
  SecretBytes seed(kSeedSize);
  size_t len = seed.size();
  if (EVP_PKEY_get_raw_private_key(impl_->pkey.get(), seed.data(), &len) != 1 || len != kSeedSize) {
    return OpensslInternal("Ed25519: exporting seed");
  }
  return seed;
}

StatusOr<std::array<uint8_t, Ed25519PrivateKey::kSignatureSize>> Ed25519PrivateKey::Sign(
    ByteSpan message) const {
  if (!impl_) return FailedPrecondition("Ed25519: key was moved from");
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::array<uint8_t, kSignatureSize> sig{};
  size_t len = sig.size();
  // Pure Ed25519 (RFC 8032): no pre-hash, so the digest must be NULL and the
  // message goes through the one-shot EVP_DigestSign.
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len, Ptr(message), message.size()) != 1 ||
      len != sig.size()) {
    return OpensslInternal("Ed25519: signing");
  }
  return sig;
}

bool Ed25519Verify(ByteSpan public_key, ByteSpan message, ByteSpan signature) {
  if (public_key.size() != Ed25519PrivateKey::kPublicKeySize ||
      signature.size() != Ed25519PrivateKey::kSignatureSize) {
    return false;
  }
  PkeyPtr pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  const bool ok = pkey && ctx &&
                  EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) == 1 &&
                  EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), Ptr(message),
                                   message.size()) == 1;
  if (!ok) ERR_clear_error();
  return ok;
}

namespace {

// The set behind Ed25519VerifyMemoized (see crypto.h).
class Ed25519Memo {
 public:
  static Ed25519Memo& Get() {
    static Ed25519Memo* memo = new Ed25519Memo;  // never destroyed: any thread may use it
    return *memo;
  }
  static std::string Key(ByteSpan public_key, ByteSpan message, ByteSpan signature) {
    Sha256Hasher h;
    h.Update(public_key);
    h.Update(signature);
    h.Update(message);
    const Sha256Digest d = h.Finish();
    return std::string(reinterpret_cast<const char*>(d.data()), d.size());
  }
  bool Contains(const std::string& key) {
    std::lock_guard<std::mutex> l(mu_);
    return set_.count(key) != 0;
  }
  void Insert(std::string key) {
    std::lock_guard<std::mutex> l(mu_);
    if (set_.size() >= kEd25519MemoEntries) set_.clear();
    set_.insert(std::move(key));
  }
  size_t Size() {
    std::lock_guard<std::mutex> l(mu_);
    return set_.size();
  }
  void Clear() {
    std::lock_guard<std::mutex> l(mu_);
    set_.clear();
  }

 private:
  std::mutex mu_;
  std::unordered_set<std::string> set_;
};

}  // namespace

bool Ed25519VerifyMemoized(ByteSpan public_key, ByteSpan message, ByteSpan signature) {
  if (public_key.size() != Ed25519PrivateKey::kPublicKeySize ||
      signature.size() != Ed25519PrivateKey::kSignatureSize) {
    return false;
  }
  std::string key = Ed25519Memo::Key(public_key, message, signature);
  if (Ed25519Memo::Get().Contains(key)) return true;
  if (!Ed25519Verify(public_key, message, signature)) return false;
  Ed25519Memo::Get().Insert(std::move(key));
  return true;
}

StatusOr<std::array<uint8_t, Ed25519PrivateKey::kSignatureSize>> Ed25519PrivateKey::SignRemembered(
    ByteSpan message) const {
  ASSIGN_OR_RETURN(auto sig, Sign(message));
  const auto public_key = PublicKey();
  Ed25519Memo::Get().Insert(Ed25519Memo::Key(public_key, message, sig));
  return sig;
}

size_t Ed25519MemoSizeForTest() {
  return Ed25519Memo::Get().Size();
}

void Ed25519MemoClearForTest() {
  Ed25519Memo::Get().Clear();
}

// ---- ECDH --------------------------------------------------------------------

namespace {

constexpr size_t kX25519KeySize = 32;
constexpr size_t kP256ScalarSize = 32;
constexpr size_t kP256PointSize = 65;     // 0x04 || X || Y
constexpr size_t kSharedSecretSize = 32;  // both curves
constexpr const char* kP256GroupName = SN_X9_62_prime256v1;

const char* CurveName(EcdhCurve curve) {
  return curve == EcdhCurve::kX25519 ? "X25519" : "P-256";
}

StatusOr<PkeyPtr> FromParams(const char* what, OSSL_PARAM_BLD* bld, int selection,
                             StatusCode code_on_reject) {
  ParamsPtr params(OSSL_PARAM_BLD_to_param(bld));
  if (!params) return OpensslInternal(std::string(what) + ": building parameters");
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return OpensslInternal(std::string(what) + ": EVP_PKEY_fromdata_init");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, selection, params.get()) != 1) {
    return OpensslFailure(code_on_reject, what);
  }
  return PkeyPtr(raw);
}

StatusOr<PkeyPtr> P256PrivateKey(ByteSpan priv) {
  EcGroupPtr group(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
  BnPtr d(BN_secure_new());
  BnCtxPtr bn_ctx(BN_CTX_secure_new());
  if (!group || !d || !bn_ctx ||
      BN_bin2bn(priv.data(), static_cast<int>(priv.size()), d.get()) == nullptr) {
    return OpensslInternal("P-256: loading private scalar");
  }
  if (BN_is_zero(d.get()) || BN_cmp(d.get(), EC_GROUP_get0_order(group.get())) >= 0) {
    return InvalidArgument("P-256: private scalar must be in [1, n-1]");
  }
  // OpenSSL 3.0's EC import does not derive the public point from the scalar,
  // so compute it here (constant-time fixed-base multiplication).
  EcPointPtr pub(EC_POINT_new(group.get()));
  uint8_t pub_bytes[kP256PointSize];
  if (!pub || EC_POINT_mul(group.get(), pub.get(), d.get(), nullptr, nullptr, bn_ctx.get()) != 1 ||
      EC_POINT_point2oct(group.get(), pub.get(), POINT_CONVERSION_UNCOMPRESSED, pub_bytes,
                         sizeof(pub_bytes), bn_ctx.get()) != sizeof(pub_bytes)) {
    return OpensslInternal("P-256: computing public point");
  }
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, kP256GroupName, 0) !=
          1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, d.get()) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, pub_bytes,
                                       sizeof(pub_bytes)) != 1) {
    return OpensslInternal("P-256: building private key parameters");
  }
  return FromParams("P-256: importing private key", bld.get(), EVP_PKEY_KEYPAIR,
                    StatusCode::kInternal);
}

StatusOr<PkeyPtr> P256PeerKey(ByteSpan point) {
  if (point.size() != kP256PointSize || point[0] != 0x04) {
    return InvalidArgument("P-256: peer public key must be a " + Sz(kP256PointSize) +
                           "-byte uncompressed point (0x04||X||Y), got " + Sz(point.size()) +
                           " bytes" +
                           (point.empty() ? "" : " starting 0x" + ToHex(point.first(1))));
  }
  // Range, on the curve, not infinity (cofactor 1: no order check needed).
  return P256PublicFromPoint(point.data(), point.size(),
                             "P-256: peer public key is not a valid curve point");
}

}  // namespace

struct EcdhPrivateKey::Impl {
  PkeyPtr pkey;
};

EcdhPrivateKey::EcdhPrivateKey(EcdhCurve curve, std::unique_ptr<Impl> impl)
    : curve_(curve), impl_(std::move(impl)) {}
EcdhPrivateKey::EcdhPrivateKey(EcdhPrivateKey&&) noexcept = default;
EcdhPrivateKey& EcdhPrivateKey::operator=(EcdhPrivateKey&&) noexcept = default;
EcdhPrivateKey::~EcdhPrivateKey() = default;

StatusOr<EcdhPrivateKey> EcdhPrivateKey::Generate(EcdhCurve curve) {
  auto impl = std::make_unique<Impl>();
  if (curve == EcdhCurve::kX25519) {
    ASSIGN_OR_RETURN(impl->pkey, GenerateKey("X25519"));
  } else {
    // From the shared parameters: copies the group instead of building it.
    const EVP_PKEY* params = P256Params();
    PkeyCtxPtr ctx(params == nullptr ? nullptr
                                     : EVP_PKEY_CTX_new_from_pkey(
                                           nullptr, const_cast<EVP_PKEY*>(params), nullptr));
    EVP_PKEY* raw = nullptr;
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_generate(ctx.get(), &raw) != 1) {
      return OpensslInternal("P-256: key generation");
    }
    impl->pkey.reset(raw);
  }
  return EcdhPrivateKey(curve, std::move(impl));
}

StatusOr<EcdhPrivateKey> EcdhPrivateKey::FromPrivateBytes(EcdhCurve curve, ByteSpan priv) {
  const size_t want = curve == EcdhCurve::kX25519 ? kX25519KeySize : kP256ScalarSize;
  if (priv.size() != want) {
    return InvalidArgument(std::string(CurveName(curve)) + ": private key must be " + Sz(want) +
                           " bytes, got " + Sz(priv.size()));
  }
  auto impl = std::make_unique<Impl>();
  if (curve == EcdhCurve::kX25519) {
    impl->pkey.reset(
        EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, priv.data(), priv.size()));
    if (!impl->pkey) return OpensslInternal("X25519: importing private key");
  } else {
    ASSIGN_OR_RETURN(impl->pkey, P256PrivateKey(priv));
  }
  return EcdhPrivateKey(curve, std::move(impl));
}

StatusOr<Bytes> EcdhPrivateKey::PublicKey() const {
  if (!impl_) return FailedPrecondition("ECDH: key was moved from");
  Bytes out(curve_ == EcdhCurve::kX25519 ? kX25519KeySize : kP256PointSize);
  size_t len = out.size();
  const int rc = curve_ == EcdhCurve::kX25519
                     ? EVP_PKEY_get_raw_public_key(impl_->pkey.get(), out.data(), &len)
                     : EVP_PKEY_get_octet_string_param(impl_->pkey.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                                       out.data(), out.size(), &len);
  if (rc != 1 || len != out.size() || (curve_ == EcdhCurve::kP256 && out[0] != 0x04)) {
    return OpensslInternal(std::string(CurveName(curve_)) + ": exporting public key");
  }
  return out;
}

StatusOr<SecretBytes> EcdhPrivateKey::DeriveSharedSecret(ByteSpan peer_public) const {
  if (!impl_) return FailedPrecondition("ECDH: key was moved from");
  const std::string curve = CurveName(curve_);
  PkeyPtr peer;
  if (curve_ == EcdhCurve::kX25519) {
    if (peer_public.size() != kX25519KeySize) {
      return InvalidArgument("X25519: peer public key must be " + Sz(kX25519KeySize) +
                             " bytes, got " + Sz(peer_public.size()));
    }
    peer.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(),
                                           peer_public.size()));
    if (!peer) return OpensslInternal("X25519: importing peer public key");
  } else {
    ASSIGN_OR_RETURN(peer, P256PeerKey(peer_public));
  }

  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, impl_->pkey.get(), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1) {
    return OpensslInternal(curve + ": EVP_PKEY_derive_init");
  }
  // X25519: validate_peer=1 (OpenSSL's check; low-order points are caught
  // by the all-zero test below). P-256: P256PeerKey already checked range,
  // curve and infinity; validate_peer=1 would add the order check (n·Q = O,
  // a second full scalar multiplication, ~70 µs) that cofactor 1 makes
  // redundant.
  const int validate_peer = curve_ == EcdhCurve::kX25519 ? 1 : 0;
  if (EVP_PKEY_derive_set_peer_ex(ctx.get(), peer.get(), validate_peer) != 1) {
    return OpensslFailure(StatusCode::kInvalidArgument, curve + ": peer public key rejected");
  }
  size_t len = 0;
  if (EVP_PKEY_derive(ctx.get(), nullptr, &len) != 1 || len != kSharedSecretSize) {
    return OpensslInternal(curve + ": querying shared secret size");
  }
  SecretBytes secret(len);
  if (EVP_PKEY_derive(ctx.get(), secret.data(), &len) != 1) {
    if (curve_ == EcdhCurve::kX25519) {
      // OpenSSL's only X25519 derive failure for well-formed inputs is the
      // all-zero output from a low-order peer point (RFC 7748 section 6.1).
      return OpensslFailure(
          StatusCode::kInvalidArgument,
          "X25519: peer public key is a low-order point (all-zero shared secret)");
    }
    return OpensslInternal(curve + ": derive");
  }
  if (len != kSharedSecretSize) return Internal(curve + ": derive returned " + Sz(len) + " bytes");
  // Belt and braces for X25519 (RFC 7748 section 6.1): never hand out the
  // all-zero secret, whatever the OpenSSL version does.
  static constexpr std::array<uint8_t, kSharedSecretSize> kZero{};
  if (curve_ == EcdhCurve::kX25519 &&
      CRYPTO_memcmp(secret.data(), kZero.data(), kZero.size()) == 0) {
    return InvalidArgument("X25519: shared secret is all zero (low-order peer point)");
  }
  return secret;
}

// ---- ECDSA P-256 / SHA-256 -------------------------------------------------------

namespace {

using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Free<ECDSA_SIG_free>>;
constexpr size_t kP256CoordinateSize = 32;

}  // namespace

StatusOr<std::array<uint8_t, kEcdsaP256SignatureSize>> EcdsaP256SignSha256(
    const EcdhPrivateKey& key, ByteSpan message) {
  if (key.curve() != EcdhCurve::kP256) {
    return InvalidArgument("ECDSA: the key is X25519; signing needs a P-256 key");
  }
  if (!key.impl_) return FailedPrecondition("ECDSA: key was moved from");
  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t der_len = 0;
  if (!ctx ||
      EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key.impl_->pkey.get(),
                            nullptr) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &der_len, Ptr(message), message.size()) != 1) {
    return OpensslInternal("ECDSA P-256: signing setup");
  }
  Bytes der(der_len);
  if (EVP_DigestSign(ctx.get(), der.data(), &der_len, Ptr(message), message.size()) != 1) {
    return OpensslInternal("ECDSA P-256: signing");
  }
  // OpenSSL gives the DER SEQUENCE {r, s}; P1363 is r||s, each 32 bytes.
  const unsigned char* p = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  std::array<uint8_t, kEcdsaP256SignatureSize> out{};
  if (!sig ||
      BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out.data(), kP256CoordinateSize) !=
          static_cast<int>(kP256CoordinateSize) ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out.data() + kP256CoordinateSize,
                   kP256CoordinateSize) != static_cast<int>(kP256CoordinateSize)) {
    return OpensslInternal("ECDSA P-256: encoding the signature");
  }
  return out;
}

bool EcdsaP256VerifySha256(ByteSpan public_key, ByteSpan message, ByteSpan signature) {
  if (signature.size() != kEcdsaP256SignatureSize) return false;
  auto pkey = P256PeerKey(public_key);  // rejects points off the curve
  if (!pkey.ok()) {
    ERR_clear_error();
    return false;
  }
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(signature.data(), kP256CoordinateSize, nullptr);
  BIGNUM* s = BN_bin2bn(signature.data() + kP256CoordinateSize, kP256CoordinateSize, nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ERR_clear_error();
    return false;
  }
  // Re-encoded in DER (minimal), so OpenSSL checks exactly these r and s
  // (its verify refuses r or s outside [1, n-1]).
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) {
    ERR_clear_error();
    return false;
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  const bool ok = ctx &&
                  EVP_DigestVerifyInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr,
                                          pkey->get(), nullptr) == 1 &&
                  EVP_DigestVerify(ctx.get(), der, static_cast<size_t>(der_len), Ptr(message),
                                   message.size()) == 1;
  OPENSSL_free(der);
  if (!ok) ERR_clear_error();
  return ok;
}

// ---- hex ---------------------------------------------------------------------

std::string ToHex(ByteSpan bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0x0f];
  }
  return out;
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string DescribeChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
  char buf[8];
  (void)std::snprintf(buf, sizeof(buf), "0x%02x", u);
  return buf;
}

}  // namespace

namespace {

// Decodes hex into out (hex.size() == 2 * out.size(), checked by callers).
Status DecodeHexInto(std::string_view hex, std::span<uint8_t> out) {
  for (size_t i = 0; i < hex.size(); ++i) {
    const int v = HexValue(hex[i]);
    if (v < 0) {
      return InvalidArgument("hex: invalid digit " + DescribeChar(hex[i]) + " at offset " + Sz(i));
    }
    if (i % 2 == 0) {
      out[i / 2] = static_cast<uint8_t>(v << 4);
    } else {
      out[i / 2] = static_cast<uint8_t>(out[i / 2] | v);
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Bytes> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return InvalidArgument("hex: odd length " + Sz(hex.size()));
  }
  Bytes out(hex.size() / 2);
  RETURN_IF_ERROR(DecodeHexInto(hex, out));
  return out;
}

StatusOr<SecretBytes> SecretFromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return InvalidArgument("hex: odd length " + Sz(hex.size()));
  }
  SecretBytes out(hex.size() / 2);
  RETURN_IF_ERROR(DecodeHexInto(hex, out.span()));
  return out;
}

}  // namespace cce::crypto
