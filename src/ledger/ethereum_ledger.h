// ledger ethereum: the `ethereum` backend (docs/ledger.md). Rentals are
// Rented events of the plane's RentalMarket contract. Sync() copies the
// events of blocks with enough confirmations into the store (an index that
// survives reorganisations: block hashes are re-checked and rentals whose
// block left the canonical chain are dropped); Covers() reads that index
// only, so checking a rental never waits on the node, and an unreachable
// node grants nothing new while what was indexed stays valid until its end.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "eth/eth.h"
#include "eth/rental_market.h"
#include "ledger/ledger.h"
#include "store/store.h"

namespace cce::ledger {

// What the indexer needs from a node. RpcChainSource (rpc_chain_source.h) is
// the real one; tests use a fake. Errors: kUnavailable when the node cannot
// be reached; anything else is passed on as the round's failure.
class ChainSource {
 public:
  virtual ~ChainSource() = default;
  virtual StatusOr<uint64_t> ChainId() = 0;
  virtual StatusOr<uint64_t> HeadNumber() = 0;
  // The hash of canonical block `number`; nullopt when there is no such block.
  virtual StatusOr<std::optional<eth::Hash32>> BlockHash(uint64_t number) = 0;
  // The contract's Rented events of blocks [from_block, to_block].
  virtual StatusOr<std::vector<eth::RentedEvent>> RentedEvents(uint64_t from_block,
                                                               uint64_t to_block) = 0;
};

struct EthereumLedgerOptions {
  uint64_t chain_id = 0;
  eth::Address contract;
  // A block counts once it has this many confirmations (itself included, so
  // 1 is the head): blocks up to head - confirmations + 1 are indexed. >= 1.
  uint64_t confirmations = 12;
  uint64_t start_block = 0;              // the contract's deployment block
  eth::Hash32 plane_id;                  // eth::PlaneId of the plane's signing key
  uint64_t max_blocks_per_query = 2000;  // >= 1: the widest RentedEvents range asked for
};

class EthereumLedger : public Ledger {
 public:
  // `db`, `clock` and `signing_key` must outlive the ledger; `chain` is
  // used by Sync only. The plane's key signs every indexed row.
  EthereumLedger(store::Store& db, std::unique_ptr<ChainSource> chain, EthereumLedgerOptions o,
                 const Clock& clock, const crypto::Ed25519PrivateKey& signing_key);

  std::string backend() const override { return "ethereum"; }

  // True iff the union of the indexed rentals of `dataset_id` paid by an
  // address linked to `consumer_id` covers every second of [t0, t1). Reads
  // the store only, never the node. kInvalidArgument for an empty interval;
  // kFailedPrecondition when the stored index is of another chain id or
  // contract than the options name (it grants nothing then); kDataLoss
  // naming the row when a wallet link or indexed rental it would rely on is
  // not signed by the plane (written behind its back: it grants nothing).
  StatusOr<bool> Covers(int64_t consumer_id, int64_t dataset_id, int64_t t0, int64_t t1) override;

  struct SyncReport {
    uint64_t head = 0;             // the node's head block
    uint64_t indexed_through = 0;  // the last block indexed (0 when none is)
    int64_t added = 0;             // rentals newly indexed this round
    int64_t dropped = 0;           // rentals dropped by a reorganisation this round
  };

  // One indexing round (rounds never overlap: a second caller waits):
  //  1. the node's chain id must be options.chain_id, and a stored index
  //     must be of options' chain id and contract: kFailedPrecondition
  //     naming both values otherwise, and nothing changes;
  //  2. the block hash of every indexed rental not yet ended, and of the
  //     cursor's last block, is fetched again: on a mismatch (or a block the
  //     node no longer has) those rentals are dropped, each audited
  //     `ledger.reorg` (deny) with its transaction, block, old and new hash,
  //     and the cursor rewinds to start_block, audited `ledger.reorg` (info):
  //     the fork point is unknown (the store keeps no other block hashes),
  //     so the range is indexed again, keeping rows still there as they are;
  //  3. the Rented events of blocks [cursor, head - confirmations + 1] are
  //     indexed, max_blocks_per_query blocks per store transaction, each
  //     rental audited `rental.index` (allow) with its transaction, block,
  //     payer, dataset, interval and amount. An event of a dataset this plane
  //     does not have is skipped, audited `rental.index` (deny).
  // An event whose block hash is not the canonical one, or a block that
  // vanishes during the round, fails the round (kUnavailable) without
  // indexing that range: the next round retries it. Node errors are
  // returned as they are (kUnavailable when it is unreachable); chunks
  // indexed before the failure stay indexed. kInvalidArgument: confirmations
  // or max_blocks_per_query is 0.
  StatusOr<SyncReport> Sync();

 private:
  struct CatalogEntry {
    int64_t id = 0;
    std::string name;
  };
  // The block hashes fetched in one phase of a round (each block once).
  using HashCache = std::map<uint64_t, std::optional<eth::Hash32>>;

  Status CheckIndexDeployment(const store::ChainCursor& cursor) const;
  StatusOr<std::optional<eth::Hash32>> HashAt(HashCache& cache, uint64_t number);
  // The plane dataset with this chain id; reloads the catalog once per round
  // on a miss (datasets registered since). nullopt: not one of ours.
  StatusOr<std::optional<CatalogEntry>> DatasetFor(const eth::Hash32& chain_id, bool* reloaded);
  std::string DatasetObject(int64_t dataset_id) const;
  Status ReloadCatalog();
  // Step 2 of Sync: returns the cursor to index from (rewound or as stored).
  StatusOr<store::ChainCursor> CheckForReorg(const store::ChainCursor& stored, uint64_t head,
                                             int64_t now, SyncReport* report);
  // Step 3 for blocks [from, to]: the next cursor, committed.
  StatusOr<store::ChainCursor> IndexRange(const std::optional<store::ChainCursor>& expected,
                                          uint64_t from, uint64_t to, int64_t now,
                                          bool* catalog_reloaded, SyncReport* report);

  store::Store& db_;
  std::unique_ptr<ChainSource> chain_;  // guarded by sync_mu_
  const EthereumLedgerOptions o_;
  const std::string contract_hex_;  // o_.contract.Hex()
  const Clock& clock_;
  const crypto::Ed25519PrivateKey& key_;
  const crypto::Bytes public_key_;  // of key_

  std::mutex sync_mu_;  // one Sync at a time; guards chain_ and the catalog below
  std::map<eth::Hash32, CatalogEntry> by_chain_id_;  // guarded by sync_mu_
  std::map<int64_t, std::string> names_;             // guarded by sync_mu_
};

}  // namespace cce::ledger
