// The plane's side of the Ethereum ledger, called directly (no HTTP):
// linking wallets by an EIP-191 signature over a plane-issued challenge
// (Wallets), the ledger as clients see it (LedgerView), and Rentals on an
// ethereum plane.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "eth/eip191.h"
#include "eth/rental_market.h"
#include "eth/secp256k1.h"
#include "plane/service_world.h"
#include "plane/services.h"

namespace cce::plane {
namespace {

using testing::Must;

class SteppedClock : public Clock {
 public:
  int64_t NowUnix() const override { return now.load(); }
  std::atomic<int64_t> now{1'800'000'000};
};

// The ledger of an ethereum plane as the services see it; coverage is not
// what these tests are about (src/ledger/ethereum_ledger_test.cc is).
class FakeEthereumLedger : public ledger::Ledger {
 public:
  std::string backend() const override { return "ethereum"; }
  StatusOr<bool> Covers(int64_t, int64_t, int64_t, int64_t) override { return false; }
};

const char kContract[] = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

class WalletsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = Must(
        testing::ServiceWorld::Create({
            .clock = &clock_,
            .make_ledger =
                [](store::Store&) {
                  return std::unique_ptr<ledger::Ledger>(std::make_unique<FakeEthereumLedger>());
                },
            .adjust =
                [](ServiceDeps& d, const std::string&) {
                  EthereumSettings e;
                  e.chain_id = 31337;
                  e.contract = *eth::ParseAddress(kContract, "contract");
                  e.confirmations = 2;
                  e.rpc = "http://127.0.0.1:8545";
                  d.ethereum = e;
                },
        }),
        "world");
    s_ = &world_->services();
    carol_ = Must(world_->AddUser("carol", store::Role::kConsumer), "carol");
    dave_ = Must(world_->AddUser("dave", store::Role::kConsumer), "dave");
    op_ = Must(world_->AddUser("olga", store::Role::kOperator), "olga");
    pat_ = Must(world_->AddUser("pat", store::Role::kProvider), "pat");
  }

  static eth::PrivateKey NewKey() { return Must(eth::PrivateKey::Generate(), "key"); }

  api::WalletChallenge Challenge(const Caller& c, const eth::Address& a) {
    return Must(s_->wallets.Challenge(c, {a.Checksummed()}), "challenge");
  }
  static std::string Sign(const std::string& message, const eth::PrivateKey& key) {
    return Must(eth::SignPersonal(message, key), "sign");
  }
  StatusOr<api::Wallet> Link(const Caller& c, const eth::Address& a, const std::string& nonce,
                             const std::string& signature) {
    return s_->wallets.Link(c, {a.Checksummed(), nonce, signature});
  }
  int64_t Denials() { return Must(world_->Denials("wallet.link"), "denials"); }
  size_t Links() { return Must(world_->db().ListWalletLinks(std::nullopt), "links").size(); }

  SteppedClock clock_;
  std::unique_ptr<testing::ServiceWorld> world_;
  Services* s_ = nullptr;
  Caller carol_, dave_, op_, pat_;
};

TEST_F(WalletsTest, TheChallengeBindsPlaneChainUserAddressAndExpiry) {
  eth::PrivateKey key = NewKey();
  api::WalletChallenge ch = Challenge(carol_, key.address());
  ASSERT_EQ(ch.nonce.size(), 32u);
  EXPECT_EQ(ch.nonce.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(ch.expires_at, clock_.now + 300);
  // 1800000300 = 2027-01-15T08:05:00Z
  EXPECT_EQ(ch.message, "cce4long wallet link\nplane: " + eth::PlaneId(world_->public_key()).Hex() +
                            "\nchain: 31337\nuser: carol\naddress: " + key.address().Checksummed() +
                            "\nnonce: " + ch.nonce + "\nexpires: 2027-01-15T08:05:00Z");
  // Each challenge has its own nonce.
  EXPECT_NE(Challenge(carol_, key.address()).nonce, ch.nonce);
  // A malformed address, or a mixed-case one with a wrong checksum.
  auto bad = s_->wallets.Challenge(carol_, {"0x1234"});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("body.address"), std::string::npos);
  std::string wrong_case = key.address().Checksummed();
  for (size_t i = 2; i < wrong_case.size(); ++i) {
    if (std::isalpha(static_cast<unsigned char>(wrong_case[i])) != 0) {
      wrong_case[i] = static_cast<char>(wrong_case[i] ^ 0x20);
      break;
    }
  }
  if (wrong_case != key.address().Checksummed()) {
    EXPECT_EQ(s_->wallets.Challenge(carol_, {wrong_case}).status().code(),
              StatusCode::kInvalidArgument);
  }
}

TEST_F(WalletsTest, AGoodSignatureLinksTheAddress) {
  eth::PrivateKey key = NewKey();
  api::WalletChallenge ch = Challenge(carol_, key.address());
  auto linked = Link(carol_, key.address(), ch.nonce, Sign(ch.message, key));
  ASSERT_TRUE(linked.ok()) << linked.status().message();
  EXPECT_EQ(linked->address, key.address().Checksummed());
  EXPECT_EQ(linked->user, "carol");
  EXPECT_EQ(linked->linked_at, clock_.now);
  auto links = Must(world_->db().ListWalletLinks(carol_.user.id), "links");
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].address, key.address().Hex());  // stored lower case
  // Signed by the plane, so the ledger can tell it from a row written
  // behind the plane's back.
  EXPECT_TRUE(store::WalletLinkIsSigned(links[0], world_->public_key()));
  // Audited as an allowed wallet.link on the address.
  store::AuditFilter f;
  f.limit = 10000;
  auto entries = Must(world_->db().ListAudit(f), "audit");
  int allowed = 0;
  for (const auto& e : entries) {
    if (e.record.action == "wallet.link" && e.record.decision == store::AuditDecision::kAllow &&
        e.record.object == "wallet:" + key.address().Hex()) {
      ++allowed;
    }
  }
  EXPECT_EQ(allowed, 1);
  // Listing: carol sees hers, dave none, the operator everyone's.
  auto mine = Must(s_->wallets.List(carol_), "list");
  ASSERT_EQ(mine.wallets.size(), 1u);
  EXPECT_EQ(mine.wallets[0].address, key.address().Checksummed());
  EXPECT_TRUE(Must(s_->wallets.List(dave_), "list").wallets.empty());
  EXPECT_EQ(Must(s_->wallets.List(op_), "list").wallets.size(), 1u);
}

TEST_F(WalletsTest, ASignatureByAnotherKeyIsRefused) {
  eth::PrivateKey key = NewKey();
  eth::PrivateKey other = NewKey();
  api::WalletChallenge ch = Challenge(carol_, key.address());
  auto r = Link(carol_, key.address(), ch.nonce, Sign(ch.message, other));
  ASSERT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().message();
  EXPECT_NE(r.status().message().find("signed by " + other.address().Checksummed()),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(Links(), 0u);
  EXPECT_EQ(Denials(), 1);
  // Garbage is refused too, naming the field.
  api::WalletChallenge ch2 = Challenge(carol_, key.address());
  auto g = Link(carol_, key.address(), ch2.nonce, "0x1234");
  EXPECT_NE(g.status().message().find("body.signature"), std::string::npos);
  EXPECT_EQ(Links(), 0u);
}

TEST_F(WalletsTest, ANonceIsSingleUse) {
  eth::PrivateKey key = NewKey();
  eth::PrivateKey other = NewKey();
  api::WalletChallenge ch = Challenge(carol_, key.address());
  // A failed attempt spends the nonce: the right signature cannot follow it.
  EXPECT_FALSE(Link(carol_, key.address(), ch.nonce, Sign(ch.message, other)).ok());
  auto again = Link(carol_, key.address(), ch.nonce, Sign(ch.message, key));
  ASSERT_EQ(again.status().code(), StatusCode::kPermissionDenied) << again.status().message();
  EXPECT_NE(again.status().message().find("body.nonce"), std::string::npos);
  EXPECT_EQ(Links(), 0u);
  EXPECT_EQ(Denials(), 2);
  // A nonce the plane never issued.
  EXPECT_EQ(
      Link(carol_, key.address(), std::string(32, 'a'), Sign(ch.message, key)).status().code(),
      StatusCode::kPermissionDenied);
}

TEST_F(WalletsTest, AnExpiredNonceIsRefused) {
  eth::PrivateKey key = NewKey();
  api::WalletChallenge ch = Challenge(carol_, key.address());
  clock_.now += Wallets::kChallengeTtlSeconds;
  auto r = Link(carol_, key.address(), ch.nonce, Sign(ch.message, key));
  ASSERT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().message();
  EXPECT_NE(r.status().message().find("expired"), std::string::npos) << r.status().message();
  EXPECT_EQ(Links(), 0u);
  // One second earlier it would have linked.
  api::WalletChallenge fresh = Challenge(carol_, key.address());
  clock_.now += Wallets::kChallengeTtlSeconds - 1;
  EXPECT_TRUE(Link(carol_, key.address(), fresh.nonce, Sign(fresh.message, key)).ok());
}

TEST_F(WalletsTest, AnotherUsersNonceIsRefusedAndStaysTheirs) {
  eth::PrivateKey key = NewKey();
  api::WalletChallenge ch = Challenge(carol_, key.address());
  // dave holds the key (say) and carol's nonce: still not his challenge.
  auto r = Link(dave_, key.address(), ch.nonce, Sign(ch.message, key));
  ASSERT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().message();
  EXPECT_EQ(Links(), 0u);
  EXPECT_EQ(Denials(), 1);
  // ... and he did not spend it.
  EXPECT_TRUE(Link(carol_, key.address(), ch.nonce, Sign(ch.message, key)).ok());
  EXPECT_EQ(Must(world_->db().ListWalletLinks(carol_.user.id), "links").size(), 1u);
}

TEST_F(WalletsTest, ALinkedAddressCannotLinkAgain) {
  eth::PrivateKey key = NewKey();
  // dave asks first; carol links; dave's valid signature is then refused.
  api::WalletChallenge daves = Challenge(dave_, key.address());
  api::WalletChallenge carols = Challenge(carol_, key.address());
  ASSERT_TRUE(Link(carol_, key.address(), carols.nonce, Sign(carols.message, key)).ok());
  auto r = Link(dave_, key.address(), daves.nonce, Sign(daves.message, key));
  ASSERT_EQ(r.status().code(), StatusCode::kAlreadyExists) << r.status().message();
  EXPECT_EQ(Denials(), 1);
  auto links = Must(world_->db().ListWalletLinks(std::nullopt), "links");
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].user_id, carol_.user.id);
  // A new challenge for it is refused at once, for anyone.
  EXPECT_EQ(s_->wallets.Challenge(dave_, {key.address().Hex()}).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(s_->wallets.Challenge(carol_, {key.address().Hex()}).status().code(),
            StatusCode::kAlreadyExists);
}

TEST_F(WalletsTest, AMessageForAnotherAddressIsRefused) {
  eth::PrivateKey a = NewKey();
  eth::PrivateKey b = NewKey();
  api::WalletChallenge for_a = Challenge(carol_, a.address());
  // b signs the challenge that names a, and asks to link b with it.
  auto r = Link(carol_, b.address(), for_a.nonce, Sign(for_a.message, b));
  ASSERT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().message();
  EXPECT_NE(r.status().message().find("issued for " + a.address().Checksummed()), std::string::npos)
      << r.status().message();
  // a signs a message naming b instead of the challenge's text.
  api::WalletChallenge for_a2 = Challenge(carol_, a.address());
  std::string edited = for_a2.message;
  edited.replace(edited.find(a.address().Checksummed()), 42, b.address().Checksummed());
  auto e = Link(carol_, a.address(), for_a2.nonce, Sign(edited, a));
  ASSERT_EQ(e.status().code(), StatusCode::kPermissionDenied) << e.status().message();
  EXPECT_EQ(Links(), 0u);
  EXPECT_EQ(Denials(), 2);
}

TEST_F(WalletsTest, UnusedChallengesPerUserAreBounded) {
  eth::PrivateKey key = NewKey();
  for (size_t i = 0; i < Wallets::kMaxChallengesPerUser; ++i) Challenge(carol_, key.address());
  EXPECT_EQ(s_->wallets.Challenge(carol_, {key.address().Hex()}).status().code(),
            StatusCode::kResourceExhausted);
  // Others are not affected; expired ones free the slots.
  Challenge(dave_, key.address());
  clock_.now += Wallets::kChallengeTtlSeconds;
  Challenge(carol_, key.address());
}

TEST_F(WalletsTest, RentingIsATransactionOnAnEthereumPlane) {
  auto r = s_->rentals.Rent(carol_, {"claims", 3});
  ASSERT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().message(), Rentals::kEthereumRentHint);
  EXPECT_EQ(Must(world_->Denials("rental.create"), "denials"), 1);
}

TEST_F(WalletsTest, RentalsListTheIndexedEventsByRole) {
  store::Dataset d;
  d.name = "claims";
  d.owner_id = pat_.user.id;
  d.location = "file:///nowhere/claims";
  d.price = "1";
  d.max_days = 30;
  d.key_id = "00112233445566778899aabbccddeeff";
  d.wrapped_key = {1, 2, 3};
  d.created_at = clock_.now;
  d = Must(world_->db().CreateDataset(d, world_->Rec("dataset.register", "claims")), "dataset");
  eth::PrivateKey key = NewKey();
  api::WalletChallenge ch = Challenge(carol_, key.address());
  ASSERT_TRUE(Link(carol_, key.address(), ch.nonce, Sign(ch.message, key)).ok());
  store::ChainRental cr;
  cr.tx_hash = "0x" + std::string(64, 'e');
  cr.log_index = 1;
  cr.block_number = 12;
  cr.block_hash = "0x" + std::string(64, 'b');
  cr.dataset_id = d.id;
  cr.payer = key.address().Hex();
  cr.start = clock_.now;
  cr.end = clock_.now + 86400;
  cr.days = 1;
  cr.amount_wei = "10000000000000000";
  cr.indexed_at = clock_.now + 5;
  store::ChainCursor cursor{31337, eth::ParseAddress(kContract, "c")->Hex(), 13,
                            "0x" + std::string(64, 'b')};
  ASSERT_TRUE(world_->db()
                  .IndexChainRentals(std::nullopt, cursor, {cr},
                                     {world_->Rec("rental.index", "dataset:claims")})
                  .ok());
  auto carols = Must(s_->rentals.List(carol_), "list");
  ASSERT_EQ(carols.rentals.size(), 1u);
  const api::Rental& w = carols.rentals[0];
  EXPECT_EQ(w.dataset, "claims");
  EXPECT_EQ(w.consumer, "carol");
  EXPECT_EQ(w.start, cr.start);
  EXPECT_EQ(w.end, cr.end);
  EXPECT_EQ(w.tx_hash, cr.tx_hash);
  EXPECT_EQ(w.block, 12);
  EXPECT_EQ(w.payer, cr.payer);
  EXPECT_EQ(w.amount_wei, cr.amount_wei);
  EXPECT_TRUE(Must(s_->rentals.List(dave_), "list").rentals.empty());
  EXPECT_EQ(Must(s_->rentals.List(pat_), "list").rentals.size(), 1u);
  EXPECT_EQ(Must(s_->rentals.List(op_), "list").rentals.size(), 1u);
  Caller rita = Must(world_->AddUser("rita", store::Role::kReviewer), "rita");
  EXPECT_TRUE(Must(s_->rentals.List(rita), "list").rentals.empty());
  // The ledger as clients see it.
  api::LedgerInfo info = Must(s_->ledger.Info(), "info");
  EXPECT_EQ(info.backend, "ethereum");
  EXPECT_EQ(info.chain_id, 31337);
  EXPECT_EQ(info.contract, kContract);
  EXPECT_EQ(info.confirmations, 2);
  EXPECT_EQ(info.plane_id, eth::PlaneId(world_->public_key()).Hex());
  EXPECT_EQ(info.indexed_through, 12);
  EXPECT_FALSE(info.last_sync_error.has_value());
  s_->ledger.RecordSync(Unavailable("eth_blockNumber: http://127.0.0.1:8545: refused"));
  EXPECT_EQ(Must(s_->ledger.Info(), "info").last_sync_error,
            "eth_blockNumber: http://127.0.0.1:8545: refused");
  s_->ledger.RecordSync(Status::Ok());
  EXPECT_FALSE(Must(s_->ledger.Info(), "info").last_sync_error.has_value());
  api::LedgerDataset ld = Must(s_->ledger.Dataset("claims"), "dataset");
  EXPECT_EQ(ld.chain_dataset_id,
            eth::ChainDatasetId(eth::PlaneId(world_->public_key()), d.id).Hex());
  EXPECT_EQ(s_->ledger.Dataset("nope").status().code(), StatusCode::kNotFound);
}

// An embedded plane has no wallets.
TEST(WalletsEmbedded, RefusedWithTheReason) {
  SteppedClock clock;
  auto world = Must(testing::ServiceWorld::Create({.clock = &clock}), "world");
  Caller carol = Must(world->AddUser("carol", store::Role::kConsumer), "carol");
  auto r = world->services().wallets.Challenge(carol, {"0x" + std::string(40, 'a')});
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("embedded"), std::string::npos);
  EXPECT_EQ(Must(world->services().ledger.Info(), "info").backend, "embedded");
  EXPECT_FALSE(Must(world->services().ledger.Info(), "info").chain_id.has_value());
  EXPECT_EQ(world->services().ledger.Dataset("x").status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace cce::plane
