// EIP-1559 (type 0x02) transactions: signing for sending, and decoding a
// signed one (tests, fuzzing). The access list is always empty.
#pragma once

#include <cstdint>
#include <optional>

#include "base/status.h"
#include "crypto/crypto.h"
#include "eth/eth.h"
#include "eth/secp256k1.h"

namespace cce::eth {

struct Eip1559Tx {
  uint64_t chain_id = 0;
  uint64_t nonce = 0;
  U256 max_priority_fee_per_gas = 0;
  U256 max_fee_per_gas = 0;
  uint64_t gas_limit = 0;
  std::optional<Address> to;  // nullopt: contract creation
  U256 value = 0;
  crypto::Bytes data;
};

struct SignedTx {
  crypto::Bytes
      raw;      // 0x02 || rlp([chain_id, nonce, tip, max_fee, gas, to, value, data, [], y, r, s])
  Hash32 hash;  // keccak256(raw): the transaction hash
};

// Errors: as PrivateKey::Sign.
StatusOr<SignedTx> SignTx(const Eip1559Tx& tx, const PrivateKey& key);

struct DecodedTx {
  Eip1559Tx tx;
  Address sender;  // recovered from the signature
  Hash32 hash;
};

// Decodes and verifies 0x02 || rlp(...). Errors: kInvalidArgument "tx: ..."
// for another type, non-canonical RLP, wrong field count or sizes, a
// non-empty access list, y parity not 0/1, high s, or no recoverable sender.
StatusOr<DecodedTx> DecodeSignedTx(crypto::ByteSpan raw);

}  // namespace cce::eth
