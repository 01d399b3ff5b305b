// eth: the Ethereum primitives the plane needs to use a RentalMarket contract
// as its ledger (docs/ledger.md): addresses and hashes, Keccak-256, hex and
// JSON-RPC quantities, 256-bit integers. Everything that reads outside text
// (RPC answers, config, user input) parses strictly and names the field.
#pragma once

#include <array>
#include <boost/multiprecision/cpp_int.hpp>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::eth {

using U256 = boost::multiprecision::uint256_t;

// A 20-byte account address. Stored and sent lowercase; shown checksummed.
struct Address {
  std::array<uint8_t, 20> bytes{};
  auto operator<=>(const Address&) const = default;

  std::string Hex() const;          // "0x" + 40 lowercase hex digits
  std::string Checksummed() const;  // EIP-55 mixed case, "0x" prefix
};

struct Hash32 {
  std::array<uint8_t, 32> bytes{};
  auto operator<=>(const Hash32&) const = default;

  std::string Hex() const;  // "0x" + 64 lowercase hex digits
};

// Keccak-256 as Ethereum uses it (the original Keccak padding, NOT FIPS
// SHA3-256). Keccak256("") = 0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470.
Hash32 Keccak256(crypto::ByteSpan data);
Hash32 Keccak256(std::string_view text);

// "0x" + lowercase hex of bytes ("0x" for none).
std::string ToHex(crypto::ByteSpan bytes);

// Parses "0x" + an even number of hex digits (either case; "0x" alone is empty).
// Errors: kInvalidArgument "FIELD: ..." naming the problem (missing 0x, odd
// length, the offset of a non-hex character).
StatusOr<crypto::Bytes> ParseHex(std::string_view s, std::string_view field);

// Parses "0x" + 40 hex digits. All-lowercase or all-uppercase digits are
// accepted as is; mixed case must be the EIP-55 checksum.
// Errors: kInvalidArgument "FIELD: ..." (format, or "EIP-55 checksum mismatch").
StatusOr<Address> ParseAddress(std::string_view s, std::string_view field);

// Parses "0x" + exactly 64 hex digits. Errors: kInvalidArgument "FIELD: ...".
StatusOr<Hash32> ParseHash32(std::string_view s, std::string_view field);

// JSON-RPC QUANTITY: "0x" + hex digits without leading zeros ("0x0" for zero),
// at most 64 digits. Errors: kInvalidArgument "FIELD: ..." ("0x", "0x01",
// "1a", overflow, non-hex).
StatusOr<U256> ParseQuantity(std::string_view s, std::string_view field);
std::string ToQuantity(const U256& v);  // "0x0", "0x1a"

// Decimal digits only ("0" or no leading zero), value <= 2^256-1.
// Errors: kInvalidArgument "FIELD: ..." (empty, sign, non-digit, leading
// zero, overflow).
StatusOr<U256> ParseDecimal(std::string_view s, std::string_view field);
std::string ToDecimal(const U256& v);

// Exact decimal ether amount: "0 ETH", "1 ETH", "0.0105 ETH",
// "0.000000000000000001 ETH" (trailing zeros trimmed, no rounding).
std::string FormatEther(const U256& wei);

// Big-endian 32-byte encoding of v, and back (used by RLP, ABI, secp256k1).
std::array<uint8_t, 32> U256ToBytes(const U256& v);
// big_endian of at most 32 bytes (a longer span: only its last 32 bytes count;
// callers check sizes first).
U256 U256FromBytes(crypto::ByteSpan big_endian);

}  // namespace cce::eth
