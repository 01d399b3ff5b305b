// Private to src/explore: one column's transformation as the desensitizer
// applies it (desensitize.cc). A value first becomes its level-0 key (the
// column's declared action applied as far as it is a function of the value
// alone, e.g. the band index, the ZIP prefix, the shifted date); the output
// at generalization level L is then Render(key, L). Every coarser level is a
// function of the level-0 key, which is what lets k-anonymity search the
// generalization lattice over distinct keys instead of re-reading rows.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/status.h"
#include "crypto/crypto.h"
#include "explore/sample_policy.h"
#include "explore/tabular.h"

namespace cce::explore::internal {

// HMAC-SHA256 (crypto::HmacSha256): Mac(a, b) is HMAC(key, a || b).
using KeyedHash = crypto::HmacSha256;

// Key encoding: one kind byte, then the payload. 'a' absent, 'n' null, 'e'
// empty string (these three pass through every action unchanged), 's' a
// string output, 'N' / 'B' a number / boolean kept as such.
class ColumnRule {
 public:
  // `mac` keys `hash`, `shift_mac` date shifts: separate keys derived from
  // the provider secret, so no hashed value ever reveals a shift.
  ColumnRule(const ColumnPolicy* policy, const KeyedHash* mac, const KeyedHash* shift_mac);

  const ColumnPolicy& policy() const { return *p_; }
  // Levels of the generalization hierarchy (1 if none); the last level of a
  // hierarchy is "*".
  int levels() const { return levels_; }
  std::string DescribeLevel(int level) const;

  // The level-0 key of v. `entity` is the row's entity value for date
  // shifting (absent: row_id picks the shift). no_shift: skip date shifting
  // (the source side of the utility figure). Errors name reader->Where(col).
  Status Key(const Value& v, std::string_view entity, std::string_view row_id, bool no_shift,
             std::string* key, const TableReader* reader, size_t col) const;
  // The output at `level` for a key from Key().
  void Render(std::string_view key, int level, std::string* out, ValueKind* kind) const;

  // top_k: the values (level-0 keys) that stay.
  std::unordered_set<std::string>& top() { return top_; }

 private:
  const ColumnPolicy* p_;
  const KeyedHash* mac_;
  const KeyedHash* shift_mac_;
  int levels_ = 1;
  int band_levels_ = 0;
  std::unordered_set<std::string> top_;
};

// Dates as days since 1970-01-01 (proleptic Gregorian), for shifting.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);
void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d);

}  // namespace cce::explore::internal
