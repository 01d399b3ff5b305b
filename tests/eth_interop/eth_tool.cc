// eth_tool: drives src/eth for the Ethereum interop test (interop.cjs). Reads
// one JSON array of cases from stdin and writes one JSON array of results,
// in order, to stdout. Per case (all hex "0x"-prefixed, integers decimal):
//   in:  {"key", "message", "ethers_personal_sig", "address_checksummed",
//         "address_bad_checksum",
//         "tx": {"chain_id", "nonce", "max_priority_fee_per_gas",
//                "max_fee_per_gas", "gas_limit", "to" (or null), "value", "data"},
//         "ethers_tx_raw", "abi": {"uint256", "uint32", "address", "bool", "bytes32"},
//         "rlp": nested arrays of hex strings, "ethers_rlp"}
//   out: {"address", "address_lower", "public_key", "personal_sig",
//         "personal_signer", "ethers_personal_signer", "address_parsed",
//         "bad_checksum_refused", "tx_raw", "tx_hash", "ethers_tx_sender",
//         "ethers_tx_hash", "ethers_tx_fields": {...}, "abi", "rlp",
//         "ethers_rlp_reencoded"}
// A case that fails anywhere gives {"error": "..."}.
#include <exception>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "eth/abi.h"
#include "eth/eip191.h"
#include "eth/eth.h"
#include "eth/rlp.h"
#include "eth/secp256k1.h"
#include "eth/tx.h"

namespace {

namespace eth = cce::eth;
namespace crypto = cce::crypto;
using cce::Status;
using cce::StatusOr;
using Json = nlohmann::json;

StatusOr<eth::U256> Dec(const Json& j, const char* name) {
  return eth::ParseDecimal(j.at(name).get<std::string>(), name);
}

StatusOr<crypto::Bytes> EncodeRlp(const Json& j) {
  if (j.is_string()) {
    ASSIGN_OR_RETURN(crypto::Bytes b, eth::ParseHex(j.get<std::string>(), "rlp"));
    return eth::RlpBytes(b);
  }
  std::vector<crypto::Bytes> items;
  for (const Json& child : j) {
    ASSIGN_OR_RETURN(crypto::Bytes e, EncodeRlp(child));
    items.push_back(std::move(e));
  }
  return eth::RlpList(items);
}

crypto::Bytes ReEncode(const eth::RlpItem& item) {
  if (!item.is_list) return eth::RlpBytes(item.bytes);
  std::vector<crypto::Bytes> children;
  for (const auto& c : item.items) children.push_back(ReEncode(c));
  return eth::RlpList(children);
}

StatusOr<Json> RunCase(const Json& c) {
  Json out;
  ASSIGN_OR_RETURN(crypto::Bytes key_bytes, eth::ParseHex(c.at("key").get<std::string>(), "key"));
  ASSIGN_OR_RETURN(eth::PrivateKey key, eth::PrivateKey::FromBytes(key_bytes));
  out["address"] = key.address().Checksummed();
  out["address_lower"] = key.address().Hex();
  out["public_key"] = eth::ToHex(key.PublicKey());

  const std::string message = c.at("message").get<std::string>();
  ASSIGN_OR_RETURN(std::string sig, eth::SignPersonal(message, key));
  out["personal_sig"] = sig;
  ASSIGN_OR_RETURN(eth::Address signer, eth::RecoverPersonalSigner(message, sig));
  out["personal_signer"] = signer.Checksummed();
  ASSIGN_OR_RETURN(
      eth::Address ethers_signer,
      eth::RecoverPersonalSigner(message, c.at("ethers_personal_sig").get<std::string>()));
  out["ethers_personal_signer"] = ethers_signer.Checksummed();

  ASSIGN_OR_RETURN(eth::Address parsed,
                   eth::ParseAddress(c.at("address_checksummed").get<std::string>(), "address"));
  out["address_parsed"] = parsed.Hex();
  if (c.contains("address_bad_checksum")) {
    out["bad_checksum_refused"] =
        !eth::ParseAddress(c.at("address_bad_checksum").get<std::string>(), "address").ok();
  }

  const Json& t = c.at("tx");
  eth::Eip1559Tx tx;
  ASSIGN_OR_RETURN(eth::U256 chain_id, Dec(t, "chain_id"));
  ASSIGN_OR_RETURN(eth::U256 nonce, Dec(t, "nonce"));
  ASSIGN_OR_RETURN(eth::U256 gas_limit, Dec(t, "gas_limit"));
  tx.chain_id = static_cast<uint64_t>(chain_id);
  tx.nonce = static_cast<uint64_t>(nonce);
  tx.gas_limit = static_cast<uint64_t>(gas_limit);
  ASSIGN_OR_RETURN(tx.max_priority_fee_per_gas, Dec(t, "max_priority_fee_per_gas"));
  ASSIGN_OR_RETURN(tx.max_fee_per_gas, Dec(t, "max_fee_per_gas"));
  ASSIGN_OR_RETURN(tx.value, Dec(t, "value"));
  if (!t.at("to").is_null()) {
    ASSIGN_OR_RETURN(tx.to, eth::ParseAddress(t.at("to").get<std::string>(), "to"));
  }
  ASSIGN_OR_RETURN(tx.data, eth::ParseHex(t.at("data").get<std::string>(), "data"));
  ASSIGN_OR_RETURN(eth::SignedTx signed_tx, eth::SignTx(tx, key));
  out["tx_raw"] = eth::ToHex(signed_tx.raw);
  out["tx_hash"] = signed_tx.hash.Hex();
  ASSIGN_OR_RETURN(crypto::Bytes ethers_raw,
                   eth::ParseHex(c.at("ethers_tx_raw").get<std::string>(), "ethers_tx_raw"));
  ASSIGN_OR_RETURN(eth::DecodedTx decoded, eth::DecodeSignedTx(ethers_raw));
  out["ethers_tx_sender"] = decoded.sender.Checksummed();
  out["ethers_tx_hash"] = decoded.hash.Hex();
  out["ethers_tx_fields"] = {
      {"chain_id", std::to_string(decoded.tx.chain_id)},
      {"nonce", std::to_string(decoded.tx.nonce)},
      {"max_priority_fee_per_gas", eth::ToDecimal(decoded.tx.max_priority_fee_per_gas)},
      {"max_fee_per_gas", eth::ToDecimal(decoded.tx.max_fee_per_gas)},
      {"gas_limit", std::to_string(decoded.tx.gas_limit)},
      {"to", decoded.tx.to ? Json(decoded.tx.to->Hex()) : Json(nullptr)},
      {"value", eth::ToDecimal(decoded.tx.value)},
      {"data", eth::ToHex(decoded.tx.data)}};

  const Json& a = c.at("abi");
  ASSIGN_OR_RETURN(eth::U256 u256, Dec(a, "uint256"));
  ASSIGN_OR_RETURN(eth::U256 u32, Dec(a, "uint32"));
  ASSIGN_OR_RETURN(eth::Address addr, eth::ParseAddress(a.at("address").get<std::string>(), "abi"));
  ASSIGN_OR_RETURN(eth::Hash32 b32, eth::ParseHash32(a.at("bytes32").get<std::string>(), "abi"));
  out["abi"] = eth::ToHex(eth::AbiEncoder("f(uint256,uint32,address,bool,bytes32)")
                              .Uint(u256)
                              .Uint(u32)
                              .Addr(addr)
                              .Bool(a.at("bool").get<bool>())
                              .Bytes32(b32)
                              .Finish());

  ASSIGN_OR_RETURN(crypto::Bytes rlp, EncodeRlp(c.at("rlp")));
  out["rlp"] = eth::ToHex(rlp);
  ASSIGN_OR_RETURN(crypto::Bytes ethers_rlp,
                   eth::ParseHex(c.at("ethers_rlp").get<std::string>(), "ethers_rlp"));
  ASSIGN_OR_RETURN(eth::RlpItem item, eth::RlpDecode(ethers_rlp));
  out["ethers_rlp_reencoded"] = eth::ToHex(ReEncode(item));
  return out;
}

}  // namespace

int main() {
  try {
    const std::string input((std::istreambuf_iterator<char>(std::cin)),
                            std::istreambuf_iterator<char>());
    const Json cases = Json::parse(input);
    Json results = Json::array();
    for (const Json& c : cases) {
      auto r = RunCase(c);
      results.push_back(r.ok() ? *r : Json{{"error", r.status().ToString()}});
    }
    std::cout << results.dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "eth_tool: " << e.what() << "\n";
    return 1;
  }
}
