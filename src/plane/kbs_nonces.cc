// The key broker's in-memory nonce table (kbs_nonces.h).
#include "plane/kbs_nonces.h"

namespace cce::plane {

namespace {
std::string Str(int64_t v) { return std::to_string(v); }
}  // namespace

void KbsNonceTable::EraseLocked(std::map<Key, KbsNonceEntry>::iterator it) {
  by_expiry_.erase({it->second.expires_at, it->first});
  auto c = per_credential_.find(it->second.credential_id);
  if (c != per_credential_.end() && --c->second <= 0) per_credential_.erase(c);
  by_key_.erase(it);
}

void KbsNonceTable::DropExpiredLocked(int64_t now) {
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) {
    auto it = by_key_.find(by_expiry_.begin()->second);
    if (it == by_key_.end()) {  // cannot happen: the two indexes change together
      by_expiry_.erase(by_expiry_.begin());
      continue;
    }
    EraseLocked(it);
  }
}

Status KbsNonceTable::Issue(const KbsNonceEntry& n, int64_t max_per_credential) {
  if (n.nonce.empty() || n.job_id.empty() || n.credential_id.empty()) {
    return InvalidArgument("nonce: nonce, job_id and credential_id must not be empty");
  }
  if (n.expires_at <= n.issued_at) {
    return InvalidArgument("nonce: expires_at " + Str(n.expires_at) + " is not after issued_at " +
                           Str(n.issued_at));
  }
  if (max_per_credential < 1) {
    return InvalidArgument("nonce: max_per_credential must be at least 1");
  }
  const Key key = crypto::Sha256(crypto::AsBytes(n.nonce));
  std::lock_guard<std::mutex> lock(mu_);
  DropExpiredLocked(n.issued_at);
  auto held = per_credential_.find(n.credential_id);
  const int64_t outstanding = held == per_credential_.end() ? 0 : held->second;
  if (outstanding >= max_per_credential) {
    return ResourceExhausted("nonce: credential " + n.credential_id + " already holds " +
                             Str(outstanding) +
                             " unused nonces (the limit; each expires after its lifetime)");
  }
  if (by_key_.size() >= max_total_) {
    return ResourceExhausted("nonce: the key broker holds " + std::to_string(by_key_.size()) +
                             " unused nonces (its limit); retry after they expire");
  }
  if (by_key_.count(key) != 0) return AlreadyExists("nonce already issued");
  by_key_.emplace(key, n);
  by_expiry_.emplace(n.expires_at, key);
  ++per_credential_[n.credential_id];
  return Status::Ok();
}

StatusOr<KbsNonceEntry> KbsNonceTable::Consume(std::string_view nonce, std::string_view job_id,
                                               int64_t now) {
  const Key key = crypto::Sha256(crypto::AsBytes(nonce));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_key_.find(key);
  // The digest found it; the nonce itself is still compared, in constant time.
  if (it == by_key_.end() ||
      !crypto::ConstantTimeEquals(crypto::AsBytes(it->second.nonce), crypto::AsBytes(nonce))) {
    return NotFound(
        "nonce: unknown to this plane (never issued, already used, expired, or issued before "
        "the plane restarted): ask /kbs/v0/auth for a new one");
  }
  if (it->second.job_id != job_id) return FailedPrecondition("nonce was issued for another job");
  if (now < it->second.issued_at) {
    return FailedPrecondition("nonce is not valid before " + Str(it->second.issued_at));
  }
  if (now >= it->second.expires_at) {
    const int64_t expired = it->second.expires_at;
    EraseLocked(it);
    return FailedPrecondition("nonce expired at " + Str(expired));
  }
  KbsNonceEntry out = it->second;
  EraseLocked(it);
  return out;
}

size_t KbsNonceTable::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_key_.size();
}

}  // namespace cce::plane
