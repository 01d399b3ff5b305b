#include "eth/tx.h"

#include <algorithm>
#include <string>

#include "eth/rlp.h"

namespace cce::eth {
namespace {

constexpr uint8_t kTxType = 0x02;
constexpr size_t kSignedFields = 12;

// The nine fields both the signing payload and the signed transaction start with.
std::vector<crypto::Bytes> PayloadFields(const Eip1559Tx& tx) {
  std::vector<crypto::Bytes> f;
  f.reserve(kSignedFields);
  f.push_back(RlpUint(tx.chain_id));
  f.push_back(RlpUint(tx.nonce));
  f.push_back(RlpUint(tx.max_priority_fee_per_gas));
  f.push_back(RlpUint(tx.max_fee_per_gas));
  f.push_back(RlpUint(tx.gas_limit));
  f.push_back(tx.to ? RlpBytes(tx.to->bytes) : RlpBytes({}));
  f.push_back(RlpUint(tx.value));
  f.push_back(RlpBytes(tx.data));
  f.push_back(RlpList({}));  // access list
  return f;
}

crypto::Bytes Typed(const crypto::Bytes& rlp) {
  crypto::Bytes out;
  out.reserve(rlp.size() + 1);
  out.push_back(kTxType);
  out.insert(out.end(), rlp.begin(), rlp.end());
  return out;
}

Hash32 SigningHash(const Eip1559Tx& tx) {
  return Keccak256(Typed(RlpList(PayloadFields(tx))));
}

StatusOr<uint64_t> Uint64Field(const RlpItem& item, std::string_view field) {
  ASSIGN_OR_RETURN(U256 v, RlpItemUint(item, 8, field));
  return static_cast<uint64_t>(v);
}

}  // namespace

StatusOr<SignedTx> SignTx(const Eip1559Tx& tx, const PrivateKey& key) {
  ASSIGN_OR_RETURN(Signature sig, key.Sign(SigningHash(tx)));
  std::vector<crypto::Bytes> fields = PayloadFields(tx);
  fields.push_back(RlpUint(sig.recovery_id));
  fields.push_back(RlpUint(U256FromBytes(sig.r)));
  fields.push_back(RlpUint(U256FromBytes(sig.s)));
  SignedTx out;
  out.raw = Typed(RlpList(fields));
  out.hash = Keccak256(out.raw);
  return out;
}

StatusOr<DecodedTx> DecodeSignedTx(crypto::ByteSpan raw) {
  if (raw.empty()) return InvalidArgument("tx: empty");
  if (raw[0] != kTxType) {
    return InvalidArgument("tx: type byte is " + std::to_string(raw[0]) +
                           ", only EIP-1559 (2) is supported");
  }
  auto decoded = RlpDecode(raw.subspan(1));
  if (!decoded.ok()) return decoded.status().WithContext("tx");
  const RlpItem& list = *decoded;
  if (!list.is_list || list.items.size() != kSignedFields) {
    return InvalidArgument("tx: expected a list of 12 fields");
  }
  const auto& f = list.items;
  DecodedTx out;
  Eip1559Tx& tx = out.tx;
  ASSIGN_OR_RETURN(tx.chain_id, Uint64Field(f[0], "tx: chainId"));
  ASSIGN_OR_RETURN(tx.nonce, Uint64Field(f[1], "tx: nonce"));
  ASSIGN_OR_RETURN(tx.max_priority_fee_per_gas, RlpItemUint(f[2], 32, "tx: maxPriorityFeePerGas"));
  ASSIGN_OR_RETURN(tx.max_fee_per_gas, RlpItemUint(f[3], 32, "tx: maxFeePerGas"));
  ASSIGN_OR_RETURN(tx.gas_limit, Uint64Field(f[4], "tx: gasLimit"));
  if (f[5].is_list || (f[5].bytes.size() != 0 && f[5].bytes.size() != 20)) {
    return InvalidArgument("tx: to: expected 20 bytes or empty");
  }
  if (f[5].bytes.size() == 20) {
    tx.to.emplace();
    std::copy(f[5].bytes.begin(), f[5].bytes.end(), tx.to->bytes.begin());
  }
  ASSIGN_OR_RETURN(tx.value, RlpItemUint(f[6], 32, "tx: value"));
  if (f[7].is_list) return InvalidArgument("tx: data: expected bytes, got a list");
  tx.data = f[7].bytes;
  if (!f[8].is_list || !f[8].items.empty()) {
    return InvalidArgument("tx: accessList: only an empty access list is supported");
  }
  if (tx.max_priority_fee_per_gas > tx.max_fee_per_gas) {
    return InvalidArgument("tx: maxPriorityFeePerGas exceeds maxFeePerGas");
  }
  ASSIGN_OR_RETURN(U256 y, RlpItemUint(f[9], 1, "tx: yParity"));
  if (y > 1) return InvalidArgument("tx: yParity must be 0 or 1");
  ASSIGN_OR_RETURN(U256 r, RlpItemUint(f[10], 32, "tx: r"));
  ASSIGN_OR_RETURN(U256 s, RlpItemUint(f[11], 32, "tx: s"));
  std::array<uint8_t, 65> rsv{};
  const auto r_bytes = U256ToBytes(r);
  const auto s_bytes = U256ToBytes(s);
  std::copy(r_bytes.begin(), r_bytes.end(), rsv.begin());
  std::copy(s_bytes.begin(), s_bytes.end(), rsv.begin() + 32);
  rsv[64] = static_cast<uint8_t>(y);
  // RLP decoding is canonical, so re-encoding the fields gives the signed bytes.
  auto sender = RecoverAddress(SigningHash(tx), rsv);
  if (!sender.ok()) return sender.status().WithContext("tx");
  out.sender = *sender;
  out.hash = Keccak256(raw);
  return out;
}

}  // namespace cce::eth
