#include "ledger/ethereum_ledger.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace cce::ledger {
namespace {

using store::AuditDecision;
using store::AuditRecord;
using store::ChainCursor;
using store::ChainRental;

constexpr uint64_t kMaxInt64 = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
constexpr int64_t kPage = 10000;  // the store's largest list page

std::string U(uint64_t v) {
  return std::to_string(v);
}

AuditRecord Record(int64_t at, std::string action, std::string object, AuditDecision decision,
                   const nlohmann::json& details) {
  AuditRecord a;
  a.at = at;
  a.actor = "plane";
  a.action = std::move(action);
  a.object = std::move(object);
  a.decision = decision;
  a.details_json = details.dump();
  return a;
}

// Block numbers are int64 in the store; a node claiming a block beyond that
// is broken or lying.
Status CheckBlockNumber(uint64_t n, std::string_view what) {
  if (n > kMaxInt64) {
    return DataLoss("the node reported " + std::string(what) + " " + U(n) +
                    ", beyond any real chain: refusing to index");
  }
  return Status::Ok();
}

}  // namespace

EthereumLedger::EthereumLedger(store::Store& db, std::unique_ptr<ChainSource> chain,
                               EthereumLedgerOptions o, const Clock& clock,
                               const crypto::Ed25519PrivateKey& signing_key)
    : db_(db),
      chain_(std::move(chain)),
      o_(std::move(o)),
      contract_hex_(o_.contract.Hex()),
      clock_(clock),
      key_(signing_key),
      public_key_([&] {
        const auto pub = signing_key.PublicKey();
        return crypto::Bytes(pub.begin(), pub.end());
      }()) {}

Status EthereumLedger::CheckIndexDeployment(const ChainCursor& cursor) const {
  if (cursor.chain_id != static_cast<int64_t>(o_.chain_id) || cursor.contract != contract_hex_) {
    return FailedPrecondition("the rental index in the store is of chain " +
                              std::to_string(cursor.chain_id) + ", contract " + cursor.contract +
                              ", but ledger.chain_id is " + U(o_.chain_id) +
                              " and ledger.contract " + contract_hex_ +
                              ": refusing to use rentals of another deployment");
  }
  return Status::Ok();
}

StatusOr<bool> EthereumLedger::Covers(int64_t consumer_id, int64_t dataset_id, int64_t t0,
                                      int64_t t1) {
  if (t1 <= t0) return InvalidArgument("interval [t0, t1) must not be empty");
  ASSIGN_OR_RETURN(std::optional<ChainCursor> cursor, db_.GetChainCursor());
  if (!cursor) return false;  // nothing indexed yet
  RETURN_IF_ERROR(CheckIndexDeployment(*cursor));
  // Rows written behind the plane's back (no valid signature) grant
  // nothing: fail closed and loudly, as the embedded ledger does.
  ASSIGN_OR_RETURN(std::vector<store::WalletLink> links, db_.ListWalletLinks(consumer_id));
  std::set<std::string> addresses;
  for (const auto& l : links) {
    if (!store::WalletLinkIsSigned(l, public_key_)) {
      return DataLoss("wallet link of " + l.address +
                      ": not signed by the plane: refusing to rely on the wallet links");
    }
    addresses.insert(l.address);
  }
  std::vector<std::pair<int64_t, int64_t>> spans;
  store::ChainRentalFilter f;
  f.user_id = consumer_id;  // only rentals paid by an address linked to this consumer
  f.dataset_id = dataset_id;
  f.min_end = t0 + 1;  // ends after t0 (t0 < t1, so no overflow)
  f.limit = kPage;
  for (;;) {
    ASSIGN_OR_RETURN(std::vector<ChainRental> page, db_.ListChainRentals(f));
    for (const auto& r : page) {
      if (!store::ChainRentalIsSigned(r, public_key_)) {
        return DataLoss("indexed rental " + r.tx_hash + "/" + std::to_string(r.log_index) +
                        ": not signed by the plane: refusing to rely on the rental index");
      }
      if (addresses.count(r.payer) == 0) continue;  // the join and the links must agree
      spans.emplace_back(r.start, r.end);
    }
    if (page.size() < static_cast<size_t>(f.limit)) break;
    f.after = store::ChainRentalPosition{page.back().block_number, page.back().log_index,
                                         page.back().tx_hash};
  }
  return SpansCover(std::move(spans), t0, t1);
}

StatusOr<std::optional<eth::Hash32>> EthereumLedger::HashAt(HashCache& cache, uint64_t number) {
  auto it = cache.find(number);
  if (it != cache.end()) return it->second;
  auto hash = chain_->BlockHash(number);
  if (!hash.ok()) return hash.status().WithContext("block " + U(number));
  cache.emplace(number, *hash);
  return *hash;
}

Status EthereumLedger::ReloadCatalog() {
  ASSIGN_OR_RETURN(std::vector<store::Dataset> datasets, db_.ListDatasets(std::nullopt));
  by_chain_id_.clear();
  names_.clear();
  for (const auto& d : datasets) {
    by_chain_id_[eth::ChainDatasetId(o_.plane_id, d.id)] = CatalogEntry{d.id, d.name};
    names_[d.id] = d.name;
  }
  return Status::Ok();
}

StatusOr<std::optional<EthereumLedger::CatalogEntry>> EthereumLedger::DatasetFor(
    const eth::Hash32& chain_id, bool* reloaded) {
  auto it = by_chain_id_.find(chain_id);
  if (it == by_chain_id_.end() && !*reloaded) {
    *reloaded = true;
    RETURN_IF_ERROR(ReloadCatalog());
    it = by_chain_id_.find(chain_id);
  }
  if (it == by_chain_id_.end()) return std::optional<CatalogEntry>();
  return std::optional<CatalogEntry>(it->second);
}

std::string EthereumLedger::DatasetObject(int64_t dataset_id) const {
  auto it = names_.find(dataset_id);
  return "dataset:" + (it != names_.end() ? it->second : std::to_string(dataset_id));
}

StatusOr<EthereumLedger::SyncReport> EthereumLedger::Sync() {
  std::lock_guard lock(sync_mu_);
  if (o_.confirmations < 1) {
    return InvalidArgument("ledger.confirmations: must be at least 1 (the block itself)");
  }
  if (o_.max_blocks_per_query < 1) {
    return InvalidArgument("ledger max_blocks_per_query: must be at least 1");
  }
  if (o_.chain_id < 1 || o_.chain_id > kMaxInt64 || o_.start_block > kMaxInt64) {
    return InvalidArgument("ledger.chain_id or ledger.start_block: out of range");
  }
  ASSIGN_OR_RETURN(uint64_t chain_id, chain_->ChainId());
  if (chain_id != o_.chain_id) {
    return FailedPrecondition("the node is on chain " + U(chain_id) + ", but ledger.chain_id is " +
                              U(o_.chain_id) + ": refusing to index rentals of another chain");
  }
  ASSIGN_OR_RETURN(std::optional<ChainCursor> stored, db_.GetChainCursor());
  if (stored) RETURN_IF_ERROR(CheckIndexDeployment(*stored));
  ASSIGN_OR_RETURN(uint64_t head, chain_->HeadNumber());
  RETURN_IF_ERROR(CheckBlockNumber(head, "head block"));
  SyncReport report;
  report.head = head;
  const int64_t now = clock_.NowUnix();
  if (by_chain_id_.empty()) RETURN_IF_ERROR(ReloadCatalog());

  std::optional<ChainCursor> expected = stored;
  ChainCursor at{static_cast<int64_t>(o_.chain_id), contract_hex_,
                 static_cast<int64_t>(o_.start_block), ""};
  if (stored) {
    ASSIGN_OR_RETURN(at, CheckForReorg(*stored, head, now, &report));
    expected = at;
  }

  // Blocks up to head - confirmations + 1 have enough confirmations.
  if (head + 1 >= o_.confirmations) {
    const uint64_t last = head + 1 - o_.confirmations;
    bool catalog_reloaded = false;
    uint64_t from = static_cast<uint64_t>(at.next_block);
    while (from <= last) {
      const uint64_t to =
          last - from < o_.max_blocks_per_query ? last : from + (o_.max_blocks_per_query - 1);
      ASSIGN_OR_RETURN(at, IndexRange(expected, from, to, now, &catalog_reloaded, &report));
      expected = at;
      from = to + 1;
    }
  }
  report.indexed_through = at.next_block > 0 ? static_cast<uint64_t>(at.next_block - 1) : 0;
  return report;
}

StatusOr<ChainCursor> EthereumLedger::CheckForReorg(const ChainCursor& stored, uint64_t head,
                                                    int64_t now, SyncReport* report) {
  HashCache canonical;
  std::vector<std::pair<std::string, int64_t>> dropped;
  std::vector<AuditRecord> audits;
  std::optional<uint64_t> lowest;  // the lowest block found replaced
  auto mismatch_at = [&](uint64_t block) { lowest = lowest ? std::min(*lowest, block) : block; };
  auto hex_or_none = [](const std::optional<eth::Hash32>& h) -> nlohmann::json {
    return h ? nlohmann::json(h->Hex()) : nlohmann::json(nullptr);
  };

  // Rentals that still grant something: their blocks must still be canonical.
  store::ChainRentalFilter f;
  f.min_end = now + 1;
  f.limit = kPage;
  for (;;) {
    ASSIGN_OR_RETURN(std::vector<ChainRental> page, db_.ListChainRentals(f));
    for (const ChainRental& r : page) {
      const auto block = static_cast<uint64_t>(r.block_number);
      ASSIGN_OR_RETURN(std::optional<eth::Hash32> now_hash, HashAt(canonical, block));
      if (now_hash && now_hash->Hex() == r.block_hash) continue;
      dropped.emplace_back(r.tx_hash, r.log_index);
      mismatch_at(block);
      audits.push_back(Record(now, "ledger.reorg", DatasetObject(r.dataset_id),
                              AuditDecision::kDeny,
                              {{"tx_hash", r.tx_hash},
                               {"log_index", r.log_index},
                               {"block", r.block_number},
                               {"old_block_hash", r.block_hash},
                               {"new_block_hash", hex_or_none(now_hash)},
                               {"payer", r.payer},
                               {"start", r.start},
                               {"end", r.end},
                               {"reason",
                                "the rental's block left the canonical chain: the "
                                "rental is dropped"}}));
    }
    if (page.size() < static_cast<size_t>(f.limit)) break;
    f.after = store::ChainRentalPosition{page.back().block_number, page.back().log_index,
                                         page.back().tx_hash};
  }

  // The cursor's last block: a reorganisation there means the blocks indexed
  // last may have been replaced, with or without rentals in them.
  nlohmann::json cursor_check = nullptr;
  if (stored.next_block > static_cast<int64_t>(o_.start_block) && !stored.last_block_hash.empty()) {
    const auto block = static_cast<uint64_t>(stored.next_block - 1);
    ASSIGN_OR_RETURN(std::optional<eth::Hash32> now_hash, HashAt(canonical, block));
    if (!now_hash || now_hash->Hex() != stored.last_block_hash) {
      mismatch_at(block);
      cursor_check = {{"block", block},
                      {"old_block_hash", stored.last_block_hash},
                      {"new_block_hash", hex_or_none(now_hash)}};
    }
  }
  if (!lowest) return stored;

  // The store keeps no hash of the blocks between rentals, so the fork point
  // is unknown: it may lie anywhere below the lowest replaced block, and the
  // new branch's blocks there may hold rentals nobody has indexed. Index
  // again from the deployment block: rows still there are kept (and not
  // audited again), so this costs RPC calls, once per (rare, deeper than
  // `confirmations`) reorganisation, never a paid rental left unindexed.
  ChainCursor next{stored.chain_id, stored.contract, static_cast<int64_t>(o_.start_block), ""};
  audits.push_back(Record(now, "ledger.reorg", "ledger", AuditDecision::kInfo,
                          {{"lowest_replaced_block", *lowest},
                           {"head", head},
                           {"rewound_from", stored.next_block},
                           {"rewound_to", next.next_block},
                           {"dropped", dropped.size()},
                           {"cursor_block", cursor_check},
                           {"reason",
                            "the chain reorganised below the indexed blocks: "
                            "indexing again from the deployment block"}}));
  RETURN_IF_ERROR(db_.DropChainRentals(stored, next, dropped, audits));
  report->dropped += static_cast<int64_t>(dropped.size());
  return next;
}

StatusOr<ChainCursor> EthereumLedger::IndexRange(const std::optional<ChainCursor>& expected,
                                                 uint64_t from, uint64_t to, int64_t now,
                                                 bool* catalog_reloaded, SyncReport* report) {
  ASSIGN_OR_RETURN(std::vector<eth::RentedEvent> events, chain_->RentedEvents(from, to));
  // Hashes fetched after the events: an event must be of the block the node
  // now calls canonical, else the node answered from another fork.
  HashCache canonical;
  for (const eth::RentedEvent& e : events) {
    if (e.block_number < from || e.block_number > to) {
      return DataLoss("the node returned a Rented event of block " + U(e.block_number) +
                      " (transaction " + e.tx_hash.Hex() + ") for blocks [" + U(from) + ", " +
                      U(to) + "]: refusing to index");
    }
    ASSIGN_OR_RETURN(std::optional<eth::Hash32> now_hash, HashAt(canonical, e.block_number));
    if (!now_hash || *now_hash != e.block_hash) {
      return Unavailable("block " + U(e.block_number) + ": the Rented event of transaction " +
                         e.tx_hash.Hex() + " is of block hash " + e.block_hash.Hex() +
                         " but the canonical block is " +
                         (now_hash ? now_hash->Hex() : std::string("missing")) +
                         ": the chain reorganised during the round; retrying next round");
    }
  }
  ASSIGN_OR_RETURN(std::optional<eth::Hash32> last_hash, HashAt(canonical, to));
  if (!last_hash) {
    return Unavailable("block " + U(to) +
                       " is not on the node although the head is past it: "
                       "retrying next round");
  }

  // Rentals already indexed (the range was indexed before a rewind) are
  // kept as they are and not audited again.
  std::set<std::pair<std::string, int64_t>> known;
  if (!events.empty()) {
    store::ChainRentalFilter f;
    f.min_block = static_cast<int64_t>(from);
    f.limit = kPage;
    for (;;) {
      ASSIGN_OR_RETURN(std::vector<ChainRental> page, db_.ListChainRentals(f));
      for (const auto& r : page) known.emplace(r.tx_hash, r.log_index);
      if (page.size() < static_cast<size_t>(f.limit) ||
          page.back().block_number > static_cast<int64_t>(to)) {
        break;
      }
      f.after = store::ChainRentalPosition{page.back().block_number, page.back().log_index,
                                           page.back().tx_hash};
    }
  }

  std::vector<ChainRental> rentals;
  std::vector<AuditRecord> audits;
  for (const eth::RentedEvent& e : events) {
    if (e.log_index > kMaxInt64) {
      return DataLoss("transaction " + e.tx_hash.Hex() + ": log index " + U(e.log_index) +
                      " out of range: refusing to index");
    }
    auto key = std::make_pair(e.tx_hash.Hex(), static_cast<int64_t>(e.log_index));
    if (!known.insert(key).second) continue;
    nlohmann::json details = {{"tx_hash", key.first},
                              {"log_index", key.second},
                              {"block", e.block_number},
                              {"block_hash", e.block_hash.Hex()},
                              {"payer", e.consumer.Hex()},
                              {"start", e.start},
                              {"end", e.end},
                              {"days", e.days},
                              {"amount_wei", eth::ToDecimal(e.amount)}};
    ASSIGN_OR_RETURN(std::optional<CatalogEntry> dataset, DatasetFor(e.dataset, catalog_reloaded));
    if (!dataset || e.end <= e.start || e.days < 1) {
      // Fail closed: an event the plane cannot map to one of its datasets
      // (or a nonsensical one) grants nothing. The cursor moves past it, so
      // it is audited once.
      details["chain_dataset_id"] = e.dataset.Hex();
      details["reason"] = !dataset ? "no dataset of this plane has this chain dataset id"
                                   : "the event's interval is empty";
      audits.push_back(Record(now, "rental.index", "chain-dataset:" + e.dataset.Hex(),
                              AuditDecision::kDeny, details));
      continue;
    }
    ChainRental r;
    r.tx_hash = key.first;
    r.log_index = key.second;
    r.block_number = static_cast<int64_t>(e.block_number);
    r.block_hash = e.block_hash.Hex();
    r.dataset_id = dataset->id;
    r.payer = e.consumer.Hex();
    r.start = e.start;
    r.end = e.end;
    r.days = e.days;
    r.amount_wei = eth::ToDecimal(e.amount);
    r.indexed_at = now;
    ASSIGN_OR_RETURN(auto sig, key_.Sign(store::ChainRentalSignatureMessage(r)));
    r.signature.assign(sig.begin(), sig.end());
    details["dataset"] = dataset->name;
    details["dataset_id"] = dataset->id;
    audits.push_back(
        Record(now, "rental.index", "dataset:" + dataset->name, AuditDecision::kAllow, details));
    rentals.push_back(std::move(r));
  }
  ChainCursor next{static_cast<int64_t>(o_.chain_id), contract_hex_, static_cast<int64_t>(to + 1),
                   last_hash->Hex()};
  RETURN_IF_ERROR(db_.IndexChainRentals(expected, next, rentals, audits));
  report->added += static_cast<int64_t>(rentals.size());
  return next;
}

}  // namespace cce::ledger
