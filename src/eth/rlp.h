// RLP (Recursive Length Prefix, Ethereum yellow paper appendix B): the
// encoding of transactions. The decoder accepts canonical encodings only, so
// one value has exactly one encoding (and one transaction hash).
#pragma once

#include <vector>

#include "base/status.h"
#include "crypto/crypto.h"
#include "eth/eth.h"

namespace cce::eth {

// The encoding of a byte string.
crypto::Bytes RlpBytes(crypto::ByteSpan b);
// The encoding of an integer: its minimal big-endian bytes (0 is the empty string).
crypto::Bytes RlpUint(const U256& v);
// The encoding of a list whose items are already encoded.
crypto::Bytes RlpList(const std::vector<crypto::Bytes>& encoded_items);

struct RlpItem {
  bool is_list = false;
  crypto::Bytes bytes;         // when !is_list
  std::vector<RlpItem> items;  // when is_list
};

// Decodes exactly one item spanning all of `in`, nesting depth <= 16.
// Errors: kInvalidArgument "rlp: byte N: ..." naming the offset for a
// truncated item, trailing bytes, a non-canonical length (a single byte
// < 0x80 encoded as a string, a long form for < 56 bytes, leading zeros in a
// length), or too deep nesting.
StatusOr<RlpItem> RlpDecode(crypto::ByteSpan in);

// A decoded string as an integer of at most `max_bytes` bytes, no leading
// zero byte (canonical); max_bytes is capped at 32. Errors: kInvalidArgument "FIELD: ...".
StatusOr<U256> RlpItemUint(const RlpItem& item, size_t max_bytes, std::string_view field);

}  // namespace cce::eth
