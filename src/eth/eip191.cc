#include "eth/eip191.h"

#include <string>

namespace cce::eth {

Hash32 PersonalMessageHash(std::string_view message) {
  std::string prefixed =
      "\x19"
      "Ethereum Signed Message:\n" +
      std::to_string(message.size());
  prefixed.append(message);
  return Keccak256(std::string_view(prefixed));
}

StatusOr<std::string> SignPersonal(std::string_view message, const PrivateKey& key) {
  ASSIGN_OR_RETURN(Signature sig, key.Sign(PersonalMessageHash(message)));
  return ToHex(sig.Rsv(27));
}

StatusOr<Address> RecoverPersonalSigner(std::string_view message, std::string_view signature_hex) {
  ASSIGN_OR_RETURN(crypto::Bytes rsv, ParseHex(signature_hex, "signature"));
  if (rsv.size() != 65) {
    return InvalidArgument("signature: expected 65 bytes (0x + 130 hex digits), got " +
                           std::to_string(rsv.size()));
  }
  return RecoverAddress(PersonalMessageHash(message), rsv);
}

}  // namespace cce::eth
