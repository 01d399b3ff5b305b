#include "ledger/ledger.h"

#include <algorithm>
#include <string>
#include <vector>

namespace cce::ledger {

bool SpansCover(std::vector<std::pair<int64_t, int64_t>> spans, int64_t t0, int64_t t1) {
  std::sort(spans.begin(), spans.end());
  int64_t covered_until = t0;  // [t0, covered_until) is covered so far
  for (const auto& [start, end] : spans) {
    if (start > covered_until) break;  // a gap
    covered_until = std::max(covered_until, end);
    if (covered_until >= t1) return true;
  }
  return false;
}

EmbeddedLedger::EmbeddedLedger(store::Store& db, const crypto::Ed25519PrivateKey& signing_key)
    : db_(db), key_(signing_key) {
  const auto pub = signing_key.PublicKey();
  public_key_.assign(pub.begin(), pub.end());
}

StatusOr<bool> EmbeddedLedger::Covers(int64_t consumer_id, int64_t dataset_id, int64_t t0,
                                      int64_t t1) {
  if (t1 <= t0) return InvalidArgument("interval [t0, t1) must not be empty");
  std::vector<std::pair<int64_t, int64_t>> spans;
  store::RentalFilter f;
  f.consumer_id = consumer_id;
  f.dataset_id = dataset_id;
  f.limit = 10000;
  for (;;) {
    ASSIGN_OR_RETURN(std::vector<store::Rental> page, db_.ListRentals(f));
    for (const auto& r : page) {
      // A row written behind the plane's back (no valid signature over its
      // own hash) grants nothing; fail closed and loudly.
      if (!store::RentalRowIsSigned(r, public_key_)) {
        return DataLoss("rental " + std::to_string(r.seq) +
                        ": not signed by the plane (its hash or signature does not verify): "
                        "refusing to rely on the rental records");
      }
      spans.emplace_back(r.start, r.end);
    }
    if (page.size() < static_cast<size_t>(f.limit)) break;
    f.after_seq = page.back().seq;
  }
  return SpansCover(std::move(spans), t0, t1);
}

StatusOr<store::Rental> EmbeddedLedger::Rent(int64_t consumer_id, int64_t dataset_id, int64_t start,
                                             int64_t end, int64_t now,
                                             const store::AuditRecord& audit) {
  if (end <= start) return InvalidArgument("rental must end after it starts");
  store::Rental r;
  r.consumer_id = consumer_id;
  r.dataset_id = dataset_id;
  r.start = start;
  r.end = end;
  r.created_at = now;
  const crypto::Ed25519PrivateKey& key = key_;
  return db_.AppendRental(
      r,
      [&key](crypto::ByteSpan message) -> StatusOr<crypto::Bytes> {
        ASSIGN_OR_RETURN(auto sig, key.Sign(message));
        return crypto::Bytes(sig.begin(), sig.end());
      },
      audit);
}

}  // namespace cce::ledger
