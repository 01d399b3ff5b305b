// eth send: builds, signs (EIP-1559), sends a transaction and waits for its
// receipt and confirmations. Used by `cce-plane ledger deploy|register-dataset`
// and `cce rent`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "base/status.h"
#include "crypto/crypto.h"
#include "eth/eth.h"
#include "eth/rpc.h"
#include "eth/secp256k1.h"

namespace cce::eth {

struct TxRequest {
  std::optional<Address> to;  // nullopt: contract creation
  U256 value = 0;
  crypto::Bytes data;
};

struct SendOptions {
  // Blocks that must hold the transaction's block, counting it (1: mined).
  uint64_t confirmations = 1;
  // From sending until the last confirmation.
  std::chrono::seconds timeout{120};
  std::chrono::milliseconds poll_interval{1000};
  // Told each step: "sent 0x…", "mined in block N", "confirmations 2/3".
  std::function<void(std::string_view stage)> progress;
};

// Sends req from key's address on chain chain_id and waits: nonce from the
// pending state, max fee 2 * the latest base fee + the node's suggested tip,
// gas limit the node's estimate * 1.25. Once mined, the receipt's block is
// re-checked against the canonical chain at every poll until `confirmations`
// (a transaction reorganised away is waited for again).
// Errors: kFailedPrecondition naming the reason for a chain id other than
// the node's, an estimate that reverts ("...: WrongPayment(expected 2 ETH,
// sent 1 ETH)"), a balance below value + gas * max fee, or a mined receipt
// with status 0 (the reason replayed with eth_call at its block);
// kUnavailable for a node that cannot be reached, or a timeout (the
// transaction hash named: it may still be mined); what RpcClient returns.
StatusOr<Receipt> SendAndWait(RpcClient& rpc, uint64_t chain_id, const PrivateKey& key,
                              const TxRequest& req, const SendOptions& o);

}  // namespace cce::eth
