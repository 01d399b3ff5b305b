// eth rpc: a JSON-RPC 2.0 client for an Ethereum node (the plane's ledger
// reads rental events through it; `cce-plane ledger` and `cce rent` send
// transactions through it). Every answer is parsed strictly: a field that is
// missing or malformed is an error naming it, never a default.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crypto/crypto.h"
#include "eth/eth.h"

namespace cce::eth {

struct RpcOptions {
  std::string url;      // http(s)://HOST[:PORT][/PATH] of the node
  std::string ca_file;  // PEM bundle to trust for https; empty: the system store
  std::chrono::milliseconds timeout{10'000};  // whole request
};

struct Block {
  uint64_t number = 0;
  Hash32 hash;
  Hash32 parent_hash;
  int64_t timestamp = 0;
  std::optional<U256> base_fee;  // absent before London (EIP-1559)
};

struct Log {
  Address address;
  std::vector<Hash32> topics;  // at most 4
  crypto::Bytes data;
  uint64_t block_number = 0;
  Hash32 block_hash;
  Hash32 tx_hash;
  uint64_t log_index = 0;
  bool removed = false;
};

struct Receipt {
  Hash32 tx_hash;
  uint64_t block_number = 0;
  Hash32 block_hash;
  bool success = false;                     // status 0x1
  std::optional<Address> contract_address;  // set for a contract creation
  uint64_t gas_used = 0;
  std::vector<Log> logs;
};

// Parsers of the node's JSON (exposed for the fuzz target and tests). `field`
// prefixes every error: kInvalidArgument "FIELD.hash: ..." for a missing or
// malformed member, or a value out of range (numbers beyond uint64/int64).
StatusOr<Block> BlockFromJson(const nlohmann::json& j, std::string_view field);
StatusOr<Log> LogFromJson(const nlohmann::json& j, std::string_view field);
StatusOr<Receipt> ReceiptFromJson(const nlohmann::json& j, std::string_view field);

// The `result` of one JSON-RPC 2.0 response body to request `id` of `method`.
// Errors: kInvalidArgument "METHOD: ..." for a body that is not a JSON
// object (or nests deeper than 64), a wrong "jsonrpc" or "id", or neither
// "result" nor "error"; kFailedPrecondition "METHOD: CODE MESSAGE" for a node
// error, followed by ": " and DescribeRevert(data) when the error carries
// revert data (hex "data").
StatusOr<nlohmann::json> ParseRpcResponse(std::string_view body, uint64_t id,
                                          std::string_view method);

// One node. Not thread-safe (one HTTP connection): one per thread.
// Every error names the JSON-RPC method; transport errors (connection
// refused, timeout, TLS, a non-200 HTTP status) are kUnavailable naming the
// node's URL (with any user:password@ and path replaced, as both may hold an
// API key).
class RpcClient {
 public:
  // Errors: kInvalidArgument for a URL that is not http(s)://... or a CA file
  // that cannot be read.
  static StatusOr<RpcClient> Create(RpcOptions o);
  RpcClient(RpcClient&&) noexcept;
  RpcClient& operator=(RpcClient&&) noexcept;
  ~RpcClient();

  // The URL as messages show it.
  const std::string& url_for_messages() const;

  // One request; the result as is (JSON null included). Errors: as above.
  StatusOr<nlohmann::json> Call(std::string_view method, nlohmann::json params);

  StatusOr<uint64_t> ChainId();      // eth_chainId
  StatusOr<uint64_t> BlockNumber();  // eth_blockNumber
  // eth_getBlockByNumber; nullopt: no such block yet. kDataLoss if the node
  // answers with another block's number.
  StatusOr<std::optional<Block>> BlockByNumber(uint64_t n);
  StatusOr<std::optional<Block>> LatestBlock();
  // eth_getLogs of `contract` in blocks [from, to] whose topic0 is any of
  // topic0_any (empty: any). kDataLoss if the node returns a log of another
  // contract, outside the range, with another topic0, or removed.
  StatusOr<std::vector<Log>> GetLogs(const Address& contract, const std::vector<Hash32>& topic0_any,
                                     uint64_t from, uint64_t to);
  StatusOr<uint64_t> PendingNonce(const Address& a);  // eth_getTransactionCount "pending"
  StatusOr<U256> Balance(const Address& a);           // eth_getBalance "latest"
  // eth_sendRawTransaction. kDataLoss if the node names another hash than
  // keccak256(raw).
  StatusOr<Hash32> SendRawTransaction(crypto::ByteSpan raw);
  // eth_getTransactionReceipt; nullopt: not mined (yet). kDataLoss if the
  // receipt is of another transaction.
  StatusOr<std::optional<Receipt>> TransactionReceipt(const Hash32& tx);
  // eth_call at "latest" (or at `block` when given): the return data. A
  // revert is kFailedPrecondition with the decoded reason.
  StatusOr<crypto::Bytes> EthCall(const Address& to, crypto::ByteSpan data,
                                  std::optional<Address> from = std::nullopt);
  StatusOr<crypto::Bytes> EthCallAt(const Address& to, crypto::ByteSpan data,
                                    std::optional<Address> from, const U256& value, uint64_t block);
  // eth_estimateGas. A revert is kFailedPrecondition with the decoded reason.
  StatusOr<uint64_t> EstimateGas(const Address& from, const std::optional<Address>& to,
                                 const U256& value, crypto::ByteSpan data);
  StatusOr<U256> MaxPriorityFeePerGas();              // eth_maxPriorityFeePerGas
  StatusOr<crypto::Bytes> GetCode(const Address& a);  // eth_getCode "latest"

 private:
  struct Impl;
  explicit RpcClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cce::eth
