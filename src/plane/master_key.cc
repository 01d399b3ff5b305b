#include "plane/master_key.h"

#include "plane/keys.h"

namespace cce::plane {
namespace {

constexpr uint8_t kSealVersion = 1;
constexpr std::string_view kKeyLabel = "cce4long-master-key-v1";

class FileMasterKey : public MasterKey {
 public:
  explicit FileMasterKey(crypto::SecretBytes key) : key_(std::move(key)) {}

  StatusOr<crypto::Bytes> Seal(crypto::ByteSpan plaintext, std::string_view context) override {
    crypto::Bytes out(1 + crypto::Aes256Gcm::kNonceSize + plaintext.size() +
                      crypto::Aes256Gcm::kTagSize);
    out[0] = kSealVersion;
    std::span<uint8_t> nonce(out.data() + 1, crypto::Aes256Gcm::kNonceSize);
    RETURN_IF_ERROR(crypto::RandomBytes(nonce));
    ASSIGN_OR_RETURN(crypto::Aes256Gcm gcm, crypto::Aes256Gcm::Create(key_.span()));
    RETURN_IF_ERROR(gcm.Seal(nonce, crypto::AsBytes(context), plaintext,
                             std::span(out).subspan(1 + nonce.size())));
    return out;
  }

  StatusOr<crypto::SecretBytes> Open(crypto::ByteSpan sealed, std::string_view context) override {
    constexpr size_t kOverhead = 1 + crypto::Aes256Gcm::kNonceSize + crypto::Aes256Gcm::kTagSize;
    if (sealed.size() < kOverhead || sealed[0] != kSealVersion) {
      return DataLoss("sealed value for '" + std::string(context) +
                      "': malformed (expected version 1 and at least 29 bytes)");
    }
    crypto::SecretBytes out(sealed.size() - kOverhead);
    ASSIGN_OR_RETURN(crypto::Aes256Gcm gcm, crypto::Aes256Gcm::Create(key_.span()));
    Status s = gcm.Open(sealed.subspan(1, crypto::Aes256Gcm::kNonceSize), crypto::AsBytes(context),
                        sealed.subspan(1 + crypto::Aes256Gcm::kNonceSize), out.span());
    if (!s.ok()) {
      return DataLoss("sealed value for '" + std::string(context) +
                      "': authentication failed (wrong master key, context or tampered)");
    }
    return out;
  }

  std::string backend() const override { return "file"; }

  StatusOr<crypto::SecretBytes> DeriveKey(std::string_view purpose) override {
    if (purpose.empty()) return InvalidArgument("master key derivation: empty purpose");
    crypto::SecretBytes out(32);
    RETURN_IF_ERROR(crypto::HkdfSha256(
        key_.span(), crypto::AsBytes(kKeyLabel),
        crypto::AsBytes("cce4long-derive-v1:" + std::string(purpose)), out.span()));
    return out;
  }

 private:
  crypto::SecretBytes key_;
};

}  // namespace

Status CreateFileMasterKey(const std::string& path) {
  ASSIGN_OR_RETURN(crypto::SecretBytes key, crypto::RandomSecret(32));
  return WriteSecretKeyFile(path, kKeyLabel, key);
}

StatusOr<std::unique_ptr<MasterKey>> LoadFileMasterKey(const std::string& path) {
  ASSIGN_OR_RETURN(crypto::SecretBytes key, ReadSecretKeyFile(path, kKeyLabel, 32));
  return std::unique_ptr<MasterKey>(std::make_unique<FileMasterKey>(std::move(key)));
}

}  // namespace cce::plane
