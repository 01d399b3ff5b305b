// libFuzzer target: the desensitizer's policy YAML (sample_policy.h). Any
// input either parses into a policy whose invariants hold or is refused with
// a message; it never crashes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "explore/sample_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cce::explore;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto p = ParseSamplePolicy(text, "fuzz.yaml", "");
  if (!p.ok()) {
    if (p.status().message().empty()) __builtin_trap();  // errors always say what
    return 0;
  }
  // What the parser promises the desensitizer.
  if (p->columns.empty()) __builtin_trap();
  if (!(p->rate > 0 && p->rate <= 1)) __builtin_trap();
  for (const ColumnPolicy& c : p->columns) {
    if (c.name.empty()) __builtin_trap();
    if (c.action == ColumnAction::kGeneralize &&
        (!c.bands.empty()) + (c.width > 0) + (c.prefix > 0) != 1) {
      __builtin_trap();
    }
    if ((c.action == ColumnAction::kHash || c.shift_days_max > 0) && p->secret_file.empty()) {
      __builtin_trap();
    }
  }
  if (p->k_anonymity) {
    for (const std::string& q : p->k_anonymity->quasi_identifiers) {
      const ColumnPolicy* c = p->Find(q);
      if (c == nullptr || c->action == ColumnAction::kDrop) __builtin_trap();
    }
  }
  return 0;
}
