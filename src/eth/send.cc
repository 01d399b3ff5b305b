#include "eth/send.h"

#include <algorithm>
#include <string>
#include <thread>

#include "eth/rental_market.h"
#include "eth/tx.h"

namespace cce::eth {
namespace {

void Tell(const SendOptions& o, const std::string& stage) {
  if (o.progress) o.progress(stage);
}

// Why a mined transaction failed: the same call replayed at its block.
std::string RevertReason(RpcClient& rpc, const Address& from, const TxRequest& req,
                         uint64_t block) {
  if (!req.to) return "contract creation failed";
  auto replay = rpc.EthCallAt(*req.to, req.data, from, req.value, block);
  if (replay.ok()) return "no reason (the replay at that block succeeds)";
  return replay.status().message();
}

}  // namespace

StatusOr<Receipt> SendAndWait(RpcClient& rpc, uint64_t chain_id, const PrivateKey& key,
                              const TxRequest& req, const SendOptions& o) {
  const Address from = key.address();
  ASSIGN_OR_RETURN(uint64_t node_chain, rpc.ChainId());
  if (node_chain != chain_id) {
    return FailedPrecondition("the node at " + rpc.url_for_messages() + " is on chain " +
                              std::to_string(node_chain) + ", expected chain " +
                              std::to_string(chain_id));
  }
  ASSIGN_OR_RETURN(std::optional<Block> latest, rpc.LatestBlock());
  if (!latest) return FailedPrecondition("the node has no latest block");
  if (!latest->base_fee) {
    return FailedPrecondition("the node's latest block has no base fee (EIP-1559 is required)");
  }
  ASSIGN_OR_RETURN(U256 tip, rpc.MaxPriorityFeePerGas());
  Eip1559Tx tx;
  tx.chain_id = chain_id;
  tx.to = req.to;
  tx.value = req.value;
  tx.data = req.data;
  tx.max_priority_fee_per_gas = tip;
  tx.max_fee_per_gas = 2 * *latest->base_fee + tip;
  // An estimate that reverts is the contract saying no: its reason is in the
  // error (rpc.cc decodes the revert data), before anything is signed.
  auto estimate = rpc.EstimateGas(from, req.to, req.value, req.data);
  if (!estimate.ok()) {
    if (estimate.status().code() == StatusCode::kFailedPrecondition) {
      return FailedPrecondition("the transaction would fail: " + estimate.status().message());
    }
    return estimate.status();
  }
  tx.gas_limit = *estimate + *estimate / 4;
  ASSIGN_OR_RETURN(U256 balance, rpc.Balance(from));
  const U256 cost = req.value + U256(tx.gas_limit) * tx.max_fee_per_gas;
  if (balance < cost) {
    return FailedPrecondition("account " + from.Checksummed() + " holds " + FormatEther(balance) +
                              ", the transaction may cost up to " + FormatEther(cost) +
                              " (value + gas)");
  }
  ASSIGN_OR_RETURN(tx.nonce, rpc.PendingNonce(from));
  ASSIGN_OR_RETURN(SignedTx signed_tx, SignTx(tx, key));
  ASSIGN_OR_RETURN(Hash32 hash, rpc.SendRawTransaction(signed_tx.raw));
  Tell(o, "sent " + hash.Hex());

  const auto deadline = std::chrono::steady_clock::now() + o.timeout;
  const uint64_t wanted = std::max<uint64_t>(o.confirmations, 1);
  std::optional<uint64_t> told_block;
  uint64_t told_confirmations = 0;
  for (;;) {
    ASSIGN_OR_RETURN(std::optional<Receipt> receipt, rpc.TransactionReceipt(hash));
    if (receipt) {
      if (told_block != receipt->block_number) {
        Tell(o, "mined in block " + std::to_string(receipt->block_number));
        told_block = receipt->block_number;
        told_confirmations = 0;
      }
      if (!receipt->success) {
        return FailedPrecondition("transaction " + hash.Hex() + " failed in block " +
                                  std::to_string(receipt->block_number) + ": " +
                                  RevertReason(rpc, from, req, receipt->block_number));
      }
      ASSIGN_OR_RETURN(uint64_t head, rpc.BlockNumber());
      // The receipt's block must still be the canonical one at its height:
      // a reorganisation may have moved or dropped the transaction.
      ASSIGN_OR_RETURN(std::optional<Block> at, rpc.BlockByNumber(receipt->block_number));
      if (at && at->hash == receipt->block_hash && head >= receipt->block_number) {
        const uint64_t have = head - receipt->block_number + 1;
        if (have >= wanted) {
          if (wanted > 1 && told_confirmations < wanted) {
            Tell(o, "confirmations " + std::to_string(wanted) + "/" + std::to_string(wanted));
          }
          return std::move(receipt).value();
        }
        if (have != told_confirmations) {
          Tell(o, "confirmations " + std::to_string(have) + "/" + std::to_string(wanted));
          told_confirmations = have;
        }
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Unavailable(
          "transaction " + hash.Hex() + ": not " +
          (told_block ? "confirmed " + std::to_string(wanted) + " times" : std::string("mined")) +
          " within " + std::to_string(o.timeout.count()) +
          " s (it may still be; look it up on the node)");
    }
    std::this_thread::sleep_for(o.poll_interval);
  }
}

}  // namespace cce::eth
