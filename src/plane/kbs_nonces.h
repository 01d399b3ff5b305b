// Private to src/plane: the key broker's nonces (POST /kbs/v0/auth), held
// in memory only (docs/attestation.md §11, "Nonces live in memory").
//
// A nonce grants nothing by itself: it only lets one attestation attempt of
// one credential name it. Losing the table (a plane restart) therefore fails
// closed: every outstanding nonce is gone, its attest is refused, and the
// agent asks for a new one. What must survive a restart (the credential's
// single use, the job's PROVISIONING -> ATTESTED move, every release's audit
// record) stays in the store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "base/status.h"
#include "crypto/crypto.h"

namespace cce::plane {

// One nonce as /kbs/v0/auth issued it: bound to a job and to the credential
// that asked for it.
struct KbsNonceEntry {
  std::string nonce;  // base64url of 32 random bytes
  std::string job_id;
  std::string credential_id;
  int64_t issued_at = 0;
  int64_t expires_at = 0;  // valid while now < expires_at
};

// Thread-safe, bounded, single use. Memory is bounded twice: a credential
// holds at most `max_per_credential` unused, unexpired nonces (Issue's
// argument), and the table at most `max_total` (the constructor's) whatever
// the number of credentials; expired nonces are dropped at every Issue. A
// used nonce is removed at once.
class KbsNonceTable {
 public:
  explicit KbsNonceTable(size_t max_total) : max_total_(max_total) {}

  // Drops every nonce with expires_at <= n.issued_at, then adds `n`.
  // Errors (nothing added): kInvalidArgument for an empty nonce, job or
  // credential, expires_at <= issued_at or max_per_credential < 1;
  // kResourceExhausted when n.credential_id already holds max_per_credential
  // unused, unexpired nonces, or the table holds max_total (the message says
  // which); kAlreadyExists when the same nonce is already in the table.
  Status Issue(const KbsNonceEntry& n, int64_t max_per_credential);

  // The one use of a nonce: when it is in the table, bound to `job_id` and
  // issued_at <= now < expires_at, removes and returns it. Errors:
  // kNotFound: not in the table (never issued by this plane, already used,
  // expired and dropped, or issued before a restart); kFailedPrecondition:
  // issued for another job (NOT spent: another job's credential cannot burn
  // it), expired (removed), or not yet valid (issued_at > now; kept). The
  // presented nonce is compared in constant time.
  StatusOr<KbsNonceEntry> Consume(std::string_view nonce, std::string_view job_id, int64_t now);

  // Nonces held (unused; expired ones until the next Issue drops them).
  size_t size() const;

 private:
  using Key = crypto::Sha256Digest;  // of the nonce text: lookups by a digest, compare in full
  void DropExpiredLocked(int64_t now);
  void EraseLocked(std::map<Key, KbsNonceEntry>::iterator it);

  const size_t max_total_;
  mutable std::mutex mu_;  // guards everything below
  std::map<Key, KbsNonceEntry> by_key_;
  std::set<std::pair<int64_t, Key>> by_expiry_;                  // (expires_at, key)
  std::unordered_map<std::string, int64_t> per_credential_;    // unused nonces held
};

}  // namespace cce::plane
