// ledger rpc_chain_source: the EthereumLedger's view of a real node, over
// eth::RpcClient (JSON-RPC over libcurl): chain id, head, block hashes, and
// the RentalMarket contract's Rented events.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "base/status.h"
#include "eth/eth.h"
#include "eth/rental_market.h"
#include "eth/rpc.h"
#include "ledger/ethereum_ledger.h"

namespace cce::ledger {

class RpcChainSource : public ChainSource {
 public:
  // Reads the events of the contract at `contract`.
  RpcChainSource(eth::RpcClient rpc, eth::Address contract);

  // Errors: as eth::RpcClient (kUnavailable when the node cannot be reached).
  StatusOr<uint64_t> ChainId() override;
  StatusOr<uint64_t> HeadNumber() override;
  StatusOr<std::optional<eth::Hash32>> BlockHash(uint64_t number) override;
  // The contract's Rented events of blocks [from_block, to_block], in the
  // node's order (block, then log index). One log that does not decode fails
  // the whole range (kDataLoss naming the transaction and log index): the
  // ledger never indexes part of what the chain says.
  StatusOr<std::vector<eth::RentedEvent>> RentedEvents(uint64_t from_block,
                                                       uint64_t to_block) override;

 private:
  std::mutex mu_;
  eth::RpcClient rpc_;  // guarded by mu_ (one HTTP connection)
  const eth::Address contract_;
};

}  // namespace cce::ledger
