// eth rental_market: the binding to contracts/RentalMarket.sol (the
// committed build in contracts/build/RentalMarket.json, embedded at build
// time): how the plane names itself and its datasets on chain, the call data
// of each function, and strict decoding of its return values, events and
// revert reasons. docs/ledger.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "crypto/crypto.h"
#include "eth/eth.h"
#include "eth/rpc.h"  // Log (a plain struct; nothing of the client is used here)

namespace cce::eth {

// keccak256("cce4long.plane.v1" || the plane's Ed25519 public key).
Hash32 PlaneId(crypto::ByteSpan plane_ed25519_public_key);

// keccak256(abi.encode(keccak256("cce4long.dataset.v1"), plane_id,
// uint256(dataset_id))): the dataset's id on chain, bound to the plane. The
// plane's dataset ids are positive; a negative one is encoded as its
// two's complement uint64.
Hash32 ChainDatasetId(const Hash32& plane_id, int64_t dataset_id);

// The committed creation bytecode followed by abi.encode(plane_id).
crypto::Bytes DeployData(const Hash32& plane_id);
// The committed runtime bytecode: what eth_getCode must return for a
// contract deployed with DeployData.
crypto::Bytes DeployedBytecode();
// The compiler named in RentalMarket.json ("0.8.28+commit.7893614a").
std::string_view ContractCompiler();

// Call data. price_per_day must be < 2^128 (the contract's uint128; a larger
// value makes the call revert): callers check.
crypto::Bytes EncodeRegisterDataset(const Hash32& id, const Address& provider,
                                    const U256& price_per_day, uint32_t max_days);
crypto::Bytes EncodeDeactivateDataset(const Hash32& id);
crypto::Bytes EncodeRent(const Hash32& id, uint32_t days);
crypto::Bytes EncodeSetPaused(bool paused);
crypto::Bytes EncodeWithdraw();
crypto::Bytes EncodeDatasetGetter(const Hash32& id);  // datasets(bytes32)
crypto::Bytes EncodePlaneIdGetter();                  // planeId()
crypto::Bytes EncodeOperatorGetter();                 // operator()
crypto::Bytes EncodePausedGetter();                   // paused()
crypto::Bytes EncodePendingWithdrawalsGetter(const Address& provider);

struct ChainDataset {
  Address provider;
  U256 price_per_day = 0;
  uint32_t max_days = 0;
  bool active = false;
};

// Return data of datasets(bytes32): exactly 4 words. Errors: kInvalidArgument
// "datasets(): ..." naming the word (size, high bits set, bool not 0/1).
StatusOr<ChainDataset> DecodeDataset(crypto::ByteSpan ret);
// Return data of planeId() / operator() / paused() / a uint256 getter:
// exactly one word. Errors: kInvalidArgument naming the function.
StatusOr<Hash32> DecodeBytes32Return(crypto::ByteSpan ret, std::string_view function);
StatusOr<Address> DecodeAddressReturn(crypto::ByteSpan ret, std::string_view function);
StatusOr<bool> DecodeBoolReturn(crypto::ByteSpan ret, std::string_view function);
StatusOr<U256> DecodeUintReturn(crypto::ByteSpan ret, std::string_view function);

// One Rented(bytes32 indexed datasetId, address indexed consumer, uint64
// start, uint64 end, uint32 days_, uint256 amount) event.
struct RentedEvent {
  Hash32 dataset;
  Address consumer;
  int64_t start = 0;
  int64_t end = 0;
  uint32_t days = 0;
  U256 amount = 0;
  uint64_t block_number = 0;
  Hash32 block_hash;
  Hash32 tx_hash;
  uint64_t log_index = 0;
};

// keccak256("Rented(bytes32,address,uint64,uint64,uint32,uint256)").
Hash32 RentedTopic();

// Decodes a Rented log. Errors: kInvalidArgument "log TX#INDEX: ..." for a
// removed log, a topic0 other than RentedTopic(), other than 3 topics, data
// other than 4 words, a value beyond its type (or start/end beyond int64),
// zero days, or end != start + days * 86400.
StatusOr<RentedEvent> DecodeRented(const Log& log);

// A revert reason in words: the contract's custom errors
// ("WrongPayment(expected 2 ETH, sent 1 ETH)", "UnknownDataset(0x…)",
// "TooManyDays(max 30)", "NotOperator()", ...), Error(string) as
// "Error(\"text\")", Panic(uint256) as "Panic(0x11)", "no revert data" for
// none, and "unknown revert data 0x…" (at most 68 bytes shown) otherwise.
std::string DescribeRevert(crypto::ByteSpan revert_data);

}  // namespace cce::eth
