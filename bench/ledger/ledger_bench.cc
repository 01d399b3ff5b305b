// ledger_bench: rental checks per second (Ledger::Covers, what job
// submission, authorization and every key release ask) on the `embedded`
// ledger (signed, chained rows: the baseline) and on the `ethereum` one
// (its index of Rented events and wallet links, each signed by the plane),
// on the same store with the same number of rentals per consumer. Prints
// both and the ratio; the target is "as fast as today" (ratio close
// to 1). Not a test: nothing here asserts on time.
//
//   ledger_bench [--rentals N] [--checks N] [--dir DIR]
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include "base/clock.h"
#include "crypto/crypto.h"
#include "ledger/ethereum_ledger.h"
#include "ledger/ledger.h"
#include "store/sqlite_store.h"

namespace {

using namespace cce;  // NOLINT(google-build-using-namespace): a benchmark main
using SteadyClock = std::chrono::steady_clock;

constexpr int64_t kNow = 1'800'000'000;
constexpr int64_t kDay = 86400;

class FixedClock : public Clock {
 public:
  int64_t NowUnix() const override { return kNow; }
};

// Covers never reads the node; Sync is not run here.
class NoChain : public ledger::ChainSource {
 public:
  StatusOr<uint64_t> ChainId() override { return Unavailable("no node in the benchmark"); }
  StatusOr<uint64_t> HeadNumber() override { return Unavailable("no node"); }
  StatusOr<std::optional<eth::Hash32>> BlockHash(uint64_t) override {
    return Unavailable("no node");
  }
  StatusOr<std::vector<eth::RentedEvent>> RentedEvents(uint64_t, uint64_t) override {
    return Unavailable("no node");
  }
};

template <typename T>
T Must(StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::cerr << "ledger_bench: " << what << ": " << v.status().ToString() << "\n";
    std::exit(1);
  }
  return std::move(v).value();
}
void Must(const Status& s, const char* what) {
  if (!s.ok()) {
    std::cerr << "ledger_bench: " << what << ": " << s.ToString() << "\n";
    std::exit(1);
  }
}

store::AuditRecord Audit(const std::string& action) {
  store::AuditRecord a;
  a.at = kNow;
  a.actor = "bench";
  a.action = action;
  a.object = "bench";
  return a;
}

// Checks per second of `ledger` for consumer `user` over one day from now.
double ChecksPerSecond(ledger::Ledger& ledger, int64_t user, int64_t dataset, long checks) {
  const auto t0 = SteadyClock::now();
  for (long i = 0; i < checks; ++i) {
    const bool covered = Must(ledger.Covers(user, dataset, kNow, kNow + kDay), "Covers");
    if (!covered) {
      std::cerr << "ledger_bench: " << ledger.backend() << ": the rental does not cover\n";
      std::exit(1);
    }
  }
  const double s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  return static_cast<double>(checks) / s;
}

}  // namespace

int main(int argc, char** argv) {
  long rentals = 5;
  long checks = 20000;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::cerr << "ledger_bench: " << name << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--rentals") {
      rentals = std::strtol(value("--rentals"), nullptr, 10);
    } else if (a == "--checks") {
      checks = std::strtol(value("--checks"), nullptr, 10);
    } else if (a == "--dir") {
      dir = value("--dir");
    } else if (a == "--help" || a == "-h") {
      std::cout << "ledger_bench [--rentals N (5)] [--checks N (20000)] [--dir DIR]\n";
      return 0;
    } else {
      std::cerr << "ledger_bench: unknown argument '" << a << "' (see --help)\n";
      return 2;
    }
  }
  if (rentals < 1 || rentals > 10000 || checks < 1) {
    std::cerr << "ledger_bench: --rentals must be 1..10000 and --checks >= 1\n";
    return 2;
  }
  namespace fs = std::filesystem;
  const fs::path root =
      dir.empty() ? fs::temp_directory_path() / ("cce-ledger-bench-" + std::to_string(getpid()))
                  : fs::path(dir);
  fs::create_directories(root);
  store::SqliteStoreOptions so;
  so.path = (root / "bench.db").string();
  auto db = Must(store::SqliteStore::Open(so), "open the store");
  auto key = Must(crypto::Ed25519PrivateKey::Generate(), "key");

  store::User u;
  u.name = "consumer";
  u.role = store::Role::kConsumer;
  u.token_hash = crypto::Sha256(crypto::AsBytes(std::string("consumer")));
  const int64_t user = Must(db->CreateUser(u, Audit("user.add")), "user").id;
  store::User p;
  p.name = "provider";
  p.role = store::Role::kProvider;
  p.token_hash = crypto::Sha256(crypto::AsBytes(std::string("provider")));
  const int64_t provider = Must(db->CreateUser(p, Audit("user.add")), "user").id;
  store::Dataset d;
  d.name = "claims";
  d.owner_id = provider;
  d.location = "file:///x";
  d.price = "1";
  d.max_days = 30;
  d.key_id = std::string(32, 'a');
  d.wrapped_key = {1, 2, 3};
  const int64_t dataset = Must(db->CreateDataset(d, Audit("dataset.register")), "dataset").id;

  // The same rentals in both ledgers: `rentals` back-to-back days ending
  // a day from now (so the union is what covers).
  FixedClock clock;
  ledger::EmbeddedLedger embedded(*db, key);
  ledger::EthereumLedgerOptions o;
  o.chain_id = 31337;
  o.contract.bytes[19] = 0xcc;
  o.confirmations = 1;
  o.plane_id = eth::Keccak256(std::string_view("bench plane"));
  ledger::EthereumLedger ethereum(*db, std::make_unique<NoChain>(), o, clock, key);
  store::WalletLink link{"0x" + std::string(40, '3'), user, kNow};
  {
    auto sig = Must(key.Sign(store::WalletLinkSignatureMessage(link)), "sign");
    link.signature.assign(sig.begin(), sig.end());
  }
  Must(db->LinkWallet(link, Audit("wallet.link")), "link");
  std::vector<store::ChainRental> rows;
  for (long i = 0; i < rentals; ++i) {
    const int64_t start = kNow - (rentals - 1 - i) * kDay;
    Must(embedded.Rent(user, dataset, start, start + kDay + 1, kNow, Audit("rental.create")),
         "embedded rent");
    store::ChainRental r;
    r.tx_hash = eth::Keccak256("tx " + std::to_string(i)).Hex();
    r.log_index = 0;
    r.block_number = 10 + i;
    r.block_hash = eth::Keccak256("block " + std::to_string(i)).Hex();
    r.dataset_id = dataset;
    r.payer = link.address;
    r.start = start;
    r.end = start + kDay + 1;
    r.days = 1;
    r.amount_wei = "10000000000000000";
    r.indexed_at = kNow;
    auto sig = Must(key.Sign(store::ChainRentalSignatureMessage(r)), "sign");
    r.signature.assign(sig.begin(), sig.end());
    rows.push_back(std::move(r));
  }
  store::ChainCursor next{31337, o.contract.Hex(), 10 + rentals, eth::Keccak256("head").Hex()};
  Must(db->IndexChainRentals(std::nullopt, next, rows, {}), "index");

  // Warm both, then measure alternately twice and keep each one's best.
  (void)ChecksPerSecond(embedded, user, dataset, checks / 10 + 1);
  (void)ChecksPerSecond(ethereum, user, dataset, checks / 10 + 1);
  double e = 0, x = 0;
  for (int round = 0; round < 2; ++round) {
    e = std::max(e, ChecksPerSecond(embedded, user, dataset, checks));
    x = std::max(x, ChecksPerSecond(ethereum, user, dataset, checks));
  }
  std::cout << std::fixed << std::setprecision(0) << "ledger_bench: Covers, " << rentals
            << " rentals per consumer, " << checks << " checks each\n"
            << "  embedded (baseline): " << e << " checks/s (" << std::setprecision(1)
            << 1e6 / e << " us each)\n"
            << std::setprecision(0) << "  ethereum index:      " << x << " checks/s ("
            << std::setprecision(1) << 1e6 / x << " us each)\n"
            << std::setprecision(2) << "  ratio ethereum/embedded: " << x / e << "\n";
  if (dir.empty()) fs::remove_all(root);
  return 0;
}
