// libFuzzer target for ECDSA P-256 verification (docs/fuzzing.md): what a
// job's agent sends the plane with its output bundle, the base64url
// X-Cce-Bundle-Signature, checked against the session's TEE key. Byte 0
// selects the input's shape:
//   even: raw   65-byte public point || 64-byte r||s || message
//   odd:  text  "<base64url signature>\n<message>", verified with the
//               RFC 6979 A.2.5 P-256 key (JwkPublicKey, as the plane does)
// Beyond "no crash, no sanitizer report" it checks: a signature of any size
// but 64 bytes never verifies, and an accepted signature stops verifying
// when one bit of the message changes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crypto/crypto.h"
#include "crypto/jwe.h"

namespace {

namespace crypto = cce::crypto;

[[noreturn]] void Fail() {
  std::abort();
}

const crypto::JwkPublicKey& Rfc6979Key() {
  static const crypto::JwkPublicKey key = [] {
    auto point = crypto::FromHex(
        "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
        "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299");
    if (!point.ok()) Fail();
    auto k = crypto::JwkPublicKey::FromPublicBytes(crypto::EcdhCurve::kP256, *point);
    if (!k.ok()) Fail();
    return std::move(k).value();
  }();
  return key;
}

void CheckAccepted(crypto::ByteSpan pub, crypto::ByteSpan message, crypto::ByteSpan sig) {
  if (sig.size() != crypto::kEcdsaP256SignatureSize) Fail();
  std::string changed(reinterpret_cast<const char*>(message.data()), message.size());
  if (changed.empty()) {
    changed.push_back('\0');
  } else {
    changed[0] = static_cast<char>(changed[0] ^ 0x01);
  }
  if (crypto::EcdsaP256VerifySha256(pub, crypto::AsBytes(changed), sig)) Fail();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const crypto::ByteSpan in(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    if (in.size() < 65) {
      if (crypto::EcdsaP256VerifySha256(in, {}, in)) Fail();
      return 0;
    }
    const crypto::ByteSpan pub = in.first(65);
    const crypto::ByteSpan rest = in.subspan(65);
    const size_t sig_size = rest.size() < 64 ? rest.size() : 64;
    const crypto::ByteSpan sig = rest.first(sig_size);
    const crypto::ByteSpan message = rest.subspan(sig_size);
    if (crypto::EcdsaP256VerifySha256(pub, message, sig)) CheckAccepted(pub, message, sig);
    return 0;
  }
  const std::string_view text(reinterpret_cast<const char*>(in.data()), in.size());
  const size_t nl = text.find('\n');
  const std::string_view header = text.substr(0, nl);
  const std::string_view message = nl == std::string_view::npos ? "" : text.substr(nl + 1);
  auto sig = crypto::Base64UrlDecode(header);
  if (!sig.ok()) return 0;
  const crypto::ByteSpan m(reinterpret_cast<const uint8_t*>(message.data()), message.size());
  if (Rfc6979Key().VerifyEcdsaSha256(m, *sig)) CheckAccepted(Rfc6979Key().public_bytes(), m, *sig);
  return 0;
}
