// EthereumLedger over a FakeChain (a scripted node: blocks, forks, Rented
// events, an off switch) and a real SqliteStore on a temp dir.
#include "ledger/ethereum_ledger.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "store/sqlite_store.h"

namespace cce::ledger {
namespace {

using store::AuditDecision;
using store::AuditEntry;

constexpr int64_t kDay = 86400;
constexpr uint64_t kChainId = 31337;

// The node as the test scripts it. blocks[n] is the hash of canonical block
// n (the head is the last); an event is served only while its block hash is
// canonical, as a real node serves logs of the canonical chain only.
struct FakeChainState {
  uint64_t chain_id = kChainId;
  bool down = false;
  bool stale_logs = false;    // serve events of any fork (a lagging node behind a balancer)
  bool ignore_range = false;  // serve events of any block (a broken node)
  std::vector<eth::Hash32> blocks;
  std::vector<eth::RentedEvent> events;
  int fork = 0;
  int calls = 0;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // RentedEvents calls

  eth::Hash32 NewHash(uint64_t n) const {
    return eth::Keccak256("fork " + std::to_string(fork) + " block " + std::to_string(n));
  }
  void MineTo(uint64_t head) {
    while (blocks.size() <= head) blocks.push_back(NewHash(blocks.size()));
  }
  uint64_t Head() const { return blocks.size() - 1; }
  // A new fork replaces blocks [from, ...] and continues to `head`.
  void Reorg(uint64_t from, uint64_t head) {
    ++fork;
    blocks.resize(from);
    MineTo(head);
  }
};

class FakeChain : public ChainSource {
 public:
  explicit FakeChain(FakeChainState& s) : s_(s) {}
  StatusOr<uint64_t> ChainId() override {
    RETURN_IF_ERROR(Call());
    return s_.chain_id;
  }
  StatusOr<uint64_t> HeadNumber() override {
    RETURN_IF_ERROR(Call());
    return s_.Head();
  }
  StatusOr<std::optional<eth::Hash32>> BlockHash(uint64_t n) override {
    RETURN_IF_ERROR(Call());
    if (n >= s_.blocks.size()) return std::optional<eth::Hash32>();
    return std::optional<eth::Hash32>(s_.blocks[n]);
  }
  StatusOr<std::vector<eth::RentedEvent>> RentedEvents(uint64_t from, uint64_t to) override {
    RETURN_IF_ERROR(Call());
    s_.ranges.emplace_back(from, to);
    std::vector<eth::RentedEvent> out;
    for (const auto& e : s_.events) {
      if ((e.block_number < from || e.block_number > to) && !s_.ignore_range) continue;
      const bool canonical =
          e.block_number < s_.blocks.size() && s_.blocks[e.block_number] == e.block_hash;
      if (canonical || s_.stale_logs) out.push_back(e);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return std::pair(a.block_number, a.log_index) < std::pair(b.block_number, b.log_index);
    });
    return out;
  }

 private:
  Status Call() {
    ++s_.calls;
    if (s_.down) return Unavailable("http://127.0.0.1:8545: connection refused");
    return Status::Ok();
  }
  FakeChainState& s_;
};

class FakeClock : public Clock {
 public:
  int64_t NowUnix() const override { return now; }
  int64_t now = 1'800'000'000;
};

eth::Address AddressOf(uint8_t fill) {
  eth::Address a;
  a.bytes.fill(fill);
  return a;
}

class EthereumLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cce-ethledger-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    store::SqliteStoreOptions so;
    so.path = dir_ + "/db";
    auto db = store::SqliteStore::Open(so);
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(*db);
    for (auto [name, role] :
         {std::pair{"carol", store::Role::kConsumer}, std::pair{"dave", store::Role::kConsumer},
          std::pair{"pat", store::Role::kProvider}}) {
      store::User u;
      u.name = name;
      u.role = role;
      u.token_hash = crypto::Sha256(crypto::AsBytes(std::string(name)));
      auto created = db_->CreateUser(u, Audit("user.add"));
      ASSERT_TRUE(created.ok()) << created.status().message();
      users_.push_back(created->id);
    }
    carol_ = users_[0];
    dave_ = users_[1];
    claims_ = AddDataset("claims");
    labs_ = AddDataset("labs");
    Link(carol_addr_, carol_);
    Link(dave_addr_, dave_);
    options_.chain_id = kChainId;
    options_.contract = AddressOf(0xcc);
    options_.confirmations = 3;
    options_.start_block = 5;
    options_.plane_id = eth::Keccak256("test plane");
    options_.max_blocks_per_query = 4;
    chain_.MineTo(5);
    ledger_ = MakeLedger(options_);
  }
  void TearDown() override {
    ledger_.reset();
    db_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::unique_ptr<EthereumLedger> MakeLedger(const EthereumLedgerOptions& o) {
    return std::make_unique<EthereumLedger>(*db_, std::make_unique<FakeChain>(chain_), o, clock_,
                                            key_);
  }
  static store::AuditRecord Audit(std::string action) {
    store::AuditRecord a;
    a.at = 1000;
    a.actor = "test";
    a.action = std::move(action);
    a.object = "x";
    return a;
  }
  int64_t AddDataset(const std::string& name) {
    store::Dataset d;
    d.name = name;
    d.owner_id = users_[2];
    d.location = "file:///x";
    d.price = "1";
    d.max_days = 30;
    d.key_id = std::string(32, 'a');
    d.wrapped_key = {1, 2, 3};
    auto ds = db_->CreateDataset(d, Audit("dataset.register"));
    EXPECT_TRUE(ds.ok()) << ds.status().message();
    return ds.ok() ? ds->id : 0;
  }
  // A link as the plane's Wallets service makes it: signed.
  void Link(const eth::Address& a, int64_t user) {
    store::WalletLink link{a.Hex(), user, 1000};
    auto sig = key_.Sign(store::WalletLinkSignatureMessage(link));
    ASSERT_TRUE(sig.ok());
    link.signature.assign(sig->begin(), sig->end());
    auto l = db_->LinkWallet(link, Audit("wallet.link"));
    ASSERT_TRUE(l.ok()) << l.status().message();
  }
  // A Rented event in (canonical) block `block`, paying for [now, now + days).
  eth::RentedEvent Rent(uint64_t block, const eth::Address& payer, int64_t dataset,
                        uint32_t days = 1, uint64_t log_index = 0) {
    return RentChainId(block, payer, eth::ChainDatasetId(options_.plane_id, dataset), days,
                       log_index);
  }
  eth::RentedEvent RentChainId(uint64_t block, const eth::Address& payer,
                               const eth::Hash32& chain_dataset, uint32_t days = 1,
                               uint64_t log_index = 0) {
    eth::RentedEvent e;
    e.dataset = chain_dataset;
    e.consumer = payer;
    e.start = clock_.now;
    e.end = clock_.now + days * kDay;
    e.days = days;
    e.amount = eth::U256(days) * 10'000'000'000'000'000ULL;
    e.block_number = block;
    e.block_hash = chain_.blocks.at(block);
    e.tx_hash = eth::Keccak256("tx " + std::to_string(++tx_counter_));
    e.log_index = log_index;
    chain_.events.push_back(e);
    return e;
  }
  EthereumLedger::SyncReport MustSync(EthereumLedger* ledger = nullptr) {
    auto r = (ledger != nullptr ? ledger : ledger_.get())->Sync();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : EthereumLedger::SyncReport{};
  }
  // Does `user` hold `dataset` for the next hour?
  bool Covers(int64_t user, int64_t dataset, EthereumLedger* ledger = nullptr) {
    auto c = (ledger != nullptr ? ledger : ledger_.get())
                 ->Covers(user, dataset, clock_.now, clock_.now + 3600);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() && *c;
  }
  std::vector<AuditEntry> AuditOf(std::string_view action) {
    store::AuditFilter f;
    f.limit = 10000;
    auto all = db_->ListAudit(f);
    EXPECT_TRUE(all.ok());
    std::vector<AuditEntry> out;
    for (auto& e : *all) {
      if (e.record.action == action) out.push_back(e);
    }
    return out;
  }
  int64_t AuditCount() { return db_->GetAuditHead()->seq; }
  std::vector<store::ChainRental> Rows() {
    auto rows = db_->ListChainRentals({});
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<store::ChainRental>{};
  }
  static nlohmann::json Details(const AuditEntry& e) {
    return nlohmann::json::parse(e.record.details_json);
  }

  std::string dir_;
  std::unique_ptr<store::SqliteStore> db_;
  std::vector<int64_t> users_;
  int64_t carol_ = 0, dave_ = 0, claims_ = 0, labs_ = 0;
  const eth::Address carol_addr_ = AddressOf(0x11);
  const eth::Address dave_addr_ = AddressOf(0x22);
  const eth::Address unlinked_addr_ = AddressOf(0x33);
  FakeChainState chain_;
  FakeClock clock_;
  crypto::Ed25519PrivateKey key_ = std::move(crypto::Ed25519PrivateKey::Generate()).value();
  EthereumLedgerOptions options_;
  std::unique_ptr<EthereumLedger> ledger_;
  int tx_counter_ = 0;
};

TEST_F(EthereumLedgerTest, ARentalCountsOnlyOnceItHasTheConfirmations) {
  chain_.MineTo(10);
  const eth::RentedEvent e = Rent(10, carol_addr_, claims_, 2);
  // K = 3: block 10 has 1, 2, then 3 confirmations at heads 10, 11, 12.
  EXPECT_EQ(MustSync().indexed_through, 8u);
  EXPECT_FALSE(Covers(carol_, claims_));
  chain_.MineTo(11);
  EXPECT_EQ(MustSync().indexed_through, 9u);
  EXPECT_FALSE(Covers(carol_, claims_)) << "granted with K-1 confirmations";
  chain_.MineTo(12);
  const auto report = MustSync();
  EXPECT_EQ(report.head, 12u);
  EXPECT_EQ(report.indexed_through, 10u);
  EXPECT_EQ(report.added, 1);
  EXPECT_TRUE(Covers(carol_, claims_));
  EXPECT_FALSE(Covers(carol_, labs_)) << "a rental of claims granted labs";
  // The whole interval only: [start, start + 2 days).
  auto past_end = ledger_->Covers(carol_, claims_, e.start, e.end + 1);
  ASSERT_TRUE(past_end.ok());
  EXPECT_FALSE(*past_end);
  auto exact = ledger_->Covers(carol_, claims_, e.start, e.end);
  ASSERT_TRUE(exact.ok());
  EXPECT_TRUE(*exact);
  EXPECT_FALSE(ledger_->Covers(carol_, claims_, 10, 10).ok());

  // The store row and its audit record name the transaction and the block.
  auto rows = Rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].tx_hash, e.tx_hash.Hex());
  EXPECT_EQ(rows[0].block_number, 10);
  EXPECT_EQ(rows[0].block_hash, chain_.blocks[10].Hex());
  EXPECT_EQ(rows[0].payer, carol_addr_.Hex());
  EXPECT_EQ(rows[0].amount_wei, "20000000000000000");
  auto indexed = AuditOf("rental.index");
  ASSERT_EQ(indexed.size(), 1u);
  EXPECT_EQ(indexed[0].record.decision, AuditDecision::kAllow);
  EXPECT_EQ(indexed[0].record.object, "dataset:claims");
  const auto d = Details(indexed[0]);
  EXPECT_EQ(d["tx_hash"], e.tx_hash.Hex());
  EXPECT_EQ(d["block"], 10);
  EXPECT_EQ(d["payer"], carol_addr_.Hex());
  EXPECT_EQ(d["dataset"], "claims");
  EXPECT_EQ(d["start"], e.start);
  EXPECT_EQ(d["end"], e.end);
  EXPECT_EQ(d["amount_wei"], "20000000000000000");
  // A later round re-indexes nothing and audits nothing.
  const int64_t before = AuditCount();
  EXPECT_EQ(MustSync().added, 0);
  EXPECT_EQ(AuditCount(), before);
}

TEST_F(EthereumLedgerTest, AReorganisationDropsTheRentalAndAuditsWhy) {
  chain_.MineTo(14);
  const eth::RentedEvent e = Rent(10, carol_addr_, claims_);
  MustSync();
  ASSERT_TRUE(Covers(carol_, claims_));
  const eth::Hash32 old_hash = chain_.blocks[10];
  chain_.Reorg(9, 15);  // the new branch has no rental
  const auto report = MustSync();
  EXPECT_EQ(report.dropped, 1);
  EXPECT_EQ(report.added, 0);
  EXPECT_EQ(report.indexed_through, 13u);
  EXPECT_FALSE(Covers(carol_, claims_)) << "a rental whose block left the chain still counts";
  EXPECT_TRUE(Rows().empty());
  auto reorg = AuditOf("ledger.reorg");
  ASSERT_EQ(reorg.size(), 2u);  // the dropped rental, then the rewind
  EXPECT_EQ(reorg[0].record.decision, AuditDecision::kDeny);
  EXPECT_EQ(reorg[0].record.object, "dataset:claims");
  const auto d = Details(reorg[0]);
  EXPECT_EQ(d["tx_hash"], e.tx_hash.Hex());
  EXPECT_EQ(d["block"], 10);
  EXPECT_EQ(d["old_block_hash"], old_hash.Hex());
  EXPECT_EQ(d["new_block_hash"], chain_.blocks[10].Hex());
  EXPECT_EQ(Details(reorg[1])["dropped"], 1);
  // The cursor follows the new branch: the next round finds nothing to do.
  auto cursor = db_->GetChainCursor();
  ASSERT_TRUE(cursor.ok() && cursor->has_value());
  EXPECT_EQ((*cursor)->last_block_hash, chain_.blocks[13].Hex());
  const int64_t before = AuditCount();
  EXPECT_EQ(MustSync().dropped, 0);
  EXPECT_EQ(AuditCount(), before);
}

TEST_F(EthereumLedgerTest, TheSameEventMinedAgainInANewBlockIsIndexedAgain) {
  chain_.MineTo(14);
  eth::RentedEvent e = Rent(10, carol_addr_, claims_);
  MustSync();
  ASSERT_TRUE(Covers(carol_, claims_));
  // The new branch (head 13) mines the same transaction two blocks later,
  // in block 12: 2 confirmations, then 3 at head 14.
  chain_.Reorg(9, 13);
  e.block_number = 12;
  e.block_hash = chain_.blocks[12];
  chain_.events.push_back(e);
  auto first = MustSync();
  EXPECT_EQ(first.dropped, 1);
  EXPECT_EQ(first.added, 0);
  EXPECT_FALSE(Covers(carol_, claims_)) << "counted with 2 confirmations";
  chain_.MineTo(14);
  EXPECT_EQ(MustSync().added, 1);
  EXPECT_TRUE(Covers(carol_, claims_));
  auto rows = Rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].tx_hash, e.tx_hash.Hex());
  EXPECT_EQ(rows[0].block_number, 12);
  EXPECT_EQ(rows[0].block_hash, chain_.blocks[12].Hex());
  EXPECT_EQ(AuditOf("rental.index").size(), 2u);
}

TEST_F(EthereumLedgerTest, ARentalInTheNewBranchBelowTheReplacedBlockIsFound) {
  chain_.MineTo(20);
  Rent(15, carol_addr_, claims_);
  MustSync();
  ASSERT_TRUE(Covers(carol_, claims_));
  // The fork starts at 8, well below the only indexed rental (block 15): dave
  // paid in block 9 of the new branch.
  chain_.Reorg(8, 20);
  Rent(9, dave_addr_, claims_);
  const auto report = MustSync();
  EXPECT_EQ(report.dropped, 1);
  EXPECT_EQ(report.added, 1);
  EXPECT_FALSE(Covers(carol_, claims_));
  EXPECT_TRUE(Covers(dave_, claims_)) << "a rental paid below the replaced block was missed";
}

TEST_F(EthereumLedgerTest, ARentalKeptThroughAReorganisationIsNotAuditedAgain) {
  chain_.MineTo(20);
  Rent(7, dave_addr_, claims_);    // below the fork: stays
  Rent(15, carol_addr_, claims_);  // above: dropped
  MustSync();
  chain_.Reorg(12, 20);
  EXPECT_EQ(MustSync().dropped, 1);
  EXPECT_TRUE(Covers(dave_, claims_));
  EXPECT_FALSE(Covers(carol_, claims_));
  EXPECT_EQ(Rows().size(), 1u);
  EXPECT_EQ(AuditOf("rental.index").size(), 2u);  // one each, from the first round
}

TEST_F(EthereumLedgerTest, AChainThatGotShorterIsFollowed) {
  chain_.MineTo(14);
  Rent(10, carol_addr_, claims_);
  MustSync();
  ASSERT_TRUE(Covers(carol_, claims_));
  chain_.Reorg(8, 8);  // back to block 7 (anvil's evm_revert), then a new block 8
  auto report = MustSync();
  EXPECT_EQ(report.dropped, 1);
  EXPECT_EQ(report.indexed_through, 6u);
  EXPECT_FALSE(Covers(carol_, claims_));
  chain_.MineTo(12);
  Rent(9, carol_addr_, claims_);
  EXPECT_EQ(MustSync().added, 1);
  EXPECT_TRUE(Covers(carol_, claims_));
}

TEST_F(EthereumLedgerTest, AWrongChainIdRefusesAndChangesNothing) {
  chain_.MineTo(12);
  Rent(8, carol_addr_, claims_);
  MustSync();
  auto cursor = db_->GetChainCursor();
  ASSERT_TRUE(cursor.ok());
  const int64_t before = AuditCount();
  chain_.chain_id = 1;
  chain_.MineTo(20);
  Rent(15, dave_addr_, claims_);
  chain_.Reorg(6, 20);  // and the rental's block is not on this chain either
  auto refused = ledger_->Sync();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("chain 1"), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("31337"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(AuditCount(), before);
  EXPECT_EQ(*db_->GetChainCursor(), *cursor);
  EXPECT_EQ(Rows().size(), 1u);
  EXPECT_TRUE(Covers(carol_, claims_));
  EXPECT_FALSE(Covers(dave_, claims_));
}

TEST_F(EthereumLedgerTest, WhenTheNodeIsDownNothingNewIsGrantedAndTheIndexStillCounts) {
  chain_.MineTo(12);
  Rent(8, carol_addr_, claims_);
  MustSync();
  chain_.MineTo(20);
  Rent(12, dave_addr_, claims_);
  chain_.down = true;
  auto failed = ledger_->Sync();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Covers(carol_, claims_)) << "the index stopped counting while the node is down";
  EXPECT_FALSE(Covers(dave_, claims_));
  chain_.down = false;
  MustSync();
  EXPECT_TRUE(Covers(dave_, claims_));
}

TEST_F(EthereumLedgerTest, CoversNeverCallsTheNode) {
  chain_.MineTo(12);
  Rent(8, carol_addr_, claims_);
  MustSync();
  const int calls = chain_.calls;
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(Covers(carol_, claims_));
    EXPECT_FALSE(Covers(dave_, claims_));
  }
  EXPECT_EQ(chain_.calls, calls);
}

TEST_F(EthereumLedgerTest, ARentalPaidByAnUnlinkedAddressGrantsNothing) {
  chain_.MineTo(12);
  Rent(8, unlinked_addr_, claims_);
  MustSync();
  EXPECT_EQ(Rows().size(), 1u);  // indexed: the payment happened
  EXPECT_FALSE(Covers(carol_, claims_));
  EXPECT_FALSE(Covers(dave_, claims_));
  // Whoever proves the address (LinkWallet) gets what it paid for, then.
  Link(unlinked_addr_, carol_);
  EXPECT_TRUE(Covers(carol_, claims_));
  EXPECT_FALSE(Covers(dave_, claims_));
}

TEST_F(EthereumLedgerTest, AnotherUsersLinkedAddressGrantsNothingToThisUser) {
  chain_.MineTo(12);
  Rent(8, dave_addr_, claims_);
  MustSync();
  EXPECT_TRUE(Covers(dave_, claims_));
  EXPECT_FALSE(Covers(carol_, claims_)) << "dave's payment granted carol";
}

TEST_F(EthereumLedgerTest, RentalsAddUpAcrossAddressesButNotAcrossGaps) {
  const eth::Address carol2 = AddressOf(0x44);
  Link(carol2, carol_);
  chain_.MineTo(12);
  const auto a = Rent(7, carol_addr_, claims_, 1);
  clock_.now += kDay;  // the second starts when the first ends
  const auto b = Rent(8, carol2, claims_, 1);
  clock_.now += 2 * kDay;  // a gap of one day
  const auto c = Rent(9, carol2, claims_, 1);
  MustSync();
  auto covers = [&](int64_t t0, int64_t t1) {
    auto r = ledger_->Covers(carol_, claims_, t0, t1);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && *r;
  };
  EXPECT_TRUE(covers(a.start, b.end));
  EXPECT_FALSE(covers(a.start, c.end));
  EXPECT_TRUE(covers(c.start, c.end));
  EXPECT_FALSE(covers(b.end, c.start));
}

TEST_F(EthereumLedgerTest, AnEventOfADatasetNotInTheCatalogIsSkippedAndAuditedOnce) {
  chain_.MineTo(12);
  // Another plane's id for our dataset id, and an id no dataset has.
  RentChainId(7, carol_addr_, eth::ChainDatasetId(eth::Keccak256("other plane"), claims_));
  RentChainId(8, carol_addr_, eth::ChainDatasetId(options_.plane_id, 999));
  MustSync();
  chain_.MineTo(16);
  MustSync();
  MustSync();
  EXPECT_TRUE(Rows().empty());
  EXPECT_FALSE(Covers(carol_, claims_));
  auto denied = AuditOf("rental.index");
  ASSERT_EQ(denied.size(), 2u);
  for (const auto& e : denied) {
    EXPECT_EQ(e.record.decision, AuditDecision::kDeny);
    EXPECT_NE(Details(e)["reason"].get<std::string>().find("no dataset"), std::string::npos);
  }
}

TEST_F(EthereumLedgerTest, ADatasetRegisteredAfterARoundIsFound) {
  chain_.MineTo(12);
  MustSync();
  const int64_t fresh = AddDataset("fresh");
  chain_.MineTo(16);
  Rent(13, carol_addr_, fresh);
  MustSync();
  EXPECT_TRUE(Covers(carol_, fresh));
}

TEST_F(EthereumLedgerTest, AnIndexOfAnotherDeploymentIsNotUsed) {
  chain_.MineTo(12);
  Rent(8, carol_addr_, claims_);
  MustSync();
  EthereumLedgerOptions moved = options_;
  moved.contract = AddressOf(0xdd);
  auto other = MakeLedger(moved);
  auto synced = other->Sync();
  EXPECT_EQ(synced.status().code(), StatusCode::kFailedPrecondition);
  auto covers = other->Covers(carol_, claims_, clock_.now, clock_.now + 60);
  EXPECT_EQ(covers.status().code(), StatusCode::kFailedPrecondition)
      << "rentals of the old contract counted for the new one";
  EXPECT_NE(covers.status().message().find(options_.contract.Hex()), std::string::npos)
      << covers.status().message();
  moved = options_;
  moved.chain_id = 1;
  EXPECT_EQ(MakeLedger(moved)->Covers(carol_, claims_, clock_.now, clock_.now + 60).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(EthereumLedgerTest, AsksForAtMostMaxBlocksPerQueryFromTheDeploymentBlock) {
  chain_.MineTo(30);
  Rent(5, carol_addr_, claims_, 1, 0);
  Rent(5, dave_addr_, claims_, 1, 1);
  Rent(18, carol_addr_, labs_);
  Rent(28, dave_addr_, labs_);
  const auto report = MustSync();
  EXPECT_EQ(report.indexed_through, 28u);
  EXPECT_EQ(report.added, 4);
  ASSERT_FALSE(chain_.ranges.empty());
  uint64_t next = 5;
  for (const auto& [from, to] : chain_.ranges) {
    EXPECT_EQ(from, next);
    EXPECT_LE(to - from + 1, options_.max_blocks_per_query);
    next = to + 1;
  }
  EXPECT_EQ(next, 29u);
  EXPECT_TRUE(Covers(carol_, labs_));
  EXPECT_TRUE(Covers(dave_, labs_));
}

TEST_F(EthereumLedgerTest, AnEventOfAnotherForkFailsTheRoundAndIsNotIndexed) {
  chain_.MineTo(14);
  eth::RentedEvent e = Rent(10, carol_addr_, claims_);
  chain_.Reorg(9, 14);  // the event's block is gone, but a lagging node still serves it
  chain_.stale_logs = true;
  auto r = ledger_->Sync();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find(e.tx_hash.Hex()), std::string::npos) << r.status().message();
  EXPECT_TRUE(Rows().empty());
  EXPECT_FALSE(Covers(carol_, claims_));
  auto cursor = db_->GetChainCursor();
  ASSERT_TRUE(cursor.ok() && cursor->has_value());
  EXPECT_LE((*cursor)->next_block, 10) << "the range with the stale event was skipped";
  chain_.stale_logs = false;
  MustSync();
  EXPECT_FALSE(Covers(carol_, claims_));
}

TEST_F(EthereumLedgerTest, AnEventOutsideTheAskedRangeFailsTheRound) {
  chain_.MineTo(12);
  Rent(11, carol_addr_, claims_);  // 2 confirmations
  chain_.ignore_range = true;
  auto r = ledger_->Sync();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("block 11"), std::string::npos) << r.status().message();
  EXPECT_TRUE(Rows().empty());
  EXPECT_FALSE(Covers(carol_, claims_)) << "granted with 2 of 3 confirmations";
}

// Blocks without rentals are replaced too: the cursor's block hash notices.
TEST_F(EthereumLedgerTest, AReorganisationWithoutIndexedRentalsIsNoticedAtTheCursor) {
  chain_.MineTo(14);
  MustSync();  // blocks 5..12, no rentals
  chain_.Reorg(10, 14);
  Rent(11, dave_addr_, claims_);
  const auto report = MustSync();
  EXPECT_EQ(report.dropped, 0);
  EXPECT_EQ(report.added, 1);
  EXPECT_TRUE(Covers(dave_, claims_)) << "a rental in a replaced block below the cursor was missed";
  auto reorg = AuditOf("ledger.reorg");
  ASSERT_EQ(reorg.size(), 1u);
  EXPECT_EQ(Details(reorg[0])["cursor_block"]["block"], 12);
}

TEST_F(EthereumLedgerTest, RefusesZeroConfirmations) {
  EthereumLedgerOptions o = options_;
  o.confirmations = 0;
  auto r = MakeLedger(o)->Sync();
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("confirmations"), std::string::npos);
}

// Rows written into the store behind the plane's back grant nothing: the
// plane signs each link and each indexed rental, and Covers checks both.
TEST_F(EthereumLedgerTest, AnIndexedRentalNotSignedByThePlaneIsDataLoss) {
  chain_.MineTo(10);
  MustSync();
  ASSERT_FALSE(Covers(carol_, claims_));
  auto cursor = db_->GetChainCursor();
  ASSERT_TRUE(cursor.ok() && cursor->has_value());
  store::ChainRental forged;
  forged.tx_hash = eth::Keccak256("forged").Hex();
  forged.block_number = 3;
  forged.block_hash = eth::Keccak256("block").Hex();
  forged.dataset_id = claims_;
  forged.payer = carol_addr_.Hex();
  forged.start = clock_.now - 10;
  forged.end = clock_.now + 10 * kDay;
  forged.days = 10;
  forged.amount_wei = "1";
  forged.indexed_at = clock_.now;
  forged.signature.assign(64, 0);
  ASSERT_TRUE(db_->IndexChainRentals(*cursor, **cursor, {forged}, {}).ok());
  auto c = ledger_->Covers(carol_, claims_, clock_.now, clock_.now + 3600);
  ASSERT_FALSE(c.ok()) << "a forged index row granted " << *c;
  EXPECT_EQ(c.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(c.status().message().find(forged.tx_hash), std::string::npos)
      << c.status().message();
}

TEST_F(EthereumLedgerTest, AWalletLinkNotSignedByThePlaneIsDataLoss) {
  chain_.MineTo(10);
  Rent(6, unlinked_addr_, claims_, 2);
  MustSync();
  ASSERT_FALSE(Covers(carol_, claims_));
  // Someone with write access to the database links the payer to carol.
  store::WalletLink forged{unlinked_addr_.Hex(), carol_, 1000};
  forged.signature.assign(64, 0);
  ASSERT_TRUE(db_->LinkWallet(forged, Audit("wallet.link")).ok());
  auto c = ledger_->Covers(carol_, claims_, clock_.now, clock_.now + 3600);
  ASSERT_FALSE(c.ok()) << "a forged wallet link granted " << *c;
  EXPECT_EQ(c.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(c.status().message().find(unlinked_addr_.Hex()), std::string::npos)
      << c.status().message();
}

}  // namespace
}  // namespace cce::ledger
