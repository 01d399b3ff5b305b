// libFuzzer target for EIP-1559 transactions (docs/fuzzing.md). Byte 0
// selects the shape:
//   even: the rest is a signed transaction through DecodeSignedTx; an accepted
//         one must hash to keccak256(input), and re-signing is impossible, so
//         its fields must re-encode (with RLP) inside the input unchanged
//   odd:  the rest fills a transaction's fields, which is signed with a fixed
//         key; the decoder must return the same fields, hash and sender
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "eth/rlp.h"
#include "eth/tx.h"

namespace {

namespace eth = cce::eth;
using cce::crypto::Bytes;
using cce::crypto::ByteSpan;

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

// Reads n bytes (fewer at the end) as a big-endian integer.
eth::U256 Take(ByteSpan& in, size_t n) {
  n = std::min(n, in.size());
  const eth::U256 v = eth::U256FromBytes(in.first(n));
  in = in.subspan(n);
  return v;
}

void SignAndDecode(ByteSpan in) {
  eth::Eip1559Tx tx;
  tx.chain_id = static_cast<uint64_t>(Take(in, 8));
  tx.nonce = static_cast<uint64_t>(Take(in, 8));
  tx.max_fee_per_gas = Take(in, 1 + (in.empty() ? 0 : in[0] % 32));
  tx.max_priority_fee_per_gas = tx.max_fee_per_gas / (1 + static_cast<unsigned>(Take(in, 1)));
  tx.gas_limit = static_cast<uint64_t>(Take(in, 8));
  if (static_cast<unsigned>(Take(in, 1)) % 2 == 1 && in.size() >= 20) {
    tx.to.emplace();
    std::copy_n(in.begin(), 20, tx.to->bytes.begin());
    in = in.subspan(20);
  }
  tx.value = Take(in, 32);
  tx.data.assign(in.begin(), in.end());
  auto signed_tx = eth::SignTx(tx, FixedKey());
  if (!signed_tx.ok()) std::abort();
  auto d = eth::DecodeSignedTx(signed_tx->raw);
  if (!d.ok() || d->sender != FixedKey().address() || d->hash != signed_tx->hash ||
      d->tx.chain_id != tx.chain_id || d->tx.nonce != tx.nonce ||
      d->tx.max_fee_per_gas != tx.max_fee_per_gas ||
      d->tx.max_priority_fee_per_gas != tx.max_priority_fee_per_gas ||
      d->tx.gas_limit != tx.gas_limit || d->tx.to != tx.to || d->tx.value != tx.value ||
      d->tx.data != tx.data) {
    std::abort();
  }
}

void Decode(ByteSpan in) {
  auto d = eth::DecodeSignedTx(in);
  if (!d.ok()) {
    if (d.status().message().rfind("tx: ", 0) != 0) std::abort();
    return;
  }
  if (d->hash != eth::Keccak256(in)) std::abort();
  // The decoded fields, encoded again, are the first 9 items of the input.
  const Bytes chain = eth::RlpUint(d->tx.chain_id);
  const Bytes data = eth::RlpBytes(d->tx.data);
  if (std::search(in.begin(), in.end(), chain.begin(), chain.end()) == in.end() ||
      std::search(in.begin(), in.end(), data.begin(), data.end()) == in.end()) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const ByteSpan rest(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    Decode(rest);
  } else {
    SignAndDecode(rest);
  }
  return 0;
}
