// libFuzzer target for the JWE decoder (docs/fuzzing.md): JweDecrypt for a
// P-256 and an X25519 recipient, JwkPublicKey::FromJwk and Base64UrlDecode
// on the same bytes. The recipients' private keys are fixed and published
// (RFC 7518 Appendix C's "Bob" on P-256, RFC 7748 section 6.1's "Bob" on
// X25519), so the seeds in tests/data/fuzz/jwe_fuzz, encrypted to them,
// decrypt. Beyond "no crash, no sanitizer report" it checks the contract of
// jwe.h: errors are kInvalidArgument (malformed) or kDataLoss (does not
// verify) with a message, a decrypted JWE was at most kJweMaxCompactSize,
// an accepted JWK round-trips through ToJwk and its public bytes, and
// base64url decoding accepts only the canonical encoding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crypto/crypto.h"
#include "crypto/jwe.h"

namespace {

namespace crypto = cce::crypto;
using cce::StatusCode;

[[noreturn]] void Fail() {
  std::abort();
}

crypto::EphemeralKey Recipient(crypto::EcdhCurve curve, std::string_view private_hex) {
  auto priv_bytes = crypto::FromHex(private_hex);
  if (!priv_bytes.ok()) Fail();
  auto priv = crypto::EcdhPrivateKey::FromPrivateBytes(curve, *priv_bytes);
  if (!priv.ok()) Fail();
  auto key = crypto::EphemeralKey::FromEcdhKey(std::move(priv).value());
  if (!key.ok()) Fail();
  return std::move(key).value();
}

const crypto::EphemeralKey& P256Recipient() {
  // RFC 7518 Appendix C, Bob's d (base64url VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw).
  static const crypto::EphemeralKey key = Recipient(
      crypto::EcdhCurve::kP256, "5449836690d75caf29f0dd029ddb31b3ddb8aba9d2d515c5012465e817d4a9dc");
  return key;
}

const crypto::EphemeralKey& X25519Recipient() {
  // RFC 7748 section 6.1, Bob's private key.
  static const crypto::EphemeralKey key =
      Recipient(crypto::EcdhCurve::kX25519,
                "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  return key;
}

void CheckDecrypt(const crypto::EphemeralKey& key, std::string_view compact) {
  crypto::JweOptions header;
  const auto plain = crypto::JweDecrypt(key, compact, &header);
  if (plain.ok()) {
    if (compact.size() > crypto::kJweMaxCompactSize) Fail();
    return;
  }
  const StatusCode code = plain.status().code();
  if (code != StatusCode::kInvalidArgument && code != StatusCode::kDataLoss) Fail();
  if (plain.status().message().empty()) Fail();
}

void CheckJwk(std::string_view json) {
  const auto jwk = crypto::JwkPublicKey::FromJwk(json);
  if (!jwk.ok()) {
    if (jwk.status().code() != StatusCode::kInvalidArgument || jwk.status().message().empty()) {
      Fail();
    }
    return;
  }
  const auto again = crypto::JwkPublicKey::FromJwk(jwk->ToJwk());
  if (!again.ok() || !(*again == *jwk)) Fail();
  const auto from_bytes = crypto::JwkPublicKey::FromPublicBytes(jwk->curve(), jwk->public_bytes());
  if (!from_bytes.ok() || !(*from_bytes == *jwk)) Fail();
  if (jwk->Thumbprint().size() != 43) Fail();
}

void CheckBase64Url(std::string_view text) {
  const auto bytes = crypto::Base64UrlDecode(text);
  if (bytes.ok() && crypto::Base64UrlEncode(*bytes) != text) Fail();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  CheckDecrypt(P256Recipient(), text);
  CheckDecrypt(X25519Recipient(), text);
  CheckJwk(text);
  CheckBase64Url(text);
  return 0;
}
