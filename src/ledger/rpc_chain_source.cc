#include "ledger/rpc_chain_source.h"

#include <utility>

namespace cce::ledger {

RpcChainSource::RpcChainSource(eth::RpcClient rpc, eth::Address contract)
    : rpc_(std::move(rpc)), contract_(contract) {}

StatusOr<uint64_t> RpcChainSource::ChainId() {
  std::lock_guard lock(mu_);
  return rpc_.ChainId();
}

StatusOr<uint64_t> RpcChainSource::HeadNumber() {
  std::lock_guard lock(mu_);
  return rpc_.BlockNumber();
}

StatusOr<std::optional<eth::Hash32>> RpcChainSource::BlockHash(uint64_t number) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(std::optional<eth::Block> block, rpc_.BlockByNumber(number));
  if (!block) return std::optional<eth::Hash32>();
  return std::optional<eth::Hash32>(block->hash);
}

StatusOr<std::vector<eth::RentedEvent>> RpcChainSource::RentedEvents(uint64_t from_block,
                                                                     uint64_t to_block) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(std::vector<eth::Log> logs,
                   rpc_.GetLogs(contract_, {eth::RentedTopic()}, from_block, to_block));
  std::vector<eth::RentedEvent> events;
  events.reserve(logs.size());
  for (const eth::Log& log : logs) {
    auto event = eth::DecodeRented(log);
    if (!event.ok()) {
      return DataLoss("contract " + contract_.Hex() + ": " + event.status().message());
    }
    events.push_back(std::move(event).value());
  }
  return events;
}

}  // namespace cce::ledger
