// EIP-191 version 0x45 ("personal_sign"): how a wallet signs a text message,
// used to prove control of an address when linking it to a plane user.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "eth/eth.h"
#include "eth/secp256k1.h"

namespace cce::eth {

// keccak256("\x19Ethereum Signed Message:\n" + decimal(len(message)) + message).
Hash32 PersonalMessageHash(std::string_view message);

// "0x" + 130 hex digits: r || s || v with v 27 or 28 (what wallets return).
// Errors: as PrivateKey::Sign.
StatusOr<std::string> SignPersonal(std::string_view message, const PrivateKey& key);

// The address that personal-signed `message`. signature_hex is "0x" + 130
// hex digits, v in {0, 1, 27, 28}.
// Errors: kInvalidArgument "signature: ..." for a malformed signature, high s,
// or one that recovers no key. The caller compares the address it expects.
StatusOr<Address> RecoverPersonalSigner(std::string_view message, std::string_view signature_hex);

}  // namespace cce::eth
