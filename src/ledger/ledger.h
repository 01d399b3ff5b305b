// ledger: who has rented which dataset until when. One question matters to
// the rest of the system — does consumer C hold access to dataset D for the
// whole interval [t0, t1]? — behind an interface with backends `embedded`
// (signed, hash-chained rental records in the plane's store; the default)
// and, next, `ethereum` (a rental contract read over JSON-RPC with
// confirmations).
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "base/status.h"
#include "crypto/crypto.h"
#include "store/store.h"

namespace cce::ledger {

// True iff the union of `spans` ([start, end) pairs, any order) covers every
// second of [t0, t1): what every backend's Covers answers from its rows.
bool SpansCover(std::vector<std::pair<int64_t, int64_t>> spans, int64_t t0, int64_t t1);

class Ledger {
 public:
  virtual ~Ledger() = default;
  virtual std::string backend() const = 0;
  // True iff the union of C's rentals of D covers every second of [t0, t1).
  virtual StatusOr<bool> Covers(int64_t consumer_id, int64_t dataset_id, int64_t t0,
                                int64_t t1) = 0;
};

// Embedded backend: rentals are records in the plane's store, each signed by
// the plane and hash-chained (store::AppendRental, store::VerifyRentalChain).
class EmbeddedLedger : public Ledger {
 public:
  EmbeddedLedger(store::Store& db, const crypto::Ed25519PrivateKey& signing_key);
  std::string backend() const override { return "embedded"; }
  // Relies only on rows the plane signed (store::RentalRowIsSigned): a row
  // that does not verify is kDataLoss naming it, never coverage.
  StatusOr<bool> Covers(int64_t consumer_id, int64_t dataset_id, int64_t t0, int64_t t1) override;
  // Records a rental of [start, end), signed by the plane, with its audit
  // entry and the rental chain's signed checkpoint.
  StatusOr<store::Rental> Rent(int64_t consumer_id, int64_t dataset_id, int64_t start, int64_t end,
                               int64_t now, const store::AuditRecord& audit);

 private:
  store::Store& db_;
  const crypto::Ed25519PrivateKey& key_;
  crypto::Bytes public_key_;  // of key_
};

}  // namespace cce::ledger
