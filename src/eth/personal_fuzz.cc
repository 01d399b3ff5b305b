// libFuzzer target for EIP-191 signature recovery (docs/fuzzing.md): what a
// user's wallet sends to link an address. Input: "<signature hex>\n<message>"
// through RecoverPersonalSigner. Then the message is signed with a fixed key:
// that signature must recover the key's address, and, with its s replaced by
// n - s (the malleated twin), must be refused; the same signature over the
// message with one more byte must not recover the key's address.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "eth/eip191.h"

namespace {

namespace eth = cce::eth;

const eth::PrivateKey& FixedKey() {
  static const eth::PrivateKey key = [] {
    std::array<uint8_t, 32> k{};
    k.fill(0x42);
    auto parsed = eth::PrivateKey::FromBytes(k);
    if (!parsed.ok()) std::abort();
    return std::move(parsed).value();
  }();
  return key;
}

const eth::U256& Order() {
  static const eth::U256 n("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string_view sig = in.substr(0, nl);
  const std::string_view message = nl == std::string_view::npos ? "" : in.substr(nl + 1);
  auto signer = eth::RecoverPersonalSigner(message, sig);
  if (!signer.ok() && signer.status().message().rfind("signature: ", 0) != 0) std::abort();

  auto mine = eth::SignPersonal(message, FixedKey());
  if (!mine.ok()) std::abort();
  auto back = eth::RecoverPersonalSigner(message, *mine);
  if (!back.ok() || *back != FixedKey().address()) std::abort();
  const std::string longer = std::string(message) + "!";
  auto other = eth::RecoverPersonalSigner(longer, *mine);
  if (other.ok() && *other == FixedKey().address()) std::abort();

  auto rsv = eth::ParseHex(*mine, "sig");
  if (!rsv.ok() || rsv->size() != 65) std::abort();
  const eth::U256 s = eth::U256FromBytes(cce::crypto::ByteSpan(*rsv).subspan(32, 32));
  const auto high = eth::U256ToBytes(Order() - s);
  std::copy(high.begin(), high.end(), rsv->begin() + 32);
  (*rsv)[64] = static_cast<uint8_t>((*rsv)[64] == 27 ? 28 : 27);
  if (eth::RecoverPersonalSigner(message, eth::ToHex(*rsv)).ok()) std::abort();
  return 0;
}
