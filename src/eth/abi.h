// The Solidity contract ABI for static types only (uint<N>, address,
// bytes32, bool): function selectors, event topics, call data, and strict
// decoding of return data and event data word by word.
#pragma once

#include <array>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crypto/crypto.h"
#include "eth/eth.h"

namespace cce::eth {

// keccak256(signature)[0:4], e.g. Selector("rent(bytes32,uint32)").
std::array<uint8_t, 4> Selector(std::string_view signature);
// keccak256(signature), e.g. EventTopic("Rented(bytes32,address,uint64,uint64,uint32,uint256)").
Hash32 EventTopic(std::string_view signature);

// Builds call data (or constructor arguments): an optional selector, then
// one 32-byte word per argument.
class AbiEncoder {
 public:
  // A non-empty function_signature prefixes Selector(function_signature).
  explicit AbiEncoder(std::string_view function_signature = "");
  AbiEncoder& Uint(const U256& v);
  AbiEncoder& Addr(const Address& a);
  AbiEncoder& Bytes32(const Hash32& h);
  AbiEncoder& Bool(bool b);
  crypto::Bytes Finish() const;

 private:
  crypto::Bytes out_;
};

using Word = std::array<uint8_t, 32>;

// Splits data into 32-byte words. Errors: kInvalidArgument "FIELD: ..." if
// the size is not a multiple of 32 or there are fewer than min_words words.
StatusOr<std::vector<Word>> AbiWords(crypto::ByteSpan data, size_t min_words,
                                     std::string_view field);
// A uint<bits> word (bits a multiple of 8, 8..256). Errors: kInvalidArgument
// "FIELD: ..." if any bit above `bits` is set.
StatusOr<U256> WordUint(const Word& w, unsigned bits, std::string_view field);
// Errors: kInvalidArgument "FIELD: ..." if the 12 high bytes are not zero.
StatusOr<Address> WordAddress(const Word& w, std::string_view field);
// Errors: kInvalidArgument "FIELD: ..." unless the word is 0 or 1.
StatusOr<bool> WordBool(const Word& w, std::string_view field);
Hash32 WordHash(const Word& w);

}  // namespace cce::eth
